package requestpath

import (
	"fmt"
	"path"
	"strings"
)

// Patterns is a list of path patterns in the syntax of Caddy's path matcher,
// matched case-sensitively against a decoded canonical path, as upstreams
// route it:
//
//   - "/exact" matches that path only;
//   - "/prefix/*" matches every path starting with "/prefix/";
//   - "*suffix" matches every path ending in "suffix";
//   - "*part*" matches every path containing "part";
//   - any other pattern holding '*' is a glob of package path, where '*'
//     stays inside one segment.
type Patterns []string

// Validate reports the first pattern that is empty, starts with neither "/"
// nor "*", or is a malformed glob.
func (ps Patterns) Validate() error {
	for _, p := range ps {
		if !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "*") {
			return fmt.Errorf("path pattern %q: must start with / or *", p)
		}
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("path pattern %q: %w", p, err)
		}
	}
	return nil
}

// Match reports whether decoded matches any of the patterns.
func (ps Patterns) Match(decoded string) bool {
	for _, p := range ps {
		if matchPattern(p, decoded) {
			return true
		}
	}
	return false
}

func matchPattern(pattern, p string) bool {
	stars := strings.Count(pattern, "*")
	switch {
	case stars == 0:
		return p == pattern
	case pattern == "*":
		return true
	case stars == 1 && strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(p, pattern[:len(pattern)-1])
	case stars == 1 && strings.HasPrefix(pattern, "*"):
		return strings.HasSuffix(p, pattern[1:])
	case stars == 2 && len(pattern) > 2 && strings.HasPrefix(pattern, "*") && strings.HasSuffix(pattern, "*"):
		return strings.Contains(p, pattern[1:len(pattern)-1])
	}
	ok, _ := path.Match(pattern, p)
	return ok
}
