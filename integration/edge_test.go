package integration

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// stack is a gateway on Caddyfile.dev in front of three real upstreams.
type stack struct {
	gw                *gatewaytest.Gateway
	frontend, backend *gatewaytest.Upstream
	// token opens the app host, ideToken the IDE host (neither opens the other).
	token, ideToken string
	session         string // startIDEStack's session: its IDE is /s/{session}/
}

func startStack(t *testing.T, env map[string]string) *stack {
	t.Helper()
	s := &stack{
		frontend: gatewaytest.NewUpstream(t, "frontend"),
		backend:  gatewaytest.NewUpstream(t, "backend"),
	}
	e := map[string]string{
		"FRONTEND_UPSTREAM": s.frontend.Addr(),
		"BACKEND_UPSTREAM":  s.backend.Addr(),
		"SECRET_KEY":        gatewaytest.TestSecret,
		"CLAUDE_DATABASE":   testenv.SQLiteDatabase(t),
	}
	for k, v := range env {
		e[k] = v
	}
	s.gw = gatewaytest.Start(t, gatewaytest.Options{Env: e})
	s.token = gatewaytest.AccessToken(t, gatewaytest.TestSecret, "1", "admin", "admin", time.Hour)
	s.ideToken = gatewaytest.IDEToken(t, gatewaytest.TestSecret, "1", "admin", "admin", time.Hour)
	return s
}

// tokenFor is the token that opens the host of rawURL.
func (s *stack) tokenFor(rawURL string) string {
	if strings.Contains(rawURL, "://ide.localhost:") {
		return s.ideToken
	}
	return s.token
}

// startIDEStack is startStack with session workspaces (the stand-in IDE
// image on the machine's engine) and a session of the token's user, whose
// IDE is at s.ideOrigin()/s/{s.session}/.
func startIDEStack(t *testing.T) *stack {
	t.Helper()
	s := startStack(t, gatewaytest.WorkspaceEnv(t))
	s.session = s.gw.NewSession(t, http.Header{"Authorization": {"Bearer " + s.token}})
	return s
}

func (s *stack) appOrigin() string { return fmt.Sprintf("https://localhost:%d", s.gw.HTTPSPort) }
func (s *stack) ideOrigin() string { return fmt.Sprintf("https://ide.localhost:%d", s.gw.HTTPSPort) }

// get requests url with the stack's token and returns the response with its body read.
func (s *stack) get(t *testing.T, url string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.tokenFor(url))
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.gw.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestRouting(t *testing.T) {
	s := startIDEStack(t)
	ide := "/s/" + s.session
	tests := []struct {
		host, path   string
		wantUpstream string
		prefix       string // stripped before the upstream
	}{
		{"localhost", "/", "frontend", ""},
		{"localhost", "/projects/42", "frontend", ""},
		{"localhost", "/_next/static/app.js", "frontend", ""},
		{"localhost", "/api/chat", "backend", ""},
		{"localhost", "/api/agents/1/messages", "backend", ""},
		{"localhost", "/ws/agent", "backend", ""},
		{"ide.localhost", "/", "code-server", ide},
		{"ide.localhost", "/static/out/vs/workbench.js", "code-server", ide},
		{"ide.localhost", "/api/something", "code-server", ide},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.path, func(t *testing.T) {
			resp, body := s.get(t, s.gw.URL(tt.host, tt.prefix+tt.path), http.Header{"Accept": {"application/json"}})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var e gatewaytest.Echo
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("not an upstream echo: %s", body)
			}
			if e.Upstream != tt.wantUpstream || e.Path != tt.path {
				t.Fatalf("reached %s%s, want %s%s", e.Upstream, e.Path, tt.wantUpstream, tt.path)
			}
			wantHost := tt.host + ":" + strconv.Itoa(s.gw.HTTPSPort)
			if e.Host != wantHost {
				t.Fatalf("upstream saw Host %q, want %q (code-server's origin check compares it)", e.Host, wantHost)
			}
			if got := e.Header.Get("X-Forwarded-Proto"); got != "https" {
				t.Fatalf("X-Forwarded-Proto = %q", got)
			}
			if got := e.Header.Get("X-Forwarded-Host"); got != wantHost {
				t.Fatalf("X-Forwarded-Host = %q, want %q", got, wantHost)
			}
			if got := e.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
				t.Fatalf("X-Forwarded-For = %q", got)
			}
		})
	}
}

// dialWS opens a WebSocket through the gateway over HTTP/1.1.
func (s *stack) dialWS(t *testing.T, ctx context.Context, url, origin string) *websocket.Conn {
	t.Helper()
	tr := s.gw.Transport()
	tr.ForceAttemptHTTP2 = false
	tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	h := http.Header{"Origin": {origin}, "Authorization": {"Bearer " + s.tokenFor(url)}}
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}, HTTPHeader: h})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	return c
}

func echoRoundTrip(ctx context.Context, c *websocket.Conn, msg string) (string, error) {
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		return "", err
	}
	_, got, err := c.Read(ctx)
	return string(got), err
}

func TestWebSockets(t *testing.T) {
	s := startIDEStack(t)
	tests := []struct {
		name, url, origin, want string
	}{
		{"backend via app host", "wss://localhost:%d/ws/agent", "app", "backend"},
		{"backend API socket", "wss://localhost:%d/api/agent/stream", "app", "backend"},
		{"code-server via IDE host", "wss://ide.localhost:%d/s/SESSION/stable-123?reconnectionToken=abc", "ide", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			origin := s.appOrigin()
			if tt.origin == "ide" {
				origin = s.ideOrigin()
			}
			url := strings.Replace(fmt.Sprintf(tt.url, s.gw.HTTPSPort), "SESSION", s.session, 1)
			c := s.dialWS(t, ctx, url, origin)
			defer c.CloseNow()
			for i := range 3 {
				msg := fmt.Sprintf("hello %d", i)
				want := msg // the IDE stand-in echoes the message as it is
				if tt.want != "" {
					want = tt.want + ":" + msg
				}
				got, err := echoRoundTrip(ctx, c, msg)
				if err != nil || got != want {
					t.Fatalf("round trip %d: got %q, %v; want %q", i, got, err, want)
				}
			}
			c.Close(websocket.StatusNormalClosure, "")
		})
	}
}

func TestSecurityHeaders(t *testing.T) {
	s := startIDEStack(t)
	common := map[string]string{
		"Strict-Transport-Security": "max-age=31536000",
		"X-Content-Type-Options":    "nosniff",
		"Referrer-Policy":           "strict-origin-when-cross-origin",
	}
	tests := []struct {
		name      string
		host      string
		path      string
		want      map[string]string
		mustBeNil []string
	}{
		{"app page", "localhost", "/", map[string]string{
			"X-Frame-Options":         "DENY",
			"Content-Security-Policy": "frame-ancestors 'none'",
		}, []string{"Server", "Via"}},
		{"app api", "localhost", "/api/x", map[string]string{
			"X-Frame-Options":         "DENY",
			"Content-Security-Policy": "frame-ancestors 'none'",
		}, []string{"Server", "Via"}},
		{"gateway probe", "localhost", "/api/health", map[string]string{
			"X-Frame-Options":         "DENY",
			"Content-Security-Policy": "frame-ancestors 'none'",
		}, []string{"Server", "Via"}},
		{"ide", "ide.localhost", "/s/" + s.session + "/", map[string]string{
			"Content-Security-Policy": "frame-ancestors 'self' https://localhost:PORT",
		}, []string{"Server", "Via", "X-Frame-Options"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := s.get(t, s.gw.URL(tt.host, tt.path), nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			for k, v := range common {
				if got := resp.Header.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("%s = %q, want exactly %q", k, got, v)
				}
			}
			for k, v := range tt.want {
				v = strings.ReplaceAll(v, "PORT", strconv.Itoa(s.gw.HTTPSPort))
				if got := resp.Header.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("%s = %q, want exactly %q", k, got, v)
				}
			}
			for _, k := range tt.mustBeNil {
				if got := resp.Header.Values(k); len(got) != 0 {
					t.Errorf("%s = %q, want none (upstream or Caddy default must be removed)", k, got)
				}
			}
		})
	}
}

// TestFrontendCSPKept: a Content-Security-Policy of the frontend's own
// reaches the browser as it is (the app host only supplies one when there is
// none), while its X-Frame-Options is replaced by the gateway's DENY.
func TestFrontendCSPKept(t *testing.T) {
	s := startStack(t, nil)
	const csp = "default-src 'self'; frame-ancestors 'none'; script-src 'self'"
	s.frontend.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("X-Frame-Options", "SAMEORIGIN")
		io.WriteString(w, "page")
	})
	resp, body := s.get(t, s.gw.URL("localhost", "/"), nil)
	if resp.StatusCode != http.StatusOK || string(body) != "page" {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got := resp.Header.Values("Content-Security-Policy"); len(got) != 1 || got[0] != csp {
		t.Errorf("Content-Security-Policy = %q, want the frontend's %q", got, csp)
	}
	if got := resp.Header.Values("X-Frame-Options"); len(got) != 1 || got[0] != "DENY" {
		t.Errorf("X-Frame-Options = %q, want exactly DENY", got)
	}
}

func TestHTTPRedirectsToHTTPS(t *testing.T) {
	s := startStack(t, nil)
	for _, host := range []string{"localhost", "ide.localhost"} {
		resp, err := s.gw.Client().Get(s.gw.HTTPURL(host, "/some/path?q=1"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := s.gw.URL(host, "/some/path?q=1")
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			t.Fatalf("%s: %d Location %q, want 308 to %q", host, resp.StatusCode, resp.Header.Get("Location"), want)
		}
		if resp.Header.Get("Strict-Transport-Security") != "" {
			t.Fatalf("%s: HSTS on plain HTTP", host)
		}
	}
	if hits := s.frontend.Hits.Load() + s.backend.Hits.Load(); hits != 0 {
		t.Fatalf("plain HTTP reached an upstream %d times", hits)
	}
}

func TestUpstreamDown(t *testing.T) {
	s := startStack(t, nil)
	s.backend.Server.Close()
	s.frontend.Server.Close()

	resp, body := s.get(t, s.gw.URL("localhost", "/api/chat"), nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("API: %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var env struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Error.Code != "upstream_unavailable" || env.Error.Message == "" {
		t.Fatalf("API 502 body is not the envelope: %s", body)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("error responses lost the edge headers: %v", resp.Header)
	}

	resp, body = s.get(t, s.gw.URL("localhost", "/dashboard"), http.Header{"Accept": {"text/html"}})
	if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(string(body), "not reachable") || strings.Contains(string(body), "dial tcp") {
		t.Fatalf("page body is not the friendly page: %s", body)
	}
}

// TestMetricsOnlyOnAdmin: Prometheus metrics answer on the admin endpoint, not on the public sites.
func TestMetricsOnlyOnAdmin(t *testing.T) {
	s := startStack(t, nil)
	s.get(t, s.gw.URL("localhost", "/"), nil)
	resp, err := http.Get("http://" + s.gw.AdminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "caddy_http_requests_total") {
		t.Fatalf("admin /metrics: %d, no caddy_http_requests_total", resp.StatusCode)
	}
	_, public := s.get(t, s.gw.URL("localhost", "/metrics"), nil)
	if strings.Contains(string(public), "caddy_http") {
		t.Fatalf("metrics exposed on the public site")
	}
}

// TestAccessLogHasNoSecrets sends credentials every way a client might and
// checks none of them reaches the log.
func TestAccessLogHasNoSecrets(t *testing.T) {
	s := startStack(t, nil)
	secrets := []string{s.token, "cookie-secret-value", "query-secret-value", "ticket-secret-value"}
	req, _ := http.NewRequest(http.MethodGet, s.gw.URL("localhost", "/api/chat?access_token=query-secret-value&ticket=ticket-secret-value&page=2"), nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Cookie", "gw_session=cookie-secret-value")
	req.Header.Set("Referer", "https://localhost/?token=query-secret-value")
	resp, err := s.gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.gw.Log(), `"uri":"/api/chat`) {
		if time.Now().After(deadline) {
			t.Fatalf("the request was not access-logged:\n%s", s.gw.LogTail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	log := s.gw.Log()
	for _, secret := range secrets {
		if strings.Contains(log, secret) {
			t.Errorf("log contains secret %q", secret[:min(len(secret), 16)])
		}
	}
	if !strings.Contains(log, "page=2") {
		t.Errorf("the filter dropped more than the secrets: %s", s.gw.LogTail(5))
	}
}

// tlsVersion is used by the benchmark helpers to pin HTTP/1.1.
var _ = tls.VersionTLS12
