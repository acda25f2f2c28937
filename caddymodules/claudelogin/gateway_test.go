package claudelogin_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/claude-gateway/claude-gateway/caddymodules/claudeauth"
	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

const password = "correct horse battery staple"

func start(t *testing.T) *gatewaytest.Gateway {
	t.Helper()
	up := gatewaytest.NewUpstream(t, "frontend")
	return gatewaytest.Start(t, gatewaytest.Options{Env: map[string]string{
		"FRONTEND_UPSTREAM":     up.Addr(),
		"BACKEND_UPSTREAM":      up.Addr(),
		"CODE_SERVER_UPSTREAM":  up.Addr(),
		"SECRET_KEY":            gatewaytest.TestSecret,
		"CLAUDE_ADMIN_PASSWORD": password,
		"CLAUDE_DATABASE":       testenv.SQLiteDatabase(t),
		// These tests sign in many times from one address: lift the per-IP
		// sign-in rate limit so that only the gateway's login regulation acts.
		"RATE_LIMIT_LOGIN": "1000/min",
	}})
}

// post submits the sign-in form with a raw, already-encoded body.
func post(t *testing.T, g *gatewaytest.Gateway, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.URL("localhost", "/auth/login"), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", fmt.Sprintf("https://localhost:%d", g.HTTPSPort))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := g.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func get(t *testing.T, g *gatewaytest.Gateway, rawPath string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.URL("localhost", rawPath), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := g.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func cookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// sameOrigin checks that a Location resolves to the gateway's own origin,
// the way a browser resolves it (which also reads "\" as "/").
func sameOrigin(t *testing.T, g *gatewaytest.Gateway, loc string) {
	t.Helper()
	if strings.ContainsAny(loc, "\\\t\r\n") {
		t.Fatalf("Location %q carries characters browsers rewrite", loc)
	}
	base, _ := url.Parse(g.URL("localhost", "/auth/login"))
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("Location %q: %v", loc, err)
	}
	if r := base.ResolveReference(u); r.Host != base.Host || r.Scheme != "https" {
		t.Fatalf("Location %q leads to %s://%s", loc, r.Scheme, r.Host)
	}
}

func TestLoginPage(t *testing.T) {
	g := start(t)
	resp, body := get(t, g, "/auth/login?next=%2Fsessions%3Ftab%3D2", nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /auth/login: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{`<form method="post" action="/auth/login">`, `name="next" value="/sessions?tab=2"`, `name="password" type="password"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(body, "<script") {
		t.Error("the page carries a script")
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	// The stylesheet is public.
	resp, css := get(t, g, "/auth/static/login.css", nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || !strings.Contains(css, "button") {
		t.Errorf("stylesheet: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	t.Run("sign in", func(t *testing.T) {
		resp, _ := post(t, g, "username=admin&password="+url.QueryEscape(password)+"&next=%2Fsessions%3Ftab%3D2", nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/sessions?tab=2" {
			t.Fatalf("%d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		access, refresh := cookie(resp, claudeauth.AccessCookie), cookie(resp, claudeauth.RefreshCookie)
		if access == nil || refresh == nil || !access.HttpOnly || !access.Secure || access.SameSite != http.SameSiteLaxMode {
			t.Fatalf("cookies: %v", resp.Header.Values("Set-Cookie"))
		}
		// The cookie works for the API.
		resp, body := get(t, g, "/api/auth/me", map[string]string{"Cookie": access.Name + "=" + access.Value})
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"admin"`) {
			t.Errorf("/api/auth/me with the form's cookie: %d %s", resp.StatusCode, body)
		}
		// Signed in already: the page sends the browser on.
		resp, _ = get(t, g, "/auth/login?next=%2Fhome", map[string]string{"Cookie": access.Name + "=" + access.Value})
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/home" {
			t.Errorf("signed-in visit: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		resp, body := post(t, g, "username=admin&password=nope&next=%2F", nil)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong username or password") || len(resp.Cookies()) != 0 {
			t.Fatalf("%d cookies=%v", resp.StatusCode, resp.Cookies())
		}
		if !strings.Contains(body, `value="admin"`) || strings.Contains(body, "nope") {
			t.Error("the form should keep the username and never echo the password")
		}
	})

	t.Run("cross-site form post", func(t *testing.T) {
		resp, _ := post(t, g, "username=admin&password="+url.QueryEscape(password), map[string]string{"Origin": "https://evil.example"})
		if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
			t.Fatalf("login CSRF: %d cookies=%v", resp.StatusCode, resp.Cookies())
		}
	})
}

// TestNextOpenRedirect: whatever `next` says, the browser stays on the gateway.
func TestNextOpenRedirect(t *testing.T) {
	g := start(t)
	resp, _ := post(t, g, "username=admin&password="+url.QueryEscape(password), nil)
	access := cookie(resp, claudeauth.AccessCookie)
	if access == nil {
		t.Fatalf("no access cookie: %d", resp.StatusCode)
	}
	signedIn := map[string]string{"Cookie": access.Name + "=" + access.Value}
	for _, next := range []string{ // as they appear, URL-encoded, in a query or form body
		"%2F%2Fevil.example",
		"//evil.example",
		"https://evil.example",
		"https%3A%2F%2Fevil.example%2F",
		"%2F%5Cevil.example",
		"/\\evil.example",
		"%5C%2Fevil.example",
		"%5C%5Cevil.example",
		"%2F%09%2Fevil.example",
		"%2F%0A%2Fevil.example",
		"%252F%252Fevil.example",
		"%2F%2F%2Fevil.example",
		"http:evil.example",
		"javascript%3Aalert(1)",
		"evil.example",
		"%20%2F%2Fevil.example",
		"%2F%2Fevil.example%40localhost",
		"%2Fauth%2Flogin%3Fnext%3D%252Fauth%252Flogin", // back to the page itself: a loop
	} {
		t.Run(next, func(t *testing.T) {
			resp, _ := post(t, g, "username=admin&password="+url.QueryEscape(password)+"&next="+next, nil)
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("form: status %d", resp.StatusCode)
			}
			sameOrigin(t, g, resp.Header.Get("Location"))
			resp, _ = get(t, g, "/auth/login?next="+next, signedIn)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("page: status %d", resp.StatusCode)
			}
			sameOrigin(t, g, resp.Header.Get("Location"))
			if strings.HasPrefix(resp.Header.Get("Location"), "/auth/login") {
				t.Fatalf("a signed-in browser is sent back to the sign-in page: %q", resp.Header.Get("Location"))
			}
		})
	}
}

func TestLoginFormBruteForce(t *testing.T) {
	g := start(t)
	var resp *http.Response
	for i := 0; i < 12; i++ {
		resp, _ = post(t, g, "username=admin&password=wrong", nil)
		if resp.StatusCode == http.StatusTooManyRequests {
			break
		}
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, resp.StatusCode)
		}
	}
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("no ban after repeated failures: %d", resp.StatusCode)
	}
	// Banned: even the right password is refused for now.
	resp, _ = post(t, g, "username=admin&password="+url.QueryEscape(password), nil)
	if resp.StatusCode != http.StatusTooManyRequests || len(resp.Cookies()) != 0 {
		t.Fatalf("banned user signed in: %d", resp.StatusCode)
	}
}

// TestLoginFormRefusesCrossSite: login CSRF without an Origin header. A
// browser that sends no Origin still says where the form came from in
// Sec-Fetch-Site; "cross-site" is refused before the credentials are looked
// at, even when they are right, and no cookie is set. Same-origin,
// same-site and user-initiated ("none") sign-ins go on.
func TestLoginFormRefusesCrossSite(t *testing.T) {
	g := start(t)
	form := "username=admin&password=" + url.QueryEscape(password) + "&next=%2Fhome"
	send := func(site string) *http.Response {
		req, err := http.NewRequest(http.MethodPost, g.URL("localhost", "/auth/login"), strings.NewReader(form))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", site) // and no Origin
		resp, err := g.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, site := range []string{"cross-site", "Cross-Site", "something-else"} {
		if resp := send(site); resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
			t.Errorf("Sec-Fetch-Site %q without Origin: %d, cookies %v", site, resp.StatusCode, resp.Header.Values("Set-Cookie"))
		}
	}
	for _, site := range []string{"same-origin", "same-site", "none"} {
		if resp := send(site); resp.StatusCode != http.StatusSeeOther || cookie(resp, claudeauth.AccessCookie) == nil {
			t.Errorf("Sec-Fetch-Site %q: %d, cookies %v", site, resp.StatusCode, resp.Header.Values("Set-Cookie"))
		}
	}
}
