package claudeorigin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

const listed = "https://admin.example.test"

type stack struct {
	gw                *gatewaytest.Gateway
	backend, frontend *gatewaytest.Upstream
	token             string
}

// startStack runs the real gateway on Caddyfile.dev with ALLOWED_ORIGINS set.
func startStack(t *testing.T, extraEnv ...string) *stack {
	t.Helper()
	s := &stack{backend: gatewaytest.NewUpstream(t, "backend"), frontend: gatewaytest.NewUpstream(t, "frontend")}
	ide := gatewaytest.NewUpstream(t, "code-server")
	env := map[string]string{
		"BACKEND_UPSTREAM":     s.backend.Addr(),
		"FRONTEND_UPSTREAM":    s.frontend.Addr(),
		"CODE_SERVER_UPSTREAM": ide.Addr(),
		"ALLOWED_ORIGINS":      listed + ",http://localhost:3000",
		"SECRET_KEY":           gatewaytest.TestSecret,
		"CLAUDE_DATABASE":      testenv.SQLiteDatabase(t),
	}
	for i := 0; i+1 < len(extraEnv); i += 2 {
		env[extraEnv[i]] = extraEnv[i+1]
	}
	s.gw = gatewaytest.Start(t, gatewaytest.Options{Env: env})
	s.token = gatewaytest.AccessToken(t, gatewaytest.TestSecret, "1", "admin", "admin", time.Hour)
	return s
}

func (s *stack) appOrigin() string { return fmt.Sprintf("https://localhost:%d", s.gw.HTTPSPort) }

func (s *stack) do(t *testing.T, method, path string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.gw.URL("localhost", path), strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := s.gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func errorCode(t *testing.T, body string) string {
	t.Helper()
	var env struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("not the JSON envelope: %v: %q", err, body)
	}
	return env.Error.Code
}

func TestCORSPreflight(t *testing.T) {
	s := startStack(t)
	for _, tc := range []struct {
		name, origin string
		allowed      bool
	}{
		{"listed origin", listed, true},
		{"app origin", "", true},
		{"second listed origin", "http://localhost:3000", true},
		{"unlisted origin", "https://evil.example", false},
		{"null origin", "null", false},
		{"suffix trick", listed + ".evil.example", false},
		{"scheme downgrade", "http://admin.example.test", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.origin
			if o == "" {
				o = s.appOrigin()
			}
			hits := s.backend.Hits.Load()
			// No token: a preflight never carries one and must never get a 401.
			resp, body := s.do(t, http.MethodOptions, "/api/things", map[string]string{
				"Origin":                         o,
				"Access-Control-Request-Method":  "POST",
				"Access-Control-Request-Headers": "authorization, content-type",
			})
			if got := s.backend.Hits.Load(); got != hits {
				t.Errorf("the preflight reached the backend (%d hits)", got-hits)
			}
			acao := resp.Header.Get("Access-Control-Allow-Origin")
			if tc.allowed {
				if resp.StatusCode != http.StatusNoContent || acao != o || resp.Header.Get("Access-Control-Allow-Credentials") != "true" ||
					!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
					t.Fatalf("preflight from %s: %d %v", o, resp.StatusCode, resp.Header)
				}
				return
			}
			if resp.StatusCode != http.StatusForbidden || errorCode(t, body) != "origin_not_allowed" {
				t.Errorf("preflight from %s: %d %s", o, resp.StatusCode, body)
			}
			for k := range resp.Header {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("unlisted origin %s got %s: %v", o, k, resp.Header[k])
				}
			}
		})
	}
}

func TestCORSActualResponse(t *testing.T) {
	s := startStack(t)
	// The backend tries to open itself to everyone; the gateway decides.
	s.backend.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Write([]byte(`{"ok":true}`))
	})
	bearer := "Bearer " + s.token
	resp, _ := s.do(t, http.MethodGet, "/api/things", map[string]string{"Origin": listed, "Authorization": bearer})
	if resp.StatusCode != http.StatusOK || resp.Header.Values("Access-Control-Allow-Origin")[0] != listed ||
		len(resp.Header.Values("Access-Control-Allow-Origin")) != 1 || resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("listed origin: %d %v", resp.StatusCode, resp.Header)
	}
	if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
		t.Errorf("no Vary: Origin: %v", resp.Header)
	}
	resp, _ = s.do(t, http.MethodGet, "/api/things", map[string]string{"Origin": "https://evil.example", "Authorization": bearer})
	if v := resp.Header.Values("Access-Control-Allow-Origin"); len(v) != 0 || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("unlisted origin got CORS headers: %v", resp.Header)
	}
	// Without an Origin header too, the upstream's CORS headers are removed.
	resp, _ = s.do(t, http.MethodGet, "/api/things", map[string]string{"Authorization": bearer})
	if v := resp.Header.Values("Access-Control-Allow-Origin"); resp.StatusCode != http.StatusOK || len(v) != 0 || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("no origin: %d, CORS headers: %v", resp.StatusCode, resp.Header)
	}
	if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
		t.Errorf("no origin: no Vary: Origin: %v", resp.Header)
	}
}

// TestCORSOnGatewayErrors: answers the gateway makes itself after the origin
// check (401 without a token, 429 from a rate limit) carry the CORS headers,
// so the app's scripts on a listed origin can read them.
func TestCORSOnGatewayErrors(t *testing.T) {
	s := startStack(t, "RATE_LIMIT_PER_MINUTE", "2")
	resp, _ := s.do(t, http.MethodGet, "/api/things", map[string]string{"Origin": listed})
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Access-Control-Allow-Origin") != listed ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
		t.Fatalf("401: %d %v", resp.StatusCode, resp.Header)
	}
	var last *http.Response
	for range 5 {
		last, _ = s.do(t, http.MethodGet, "/api/auth/me", map[string]string{"Origin": listed})
		if last.StatusCode == http.StatusTooManyRequests {
			break
		}
	}
	if last.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("no 429 after 5 requests at 2/min: %d", last.StatusCode)
	}
	if last.Header.Get("Access-Control-Allow-Origin") != listed || !strings.Contains(last.Header.Get("Access-Control-Expose-Headers"), "Retry-After") {
		t.Errorf("429 without CORS headers: %v", last.Header)
	}
	if resp, _ := s.do(t, http.MethodGet, "/api/things", map[string]string{"Origin": "https://evil.example"}); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("unlisted origin got CORS headers on an error: %v", resp.Header)
	}
}

func TestCSRF(t *testing.T) {
	s := startStack(t)
	cookie := authCookie + "=" + s.token
	for _, tc := range []struct {
		name    string
		method  string
		headers map[string]string
		want    int
	}{
		{"cookie POST from the app", "POST", map[string]string{"Cookie": cookie, "Origin": "APP"}, http.StatusOK},
		{"cookie PUT from a listed origin", "PUT", map[string]string{"Cookie": cookie, "Origin": listed}, http.StatusOK},
		{"cookie POST, same-origin fetch metadata", "POST", map[string]string{"Cookie": cookie, "Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		{"bearer POST cross-site", "POST", map[string]string{"Authorization": "Bearer " + s.token, "Origin": "https://evil.example"}, http.StatusOK},
		{"cookie POST cross-site", "POST", map[string]string{"Cookie": cookie, "Origin": "https://evil.example"}, http.StatusForbidden},
		{"cookie DELETE from null", "DELETE", map[string]string{"Cookie": cookie, "Origin": "null"}, http.StatusForbidden},
		{"cookie PATCH suffix trick", "PATCH", map[string]string{"Cookie": cookie, "Origin": listed + ".evil.example"}, http.StatusForbidden},
		{"cookie POST without origin", "POST", map[string]string{"Cookie": cookie}, http.StatusForbidden},
		{"cookie POST from a sibling site", "POST", map[string]string{"Cookie": cookie, "Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.headers["Origin"] == "APP" {
				tc.headers["Origin"] = s.appOrigin()
			}
			hits := s.backend.Hits.Load()
			resp, body := s.do(t, tc.method, "/api/things", tc.headers)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			reached := s.backend.Hits.Load() - hits
			if tc.want == http.StatusForbidden {
				if reached != 0 {
					t.Errorf("a refused request reached the backend")
				}
				if code := errorCode(t, body); code != "cross_site_request" {
					t.Errorf("code %q", code)
				}
			} else if reached != 1 {
				t.Errorf("an allowed request did not reach the backend")
			}
		})
	}
}

func TestWebSocketOrigin(t *testing.T) {
	s := startStack(t)
	dial := func(origin string, header http.Header) (*websocket.Conn, *http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h := header.Clone()
		if origin != "" {
			h.Set("Origin", origin)
		}
		return websocket.Dial(ctx, s.gw.URL("localhost", "/ws/agent"), &websocket.DialOptions{HTTPClient: s.gw.Client(), HTTPHeader: h})
	}
	cookie := http.Header{"Cookie": {authCookie + "=" + s.token}}
	bearer := http.Header{"Authorization": {"Bearer " + s.token}}
	for _, tc := range []struct {
		name   string
		origin string
		header http.Header
	}{
		{"foreign origin with cookie", "https://evil.example", cookie},
		{"foreign origin with bearer", "https://evil.example", bearer},
		{"null origin", "null", cookie},
		{"suffix trick", s.appOrigin() + ".evil.example", cookie},
		{"no origin with cookie", "", cookie},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hits := s.backend.Hits.Load()
			c, resp, err := dial(tc.origin, tc.header)
			if err == nil {
				c.CloseNow()
				t.Fatal("the upgrade was accepted")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("want 403, got %v (%v)", resp, err)
			}
			if got := s.backend.Hits.Load(); got != hits {
				t.Errorf("the refused upgrade reached the backend")
			}
		})
	}
	// From the app's own origin the socket works end to end.
	c, _, err := dial(s.appOrigin(), cookie)
	if err != nil {
		t.Fatalf("same-origin upgrade: %v", err)
	}
	defer c.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.Read(ctx)
	if err != nil || string(msg) != "backend:hi" {
		t.Fatalf("echo: %q %v", msg, err)
	}
}
