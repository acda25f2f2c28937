package requestpath

import "strings"

// Collections whose paths name a session in their third segment:
// /api/sessions/{id}… and /ws/sessions/{id}….
var sessionCollections = [][2]string{{"api", "sessions"}, {"ws", "sessions"}}

// SessionID returns the session a decoded canonical path names for the
// backend: the third segment of a path under /api/sessions/ or
// /ws/sessions/, those two segments compared without regard to case (an
// upstream may route them so). It returns false for a path naming no
// session, such as /api/sessions itself.
func SessionID(decoded string) (string, bool) {
	rest := strings.TrimPrefix(decoded, "/")
	first, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return "", false
	}
	second, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return "", false
	}
	for _, c := range sessionCollections {
		if strings.EqualFold(first, c[0]) && strings.EqualFold(second, c[1]) {
			id, _, _ := strings.Cut(rest, "/")
			return id, id != ""
		}
	}
	return "", false
}
