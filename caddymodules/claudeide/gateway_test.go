package claudeide_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-gateway/claude-gateway/caddymodules/claudeauth"
	"github.com/claude-gateway/claude-gateway/caddymodules/claudeide"
	"github.com/claude-gateway/claude-gateway/ideticket"
	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

const password = "correct horse battery staple"

type stack struct {
	gw       *gatewaytest.Gateway
	frontend *gatewaytest.Upstream
	ide      *gatewaytest.Upstream
}

func startStack(t *testing.T) *stack {
	t.Helper()
	return startStackEnv(t, map[string]string{"CLAUDE_DATABASE": testenv.SQLiteDatabase(t)})
}

// startStackEnv runs the gateway on Caddyfile.dev with env added.
func startStackEnv(t *testing.T, env map[string]string) *stack {
	t.Helper()
	s := &stack{frontend: gatewaytest.NewUpstream(t, "frontend"), ide: gatewaytest.NewUpstream(t, "code-server")}
	e := map[string]string{
		"FRONTEND_UPSTREAM":     s.frontend.Addr(),
		"BACKEND_UPSTREAM":      s.frontend.Addr(),
		"CODE_SERVER_UPSTREAM":  s.ide.Addr(),
		"SECRET_KEY":            gatewaytest.TestSecret,
		"CLAUDE_ADMIN_PASSWORD": password,
	}
	for k, v := range env {
		e[k] = v
	}
	s.gw = gatewaytest.Start(t, gatewaytest.Options{Env: e})
	return s
}

func (s *stack) app() string { return fmt.Sprintf("https://localhost:%d", s.gw.HTTPSPort) }
func (s *stack) ideOrigin() string {
	return fmt.Sprintf("https://ide.localhost:%d", s.gw.HTTPSPort)
}

func (s *stack) do(t *testing.T, method, rawURL string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
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

// login signs in through the API and returns the app host's access cookie.
func (s *stack) login(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.app()+"/api/auth/login", strings.NewReader(`{"username":"admin","password":"`+password+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == claudeauth.AccessCookie {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("login: %d, no access cookie", resp.StatusCode)
	return ""
}

// handoff runs the app host's hand-off for next and returns the callback URL.
func (s *stack) handoff(t *testing.T, appCookie, next string) string {
	t.Helper()
	resp, _ := s.do(t, http.MethodGet, s.app()+"/auth/ide?next="+url.QueryEscape(next), map[string]string{"Cookie": appCookie, "Accept": "text/html"})
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, s.ideOrigin()+"/auth/ide/callback?ticket=") {
		t.Fatalf("hand-off: %d Location %q", resp.StatusCode, loc)
	}
	return loc
}

func ideCookieOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == claudeauth.AccessCookie {
			return c
		}
	}
	return nil
}

func TestIDESignOn(t *testing.T) {
	s := startStack(t)
	html := map[string]string{"Accept": "text/html"}

	// 1. A visitor without a cookie is sent to the app host's hand-off.
	resp, _ := s.do(t, http.MethodGet, s.ideOrigin()+"/?folder=/workspace", html)
	want := s.app() + "/auth/ide?next=" + url.QueryEscape("/?folder=/workspace")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
		t.Fatalf("IDE without a cookie: %d %q, want %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	if s.ide.Hits.Load() != 0 {
		t.Fatal("code-server was reached without a cookie")
	}
	// 2. Not signed in on the app host either: the login page, then back to the hand-off.
	resp, _ = s.do(t, http.MethodGet, want, html)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/auth/login?next="+url.QueryEscape("/auth/ide?next="+url.QueryEscape("/?folder=/workspace")) {
		t.Fatalf("hand-off without a session: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// 3. Signed in: a ticket for the IDE host's callback.
	appCookie := s.login(t)
	callback := s.handoff(t, appCookie, "/?folder=/workspace")
	ticket := strings.TrimPrefix(callback, s.ideOrigin()+"/auth/ide/callback?ticket=")

	// 4. The callback sets the IDE host's own cookie and returns to the asked-for path.
	resp, _ = s.do(t, http.MethodGet, callback, html)
	ideCookie := ideCookieOf(resp)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/?folder=/workspace" || ideCookie == nil {
		t.Fatalf("callback: %d %q %v", resp.StatusCode, resp.Header.Get("Location"), resp.Header.Values("Set-Cookie"))
	}
	if !ideCookie.HttpOnly || !ideCookie.Secure || ideCookie.Domain != "" || ideCookie.Path != "/" || ideCookie.SameSite != http.SameSiteNoneMode || !ideCookie.Partitioned {
		t.Errorf("IDE cookie attributes: %+v", ideCookie)
	}

	// 5. The ticket is single-use.
	resp, _ = s.do(t, http.MethodGet, callback, html)
	if resp.StatusCode != http.StatusForbidden || ideCookieOf(resp) != nil {
		t.Fatalf("replayed ticket: %d %v", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	// A forged one gets nothing either.
	resp, _ = s.do(t, http.MethodGet, s.ideOrigin()+"/auth/ide/callback?ticket=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", html)
	if resp.StatusCode != http.StatusForbidden || ideCookieOf(resp) != nil {
		t.Fatalf("forged ticket: %d", resp.StatusCode)
	}

	// 6. With its cookie the IDE answers, and code-server sees neither the
	// gateway's cookies nor anything but its own.
	cookies := ideCookie.Name + "=" + ideCookie.Value + "; vscode-tkn=keep; " + claudeauth.RefreshCookie + "=r"
	resp, body := s.do(t, http.MethodGet, s.ideOrigin()+"/?folder=/workspace", map[string]string{"Cookie": cookies, "Accept": "text/html"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("IDE with its cookie: %d %s", resp.StatusCode, body)
	}
	var echo gatewaytest.Echo
	if err := json.Unmarshal([]byte(body), &echo); err != nil || echo.Upstream != "code-server" {
		t.Fatalf("not code-server: %v %s", err, body)
	}
	if got := echo.Header.Get("Cookie"); got != "vscode-tkn=keep" {
		t.Errorf("code-server saw Cookie %q", got)
	}
	if echo.Header.Get("X-Auth-User-Name") != "admin" {
		t.Errorf("identity headers: %v", echo.Header)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'self' "+s.app()) {
		t.Errorf("IDE CSP %q", csp)
	}

	// 7. The ticket never reaches the access log, neither in the callback's
	// URI nor in the hand-off's Location header.
	var log string
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		log = s.gw.Log()
		if strings.Contains(log, `"uri":"/auth/ide/callback`) && strings.Contains(log, "ticket=REDACTED") {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the access log holds no hand-off requests: the check below would prove nothing")
		}
	}
	if strings.Contains(log, ticket) {
		t.Error("the ticket appears in the gateway's log")
	}

	// 8. Logging out on the app host ends the IDE session too.
	resp, _ = s.do(t, http.MethodPost, s.app()+"/api/auth/logout", map[string]string{"Cookie": appCookie, "Origin": s.app()})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, _ = s.do(t, http.MethodGet, s.ideOrigin()+"/", map[string]string{"Cookie": ideCookie.Name + "=" + ideCookie.Value})
		if resp.StatusCode == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the IDE session outlived the app's logout: %d", resp.StatusCode)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func TestIDEHandoffNextStaysOnIDEHost(t *testing.T) {
	s := startStack(t)
	appCookie := s.login(t)
	for _, next := range []string{"//evil.example", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "%2F%2Fevil.example"} {
		t.Run(next, func(t *testing.T) {
			resp, _ := s.do(t, http.MethodGet, s.handoff(t, appCookie, next), nil)
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
				t.Fatalf("callback for next=%q: %d Location %q", next, resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}

func TestIDEWebSocketOrigin(t *testing.T) {
	s := startStack(t)
	resp, _ := s.do(t, http.MethodGet, s.handoff(t, s.login(t), "/"), nil)
	c := ideCookieOf(resp)
	if c == nil {
		t.Fatal("no IDE cookie")
	}
	dial := func(origin string) (*websocket.Conn, *http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return websocket.Dial(ctx, s.ideOrigin()+"/stable/socket", &websocket.DialOptions{
			HTTPClient: s.gw.Client(),
			HTTPHeader: http.Header{"Origin": {origin}, "Cookie": {c.Name + "=" + c.Value}},
		})
	}
	for _, o := range []string{"https://evil.example", "null", s.ideOrigin() + ".evil.example", "http://ide.localhost"} {
		hits := s.ide.Hits.Load()
		conn, resp, err := dial(o)
		if err == nil {
			conn.CloseNow()
			t.Fatalf("origin %s: upgrade accepted", o)
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden || s.ide.Hits.Load() != hits {
			t.Fatalf("origin %s: %v, code-server hits +%d", o, err, s.ide.Hits.Load()-hits)
		}
	}
	conn, _, err := dial(s.ideOrigin())
	if err != nil {
		t.Fatalf("same-origin socket: %v", err)
	}
	defer conn.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn.Write(ctx, websocket.MessageText, []byte("ping"))
	if _, msg, err := conn.Read(ctx); err != nil || string(msg) != "code-server:ping" {
		t.Fatalf("echo %q %v", msg, err)
	}
	if got := s.ide.Last.Load().Header.Get("Cookie"); got != "" {
		t.Errorf("code-server's socket saw Cookie %q", got)
	}
}

// TestIDEHandoffLoopStops: a browser that never keeps the IDE cookie comes
// back for ticket after ticket; after MaxHandoffs it gets a page, not a loop.
func TestIDEHandoffLoopStops(t *testing.T) {
	s := startStack(t)
	appCookie := s.login(t)
	for i := 0; i < claudeide.MaxHandoffs; i++ {
		s.handoff(t, appCookie, "/")
	}
	resp, body := s.do(t, http.MethodGet, s.app()+"/auth/ide?next=%2F", map[string]string{"Cookie": appCookie, "Accept": "text/html"})
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Location") != "" || !strings.Contains(body, "could not sign you in") {
		t.Fatalf("hand-off %d: %d Location %q", claudeide.MaxHandoffs+1, resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestIDETicketExpires: a ticket not redeemed within its lifetime is worth nothing.
func TestIDETicketExpires(t *testing.T) {
	s := startStackEnv(t, map[string]string{"CLAUDE_DATABASE": testenv.SQLiteDatabase(t), "IDE_TICKET_TTL": "1s"})
	callback := s.handoff(t, s.login(t), "/")
	time.Sleep(1500 * time.Millisecond)
	resp, _ := s.do(t, http.MethodGet, callback, nil)
	if resp.StatusCode != http.StatusForbidden || ideCookieOf(resp) != nil {
		t.Fatalf("expired ticket: %d %v", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	// A fresh one still works: the refusal was the clock, not the flow.
	resp, _ = s.do(t, http.MethodGet, s.handoff(t, s.login(t), "/"), nil)
	if resp.StatusCode != http.StatusFound || ideCookieOf(resp) == nil {
		t.Fatalf("fresh ticket: %d", resp.StatusCode)
	}
}

// TestIDETicketAcrossReplicas: two gateways on one MariaDB database, as
// replicas behind one address; a ticket issued by one is redeemed by the
// other, once.
func TestIDETicketAcrossReplicas(t *testing.T) {
	db := testenv.MySQLDatabase(t)
	a := startStackEnv(t, map[string]string{"CLAUDE_DATABASE": db})
	b := startStackEnv(t, map[string]string{"CLAUDE_DATABASE": db})
	callback := a.handoff(t, a.login(t), "/?folder=/w")
	// Send the callback to replica B as if through A's public address.
	redeemOnB := func() *http.Response {
		req, err := http.NewRequest(http.MethodGet, strings.Replace(callback, a.ideOrigin(), b.ideOrigin(), 1), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = strings.TrimPrefix(a.ideOrigin(), "https://")
		resp, err := b.gw.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := redeemOnB()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/?folder=/w" || ideCookieOf(resp) == nil {
		t.Fatalf("redeeming on the other replica: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := redeemOnB(); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("replay on replica B: %d", resp.StatusCode)
	}
	if resp, _ := a.do(t, http.MethodGet, callback, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("replay on replica A: %d", resp.StatusCode)
	}
	// A ticket names the IDE origin it is for: another origin cannot spend it.
	callback = a.handoff(t, a.login(t), "/")
	if resp, _ := b.do(t, http.MethodGet, strings.Replace(callback, a.ideOrigin(), b.ideOrigin(), 1), nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a ticket for another IDE origin was redeemed: %d", resp.StatusCode)
	}
	// A next longer than a ticket can carry (MariaDB would refuse the row)
	// lands on the IDE's start page instead of failing the hand-off.
	callback = a.handoff(t, a.login(t), "/?folder=/"+strings.Repeat("a", ideticket.MaxNextLength))
	if resp, _ := a.do(t, http.MethodGet, callback, nil); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		t.Fatalf("callback for a too long next: %d Location %.40q", resp.StatusCode, resp.Header.Get("Location"))
	}
}
