package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/caddymodules/claudeauth"
	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// rawEcho sends a raw request and reads the upstream's echo from the answer.
func rawEcho(t *testing.T, gw *gatewaytest.Gateway, host, path string, h http.Header) gatewaytest.Echo {
	t.Helper()
	resp, body := gw.Raw(t, host, http.MethodGet, path, h)
	var e gatewaytest.Echo
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &e) != nil {
		t.Fatalf("no upstream echo: %d %.300s", resp.StatusCode, body)
	}
	return e
}

// TestIdentityHeadersSurviveConnection: a Connection header naming the
// identity headers (any case, '_' for '-'), Authorization or Cookie does not
// make the proxy drop what the gateway sets.
func TestIdentityHeadersSurviveConnection(t *testing.T) {
	s := startStack(t, nil)
	h := withBearer(http.Header{
		"Connection": {"keep-alive, X-Auth-User-Id, x-auth-user-name", "X_Auth_User_Role, Cookie, X-Real-IP"},
		"Cookie":     {"theme=dark"},
	}, s.token)
	e := rawEcho(t, s.gw, "localhost", "/api/chat", h)
	for k, want := range map[string]string{"X-Auth-User-Id": "1", "X-Auth-User-Name": "admin", "X-Auth-User-Role": "admin", "Cookie": "theme=dark", "X-Real-Ip": "127.0.0.1"} {
		if got := e.Header.Get(k); got != want {
			t.Errorf("the backend saw %s %q, want %q", k, got, want)
		}
	}
	// A WebSocket upgrade keeps its Upgrade option and the identity.
	resp, _ := s.gw.Raw(t, "localhost", http.MethodGet, "/ws/agent", withBearer(func() http.Header {
		h := wsUpgrade(s.appOrigin())
		h.Set("Connection", "Upgrade, X-Auth-User-Id")
		return h
	}(), s.token))
	if last := s.backend.Last.Load(); resp.StatusCode != http.StatusSwitchingProtocols || last.Header.Get("X-Auth-User-Id") != "1" {
		t.Errorf("WebSocket: %d, the backend saw X-Auth-User-Id %q", resp.StatusCode, last.Header.Get("X-Auth-User-Id"))
	}
}

// TestCredentialsNotForwarded: upstreams get the identity headers, never the
// gateway's cookies or the client's Bearer token, on public paths too; and
// never a client's own X-Real-IP or Forwarded.
func TestCredentialsNotForwarded(t *testing.T) {
	s := startStack(t, nil)
	cookies := claudeauth.AccessCookie + "=" + s.token + "; " + claudeauth.RefreshCookie + "=refresh-secret; theme=dark"
	spoof := http.Header{
		"X-Real-Ip": {"203.0.113.9"}, "X_real_ip": {"203.0.113.9"}, "Forwarded": {"for=203.0.113.9"},
		"X_forwarded_for": {"203.0.113.9"}, "Cookie": {"theme=dark"},
	}
	for _, tc := range []struct {
		name, host, path string
		header           http.Header
	}{
		{"backend, bearer", "localhost", "/api/chat", withBearer(spoof, s.token)},
		{"backend, cookie", "localhost", "/api/chat", func() http.Header { h := spoof.Clone(); h.Set("Cookie", cookies); return h }()},
		{"frontend, public path", "localhost", "/auth/x", func() http.Header { h := withBearer(spoof, s.token); h.Set("Cookie", cookies); return h }()},
		{"code-server", "ide.localhost", "/", func() http.Header {
			h := withBearer(spoof, s.token)
			h.Set("Cookie", claudeauth.AccessCookie+"=x; theme=dark")
			return h
		}()},
	} {
		resp, body := s.gw.Raw(t, tc.host, http.MethodGet, tc.path, tc.header)
		if resp.StatusCode != http.StatusOK {
			// The IDE host refuses an app token before any IDE.
			if tc.host != "ide.localhost" || resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: %d: %.200s", tc.name, resp.StatusCode, body)
			}
			continue
		}
		var e gatewaytest.Echo
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("%s: not an upstream echo: %.200s", tc.name, body)
		}
		if got := e.Header.Get("Authorization"); got != "" {
			t.Errorf("%s: the upstream saw Authorization %.20q", tc.name, got)
		}
		if got := e.Header.Values("Cookie"); len(got) != 1 || got[0] != "theme=dark" {
			t.Errorf("%s: the upstream saw Cookie %q, want only theme=dark", tc.name, got)
		}
		if got := e.Header.Values("X-Real-Ip"); len(got) != 1 || got[0] != "127.0.0.1" {
			t.Errorf("%s: the upstream saw X-Real-IP %q, want the client's address", tc.name, got)
		}
		for _, k := range []string{"Forwarded", "X_real_ip", "X_forwarded_for"} {
			if got := e.Header.Values(k); len(got) != 0 {
				t.Errorf("%s: the upstream saw the client's %s %q", tc.name, k, got)
			}
		}
		if e.Upstream != "frontend" && e.Header.Get("X-Auth-User-Id") != "1" {
			t.Errorf("%s: no identity headers: %v", tc.name, e.Header)
		}
	}
}

// TestForwardToken: with forward_token, the backend gets the verified access
// token as a Bearer header, whether the client sent it as a header or a cookie.
func TestForwardToken(t *testing.T) {
	cfg, err := os.ReadFile(filepath.Join(gatewaytest.RepoRoot(t), "Caddyfile.dev"))
	if err != nil {
		t.Fatal(err)
	}
	const app = "\t\tclaude_auth {\n\t\t\tpublic /api/live"
	if strings.Count(string(cfg), app) != 1 {
		t.Fatal("Caddyfile.dev: the app host's claude_auth block not found")
	}
	backend, frontend := gatewaytest.NewUpstream(t, "backend"), gatewaytest.NewUpstream(t, "frontend")
	gw := gatewaytest.Start(t, gatewaytest.Options{
		Caddyfile: strings.Replace(string(cfg), app, "\t\tclaude_auth {\n\t\t\tforward_token\n\t\t\tpublic /api/live", 1),
		Env: map[string]string{
			"BACKEND_UPSTREAM": backend.Addr(), "FRONTEND_UPSTREAM": frontend.Addr(), "CODE_SERVER_UPSTREAM": frontend.Addr(),
			"SECRET_KEY": gatewaytest.TestSecret, "CLAUDE_DATABASE": testenv.SQLiteDatabase(t),
		},
	})
	token := gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-1", "alice", "user", time.Hour)
	for name, h := range map[string]http.Header{
		"bearer": withBearer(nil, token),
		"cookie": {"Cookie": {claudeauth.AccessCookie + "=" + token + "; theme=dark"}},
	} {
		e := rawEcho(t, gw, "localhost", "/api/chat", h)
		if got := e.Header.Get("Authorization"); got != "Bearer "+token {
			t.Errorf("%s: the backend saw Authorization %.30q, want the access token", name, got)
		}
		if got := e.Header.Get("Cookie"); strings.Contains(got, claudeauth.AccessCookie) {
			t.Errorf("%s: the backend saw the access cookie", name)
		}
	}
	// Without a valid token nothing is forwarded (a public path passes).
	e := rawEcho(t, gw, "localhost", "/auth/x", withBearer(nil, "not-a-token"))
	if got := e.Header.Get("Authorization"); got != "" {
		t.Errorf("an invalid token was forwarded: %q", got)
	}
}

// TestAnonymousAPICountedPerIP: /api requests without a valid token are
// counted per client IP (the api zone), then refused; a signed-in user from
// the same address is counted by user id only.
func TestAnonymousAPICountedPerIP(t *testing.T) {
	s := startStack(t, map[string]string{"RATE_LIMIT_PER_MINUTE": "10"})
	var unauthorized, limited int
	for i := range 14 {
		var h http.Header
		if i%2 == 1 {
			h = withBearer(nil, "not-a-token")
		}
		resp, body := s.gw.Raw(t, "localhost", http.MethodGet, "/api/things", h)
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			unauthorized++
		case http.StatusTooManyRequests:
			limited++
		default:
			t.Errorf("anonymous request %d: %d %.200s", i, resp.StatusCode, body)
		}
	}
	if unauthorized != 10 || limited != 4 {
		t.Errorf("14 anonymous requests at 10/min: %d × 401, %d × 429; want 10 and 4", unauthorized, limited)
	}
	if hits := s.backend.Hits.Load(); hits != 0 {
		t.Errorf("the backend saw %d anonymous requests", hits)
	}
	// The address's budget is spent; a user signed in from it has a budget of
	// its own, counted once per request.
	token := gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-counted", "counted", "user", time.Hour)
	for i := range 10 {
		if resp, body := s.gw.Raw(t, "localhost", http.MethodGet, "/api/things", withBearer(nil, token)); resp.StatusCode != http.StatusOK || resp.Header.Get("X-Ratelimit-Remaining") != fmt.Sprint(9-i) {
			t.Fatalf("signed-in request %d: %d remaining %q: %.200s", i, resp.StatusCode, resp.Header.Get("X-Ratelimit-Remaining"), body)
		}
	}
	if resp, _ := s.gw.Raw(t, "localhost", http.MethodGet, "/api/things", withBearer(nil, token)); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("signed-in request 11: %d, want 429", resp.StatusCode)
	}
}

// TestNoServerBanner: no answer names the server: not for an unknown host
// on either port, not on the plain HTTP redirect.
func TestNoServerBanner(t *testing.T) {
	s := startStack(t, nil)
	resp, _ := s.gw.Raw(t, "localhost", http.MethodGet, "/", http.Header{"Host": nil})
	if got := resp.Header.Values("Server"); len(got) != 0 {
		t.Errorf("app host: Server %q", got)
	}
	// Raw sets Host to the SNI name; an unknown Host on a known SNI:
	req, _ := http.NewRequest(http.MethodGet, s.gw.URL("localhost", "/"), nil)
	req.Host = "unknown.example"
	if resp, err := s.gw.Client().Do(req); err == nil {
		resp.Body.Close()
		if got := resp.Header.Values("Server"); len(got) != 0 {
			t.Errorf("unknown host over HTTPS: %d, Server %q", resp.StatusCode, got)
		}
	}
	for _, host := range []string{"localhost", "unknown.example"} {
		req, _ := http.NewRequest(http.MethodGet, s.gw.HTTPURL("localhost", "/x"), nil)
		req.Host = host
		resp, err := s.gw.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Values("Server"); len(got) != 0 {
			t.Errorf("plain HTTP, Host %s: %d, Server %q", host, resp.StatusCode, got)
		}
	}
}
