package conf

import "gopkg.in/yaml.v3"

// Value returns the value node of key in the mapping n, or n itself when n is not a mapping or
// has no such key: pass it to Errorf so a problem with one key is reported at that key's line,
// not at the first line of its section.
func Value(n *yaml.Node, key string) *yaml.Node {
	if n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1]
			}
		}
	}
	return n
}

// Item returns the i-th element of the sequence under key in the mapping n, or the closest node
// found (see Value).
func Item(n *yaml.Node, key string, i int) *yaml.Node {
	v := Value(n, key)
	if v != nil && v.Kind == yaml.SequenceNode && i >= 0 && i < len(v.Content) {
		return v.Content[i]
	}
	return v
}
