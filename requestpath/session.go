package requestpath

import (
	"net/url"
	"strings"
)

// Collections whose paths name a session in their third segment:
// /api/sessions/{id}… and /ws/sessions/{id}….
var sessionCollections = [][2]string{{"api", "sessions"}, {"ws", "sessions"}}

// SessionPath is a request path that names a session: /api/sessions/{id}…
// or /ws/sessions/{id}…, those two segments in any case (an upstream may
// route them so). It is the one parse of such paths: the session API and
// the ownership check of every path naming a session both route on it.
type SessionPath struct {
	// ID is the third segment, decoded: the session the path names to
	// anyone who decodes it, the backend included.
	ID string
	// API reports the gateway's own session API: the path starts with
	// /api/sessions/{id} spelt exactly so, without escapes. Any other
	// spelling, and /ws/sessions/, is the backend's.
	API bool
	// Rest is the escaped path after the id, "" or starting with "/"
	// (/api/sessions/{id}/files/a%20b gives "/files/a%20b"); set when API is.
	Rest string
}

// ParseSession returns the session u's path names; false for a path that
// names none, such as /api/sessions itself. The id is taken from the
// decoded path; the rest from the escaped one, so that an encoded "/" or
// "." in a file name stays what it is and is never decoded into structure.
func ParseSession(u *url.URL) (SessionPath, bool) {
	d, n, _ := splitSegments(u.Path)
	if n < 3 || d[2] == "" || !isSessionCollection(d[0], d[1]) {
		return SessionPath{}, false
	}
	sp := SessionPath{ID: d[2]}
	ep := u.EscapedPath()
	e, m, rest := splitSegments(ep)
	if d[0] == "api" && d[1] == "sessions" && m >= 3 && e[0] == d[0] && e[1] == d[1] && e[2] == d[2] {
		sp.API = true
		if m == 4 {
			sp.Rest = ep[rest-1:] // from the "/" before the fourth segment
		}
	}
	return sp, true
}

// splitSegments cuts p, without its leading "/", into at most four
// segments at "/", the fourth holding the rest of the path, as
// strings.SplitN(p, "/", 4) does but without allocating: the segments,
// their number and the fourth's offset in p.
func splitSegments(p string) (seg [4]string, n, fourth int) {
	off := 0
	if strings.HasPrefix(p, "/") {
		off = 1
	}
	for n < 3 {
		i := strings.IndexByte(p[off:], '/')
		if i < 0 {
			break
		}
		seg[n] = p[off : off+i]
		off += i + 1
		n++
	}
	seg[n] = p[off:]
	return seg, n + 1, off
}

func isSessionCollection(first, second string) bool {
	for _, c := range sessionCollections {
		if strings.EqualFold(first, c[0]) && strings.EqualFold(second, c[1]) {
			return true
		}
	}
	return false
}
