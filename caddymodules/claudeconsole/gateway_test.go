package claudeconsole_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/audit"
	"github.com/claude-gateway/claude-gateway/database"
	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

const adminPassword = "console admin password"

// stack is a gateway (Caddyfile.dev) with its database open beside it.
type stack struct {
	g  *gatewaytest.Gateway
	db *database.DB
}

func start(t *testing.T) *stack { return startWith(t, nil) }

// startWith starts the stack with env added to (or replacing) the defaults,
// e.g. gatewaytest.WorkspaceEnv for session workspaces on the engine.
func startWith(t *testing.T, extra map[string]string) *stack {
	t.Helper()
	up := gatewaytest.NewUpstream(t, "upstream")
	// The IDE sockets beneath the workspace need a short path.
	ws, err := os.MkdirTemp("", "cc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(ws) })
	setting := testenv.SQLiteDatabase(t)
	env := map[string]string{
		"FRONTEND_UPSTREAM":     up.Addr(),
		"BACKEND_UPSTREAM":      up.Addr(),
		"CODE_SERVER_UPSTREAM":  up.Addr(),
		"SECRET_KEY":            gatewaytest.TestSecret,
		"CLAUDE_ADMIN_PASSWORD": adminPassword,
		"CLAUDE_DATABASE":       setting,
		"CLAUDE_WORKSPACE":      ws,
		"RATE_LIMIT_LOGIN":      "1000/min",
		"RATE_LIMIT_PER_MINUTE": "100000",
	}
	for k, v := range extra {
		env[k] = v
	}
	g := gatewaytest.Start(t, gatewaytest.Options{Env: env})
	return &stack{g: g, db: testenv.OpenDB(t, setting)}
}

// browser is a client with a cookie jar, as a browser holds the gateway's cookies.
type browser struct {
	t *testing.T
	s *stack
	c *http.Client
}

func (s *stack) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	c := s.g.Client()
	c.Jar = jar
	return &browser{t: t, s: s, c: c}
}

func (s *stack) origin() string { return fmt.Sprintf("https://localhost:%d", s.g.HTTPSPort) }

// signIn logs the browser in through the API (the cookies land in its jar).
func (b *browser) signIn(user, password string) int {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.s.g.URL("localhost", "/api/auth/login"),
		strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, user, password)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", b.s.origin())
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.s.g.URL("localhost", path), nil)
	req.Header.Set("Accept", "text/html")
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// newSession creates a session through the API as the signed-in browser
// and returns its id.
func (b *browser) newSession() string {
	b.t.Helper()
	resp, body := b.send(http.MethodPost, "/api/sessions", "")
	var sess struct{ ID string }
	if json.Unmarshal([]byte(body), &sess); resp.StatusCode != http.StatusCreated || sess.ID == "" {
		b.t.Fatalf("creating a session: %d %s", resp.StatusCode, body)
	}
	return sess.ID
}

// send makes an API request from the app's origin with a JSON body (none
// when empty).
func (b *browser) send(method, path, body string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.s.g.URL("localhost", path), strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Origin", b.s.origin())
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the form token from a console page.
func (b *browser) csrf() string {
	b.t.Helper()
	resp, body := b.get("/admin/users")
	m := csrfField.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		b.t.Fatalf("no form token on the users page: %d\n%s", resp.StatusCode, body)
	}
	return m[1]
}

// post submits a console form from this origin unless headers say otherwise.
func (b *browser) post(path string, form url.Values, headers map[string]string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.s.g.URL("localhost", path), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.s.origin())
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// events returns the audit events of kind (newest first), waiting up to a
// few seconds for at least want of them (the trail is written in the background).
func (s *stack) events(t *testing.T, kind audit.Kind, want int) []audit.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := audit.Query(context.Background(), s.db, audit.Filter{Kind: kind, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) >= want || time.Now().After(deadline) {
			return p.Events
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// expectEvent checks that the newest event of kind names actor and subject.
func (s *stack) expectEvent(t *testing.T, kind audit.Kind, actor, subject string) audit.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, e := range s.events(t, kind, 1) {
			if e.Actor == actor && e.Subject == subject {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event by %q about %q in the audit table: %+v", kind, actor, subject, s.events(t, kind, 0))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *stack) userExists(t *testing.T, name string) bool {
	t.Helper()
	var n int
	if err := s.db.QueryRow("SELECT COUNT(*) FROM users WHERE username = ?", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// TestConsoleHiddenFromOthers: an anonymous browser and a signed-in
// non-admin get 404 for every console page and action, and nothing is done;
// the IDE host never serves the console.
func TestConsoleHiddenFromOthers(t *testing.T) {
	s := start(t)
	admin := s.browser(t)
	if st := admin.signIn("admin", adminPassword); st != http.StatusOK {
		t.Fatalf("admin sign-in: %d", st)
	}
	tok := admin.csrf()
	if r, _ := admin.post("/admin/users/add", url.Values{"csrf": {tok}, "username": {"bob"}, "password": {"bob password 1"}, "role": {"user"}}, nil); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin adds bob: %d", r.StatusCode)
	}

	anonymous := s.browser(t)
	bob := s.browser(t)
	if st := bob.signIn("bob", "bob password 1"); st != http.StatusOK {
		t.Fatalf("bob sign-in: %d", st)
	}
	for name, b := range map[string]*browser{"anonymous": anonymous, "non-admin": bob} {
		for _, p := range []string{"/admin", "/admin/", "/admin/users", "/admin/sessions", "/admin/executor", "/admin/health",
			"/admin/limits", "/admin/audit", "/admin/static/console.css", "/admin/nope"} {
			resp, body := b.get(p)
			if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "Gateway console") || strings.Contains(body, "csrf") {
				t.Errorf("%s GET %s: %d", name, p, resp.StatusCode)
			}
		}
		// A forged token pair (cookie and field alike) does not help.
		u, _ := url.Parse(s.origin())
		b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-claude_console_csrf", Value: tok, Path: "/", Secure: true}})
		for _, a := range []struct {
			path string
			form url.Values
		}{
			{"/admin/users/add", url.Values{"username": {"eve-" + strings.ReplaceAll(name, "-", "")}, "password": {"eve password 1"}, "role": {"admin"}}},
			{"/admin/users/delete", url.Values{"username": {"admin"}}},
			{"/admin/users/disable", url.Values{"username": {"admin"}}},
			{"/admin/users/password", url.Values{"username": {"admin"}, "password": {"taken over!!"}}},
			{"/admin/sessions/stop", url.Values{"id": {"session-" + strings.Repeat("0", 32)}}},
		} {
			a.form.Set("csrf", tok)
			if resp, _ := b.post(a.path, a.form, nil); resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s POST %s: %d, want 404", name, a.path, resp.StatusCode)
			}
		}
		if s.userExists(t, "eve-"+strings.ReplaceAll(name, "-", "")) {
			t.Errorf("%s created an account", name)
		}
	}
	if st := s.browser(t).signIn("admin", adminPassword); st != http.StatusOK {
		t.Fatalf("the admin account was touched: sign-in %d", st)
	}
	// The IDE host has no console, even for the admin's token.
	req, _ := http.NewRequest(http.MethodGet, s.g.URL("ide.localhost", "/admin/users"), nil)
	for _, c := range admin.c.Jar.Cookies(&url.URL{Scheme: "https", Host: fmt.Sprintf("localhost:%d", s.g.HTTPSPort)}) {
		req.AddCookie(c)
	}
	resp, err := s.g.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), "Gateway console") {
		t.Fatalf("the IDE host served the console: %d", resp.StatusCode)
	}
	// Nothing of the above is in the trail but the admin's own creation of bob.
	if ev := s.events(t, audit.UserCreated, 1); len(ev) != 1 || ev[0].Subject != "bob" {
		t.Fatalf("user_created events: %+v", ev)
	}
}

// TestConsoleRefusesCrossSitePosts: a form post from another origin, or
// without the form token, is refused and changes nothing.
func TestConsoleRefusesCrossSitePosts(t *testing.T) {
	s := start(t)
	admin := s.browser(t)
	if st := admin.signIn("admin", adminPassword); st != http.StatusOK {
		t.Fatalf("admin sign-in: %d", st)
	}
	tok := admin.csrf()
	for i, tc := range []struct {
		name    string
		headers map[string]string
		csrf    string
	}{
		{"other origin", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, tok},
		{"sibling host", map[string]string{"Origin": fmt.Sprintf("https://ide.localhost:%d", s.g.HTTPSPort), "Sec-Fetch-Site": "same-site"}, tok},
		{"no origin, cross-site", map[string]string{"Origin": "", "Sec-Fetch-Site": "cross-site"}, tok},
		{"no origin at all", map[string]string{"Origin": "", "Sec-Fetch-Site": ""}, tok},
		{"no token", nil, ""},
		{"wrong token", nil, strings.Repeat("A", 43)},
	} {
		name := fmt.Sprintf("mallory%d", i)
		resp, _ := admin.post("/admin/users/add", url.Values{"csrf": {tc.csrf}, "username": {name}, "password": {"mallory password"}, "role": {"admin"}}, tc.headers)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", tc.name, resp.StatusCode)
		}
		if s.userExists(t, name) {
			t.Errorf("%s: the account was created", tc.name)
		}
	}
	if resp, _ := admin.post("/admin/users/add", url.Values{"csrf": {tok}, "username": {"carol"}, "password": {"carol password"}, "role": {"user"}}, nil); resp.StatusCode != http.StatusSeeOther || !s.userExists(t, "carol") {
		t.Fatalf("the same post from the console: %d", resp.StatusCode)
	}
}
