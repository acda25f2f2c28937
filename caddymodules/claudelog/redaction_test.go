package claudelog_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/claude-gateway/claude-gateway/caddymodules/claudeauth"
	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

const password = "correct horse battery staple"

// TestAccessLogKeepsSecretsOut runs Caddyfile.dev through the real binary and
// sends every request that carries a credential: a sign-in (password in the
// body, cookies set), a refresh (refresh cookie sent, new cookies set), the
// IDE sign-on (a one-time ticket in Location, then in the callback's URI),
// and API requests with tokens in the query (names percent-encoded and in
// other cases too), in Authorization and in Referer. No secret may appear
// anywhere in the process's output, and the access log entries must be
// there, with the secrets' places marked REDACTED.
func TestAccessLogKeepsSecretsOut(t *testing.T) {
	frontend := gatewaytest.NewUpstream(t, "frontend")
	// The IDE sockets beneath the workspace need a short path.
	workspace, err := os.MkdirTemp("", "cw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(workspace) })
	g := gatewaytest.Start(t, gatewaytest.Options{Env: map[string]string{
		"CLAUDE_WORKSPACE":      workspace,
		"FRONTEND_UPSTREAM":     frontend.Addr(),
		"BACKEND_UPSTREAM":      frontend.Addr(),
		"CODE_SERVER_UPSTREAM":  gatewaytest.NewUpstream(t, "code-server").Addr(),
		"CLAUDE_DATABASE":       testenv.SQLiteDatabase(t),
		"SECRET_KEY":            gatewaytest.TestSecret,
		"CLAUDE_ADMIN_PASSWORD": password,
	}})
	app := fmt.Sprintf("https://localhost:%d", g.HTTPSPort)
	ide := fmt.Sprintf("https://ide.localhost:%d", g.HTTPSPort)
	c := g.Client()
	do := func(method, u, body string, hdr map[string]string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, u, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	cookieOf := func(resp *http.Response, name string) string {
		for _, ck := range resp.Cookies() {
			if ck.Name == name {
				return ck.Value
			}
		}
		t.Fatalf("%s: no %s cookie in %q", resp.Request.URL, name, resp.Header.Values("Set-Cookie"))
		return ""
	}
	var secrets []string

	// Sign-in: the password in the body, both cookies set.
	login := do(http.MethodPost, app+"/api/auth/login", `{"username":"admin","password":"`+password+`"}`,
		map[string]string{"Content-Type": "application/json", "Origin": app})
	if login.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", login.StatusCode)
	}
	access, refresh := cookieOf(login, claudeauth.AccessCookie), cookieOf(login, claudeauth.RefreshCookie)
	secrets = append(secrets, password, access, refresh)

	// Refresh: the refresh cookie sent, new cookies set.
	ref := do(http.MethodPost, app+"/api/auth/refresh", "", map[string]string{
		"Cookie": claudeauth.RefreshCookie + "=" + refresh, "Origin": app, "Sec-Fetch-Site": "same-origin"})
	if ref.StatusCode != http.StatusOK {
		t.Fatalf("refresh: %d", ref.StatusCode)
	}
	access = cookieOf(ref, claudeauth.AccessCookie)
	secrets = append(secrets, access, cookieOf(ref, claudeauth.RefreshCookie))

	// IDE sign-on: the app host hands a one-time ticket to the IDE host in Location.
	start := do(http.MethodGet, ide+"/auth/ide/start?next=%2F", "", map[string]string{"Accept": "text/html"})
	handoffURL := start.Header.Get("Location")
	var state string
	for _, ck := range start.Cookies() {
		state = ck.Name + "=" + ck.Value
	}
	if start.StatusCode != http.StatusFound || handoffURL == "" {
		t.Fatalf("IDE sign-on start: %d", start.StatusCode)
	}
	handoff := do(http.MethodGet, handoffURL, "", map[string]string{
		"Cookie": claudeauth.AccessCookie + "=" + access, "Accept": "text/html"})
	callback, err := url.Parse(handoff.Header.Get("Location"))
	if err != nil || handoff.StatusCode != http.StatusFound || callback.Query().Get("ticket") == "" {
		t.Fatalf("IDE hand-off: %d Location %q", handoff.StatusCode, handoff.Header.Get("Location"))
	}
	ticket := callback.Query().Get("ticket")
	secrets = append(secrets, ticket)
	if cb := do(http.MethodGet, callback.String(), "", map[string]string{"Cookie": state, "Accept": "text/html"}); cb.StatusCode >= 500 {
		t.Fatalf("IDE callback: %d", cb.StatusCode)
	}

	// Tokens in the query, in Authorization and in Referer.
	bearer := gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-1", "admin", "admin", 3600e9)
	q := []string{"q-access-" + testenv.RandomHex(8), "q-token-" + testenv.RandomHex(8), "q-ticket-" + testenv.RandomHex(8),
		"q-password-" + testenv.RandomHex(8), "q-refresh-" + testenv.RandomHex(8), "q-encoded-" + testenv.RandomHex(8),
		"q-upper-" + testenv.RandomHex(8), "q-referer-" + testenv.RandomHex(8)}
	secrets = append(secrets, bearer)
	secrets = append(secrets, q...)
	uri := "/api/things?a=1&access_token=" + q[0] + "&token=" + q[1] + "&ticket=" + q[2] + "&password=" + q[3] +
		"&refresh_token=" + q[4] + "&%74oken=" + q[5] + "&TOKEN=" + q[6] + "&z=2"
	if r := do(http.MethodGet, app+uri, "", map[string]string{
		"Authorization": "Bearer " + bearer, "Referer": app + "/page?token=" + q[7]}); r.StatusCode != http.StatusOK {
		t.Fatalf("API request: %d", r.StatusCode)
	}
	// The WebSocket-style case: the token only in the query, on the IDE host.
	if r := do(http.MethodGet, ide+"/?access_token="+q[0], "", nil); r.StatusCode >= 500 {
		t.Fatalf("IDE request: %d", r.StatusCode)
	}

	g.Stop()
	out := g.Log()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			i := strings.Index(out, s)
			t.Errorf("a secret reached the log: %q in …%s…", s, out[max(0, i-200):min(len(out), i+len(s)+50)])
		}
	}

	// The entries are there, with the secrets' places marked.
	entries := accessEntries(t, out)
	want := map[string]bool{
		"/api/things?a=1&access_token=REDACTED&token=REDACTED&ticket=REDACTED&password=REDACTED&refresh_token=REDACTED&%74oken=REDACTED&TOKEN=REDACTED&z=2": false,
		"/auth/ide/callback?ticket=REDACTED": false,
	}
	var sawLogin, sawAuthorization, sawLocation, sawReferer bool
	for _, e := range entries {
		u := e.Request.URI
		if i := strings.Index(u, "&state="); i > 0 && strings.HasPrefix(u, "/auth/ide/callback") {
			u = u[:i] // the state nonce is not a credential
		}
		if _, ok := want[u]; ok {
			want[u] = true
		}
		if e.Request.URI == "/api/auth/login" {
			sawLogin = strings.Join(e.RespHeaders["Set-Cookie"], ",") == "REDACTED"
		}
		if v, ok := e.Request.Headers["Authorization"]; ok {
			sawAuthorization = len(v) == 1 && v[0] == "REDACTED"
		}
		if _, ok := e.Request.Headers["Referer"]; ok {
			sawReferer = true
		}
		for _, l := range e.RespHeaders["Location"] {
			if strings.Contains(l, "/auth/ide/callback?ticket=REDACTED") {
				sawLocation = true
			}
		}
	}
	for u, seen := range want {
		if !seen {
			t.Errorf("no access log entry with uri %q", u)
		}
	}
	if !sawLogin || !sawAuthorization || !sawLocation || sawReferer {
		t.Errorf("login Set-Cookie redacted: %v, Authorization redacted: %v, sign-on Location redacted: %v, Referer logged: %v",
			sawLogin, sawAuthorization, sawLocation, sawReferer)
	}
}

// entry is the part of an access log entry the test reads.
type entry struct {
	Logger  string `json:"logger"`
	Request struct {
		URI     string              `json:"uri"`
		Headers map[string][]string `json:"headers"`
	} `json:"request"`
	RespHeaders map[string][]string `json:"resp_headers"`
}

// accessEntries returns the access log entries among the process's output.
func accessEntries(t *testing.T, out string) []entry {
	t.Helper()
	var es []entry
	for _, line := range strings.Split(out, "\n") {
		var e entry
		if json.Unmarshal([]byte(line), &e) == nil && strings.HasPrefix(e.Logger, "http.log.access") {
			es = append(es, e)
		}
	}
	if len(es) == 0 {
		t.Fatal("no access log entry in the gateway's output")
	}
	return es
}
