package requestpath

import (
	"errors"
	"net/url"
	"path"
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	accepted := []struct{ in, decoded, escaped string }{
		{"/", "/", "/"},
		{"/api/sessions", "/api/sessions", "/api/sessions"},
		{"/api/sessions/", "/api/sessions/", "/api/sessions/"},
		{"/API/Health", "/API/Health", "/API/Health"},
		{"/a/%41%7e%5F", "/a/A~_", "/a/A~_"},
		{"/a/b%20c", "/a/b c", "/a/b%20c"},
		{"/a/%3f%23%25", "/a/?#%", "/a/%3F%23%25"},
		{"/a/100%25.txt", "/a/100%.txt", "/a/100%25.txt"},
		{"/a/%C3%A9", "/a/\u00e9", "/a/%C3%A9"},
		{"/a/\u00e9", "/a/\u00e9", "/a/%C3%A9"},
		{"/a/x.txt/...", "/a/x.txt/...", "/a/x.txt/..."},
		{"/a/.hidden/..x", "/a/.hidden/..x", "/a/.hidden/..x"},
		{"/a:b@c!$&'()*+,=", "/a:b@c!$&'()*+,=", "/a:b@c!$&'()*+,="},
		{"/a/%5B%5d", "/a/[]", "/a/%5B%5D"},
		{"/a/[x]", "/a/[x]", "/a/%5Bx%5D"},
	}
	for _, tt := range accepted {
		p, err := Canonical(tt.in)
		if err != nil {
			t.Errorf("Canonical(%q): %v", tt.in, err)
			continue
		}
		if p.Decoded != tt.decoded || p.Escaped != tt.escaped {
			t.Errorf("Canonical(%q) = %q, %q; want %q, %q", tt.in, p.Decoded, p.Escaped, tt.decoded, tt.escaped)
		}
	}
	refused := []string{
		"", "*", "api", "http://x/",
		"//", "/a//b", "//evil.example/x", "/a/b//",
		"/.", "/..", "/a/./b", "/a/../b", "/a/b/..", "/a/b/.", "/x/../auth/ide/start",
		"/a/%2e%2e/b", "/a/%2E./b", "/a/.%2e", "/a/%2e", "/a/x%2Etxt",
		"/a%2fb", "/a%2Fb", "/a\\b", "/a%5cb", "/a%5Cb",
		"/api/sessions;/x", "/a;b", "/a%3bb", "/a%3B",
		"/a%00", "/a\x00", "/a%0a", "/a\r", "/a%7f", "/a%09",
		"/a%252e", "/a%252F", "/a/%25%32%65", "/a/%2541",
		"/a%", "/a%4", "/a%zz", "/a%g0",
	}
	for _, in := range refused {
		if p, err := Canonical(in); !errors.Is(err, ErrAmbiguous) {
			t.Errorf("Canonical(%q) = %+v, %v; want ErrAmbiguous", in, p, err)
		}
	}
}

func TestPatterns(t *testing.T) {
	ps := Patterns{"/api/live", "/auth/*", "*.js", "*/x/*", "/s/*/ide"}
	tests := []struct {
		path string
		want bool
	}{
		{"/api/live", true}, {"/API/LIVE", false}, {"/api/live/", false}, {"/api/livex", false},
		{"/auth/ide/start", true}, {"/AUTH/IDE/START", false}, {"/Auth/x", false}, {"/auth", false},
		{"/static/app.js", true}, {"/static/app.JS", false},
		{"/a/x/b", true}, {"/a/X/b", false},
		{"/s/1/ide", true}, {"/s/1/2/ide", false},
		{"/other", false},
	}
	for _, tt := range tests {
		if got := ps.Match(tt.path); got != tt.want {
			t.Errorf("Match(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
	if err := (Patterns{"api/x"}).Validate(); err == nil {
		t.Error("a pattern without a leading / or * was accepted")
	}
	if err := (Patterns{"/a/[x"}).Validate(); err == nil {
		t.Error("a malformed glob was accepted")
	}
	if err := ps.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestParseSession(t *testing.T) {
	tests := []struct {
		escaped string
		want    SessionPath
		ok      bool
	}{
		{"/api/sessions/s-1/messages", SessionPath{ID: "s-1", API: true, Rest: "/messages"}, true},
		{"/api/sessions/s-1", SessionPath{ID: "s-1", API: true}, true},
		{"/api/sessions/s-1/", SessionPath{ID: "s-1", API: true, Rest: "/"}, true},
		{"/api/sessions/s-1/files/a%20b/c", SessionPath{ID: "s-1", API: true, Rest: "/files/a%20b/c"}, true},
		{"/api/sessions/s-1/exec", SessionPath{ID: "s-1", API: true, Rest: "/exec"}, true},
		// Other spellings are the backend's: the id only, for the ownership check.
		{"/api/Sessions/s-1/files/x", SessionPath{ID: "s-1"}, true},
		{"/API/SESSIONS/s-1", SessionPath{ID: "s-1"}, true},
		{"/ws/sessions/s-1", SessionPath{ID: "s-1"}, true},
		{"/WS/Sessions/s-1/stream", SessionPath{ID: "s-1"}, true},
		// An id spelt with escapes is the one its decoding names, and not the API's.
		{"/api/sessions/%73-1/files/x", SessionPath{ID: "s-1"}, true},
		{"/api/sessions/s-1%2Ffiles/x", SessionPath{ID: "s-1"}, true},
		{"/api/sessions", SessionPath{}, false},
		{"/api/sessions/", SessionPath{}, false},
		{"/ws/sessions", SessionPath{}, false},
		{"/api/sessionsx/s-1", SessionPath{}, false},
		{"/api/x/sessions/s-1", SessionPath{}, false},
		{"/other/sessions/s-1", SessionPath{}, false},
		{"/", SessionPath{}, false},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.escaped)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := ParseSession(u)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseSession(%q) = %+v, %v; want %+v, %v", tt.escaped, got, ok, tt.want, tt.ok)
		}
	}
}

// splitNParseSession is ParseSession written with strings.SplitN, as it was
// before it stopped allocating: the two must agree on every path.
func splitNParseSession(u *url.URL) (SessionPath, bool) {
	d := strings.SplitN(strings.TrimPrefix(u.Path, "/"), "/", 4)
	if len(d) < 3 || d[2] == "" || !isSessionCollection(d[0], d[1]) {
		return SessionPath{}, false
	}
	sp := SessionPath{ID: d[2]}
	e := strings.SplitN(strings.TrimPrefix(u.EscapedPath(), "/"), "/", 4)
	if d[0] == "api" && d[1] == "sessions" && len(e) >= 3 && e[0] == d[0] && e[1] == d[1] && e[2] == d[2] {
		sp.API = true
		if len(e) == 4 {
			sp.Rest = "/" + e[3]
		}
	}
	return sp, true
}

func TestParseSessionAsSplitN(t *testing.T) {
	for _, p := range []string{
		"", "/", "//", "///", "////", "/api", "/api/", "/api/sessions//", "/api/sessions//x", "/api/sessions/s-1//x/",
		"/api/sessions/s-1/a/b/c/d", "/api/sessions/s-1/%2F/x", "api/sessions/s-1/x", "/ws/sessions/s-1/", "/api/something",
		"/api/sessions/s%2D1/files", "/api//sessions/s-1", "/x/y/z/w/v",
	} {
		u, err := url.Parse(p)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := ParseSession(u)
		want, wantOK := splitNParseSession(u)
		if got != want || ok != wantOK {
			t.Errorf("ParseSession(%q) = %+v, %v; SplitN's %+v, %v", p, got, ok, want, wantOK)
		}
		// Only url.URL.EscapedPath allocates, for a path with escapes.
		if n := testing.AllocsPerRun(10, func() { ParseSession(u) }); n != 0 && !strings.Contains(p, "%") {
			t.Errorf("ParseSession(%q): %v allocations", p, n)
		}
	}
}

// publicPaths are the public paths of both hosts in the repository's Caddyfiles.
var publicPaths = Patterns{"/api/live", "/api/ready", "/api/health", "/api/auth/login", "/api/auth/refresh", "/auth/*", "/auth/ide/start", "/auth/ide/callback"}

// decision is what the gateway decides from a decoded path: public or not,
// the session it names, and which upstream it goes to (the Caddyfiles'
// `path /api/* /ws/*` matcher is case-insensitive).
type decision struct {
	public  bool
	session string
	named   bool
	backend bool
}

func decide(decoded string) decision {
	sp, named := ParseSession(&url.URL{Path: decoded})
	lower := strings.ToLower(decoded)
	return decision{
		public:  publicPaths.Match(decoded),
		session: sp.ID, named: named,
		backend: strings.HasPrefix(lower, "/api/") || strings.HasPrefix(lower, "/ws/"),
	}
}

// FuzzCanonical checks, for any path a client may send, that an accepted
// path has one meaning: the same form again when made canonical twice, the
// decoding net/url gives, no dot or empty segment for an upstream to resolve
// (so resolving them changes nothing), and the same routing decision whether
// taken on the path as received, on its canonical form or on what an
// upstream that cleans paths would see.
func FuzzCanonical(f *testing.F) {
	for _, seed := range []string{
		"/", "/api/live", "/API/HEALTH", "/auth/ide/start", "/x/../auth/ide/start",
		"/proxy/8080/../../auth/ide/start", "/ws/agent/../../api/live",
		"/api/admin/users/../../auth/refresh", "/api/x/../sessions/s-1/messages",
		"/api//sessions/s-1", "/api/Sessions/s-1", "/api/sessions;/s-1",
		"/api/sessions/s-1/../s-2/files/x", "/ws/sessions/s-2", "/api/sessions/s-1/files/a%20b",
		"/auth%2fide%2fstart", "/auth/%2e%2e/api/x", "/auth\\..\\api\\x", "/a%252e%252e/x",
		"/auth/ide/start%00", "/a/%C3%A9/%7e", "/a/100%25", "//auth/x",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := Canonical(raw)
		if err != nil {
			if !errors.Is(err, ErrAmbiguous) {
				t.Fatalf("Canonical(%q): error %v does not wrap ErrAmbiguous", raw, err)
			}
			return
		}
		again, err := Canonical(p.Escaped)
		if err != nil || again != p {
			t.Fatalf("Canonical(%q) = %+v, but its canonical form gives %+v, %v", raw, p, again, err)
		}
		if dec, err := url.PathUnescape(raw); err != nil || dec != p.Decoded {
			t.Fatalf("Canonical(%q).Decoded = %q, net/url decodes %q, %v", raw, p.Decoded, dec, err)
		}
		u := &url.URL{Path: p.Decoded, RawPath: p.Escaped}
		if got := u.EscapedPath(); got != p.Escaped {
			t.Fatalf("Canonical(%q): an upstream would be sent %q, not the canonical %q", raw, got, p.Escaped)
		}
		trimmed := strings.TrimSuffix(p.Decoded, "/")
		if trimmed != "" && path.Clean(p.Decoded) != trimmed {
			t.Fatalf("Canonical(%q) accepted %q, which an upstream cleaning paths reads as %q", raw, p.Decoded, path.Clean(p.Decoded))
		}
		if strings.ContainsAny(p.Decoded, "\\;\x00") {
			t.Fatalf("Canonical(%q) accepted %q", raw, p.Decoded)
		}
		for _, seg := range strings.Split(p.Decoded, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("Canonical(%q) accepted a dot segment: %q", raw, p.Decoded)
			}
		}
		want := decide(p.Decoded)
		if got := decide(path.Clean(p.Decoded) + p.Decoded[len(trimmed):]); got != want && trimmed != "" {
			t.Fatalf("Canonical(%q): decision %+v, after cleaning %+v", raw, want, got)
		}
		if ru, err := url.ParseRequestURI(raw); err == nil && decide(ru.Path) != want {
			t.Fatalf("Canonical(%q): decision %+v on the canonical path, %+v on the received one", raw, want, decide(ru.Path))
		}
		if got := decide(again.Decoded); got != want {
			t.Fatalf("Canonical(%q): decision %+v, on its canonical form %+v", raw, want, got)
		}
	})
}
