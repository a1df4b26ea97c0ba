package keys_test

import (
	"context"
	"fmt"

	"gopkg.in/yaml.v3"

	"gatehouse/authz"
	"gatehouse/backends/keys"
)

// A streamer pastes the key into OBS's "Stream key" field; the backend allows the publish and asks
// the adapter to rename the stream to its public path.
func Example() {
	var cfg keys.Config
	src := `
- key: 0f1e2d3c4b5a69788796a5b4c3d2e1f0
  path: live/alice
  user: alice
`
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		fmt.Println(err)
		return
	}
	b, err := keys.New(cfg, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	d, _ := b.Authorize(context.Background(), &authz.Request{
		Action: authz.ActionPublish,
		Path:   "live/0f1e2d3c4b5a69788796a5b4c3d2e1f0",
	})
	fmt.Println(d.Outcome, d.Identity, d.Rename)
	d, _ = b.Authorize(context.Background(), &authz.Request{Action: authz.ActionPublish, Path: "live/cam"})
	fmt.Println(d.Outcome)
	// Output:
	// allow alice live/alice
	// abstain
}
