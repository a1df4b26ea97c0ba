package mediamtx

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// decodeFast parses the common shape of MediaMTX's body — one flat object whose values are
// strings without escapes or null — without reflection. It reports false for anything else
// (escapes, numbers, nested values, keys that only differ in case from known ones, invalid UTF-8,
// trailing data), and the caller then uses encoding/json, so both paths accept and produce the
// same thing (FuzzDecodeFastMatchesJSON checks it).
func decodeFast(b []byte, w *wireRequest) bool {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipWS(b, i+1) == len(b)
	}
	for {
		key, j, ok := scanString(b, i)
		if !ok {
			return false
		}
		i = skipWS(b, j)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipWS(b, i+1)
		var val []byte
		isNull := false
		if bytes.HasPrefix(b[i:], nullLit) {
			isNull, i = true, i+4
		} else {
			val, i, ok = scanString(b, i)
			if !ok {
				return false
			}
		}
		if !assign(w, key, val, isNull) {
			return false
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return skipWS(b, i+1) == len(b)
		default:
			return false
		}
	}
}

var nullLit = []byte("null")

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

// scanString reads a JSON string without escapes starting at b[i] == '"'.
func scanString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	ascii := true
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s := b[i+1 : j]
			if !ascii && !utf8.Valid(s) {
				return nil, j, false
			}
			return s, j + 1, true
		case c == '\\' || c < 0x20:
			return nil, j, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, len(b), false
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
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
