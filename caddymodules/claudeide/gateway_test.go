package claudeide_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
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
	gw        *gatewaytest.Gateway
	frontend  *gatewaytest.Upstream
	workspace map[string]string // gatewaytest.WorkspaceEnv, when the test opens an IDE
}

func startStack(t *testing.T) *stack {
	t.Helper()
	return startStackEnv(t, map[string]string{"CLAUDE_DATABASE": testenv.SQLiteDatabase(t)})
}

// startStackEnv runs the gateway on Caddyfile.dev with env added.
func startStackEnv(t *testing.T, env map[string]string) *stack {
	t.Helper()
	s := &stack{frontend: gatewaytest.NewUpstream(t, "frontend")}
	e := map[string]string{
		"FRONTEND_UPSTREAM":     s.frontend.Addr(),
		"BACKEND_UPSTREAM":      s.frontend.Addr(),
		"SECRET_KEY":            gatewaytest.TestSecret,
		"CLAUDE_ADMIN_PASSWORD": password,
	}
	for k, v := range env {
		e[k] = v
	}
	s.gw = gatewaytest.Start(t, gatewaytest.Options{Env: e})
	return s
}

// startIDEStack is startStack with session workspaces: the stand-in IDE
// image on the machine's engine.
func startIDEStack(t *testing.T) *stack {
	t.Helper()
	ws := gatewaytest.WorkspaceEnv(t)
	env := map[string]string{"CLAUDE_DATABASE": testenv.SQLiteDatabase(t)}
	for k, v := range ws {
		env[k] = v
	}
	s := startStackEnv(t, env)
	s.workspace = ws
	return s
}

// workspacesStarted counts the workspace containers this test's gateway made.
func (s *stack) workspacesStarted(t *testing.T) int {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "name="+s.workspace["CLAUDE_WORKSPACE_PREFIX"]).Output()
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	return len(strings.Fields(string(out)))
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

// start opens the IDE host's sign-on start for next, where claude_auth sends
// a browser without the IDE cookie, and returns the app host's sign-on URL
// it redirects to and the state cookie it sets ("name=value").
func (s *stack) start(t *testing.T, next string) (string, string) {
	t.Helper()
	resp, _ := s.do(t, http.MethodGet, s.ideOrigin()+"/auth/ide/start?next="+url.QueryEscape(next), map[string]string{"Accept": "text/html"})
	loc := resp.Header.Get("Location")
	state := stateCookieOf(resp)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, s.app()+"/auth/ide?") || state == nil {
		t.Fatalf("sign-on start: %d Location %q Set-Cookie %q", resp.StatusCode, loc, resp.Header.Values("Set-Cookie"))
	}
	return loc, state.Name + "=" + state.Value
}

// signOn runs a sign-on for next, started on the IDE host and sent on
// by the app host, and returns the callback URL and the state cookie
// ("name=value") of the browser that started it.
func (s *stack) signOn(t *testing.T, appCookie, next string) (string, string) {
	t.Helper()
	signOnURL, state := s.start(t, next)
	resp, _ := s.do(t, http.MethodGet, signOnURL, map[string]string{"Cookie": appCookie, "Accept": "text/html"})
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, s.ideOrigin()+"/auth/ide/callback?ticket=") {
		t.Fatalf("sign-on: %d Location %q", resp.StatusCode, loc)
	}
	return loc, state
}

// cookie is a request header map sending the given Cookie header.
func cookie(c string) map[string]string { return map[string]string{"Cookie": c, "Accept": "text/html"} }

func stateCookieOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == claudeide.StateCookie {
			return c
		}
	}
	return nil
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
	s := startIDEStack(t)
	html := map[string]string{"Accept": "text/html"}

	// 1. A visitor without a cookie is sent to the app host's sign-on, which
	// sends it back to the IDE host's sign-on start: only there can the
	// browser get a state cookie. The start goes on to the sign-on with only
	// the state's binding.
	resp, _ := s.do(t, http.MethodGet, s.ideOrigin()+"/?folder=/workspace", html)
	wantSignOn := s.app() + "/auth/ide?next=" + url.QueryEscape("/?folder=/workspace")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != wantSignOn {
		t.Fatalf("IDE without a cookie: %d %q, want %q", resp.StatusCode, resp.Header.Get("Location"), wantSignOn)
	}
	if n := s.workspacesStarted(t); n != 0 {
		t.Fatalf("%d workspaces started without a cookie", n)
	}
	resp, _ = s.do(t, http.MethodGet, wantSignOn, html)
	wantStart := s.ideOrigin() + "/auth/ide/start?next=" + url.QueryEscape("/?folder=/workspace")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != wantStart || stateCookieOf(resp) != nil {
		t.Fatalf("sign-on without a state: %d %q, want %q", resp.StatusCode, resp.Header.Get("Location"), wantStart)
	}
	resp, _ = s.do(t, http.MethodGet, wantStart, html)
	state := stateCookieOf(resp)
	if resp.StatusCode != http.StatusFound || state == nil {
		t.Fatalf("sign-on start: %d %v", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	if !strings.HasPrefix(state.Name, "__Host-") || !state.HttpOnly || !state.Secure || state.Domain != "" || state.Path != "/" ||
		state.MaxAge <= 30 || state.MaxAge > 600 || len(state.Value) != 43 {
		t.Errorf("state cookie attributes: %+v", state)
	}
	// Caddyfile.dev's IDE host is another site than the app host: like the
	// IDE cookie, the state cookie must reach the iframe.
	if state.SameSite != http.SameSiteNoneMode || !state.Partitioned {
		t.Errorf("state cookie SameSite %v, Partitioned %v", state.SameSite, state.Partitioned)
	}
	want := s.app() + "/auth/ide?next=" + url.QueryEscape("/?folder=/workspace") + "&state=" + ideticket.Binding(state.Value)
	if resp.Header.Get("Location") != want {
		t.Fatalf("sign-on start: Location %q, want %q", resp.Header.Get("Location"), want)
	}
	if strings.Contains(resp.Header.Get("Location"), state.Value) {
		t.Fatal("the state nonce leaves the IDE host")
	}
	stateCookie := state.Name + "=" + state.Value
	// 2. Not signed in on the app host either: the login page, then back to
	// the sign-on with the same binding.
	resp, _ = s.do(t, http.MethodGet, want, html)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/auth/login?next="+url.QueryEscape(strings.TrimPrefix(want, s.app())) {
		t.Fatalf("sign-on without a session: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// 3. Signed in: a ticket for the IDE host's callback.
	appCookie := s.login(t)
	resp, _ = s.do(t, http.MethodGet, want, cookie(appCookie))
	callback := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(callback, s.ideOrigin()+"/auth/ide/callback?ticket=") {
		t.Fatalf("sign-on: %d Location %q", resp.StatusCode, callback)
	}
	ticket := strings.TrimPrefix(callback, s.ideOrigin()+"/auth/ide/callback?ticket=")

	// 4. The callback, in the browser that started the sign-on, sets the IDE
	// host's own cookie, clears the state cookie and returns to the
	// asked-for path.
	resp, _ = s.do(t, http.MethodGet, callback, cookie(stateCookie))
	ideCookie := ideCookieOf(resp)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/?folder=/workspace" || ideCookie == nil {
		t.Fatalf("callback: %d %q %v", resp.StatusCode, resp.Header.Get("Location"), resp.Header.Values("Set-Cookie"))
	}
	if !ideCookie.HttpOnly || !ideCookie.Secure || ideCookie.Domain != "" || ideCookie.Path != "/" || ideCookie.SameSite != http.SameSiteNoneMode || !ideCookie.Partitioned {
		t.Errorf("IDE cookie attributes: %+v", ideCookie)
	}
	if c := stateCookieOf(resp); c == nil || c.MaxAge >= 0 || c.Value != "" {
		t.Errorf("the state cookie is not cleared: %+v", c)
	}

	// 5. The ticket is single-use.
	resp, _ = s.do(t, http.MethodGet, callback, cookie(stateCookie))
	if resp.StatusCode != http.StatusForbidden || ideCookieOf(resp) != nil {
		t.Fatalf("replayed ticket: %d %v", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	// A forged one gets nothing either.
	resp, _ = s.do(t, http.MethodGet, s.ideOrigin()+"/auth/ide/callback?ticket=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", cookie(stateCookie))
	if resp.StatusCode != http.StatusForbidden || ideCookieOf(resp) != nil {
		t.Fatalf("forged ticket: %d", resp.StatusCode)
	}

	// 6. With its cookie the IDE of a session of the user answers, and
	// code-server sees neither the gateway's cookies nor anything but its own.
	session := s.gw.NewSession(t, http.Header{"Cookie": {appCookie}})
	cookies := ideCookie.Name + "=" + ideCookie.Value + "; vscode-tkn=keep; " + claudeauth.RefreshCookie + "=r"
	resp, body := s.do(t, http.MethodGet, s.ideOrigin()+"/s/"+session+"/?folder=/workspace", map[string]string{"Cookie": cookies, "Accept": "application/json"})
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
	// URI nor in the sign-on's Location header.
	var log string
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		log = s.gw.Log()
		if strings.Contains(log, `"uri":"/auth/ide/callback`) && strings.Contains(log, "ticket=REDACTED") {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the access log holds no sign-on requests: the check below would prove nothing")
		}
	}
	if strings.Contains(log, ticket) {
		t.Error("the ticket appears in the gateway's log")
	}
	if strings.Contains(log, state.Value) {
		t.Error("the state nonce appears in the gateway's log")
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

func TestIDESignOnNextStaysOnIDEHost(t *testing.T) {
	s := startStack(t)
	appCookie := s.login(t)
	for _, next := range []string{"//evil.example", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "%2F%2Fevil.example"} {
		t.Run(next, func(t *testing.T) {
			callback, state := s.signOn(t, appCookie, next)
			resp, _ := s.do(t, http.MethodGet, callback, cookie(state))
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
				t.Fatalf("callback for next=%q: %d Location %q", next, resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}

func TestIDEWebSocketOrigin(t *testing.T) {
	s := startIDEStack(t)
	appCookie := s.login(t)
	session := s.gw.NewSession(t, http.Header{"Cookie": {appCookie}})
	callback, state := s.signOn(t, appCookie, "/")
	resp, _ := s.do(t, http.MethodGet, callback, cookie(state))
	c := ideCookieOf(resp)
	if c == nil {
		t.Fatal("no IDE cookie")
	}
	dial := func(origin string) (*websocket.Conn, *http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return websocket.Dial(ctx, s.ideOrigin()+"/s/"+session+"/stable/socket", &websocket.DialOptions{
			HTTPClient: s.gw.Client(),
			HTTPHeader: http.Header{"Origin": {origin}, "Cookie": {c.Name + "=" + c.Value}},
		})
	}
	for _, o := range []string{"https://evil.example", "null", s.ideOrigin() + ".evil.example", "http://ide.localhost"} {
		conn, resp, err := dial(o)
		if err == nil {
			conn.CloseNow()
			t.Fatalf("origin %s: upgrade accepted", o)
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("origin %s: %v", o, err)
		}
	}
	// Refused before the workspace handler: nothing was started for it.
	if n := s.workspacesStarted(t); n != 0 {
		t.Fatalf("%d workspaces started by refused sockets", n)
	}
	conn, _, err := dial(s.ideOrigin())
	if err != nil {
		t.Fatalf("same-origin socket: %v", err)
	}
	defer conn.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn.Write(ctx, websocket.MessageText, []byte("ping"))
	if _, msg, err := conn.Read(ctx); err != nil || string(msg) != "ping" {
		t.Fatalf("echo %q %v", msg, err)
	}
}

// TestIDESignOnLoopStops: a browser that never keeps the IDE cookie comes
// back for ticket after ticket; after MaxSignOns it gets a page, not a loop.
func TestIDESignOnLoopStops(t *testing.T) {
	s := startStack(t)
	appCookie := s.login(t)
	signOnURL, _ := s.start(t, "/")
	for i := 0; i < claudeide.MaxSignOns; i++ {
		if resp, _ := s.do(t, http.MethodGet, signOnURL, cookie(appCookie)); resp.StatusCode != http.StatusFound {
			t.Fatalf("sign-on %d: %d", i+1, resp.StatusCode)
		}
	}
	resp, body := s.do(t, http.MethodGet, signOnURL, cookie(appCookie))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Location") != "" || !strings.Contains(body, "keeps refusing the IDE") {
		t.Fatalf("sign-on %d: %d Location %q", claudeide.MaxSignOns+1, resp.StatusCode, resp.Header.Get("Location"))
	}
	// claude_error rendered it, with the Retry-After the handler set.
	if !strings.Contains(body, "Error 429") || resp.Header.Get("Retry-After") == "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("sign-on loop page: Retry-After %q Cache-Control %q\n%s", resp.Header.Get("Retry-After"), resp.Header.Get("Cache-Control"), body)
	}
}

// TestIDETicketExpires: a ticket not redeemed within its lifetime is worth nothing.
func TestIDETicketExpires(t *testing.T) {
	s := startStackEnv(t, map[string]string{"CLAUDE_DATABASE": testenv.SQLiteDatabase(t), "IDE_TICKET_TTL": "1s"})
	callback, state := s.signOn(t, s.login(t), "/")
	time.Sleep(1500 * time.Millisecond)
	resp, _ := s.do(t, http.MethodGet, callback, cookie(state))
	if resp.StatusCode != http.StatusForbidden || ideCookieOf(resp) != nil {
		t.Fatalf("expired ticket: %d %v", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	// A fresh one still works: the refusal was the clock, not the flow.
	callback, state = s.signOn(t, s.login(t), "/")
	resp, _ = s.do(t, http.MethodGet, callback, cookie(state))
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
	callback, state := a.signOn(t, a.login(t), "/?folder=/w")
	// Send the callback to replica B as if through A's public address.
	redeemOnB := func() *http.Response {
		req, err := http.NewRequest(http.MethodGet, strings.Replace(callback, a.ideOrigin(), b.ideOrigin(), 1), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = strings.TrimPrefix(a.ideOrigin(), "https://")
		req.Header.Set("Cookie", state)
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
	if resp, _ := a.do(t, http.MethodGet, callback, cookie(state)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("replay on replica A: %d", resp.StatusCode)
	}
	// A ticket names the IDE origin it is for: another origin cannot spend it.
	callback, state = a.signOn(t, a.login(t), "/")
	if resp, _ := b.do(t, http.MethodGet, strings.Replace(callback, a.ideOrigin(), b.ideOrigin(), 1), cookie(state)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a ticket for another IDE origin was redeemed: %d", resp.StatusCode)
	}
	// A next longer than a ticket can carry (MariaDB would refuse the row)
	// lands on the IDE's start page instead of failing the sign-on.
	callback, state = a.signOn(t, a.login(t), "/?folder=/"+strings.Repeat("a", ideticket.MaxNextLength))
	if resp, _ := a.do(t, http.MethodGet, callback, cookie(state)); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		t.Fatalf("callback for a too long next: %d Location %.40q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestIDETicketBoundToBrowser: login CSRF / session fixation through the
// sign-on. An attacker signs in on the app host with their own account, runs
// a sign-on in their own browser and sends the callback link, ticket and all,
// to a victim. The victim's browser did not start that sign-on: without the
// matching state cookie the IDE host refuses the ticket, sets no cookie and
// never reaches code-server, and the victim's own sign-on still works.
func TestIDETicketBoundToBrowser(t *testing.T) {
	s := startStack(t)
	attacker := s.login(t)

	// The victim's browser: a state cookie of its own from a sign-on it
	// started, or none at all.
	victimSignOn, victimState := s.start(t, "/?folder=/victim")
	for _, tc := range []struct{ name, cookie string }{
		{"no state cookie", ""},
		{"another browser's state cookie", victimState},
		{"a state cookie of the right name and a forged value", claudeide.StateCookie + "=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"the state cookie under another name", "claude_ide_state=" + strings.TrimPrefix(victimState, claudeide.StateCookie+"=")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			callback, attackerState := s.signOn(t, attacker, "/?folder=/attacker")
			resp, body := s.do(t, http.MethodGet, callback, cookie(tc.cookie))
			if resp.StatusCode != http.StatusForbidden || ideCookieOf(resp) != nil || resp.Header.Get("Location") != "" {
				t.Fatalf("attacker's ticket in the victim's browser: %d Location %q Set-Cookie %q", resp.StatusCode, resp.Header.Get("Location"), resp.Header.Values("Set-Cookie"))
			}
			if c := stateCookieOf(resp); c != nil {
				t.Errorf("the refusal touched the browser's state cookie: %+v", c)
			}
			if !strings.Contains(body, "not started in this browser") {
				t.Errorf("refusal page: %s", body)
			}
			// A refused presentation spends the ticket: not even the browser
			// it was bound to can use it afterwards.
			resp, _ = s.do(t, http.MethodGet, callback, cookie(attackerState))
			if resp.StatusCode != http.StatusForbidden || ideCookieOf(resp) != nil {
				t.Fatalf("the ticket survived its refused presentation: %d", resp.StatusCode)
			}
		})
	}

	// The attack left the victim's own sign-on intact: its state cookie was
	// not cleared, and its own ticket is redeemed.
	resp, _ := s.do(t, http.MethodGet, victimSignOn, cookie(s.login(t)))
	callback := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(callback, s.ideOrigin()+"/auth/ide/callback?ticket=") {
		t.Fatalf("victim's sign-on: %d %q", resp.StatusCode, callback)
	}
	resp, _ = s.do(t, http.MethodGet, callback, cookie(victimState))
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/?folder=/victim" || ideCookieOf(resp) == nil {
		t.Fatalf("victim's own callback: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestIDESignOnWithoutState: a sign-on that carries no state (a plain link
// to /auth/ide, or a forged state) issues no ticket; it sends the browser to
// the IDE host's sign-on start, which gives it a state cookie first.
func TestIDESignOnWithoutState(t *testing.T) {
	s := startStack(t)
	appCookie := s.login(t)
	for _, q := range []string{"?next=%2F%3Ffolder%3D%2Fw", "?next=%2F%3Ffolder%3D%2Fw&state=", "?next=%2F%3Ffolder%3D%2Fw&state=short", "?next=%2F%3Ffolder%3D%2Fw&state=" + strings.Repeat("%21", 43)} {
		resp, _ := s.do(t, http.MethodGet, s.app()+"/auth/ide"+q, cookie(appCookie))
		want := s.ideOrigin() + "/auth/ide/start?next=" + url.QueryEscape("/?folder=/w")
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
			t.Errorf("sign-on %s: %d Location %q, want %q", q, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
}

// TestIDETokenOnlyOnIDEHost: the IDE host serves user-controlled content
// (code-server's port proxy), so its cookie holds a token good there only.
// Taken from the IDE host and presented to the app host, as a Bearer token
// or as the app's cookie, it opens nothing: not /api/auth/me, not an
// admin-only route, not the gateway's session or run APIs, not a backend
// route or WebSocket. Conversely the app's access token does not open the
// IDE host. The IDE token still names the user and the login session, and
// the app's logout ends it (TestIDESignOn).
func TestIDETokenOnlyOnIDEHost(t *testing.T) {
	s := startIDEStack(t)
	appCookie := s.login(t)
	session := s.gw.NewSession(t, http.Header{"Cookie": {appCookie}})
	appToken := strings.TrimPrefix(appCookie, claudeauth.AccessCookie+"=")
	callback, state := s.signOn(t, appCookie, "/")
	resp, _ := s.do(t, http.MethodGet, callback, cookie(state))
	c := ideCookieOf(resp)
	if resp.StatusCode != http.StatusFound || c == nil {
		t.Fatalf("callback: %d %v", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	ideToken := c.Value

	// The token says what it is: typ "ide", its own audience, the user and
	// the app login's session, so owner checks and logout work on it.
	ideClaims, appClaims := payload(t, ideToken), payload(t, appToken)
	if ideClaims["typ"] != "ide" || fmt.Sprint(ideClaims["aud"]) == fmt.Sprint(appClaims["aud"]) ||
		ideClaims["sub"] != appClaims["sub"] || ideClaims["sid"] != appClaims["sid"] || ideClaims["sid"] == nil {
		t.Fatalf("IDE token claims %v, app token claims %v", ideClaims, appClaims)
	}

	// It opens the IDE host (the IDE of the user's session), as a cookie.
	if resp, body := s.do(t, http.MethodGet, s.ideOrigin()+"/s/"+session+"/", map[string]string{"Cookie": c.Name + "=" + ideToken}); resp.StatusCode != http.StatusOK {
		t.Fatalf("IDE host with the IDE cookie: %d %s", resp.StatusCode, body)
	}

	// Nothing on the app host.
	app := []struct{ method, path string }{
		{http.MethodGet, "/api/auth/me"},
		{http.MethodPost, "/api/executor/cleanup"}, // admin only
		{http.MethodGet, "/api/sessions"},
		{http.MethodPost, "/api/sessions"},
		{http.MethodGet, "/api/backend/route"},
		{http.MethodGet, "/"},
	}
	for _, r := range app {
		for _, how := range []map[string]string{
			{"Authorization": "Bearer " + ideToken},
			{"Cookie": claudeauth.AccessCookie + "=" + ideToken, "Origin": s.app()},
		} {
			hits := s.frontend.Hits.Load()
			resp, body := s.do(t, r.method, s.app()+r.path, how)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("app host %s %s with the IDE token (%v): %d %s", r.method, r.path, how, resp.StatusCode, body)
			}
			if s.frontend.Hits.Load() != hits {
				t.Errorf("app host %s %s with the IDE token reached an upstream", r.method, r.path)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, wsResp, err := websocket.Dial(ctx, "wss://localhost:"+fmt.Sprint(s.gw.HTTPSPort)+"/ws/agent", &websocket.DialOptions{
		HTTPClient: s.gw.Client(),
		HTTPHeader: http.Header{"Origin": {s.app()}, "Cookie": {claudeauth.AccessCookie + "=" + ideToken}},
	})
	if err == nil {
		ws.CloseNow()
		t.Fatal("app host WebSocket opened with the IDE token")
	}
	if wsResp == nil || wsResp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("app host WebSocket with the IDE token: %v", err)
	}

	// The app's token does not open the IDE host, neither as its cookie nor
	// as a Bearer token.
	for _, how := range []map[string]string{
		{"Cookie": claudeauth.AccessCookie + "=" + appToken},
		{"Authorization": "Bearer " + appToken},
	} {
		resp, body := s.do(t, http.MethodGet, s.ideOrigin()+"/", how)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("IDE host with the app token (%v): %d %s", how, resp.StatusCode, body)
		}
	}
	// The same app token is good on the app host: the refusals above are
	// about the host, not a broken token.
	if resp, body := s.do(t, http.MethodGet, s.app()+"/api/auth/me", map[string]string{"Authorization": "Bearer " + appToken}); resp.StatusCode != http.StatusOK {
		t.Fatalf("app token on the app host: %d %s", resp.StatusCode, body)
	}
}

// payload decodes a JWT's claims without verifying them.
func payload(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestIDECallbackFloodLimited: the callback needs no token and each
// redemption is a database write; one client sending forged tickets as fast
// as it can is stopped per client IP (RATE_LIMIT_IDE_SIGNON, 30/min).
func TestIDECallbackFloodLimited(t *testing.T) {
	s := startStack(t)
	refused, limited := 0, 0
	var last *http.Response
	for i := 0; i < 45; i++ {
		resp, _ := s.do(t, http.MethodGet, s.ideOrigin()+"/auth/ide/callback?ticket="+strings.Repeat("A", 42)+string(rune('A'+i%26)), nil)
		switch resp.StatusCode {
		case http.StatusForbidden:
			refused++
		case http.StatusTooManyRequests:
			limited++
			last = resp
		default:
			t.Fatalf("callback %d: %d", i, resp.StatusCode)
		}
	}
	if limited == 0 || refused > 30 {
		t.Fatalf("45 forged callbacks from one address: %d read (403), %d limited (429)", refused, limited)
	}
	if last.Header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After: %v", last.Header)
	}
}
