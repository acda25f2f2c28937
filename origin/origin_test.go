package origin

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const app = "https://app.example.com"

func testPolicy(t *testing.T) *Policy {
	t.Helper()
	l, err := NewList(app, "https://admin.example.com, http://localhost:3000", "https://partner.example.org:8443")
	if err != nil {
		t.Fatal(err)
	}
	return &Policy{List: l, AuthCookies: []string{"__Host-claude_access", "claude_ide"}}
}

func TestCanonical(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"https://app.example.com", "https://app.example.com", true},
		{"HTTPS://App.Example.COM", "https://app.example.com", true},
		{"https://app.example.com:443", "https://app.example.com", true},
		{"http://app.example.com:80", "http://app.example.com", true},
		{"https://app.example.com/", "https://app.example.com", true},
		{"https://localhost:8443", "https://localhost:8443", true},
		{"http://[::1]:3000", "http://[::1]:3000", true},
		{"null", "", false},
		{"", "", false},
		{"app.example.com", "", false},
		{"ftp://app.example.com", "", false},
		{"https://app.example.com/path", "", false},
		{"https://app.example.com?x=1", "", false},
		{"https://app.example.com#x", "", false},
		{"https://user@app.example.com", "", false},
		{"https://*.example.com", "", false},
		{"https://", "", false},
		{"javascript:alert(1)", "", false},
		{"file:///etc/passwd", "", false},
	} {
		got, err := Canonical(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Canonical(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestNewList(t *testing.T) {
	if _, err := NewList(""); err == nil {
		t.Error("NewList without an app origin succeeded")
	}
	if _, err := NewList(app, "https://*.example.com"); err == nil {
		t.Error("a wildcard origin was accepted")
	}
	if _, err := NewList(app, "null"); err == nil {
		t.Error(`"null" was accepted in the list`)
	}
	l, err := NewList(app, "", " , ", "https://app.example.com,https://b.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Origins(); len(got) != 2 || got[0] != app || got[1] != "https://b.example.com" {
		t.Errorf("Origins() = %v", got)
	}
}

func TestListAllows(t *testing.T) {
	p := testPolicy(t)
	for _, tc := range []struct {
		origin string
		want   bool
	}{
		{app, true},
		{"https://admin.example.com", true},
		{"http://localhost:3000", true},
		{"https://partner.example.org:8443", true},
		{"https://app.example.com:443", true},
		// attacks
		{"null", false},
		{"", false},
		{"https://app.example.com.evil.com", false},
		{"https://evilapp.example.com", false},
		{"https://evil.com/https://app.example.com", false},
		{"https://app.example.com@evil.com", false},
		{"http://app.example.com", false},             // scheme downgrade
		{"https://app.example.com:8443", false},       // other port
		{"https://partner.example.org", false},        // listed only with its port
		{"https://localhost:3000", false},             // listed as http only
		{"https://app.example.com.", false},           // trailing dot is another host
		{"https://sub.app.example.com", false},        // no suffix matching
		{"https://app.example.com%2eevil.com", false}, // escapes
		{"https://app.example.com\\@evil.com", false}, // backslash trick
		{" https://app.example.com", false},           // not a clean header value
	} {
		if got := p.List.Allows(tc.origin); got != tc.want {
			t.Errorf("Allows(%q) = %v, want %v", tc.origin, got, tc.want)
		}
	}
}

// request builds a request to the app host over TLS.
func request(method, target string, headers map[string]string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.Host = "app.example.com"
	r.TLS = &tls.ConnectionState{}
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	return r
}

func TestPreflight(t *testing.T) {
	p := testPolicy(t)
	for _, tc := range []struct {
		name, origin string
		want         bool
	}{
		{"listed", "https://admin.example.com", true},
		{"app", app, true},
		{"unlisted", "https://evil.example", false},
		{"null", "null", false},
		{"suffix trick", "https://app.example.com.evil.com", false},
		{"downgrade", "http://app.example.com", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request(http.MethodOptions, "/api/sessions", map[string]string{
				"Origin":                         tc.origin,
				"Access-Control-Request-Method":  "POST",
				"Access-Control-Request-Headers": "authorization, content-type",
			})
			if !IsPreflight(r) {
				t.Fatal("IsPreflight = false")
			}
			h := http.Header{}
			if got := p.Preflight(h, r); got != tc.want {
				t.Fatalf("Preflight = %v, want %v", got, tc.want)
			}
			if tc.want {
				if h.Get("Access-Control-Allow-Origin") != tc.origin || h.Get("Access-Control-Allow-Credentials") != "true" ||
					h.Get("Access-Control-Allow-Methods") == "" || h.Get("Access-Control-Allow-Headers") == "" || h.Get("Access-Control-Max-Age") != "600" {
					t.Errorf("headers for an allowed origin: %v", h)
				}
			} else {
				for k := range h {
					if k != "Vary" {
						t.Errorf("unlisted origin got header %s: %v", k, h[k])
					}
				}
			}
			if v := h.Values("Vary"); len(v) == 0 || v[0] != "Origin" {
				t.Errorf("Vary = %v", v)
			}
		})
	}
	if IsPreflight(request(http.MethodOptions, "/", map[string]string{"Origin": app})) {
		t.Error("OPTIONS without Access-Control-Request-Method is not a preflight")
	}
}

func TestCORS(t *testing.T) {
	p := testPolicy(t)
	for _, tc := range []struct {
		name, origin string
		want         bool
	}{
		{"listed", "https://admin.example.com", true},
		{"none", "", false},
		{"unlisted", "https://evil.example", false},
		{"null", "null", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request(http.MethodGet, "/api/auth/me", map[string]string{"Origin": tc.origin})
			h := http.Header{}
			// An upstream's own CORS headers never survive.
			h.Set("Access-Control-Allow-Origin", "*")
			h.Set("Access-Control-Allow-Credentials", "true")
			p.CORS(h, r)
			got := h.Get("Access-Control-Allow-Origin")
			if tc.want && (got != tc.origin || h.Get("Access-Control-Allow-Credentials") != "true" || h.Get("Access-Control-Expose-Headers") == "") {
				t.Errorf("allowed origin headers: %v", h)
			}
			if !tc.want && (got != "" || h.Get("Access-Control-Allow-Credentials") != "") {
				t.Errorf("origin %q got CORS headers: %v", tc.origin, h)
			}
			if h.Get("Vary") != "Origin" {
				t.Errorf("Vary = %q", h.Get("Vary"))
			}
		})
	}
}

// CORSHeaders set before an upstream answers and again when the response
// starts: the upstream's CORS headers (added to the gateway's, as a proxy
// copies them) are replaced, its Vary is kept, Origin is named once; and
// setting them again allocates nothing.
func TestCORSHeadersSetAgain(t *testing.T) {
	p := testPolicy(t)
	for _, tc := range []struct {
		name, origin string
		want         bool
	}{
		{"listed", "https://admin.example.com", true},
		{"none", "", false},
		{"unlisted", "https://evil.example", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request(http.MethodGet, "/", map[string]string{"Origin": tc.origin})
			c := p.CORSHeaders(r)
			h := http.Header{}
			c.Set(h)
			h.Add("Access-Control-Allow-Origin", "*")
			h.Add("Access-Control-Allow-Credentials", "true")
			h.Add("Access-Control-Allow-Methods", "DELETE")
			h.Add("Vary", "Accept-Encoding")
			c.Set(h)
			if got := h.Values("Vary"); strings.Join(got, "|") != "Origin|Accept-Encoding" {
				t.Errorf("Vary = %q", got)
			}
			if h.Get("Access-Control-Allow-Methods") != "" {
				t.Errorf("the upstream's Access-Control-Allow-Methods survived: %v", h)
			}
			acao, creds := h.Values("Access-Control-Allow-Origin"), h.Values("Access-Control-Allow-Credentials")
			if tc.want && (len(acao) != 1 || acao[0] != tc.origin || len(creds) != 1 || creds[0] != "true" ||
				h.Get("Access-Control-Expose-Headers") != strings.Join(DefaultExposeHeaders, ", ")) {
				t.Errorf("allowed origin: %v", h)
			}
			if !tc.want && (len(acao) != 0 || len(creds) != 0) {
				t.Errorf("origin %q got CORS headers: %v", tc.origin, h)
			}
			if n := testing.AllocsPerRun(100, func() { c.Set(h) }); n != 0 {
				t.Errorf("setting them again: %v allocations", n)
			}
		})
	}
}

func TestCheckCSRF(t *testing.T) {
	p := testPolicy(t)
	cookie := "__Host-claude_access=x"
	for _, tc := range []struct {
		name    string
		method  string
		headers map[string]string
		wantErr bool
	}{
		{"cookie POST from app", "POST", map[string]string{"Cookie": cookie, "Origin": app}, false},
		{"cookie POST from listed", "PUT", map[string]string{"Cookie": cookie, "Origin": "https://admin.example.com"}, false},
		{"cookie POST same-origin fetch metadata", "POST", map[string]string{"Cookie": cookie, "Sec-Fetch-Site": "same-origin"}, false},
		{"cookie GET cross-site", "GET", map[string]string{"Cookie": cookie, "Origin": "https://evil.example"}, false},
		{"bearer POST cross-site", "POST", map[string]string{"Cookie": cookie, "Authorization": "Bearer abc", "Origin": "https://evil.example"}, false},
		{"no cookie POST", "POST", map[string]string{"Origin": "https://evil.example"}, false},
		{"other cookie only", "POST", map[string]string{"Cookie": "theme=dark", "Origin": "https://evil.example"}, false},
		// attacks
		{"cookie POST cross-site", "POST", map[string]string{"Cookie": cookie, "Origin": "https://evil.example"}, true},
		{"cookie DELETE null origin", "DELETE", map[string]string{"Cookie": cookie, "Origin": "null"}, true},
		{"cookie PATCH suffix trick", "PATCH", map[string]string{"Cookie": cookie, "Origin": "https://app.example.com.evil.com"}, true},
		{"cookie POST scheme downgrade", "POST", map[string]string{"Cookie": cookie, "Origin": "http://app.example.com"}, true},
		{"cookie POST no origin", "POST", map[string]string{"Cookie": cookie}, true},
		{"cookie POST same-site sibling", "POST", map[string]string{"Cookie": cookie, "Sec-Fetch-Site": "same-site"}, true},
		{"cookie POST cross-site metadata", "POST", map[string]string{"Cookie": cookie, "Sec-Fetch-Site": "cross-site"}, true},
		{"listed origin beats no metadata but bad origin loses", "POST", map[string]string{"Cookie": cookie, "Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"}, true},
		{"IDE cookie cross-site", "POST", map[string]string{"Cookie": "claude_ide=x", "Origin": "https://evil.example"}, true},
		{"basic auth is not bearer", "POST", map[string]string{"Cookie": cookie, "Authorization": "Basic eDp5", "Origin": "https://evil.example"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.CheckCSRF(request(tc.method, "/api/sessions", tc.headers))
			if (err != nil) != tc.wantErr {
				t.Fatalf("CheckCSRF = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
	// Several Origin headers are never trusted.
	r := request("POST", "/api/sessions", map[string]string{"Cookie": cookie})
	r.Header.Add("Origin", "https://evil.example")
	r.Header.Add("Origin", app)
	if p.CheckCSRF(r) == nil {
		t.Error("a request with two Origin headers passed")
	}
}

func TestCheckWebSocket(t *testing.T) {
	p := testPolicy(t)
	ws := func(h map[string]string) map[string]string {
		h["Connection"] = "Upgrade"
		h["Upgrade"] = "websocket"
		return h
	}
	for _, tc := range []struct {
		name    string
		headers map[string]string
		wantErr bool
	}{
		{"app origin", ws(map[string]string{"Origin": app}), false},
		{"listed origin", ws(map[string]string{"Origin": "http://localhost:3000"}), false},
		{"bearer without origin", ws(map[string]string{"Authorization": "Bearer x"}), false},
		{"not an upgrade", map[string]string{"Origin": "https://evil.example"}, false},
		// attacks
		{"foreign origin", ws(map[string]string{"Origin": "https://evil.example"}), true},
		{"foreign origin with bearer", ws(map[string]string{"Origin": "https://evil.example", "Authorization": "Bearer x"}), true},
		{"null origin", ws(map[string]string{"Origin": "null"}), true},
		{"suffix trick", ws(map[string]string{"Origin": "https://app.example.com.evil.com"}), true},
		{"scheme downgrade", ws(map[string]string{"Origin": "http://app.example.com"}), true},
		{"no origin, cookie", ws(map[string]string{"Cookie": "__Host-claude_access=x"}), true},
		{"upgrade token in a list", map[string]string{"Upgrade": "h2c, WebSocket", "Origin": "https://evil.example"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.CheckWebSocket(request(http.MethodGet, "/ws/agent", tc.headers))
			if (err != nil) != tc.wantErr {
				t.Fatalf("CheckWebSocket = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
}

func TestSelfOriginAllowed(t *testing.T) {
	// The IDE host's own pages open WebSockets to it: same-origin always passes.
	p := testPolicy(t)
	r := request(http.MethodGet, "/stable/socket", map[string]string{"Origin": "https://ide.example.com", "Upgrade": "websocket"})
	r.Host = "ide.example.com"
	if err := p.CheckWebSocket(r); err != nil {
		t.Errorf("same-origin upgrade refused: %v", err)
	}
	r.Header.Set("Origin", "http://ide.example.com")
	if err := p.CheckWebSocket(r); err == nil {
		t.Error("plain-http origin passed as same-origin of an https request")
	}
}

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		host   string
		tls    bool
		origin string
		want   bool
	}{
		{"app.example.com", true, "https://app.example.com", true},
		{"app.example.com", true, "https://APP.example.com:443", true},
		{"app.example.com:8443", true, "https://app.example.com:8443", true},
		{"app.example.com", true, "http://app.example.com", false},
		{"app.example.com", false, "https://app.example.com", false},
		{"app.example.com", true, "https://app.example.com:8443", false},
		{"app.example.com", true, "https://evil.example", false},
		{"app.example.com", true, "https://app.example.com.evil.example", false},
		{"app.example.com", true, "null", false},
		{"app.example.com", true, "", false},
		{"", true, "https://", false},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Host = tc.host
		r.TLS = nil
		if tc.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if got := SameOrigin(r, tc.origin); got != tc.want {
			t.Errorf("SameOrigin(host %q, tls %v, %q) = %v, want %v", tc.host, tc.tls, tc.origin, got, tc.want)
		}
	}
}

func TestCrossSiteFetch(t *testing.T) {
	for _, tc := range []struct {
		vals []string
		want bool
	}{
		{nil, false},
		{[]string{"same-origin"}, false},
		{[]string{"same-site"}, false},
		{[]string{"none"}, false},
		{[]string{"cross-site"}, true},
		{[]string{"Cross-Site"}, true},
		{[]string{""}, true},
		{[]string{"same-origin", "cross-site"}, true},
	} {
		r := httptest.NewRequest(http.MethodPost, "https://app.example/auth/login", nil)
		for _, v := range tc.vals {
			r.Header.Add("Sec-Fetch-Site", v)
		}
		if got := CrossSiteFetch(r); got != tc.want {
			t.Errorf("Sec-Fetch-Site %q: %v, want %v", tc.vals, got, tc.want)
		}
	}
}

// An upstream's Vary is kept, and Origin is added once whatever case or
// list position the upstream already gave it.
func TestAddVaryKeepsUpstreamValues(t *testing.T) {
	for _, tc := range []struct {
		have []string
		want []string
	}{
		{nil, []string{"Origin"}},
		{[]string{"Accept-Encoding"}, []string{"Accept-Encoding", "Origin"}},
		{[]string{"Accept-Encoding, origin"}, []string{"Accept-Encoding, origin"}},
		{[]string{"Accept", " ORIGIN "}, []string{"Accept", " ORIGIN "}},
		{[]string{"Originator"}, []string{"Originator", "Origin"}},
	} {
		h := http.Header{}
		if tc.have != nil {
			h["Vary"] = append([]string(nil), tc.have...)
		}
		addVary(h, "Origin")
		if got := h["Vary"]; strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("Vary %q: got %q, want %q", tc.have, got, tc.want)
		}
	}
}
