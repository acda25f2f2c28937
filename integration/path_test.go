package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
)

// wsUpgrade is the header of a WebSocket upgrade from origin.
func wsUpgrade(origin string) http.Header {
	return http.Header{
		"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Origin": {origin},
	}
}

// withBearer adds a token to h (a fresh header when h is nil).
func withBearer(h http.Header, token string) http.Header {
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Authorization", "Bearer "+token)
	return h
}

// createSession creates a session with token through the gateway.
func (s *stack) createSession(t *testing.T, token string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.gw.URL("localhost", "/api/sessions"), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sess struct{ ID string }
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&sess) != nil || sess.ID == "" {
		t.Fatalf("creating a session: %d", resp.StatusCode)
	}
	return sess.ID
}

// TestPathConfusion: a path that the gateway's decisions and an upstream
// could read differently (dot segments, "//", ';', case) never carries a
// request past the token check, the public paths or the session owner check.
func TestPathConfusion(t *testing.T) {
	s := startStack(t, map[string]string{"RATE_LIMIT_PER_MINUTE": "100000"})
	alice := gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-alice", "alice", "user", time.Hour)
	bob := gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-bob", "bob", "user", time.Hour)
	aliceSession, bobSession := s.createSession(t, alice), s.createSession(t, bob)

	t.Run("IDE host without a token", func(t *testing.T) {
		for _, target := range []string{
			"/AUTH/IDE/START", "/Auth/ide/callback?ticket=x", "/x/../auth/ide/start",
			"/proxy/8080/../../auth/ide/start?x=1", "/proxy/8080/%2e%2e/%2e%2e/auth/ide/start",
			"/auth/ide/start/../../proxy/8080/", "/auth/ide/start/..%2f..%2fproxy/8080/",
			"/auth/ide/start;/../../proxy/8080/", "//auth/ide/start/../../x",
		} {
			for _, ws := range []bool{false, true} {
				var h http.Header
				if ws {
					h = wsUpgrade(s.ideOrigin())
				}
				// The IDE host has nothing to serve but sessions' IDEs: any
				// success means a request got past the checks.
				resp, body := s.gw.Raw(t, "ide.localhost", http.MethodGet, target, h)
				if resp.StatusCode < 300 {
					t.Errorf("%s (websocket %v): %d: %.200s", target, ws, resp.StatusCode, body)
				}
			}
		}
	})

	t.Run("app host without a token", func(t *testing.T) {
		for _, target := range []string{
			"/API/HEALTH", "/Api/Live", "/ws/agent/../../api/live", "/api/admin/users/../../auth/refresh",
			"/api/admin/users/%2e%2e/%2e%2e/auth/refresh", "/auth/../api/admin/users", "/auth/..;/api/admin/users",
			"/auth/%2e%2e/api/admin/users", "/auth%2f..%2fapi/admin", "/auth\\..\\api\\admin", "/AUTH/../api/x",
		} {
			for _, ws := range []bool{false, true} {
				var h http.Header
				if ws {
					h = wsUpgrade(s.appOrigin())
				}
				before := s.backend.Hits.Load() + s.frontend.Hits.Load()
				resp, body := s.gw.Raw(t, "localhost", http.MethodGet, target, h)
				if got := s.backend.Hits.Load() + s.frontend.Hits.Load(); got != before || resp.StatusCode < 300 {
					t.Errorf("%s (websocket %v): %d, an upstream was reached %d times: %.200s", target, ws, resp.StatusCode, got-before, body)
				}
			}
		}
	})

	t.Run("another user's session", func(t *testing.T) {
		for _, target := range []string{
			"/api/x/../sessions/" + aliceSession + "/messages",
			"/api//sessions/" + aliceSession + "/messages",
			"/api/Sessions/" + aliceSession + "/messages",
			"/API/SESSIONS/" + aliceSession + "/files/a.txt",
			"/api/sessions;/" + aliceSession + "/messages",
			"/api/sessions/" + aliceSession + ";/messages",
			"/api/sessions/" + bobSession + "/../" + aliceSession + "/files/a.txt",
			"/api/sessions/" + bobSession + "/%2e%2e/" + aliceSession + "/messages",
			"/api/sessions/" + bobSession + "/..%2f" + aliceSession + "/messages",
			"/api/sessions/./" + aliceSession + "/messages",
			"/api/sessions/" + aliceSession + "/exec/../messages",
			"/ws/sessions/" + aliceSession,
			"/ws/sessions/" + aliceSession + "/stream",
			"/WS/Sessions/" + aliceSession,
			"/ws//sessions/" + aliceSession,
			"/ws/x/../sessions/" + aliceSession,
		} {
			for _, ws := range []bool{false, true} {
				h := withBearer(nil, bob)
				if ws {
					h = withBearer(wsUpgrade(s.appOrigin()), bob)
				}
				before := s.backend.Hits.Load() + s.frontend.Hits.Load()
				resp, body := s.gw.Raw(t, "localhost", http.MethodGet, target, h)
				if got := s.backend.Hits.Load() + s.frontend.Hits.Load(); got != before || resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusBadRequest {
					t.Errorf("bob %s (websocket %v): %d, an upstream was reached %d times: %.200s", target, ws, resp.StatusCode, got-before, body)
				}
			}
		}
	})

	t.Run("the owner still reaches the backend", func(t *testing.T) {
		for _, target := range []string{
			"/api/sessions/" + aliceSession + "/messages",
			"/ws/sessions/" + aliceSession,
			"/api/Sessions/" + aliceSession + "/messages",
		} {
			resp, body := s.gw.Raw(t, "localhost", http.MethodGet, target, withBearer(nil, alice))
			var e gatewaytest.Echo
			if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &e) != nil || e.Upstream != "backend" || e.Path != target {
				t.Errorf("alice %s: %d %.200s", target, resp.StatusCode, body)
			}
		}
		resp, _ := s.gw.Raw(t, "localhost", http.MethodGet, "/ws/sessions/"+aliceSession, withBearer(wsUpgrade(s.appOrigin()), alice))
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Errorf("alice's WebSocket to her session: %d", resp.StatusCode)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		resp, body := s.gw.Raw(t, "localhost", http.MethodGet, "/api/x/../sessions", withBearer(nil, bob))
		var env struct {
			Error struct{ Code, Message string }
		}
		if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(body, &env) != nil || env.Error.Code != "invalid_path" || env.Error.Message == "" {
			t.Errorf("API: %d %s", resp.StatusCode, body)
		}
		resp, body = s.gw.Raw(t, "localhost", http.MethodGet, "/projects/../x", withBearer(nil, bob))
		if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("page: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		for _, h := range []string{"Strict-Transport-Security", "X-Frame-Options", "X-Content-Type-Options"} {
			if resp.Header.Get(h) == "" {
				t.Errorf("the refusal lacks %s", h)
			}
		}
		if resp.Header.Get("Server") != "" {
			t.Errorf("the refusal names the server: %q", resp.Header.Get("Server"))
		}
	})

	t.Run("upstreams see the canonical path", func(t *testing.T) {
		resp, body := s.gw.Raw(t, "localhost", http.MethodGet, "/projects/%7e%41b%c3%a9", withBearer(nil, bob))
		var e gatewaytest.Echo
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &e) != nil || e.Path != "/projects/~Ab\u00e9" || e.EscapedPath != "/projects/~Ab%C3%A9" {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
	})
}

// TestAPILimitNotBypassedByPath: the per-user API limit counts every
// spelling of an /api path; a case variant of the exempt probes is not
// exempt, and a path with dot segments is refused before it counts or
// reaches anything.
func TestAPILimitNotBypassedByPath(t *testing.T) {
	s := startStack(t, map[string]string{"RATE_LIMIT_PER_MINUTE": "5"})
	for i, target := range []string{"/API/LIVE", "/api/Health", "/api/x/../live"} {
		token := gatewaytest.AccessToken(t, gatewaytest.TestSecret, fmt.Sprintf("u-%d", i), fmt.Sprintf("user%d", i), "user", time.Hour)
		before := s.backend.Hits.Load()
		var refused int
		for range 8 {
			resp, _ := s.gw.Raw(t, "localhost", http.MethodGet, target, withBearer(nil, token))
			if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusBadRequest {
				refused++
			}
		}
		if hits := s.backend.Hits.Load() - before; hits > 5 || refused < 3 {
			t.Errorf("8 requests for %s with a limit of 5: %d refused, %d reached the backend", target, refused, hits)
		}
	}
}
