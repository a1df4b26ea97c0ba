package authz

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadStreamPath is wrapped by CheckPath's errors.
var ErrBadStreamPath = errors.New("authz: bad stream path")

// MaxPathLen is the longest stream path the engine decides (bytes).
const MaxPathLen = 256

// CheckPath reports whether p is a concrete stream path that every streaming server and file
// system treats alike: not empty, at most MaxPathLen bytes, no leading or trailing slash, no
// empty, "." or ".." segment, and no control character. It is the one rule every adapter shares;
// the engine denies any path action whose Request.Path fails it (reason invalid_path), so an
// adapter that forgets to check cannot let "live/../admin" through. The error says which rule
// failed and never repeats the path (it may be a stream key).
func CheckPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: empty", ErrBadStreamPath)
	case len(p) > MaxPathLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrBadStreamPath, MaxPathLen)
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: an empty, \".\" or \"..\" segment (or a leading or trailing slash)", ErrBadStreamPath)
		}
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: a control character", ErrBadStreamPath)
		}
	}
	return nil
}
