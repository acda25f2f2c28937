// Package requestpath gives every request one path: Canonical refuses a path
// that servers may read in more than one way (dot segments, empty segments,
// encoded separators, path parameters, backslashes, control bytes, double
// encoding) and writes every other one in a single form, so that the
// gateway's decisions and the upstreams behind it see the same path.
package requestpath

import (
	"errors"
	"fmt"
	"strings"
)

// ErrAmbiguous is wrapped by every error of Canonical: the path has no single
// meaning and is refused.
var ErrAmbiguous = errors.New("the path has no single meaning")

// Path is a request path in canonical form.
type Path struct {
	// Decoded is the path with every escape decoded, as net/url's URL.Path
	// holds it.
	Decoded string
	// Escaped is the canonical escaped form, as sent to upstreams: every
	// byte outside the unreserved characters, the sub-delimiters other than
	// ';', ':', '@' and '/' percent-encoded with upper-case hex digits, and
	// no other byte encoded.
	Escaped string
}

// Canonical checks the escaped path of a request (as it arrived, before any
// decoding) and returns its canonical form. It refuses, wrapping
// ErrAmbiguous, a path that:
//
//   - does not start with "/" (such as "*" or an empty path);
//   - holds an empty segment ("//"), or a "." or ".." segment, whether its
//     dots are written plainly or encoded;
//   - holds ';' (a path parameter to some servers), '\' (a separator to
//     others) or a control byte (NUL included), plainly or encoded;
//   - encodes '/' or '.' (%2F, %2E), which some servers decode into
//     structure before routing and others after;
//   - holds an escape whose decoding yields another escape ("%252e"), which
//     a server decoding twice reads differently;
//   - holds a malformed escape.
//
// Case is kept as sent: paths are case-sensitive.
func Canonical(escaped string) (Path, error) {
	if !strings.HasPrefix(escaped, "/") {
		return Path{}, fmt.Errorf("%w: it does not start with /", ErrAmbiguous)
	}
	if isPlain(escaped) {
		// Nothing to decode or re-encode (the common case): no copy.
		if err := checkSegments(escaped); err != nil {
			return Path{}, err
		}
		return Path{Decoded: escaped, Escaped: escaped}, nil
	}
	var dec, esc strings.Builder
	dec.Grow(len(escaped))
	esc.Grow(len(escaped))
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		if c == '%' {
			if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
				return Path{}, fmt.Errorf("%w: malformed escape at byte %d", ErrAmbiguous, i)
			}
			b := unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			if b == '/' || b == '.' || b == '\\' || b == ';' || isControl(b) {
				return Path{}, fmt.Errorf("%w: encoded %q", ErrAmbiguous, string(rune(b)))
			}
			dec.WriteByte(b)
			writeCanonical(&esc, b)
			i += 2
			continue
		}
		if c == '\\' || c == ';' || isControl(c) {
			return Path{}, fmt.Errorf("%w: %q in the path", ErrAmbiguous, string(rune(c)))
		}
		dec.WriteByte(c)
		writeCanonical(&esc, c)
	}
	p := Path{Decoded: dec.String(), Escaped: esc.String()}
	if hasEscape(p.Decoded) {
		return Path{}, fmt.Errorf("%w: an escape that decodes into another escape", ErrAmbiguous)
	}
	if err := checkSegments(p.Decoded); err != nil {
		return Path{}, err
	}
	return p, nil
}

// isPlain reports whether every byte of s stands as is in a canonical path,
// so that s is its own decoded and canonical form.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; !isUnreserved(b) && !isPlainInPath(b) {
			return false
		}
	}
	return true
}

// checkSegments refuses empty, "." and ".." segments; a final empty segment
// (a trailing "/") is allowed.
func checkSegments(decoded string) error {
	rest := decoded[1:]
	for rest != "" {
		seg, tail, more := strings.Cut(rest, "/")
		switch {
		case seg == "" && more:
			return fmt.Errorf("%w: an empty segment (//)", ErrAmbiguous)
		case seg == "." || seg == "..":
			return fmt.Errorf("%w: a %q segment", ErrAmbiguous, seg)
		}
		rest = tail
	}
	return nil
}

// hasEscape reports whether s holds '%' followed by two hex digits.
func hasEscape(s string) bool {
	for i := strings.IndexByte(s, '%'); i >= 0; i = strings.IndexByte(s, '%') {
		if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			return true
		}
		s = s[i+1:]
	}
	return false
}

// writeCanonical writes byte b of a decoded path in canonical form.
func writeCanonical(sb *strings.Builder, b byte) {
	if isUnreserved(b) || isPlainInPath(b) {
		sb.WriteByte(b)
		return
	}
	const hex = "0123456789ABCDEF"
	sb.WriteByte('%')
	sb.WriteByte(hex[b>>4])
	sb.WriteByte(hex[b&15])
}

// isUnreserved reports whether b is an unreserved character of RFC 3986.
func isUnreserved(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		b == '-' || b == '.' || b == '_' || b == '~'
}

// isPlainInPath reports whether b stands unencoded in a canonical path: '/',
// ':', '@' and the sub-delimiters other than ';'.
func isPlainInPath(b byte) bool {
	return strings.IndexByte("/:@!$&'()*+,=", b) >= 0
}

func isControl(b byte) bool { return b < 0x20 || b == 0x7f }

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

func unhex(b byte) byte {
	switch {
	case '0' <= b && b <= '9':
		return b - '0'
	case 'a' <= b && b <= 'f':
		return b - 'a' + 10
	}
	return b - 'A' + 10
}
