package mediamtx

import (
	"strings"
	"unicode/utf8"

	"gatehouse/authz/hookio"
)

// decodeFast parses the common shape of MediaMTX's body — one flat object whose values are
// strings without escapes or null — without reflection, through hookio.WalkJSON. It reports false
// for anything else (escapes, numbers, nested values, keys that only differ in case from known
// ones, invalid UTF-8, trailing data), and the caller then uses encoding/json, so both paths
// accept and produce the same thing (FuzzDecodeFastMatchesJSON checks it).
func decodeFast(b []byte, w *wireRequest) bool {
	return hookio.WalkJSON(b, func(_, key, val []byte, kind hookio.FastKind) bool {
		switch kind {
		case hookio.FastString:
			return assign(w, key, val, false)
		case hookio.FastNull:
			return assign(w, key, nil, true)
		}
		return false // numbers and objects: encoding/json decides
	})
}

var knownKeys = [...]string{"ip", "user", "password", "token", "action", "path", "protocol", "id", "query", "userAgent"}

// assign stores one field. null leaves a string field unchanged (as encoding/json does) and sets
// id to nil.
func assign(w *wireRequest, key, val []byte, isNull bool) bool {
	var dst *string
	switch string(key) { // no allocation: the compiler compares the bytes in place
	case "ip":
		dst = &w.IP
	case "user":
		dst = &w.User
	case "password":
		dst = &w.Password
	case "token":
		dst = &w.Token
	case "action":
		dst = &w.Action
	case "path":
		dst = &w.Path
	case "protocol":
		dst = &w.Protocol
	case "query":
		dst = &w.Query
	case "userAgent":
		dst = &w.UserAgent
	case "id":
		if isNull {
			w.ID = nil
		} else {
			v := string(val)
			w.ID = &v
		}
		return true
	default:
		for _, k := range knownKeys {
			if strings.EqualFold(k, string(key)) {
				return false // encoding/json matches keys case-insensitively: let it decide
			}
		}
		return true // an unknown field, ignored
	}
	if !isNull {
		*dst = string(val)
	}
	return true
}

// appendReply encodes the reply object; reasons and messages are gatehouse's own text, but any
// string is escaped correctly.
func appendReply(b []byte, r reply) []byte {
	b = append(b, `{"allowed":`...)
	if r.Allowed {
		b = append(b, "true"...)
	} else {
		b = append(b, "false"...)
	}
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, r.Reason)
	if r.Message != "" {
		b = append(b, `,"message":`...)
		b = appendJSONString(b, r.Message)
	}
	return append(b, '}') // no newline: MediaMTX logs the body, and would log it as an empty line
}

const hexDigits = "0123456789abcdef"

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
			i++
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				b = append(b, `\ufffd`...)
			case r == '\u2028' || r == '\u2029':
				b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			default:
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	return append(b, '"')
}
