package mediamtx

import (
	"strings"
	"unicode/utf8"

	"gatehouse/authz/hookio"
)

// decodeFast parses the common shape of MediaMTX's body — one flat object whose values are
// strings without escapes or null — without reflection, through hookio.WalkJSON. It reports false
// for anything else (escapes, numbers, nested values, keys that only differ in case from known
// ones, invalid UTF-8, trailing data), leaving w unchanged, and the caller then uses
// encoding/json, so both paths accept and produce the same thing (FuzzDecodeFastMatchesJSON
// checks it). The fields' values are copied out of b together (hookio.CopyStrings).
func decodeFast(b []byte, w *wireRequest) bool {
	var raw rawRequest
	ok := hookio.WalkJSON(b, func(_, key, val []byte, kind hookio.FastKind) bool {
		switch kind {
		case hookio.FastString:
			return raw.assign(key, val, false)
		case hookio.FastNull:
			return raw.assign(key, nil, true)
		}
		return false // numbers and objects: encoding/json decides
	})
	if !ok {
		return false
	}
	var str [numFields]string
	hookio.CopyStrings(str[:], raw.vals[:])
	w.IP, w.User, w.Password, w.Token, w.Action = str[fIP], str[fUser], str[fPassword], str[fToken], str[fAction]
	w.Path, w.Protocol, w.Query, w.UserAgent = str[fPath], str[fProtocol], str[fQuery], str[fUserAgent]
	if raw.hasID {
		id := str[fID]
		w.ID = &id
	}
	return true
}

// The fields of wireRequest, in rawRequest.vals.
const (
	fIP = iota
	fUser
	fPassword
	fToken
	fAction
	fPath
	fProtocol
	fQuery
	fUserAgent
	fID
	numFields
)

// rawRequest is a wireRequest whose values still alias the body.
type rawRequest struct {
	vals  [numFields][]byte
	hasID bool // id was a string last (null sets it back to false, as encoding/json sets nil)
}

var knownKeys = [...]string{"ip", "user", "password", "token", "action", "path", "protocol", "id", "query", "userAgent"}

// assign stores one field. null leaves a string field unchanged (as encoding/json does) and sets
// id to nil.
func (r *rawRequest) assign(key, val []byte, isNull bool) bool {
	var f int
	switch string(key) { // no allocation: the compiler compares the bytes in place
	case "ip":
		f = fIP
	case "user":
		f = fUser
	case "password":
		f = fPassword
	case "token":
		f = fToken
	case "action":
		f = fAction
	case "path":
		f = fPath
	case "protocol":
		f = fProtocol
	case "query":
		f = fQuery
	case "userAgent":
		f = fUserAgent
	case "id":
		r.hasID = !isNull
		if isNull {
			r.vals[fID] = nil
		} else {
			r.vals[fID] = val
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
		r.vals[f] = val
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
