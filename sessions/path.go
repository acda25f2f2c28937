package sessions

import (
	"fmt"
	"net/url"
	"strings"
)

// Bounds on file paths.
const (
	maxPathLen    = 4096
	maxSegmentLen = 255
)

// ParsePath turns the escaped path of a file below a session's files/ (as it
// appears in the request URL, after ".../files/") into a clean relative path
// with "/" separators. dir reports a trailing "/" (or an empty path, the
// files/ directory itself, returned as "."). It refuses, with ErrInvalidPath,
// anything that could name a place other than the one it spells plainly:
// "." and ".." segments (also percent-encoded), empty segments (an absolute
// path), encoded or literal backslashes, encoded slashes, NUL bytes, and
// control characters. Symbolic links are the business of os.Root.
func ParsePath(escaped string) (rel string, dir bool, err error) {
	if len(escaped) > maxPathLen {
		return "", false, fmt.Errorf("%w: longer than %d bytes", ErrInvalidPath, maxPathLen)
	}
	if escaped == "" {
		return ".", true, nil
	}
	lower := strings.ToLower(escaped)
	for _, bad := range []string{"%2f", "%5c", "%00", "\\"} {
		if strings.Contains(lower, bad) {
			return "", false, fmt.Errorf("%w: %q may not appear in a path", ErrInvalidPath, bad)
		}
	}
	if strings.HasSuffix(escaped, "/") {
		dir = true
		escaped = strings.TrimSuffix(escaped, "/")
	}
	segs := strings.Split(escaped, "/")
	for i, raw := range segs {
		seg, err := url.PathUnescape(raw)
		if err != nil {
			return "", false, fmt.Errorf("%w: bad escape in %q", ErrInvalidPath, raw)
		}
		switch {
		case seg == "":
			return "", false, fmt.Errorf("%w: empty segment (absolute path or \"//\")", ErrInvalidPath)
		case seg == "." || seg == "..":
			return "", false, fmt.Errorf("%w: %q segments are not allowed", ErrInvalidPath, seg)
		case len(seg) > maxSegmentLen:
			return "", false, fmt.Errorf("%w: a name is longer than %d bytes", ErrInvalidPath, maxSegmentLen)
		case strings.ContainsAny(seg, "/\\"):
			return "", false, fmt.Errorf("%w: encoded separator", ErrInvalidPath)
		}
		for _, r := range seg {
			if r < 0x20 || r == 0x7f {
				return "", false, fmt.Errorf("%w: control character in a name", ErrInvalidPath)
			}
		}
		segs[i] = seg
	}
	return strings.Join(segs, "/"), dir, nil
}
