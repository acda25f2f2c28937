package claudeauth_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/claude-gateway/claude-gateway/caddymodules/claudeauth"
	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

const adminPassword = "admin-password-for-tests"

// stack is the real gateway on Caddyfile.dev with real upstreams.
type stack struct {
	gw                     *gatewaytest.Gateway
	backend, frontend, ide *gatewaytest.Upstream
}

func startStack(t *testing.T, database string, env map[string]string) *stack {
	t.Helper()
	s := &stack{
		backend:  gatewaytest.NewUpstream(t, "backend"),
		frontend: gatewaytest.NewUpstream(t, "frontend"),
		ide:      gatewaytest.NewUpstream(t, "code-server"),
	}
	e := map[string]string{
		"BACKEND_UPSTREAM":      s.backend.Addr(),
		"FRONTEND_UPSTREAM":     s.frontend.Addr(),
		"CODE_SERVER_UPSTREAM":  s.ide.Addr(),
		"SECRET_KEY":            gatewaytest.TestSecret,
		"CLAUDE_DATABASE":       database,
		"CLAUDE_ADMIN_PASSWORD": adminPassword,
		// The per-IP rate limits of Caddyfile.dev would answer these tests'
		// many logins from one address before the auth handlers do.
		"RATE_LIMIT_LOGIN":      "10000/min",
		"RATE_LIMIT_PER_MINUTE": "100000",
	}
	for k, v := range env {
		e[k] = v
	}
	s.gw = gatewaytest.Start(t, gatewaytest.Options{Env: e}) // waits for the IDE host's certificate too
	return s
}

func (s *stack) hits() int64 {
	return s.backend.Hits.Load() + s.frontend.Hits.Load() + s.ide.Hits.Load()
}

type answer struct {
	*http.Response
	body []byte
}

func (a answer) code(t *testing.T) string {
	t.Helper()
	var env struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal(a.body, &env); err != nil {
		t.Fatalf("not the JSON envelope (%d): %q", a.StatusCode, a.body)
	}
	return env.Error.Code
}

func (s *stack) do(t *testing.T, method, host, path string, header http.Header, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, s.gw.URL(host, path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp, b}
}

// postLogin sends a login request with body as JSON.
func (s *stack) postLogin(t *testing.T, body string) answer {
	t.Helper()
	return s.do(t, http.MethodPost, "localhost", "/api/auth/login", http.Header{"Content-Type": {"application/json"}}, body)
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// cookies is what a browser on the app origin sends: the cookies and its Origin
// (cookie-authenticated POSTs need a same-origin Origin, see claude_origin).
func (s *stack) cookies(cs ...*http.Cookie) http.Header {
	var parts []string
	for _, c := range cs {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return http.Header{"Cookie": {strings.Join(parts, "; ")}, "Origin": {fmt.Sprintf("https://localhost:%d", s.gw.HTTPSPort)}}
}

func cookie(t *testing.T, resp *http.Response, name string) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", name, resp.Header.Values("Set-Cookie"))
	return nil
}

type login struct {
	token           string
	access, refresh *http.Cookie
}

func (s *stack) login(t *testing.T, user, password string) login {
	t.Helper()
	a := s.do(t, http.MethodPost, "localhost", "/api/auth/login", http.Header{"Content-Type": {"application/json"}},
		fmt.Sprintf(`{"username":%q,"password":%q}`, user, password))
	if a.StatusCode != http.StatusOK {
		t.Fatalf("login %s: %d %s", user, a.StatusCode, a.body)
	}
	var tr claudeauth.TokenResponse
	if err := json.Unmarshal(a.body, &tr); err != nil {
		t.Fatal(err)
	}
	return login{token: tr.AccessToken, access: cookie(t, a.Response, claudeauth.AccessCookie), refresh: cookie(t, a.Response, claudeauth.RefreshCookie)}
}

// mint signs claims with key the way any HS256 library would.
func mint(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(change func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"iss": "claude-gateway", "aud": "claude-gateway", "sub": "u-42", "username": "eve", "role": "admin",
		"typ": "access", "jti": "jti-" + testenv.RandomHex(6), "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	if change != nil {
		change(c)
	}
	return c
}

func b64json(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestAttackTable: every forged, stale, revoked or misplaced token gets 401
// with the Bearer challenge, and nothing reaches an upstream.
func TestAttackTable(t *testing.T) {
	s := startStack(t, testenv.SQLiteDatabase(t), nil)
	key := []byte(gatewaytest.TestSecret)
	valid := mint(t, jwt.SigningMethodHS256, key, claims(nil))
	parts := strings.Split(valid, ".")
	rsaPub := []byte("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA0\n-----END PUBLIC KEY-----\n")
	revoked := s.login(t, "admin", adminPassword)
	if a := s.do(t, http.MethodPost, "localhost", "/api/auth/logout", bearer(revoked.token), ""); a.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d %s", a.StatusCode, a.body)
	}

	cases := []struct {
		name   string
		path   string
		header http.Header
	}{
		{"alg none", "/api/things", bearer(b64json(map[string]string{"alg": "none", "typ": "JWT"}) + "." + b64json(claims(nil)) + ".")},
		{"alg none via library", "/api/things", bearer(mint(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)))},
		{"HS256 with the wrong key", "/api/things", bearer(mint(t, jwt.SigningMethodHS256, []byte("wrong-key-0123456789abcdef-0123456789abcdef"), claims(nil)))},
		{"RS256/HS256 confusion: HS256 keyed with an RSA public key", "/api/things", bearer(mint(t, jwt.SigningMethodHS256, rsaPub, claims(nil)))},
		{"RS256 header with an HMAC signature", "/api/things", bearer(func() string {
			h := b64json(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + parts[1]
			m := hmac.New(sha256.New, key)
			m.Write([]byte(h))
			return h + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
		}())},
		{"expired", "/api/things", bearer(mint(t, jwt.SigningMethodHS256, key, claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-5 * time.Minute).Unix() })))},
		{"nbf in the future", "/api/things", bearer(mint(t, jwt.SigningMethodHS256, key, claims(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(10 * time.Minute).Unix() })))},
		{"no exp", "/api/things", bearer(mint(t, jwt.SigningMethodHS256, key, claims(func(c jwt.MapClaims) { delete(c, "exp") })))},
		{"wrong iss", "/api/things", bearer(mint(t, jwt.SigningMethodHS256, key, claims(func(c jwt.MapClaims) { c["iss"] = "evil" })))},
		{"wrong aud", "/api/things", bearer(mint(t, jwt.SigningMethodHS256, key, claims(func(c jwt.MapClaims) { c["aud"] = "other-service" })))},
		{"revoked jti (logged out)", "/api/things", bearer(revoked.token)},
		{"revoked jti in the cookie", "/", s.cookies(&http.Cookie{Name: claudeauth.AccessCookie, Value: revoked.token})},
		{"tampered payload, old signature", "/api/things", bearer(parts[0] + "." + b64json(claims(func(c jwt.MapClaims) { c["sub"] = "u-1" })) + "." + parts[2])},
		{"oversized", "/api/things", bearer(mint(t, jwt.SigningMethodHS256, key, claims(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("A", 5000) })))},
		{"token only in the query string", "/api/things?access_token=" + valid, nil},
		{"token only in the query string as token=", "/?token=" + valid, nil},
		{"Basic instead of Bearer", "/api/things", http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+adminPassword))}}},
		{"no token", "/api/things", nil},
		{"IDE host, forged token", "/", bearer(mint(t, jwt.SigningMethodHS256, []byte("wrong-key-0123456789abcdef-0123456789abcdef"), claims(nil)))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			host := "localhost"
			if strings.HasPrefix(tc.name, "IDE host") {
				host = "ide.localhost"
			}
			before := s.hits()
			a := s.do(t, http.MethodGet, host, tc.path, tc.header, "")
			if a.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", a.StatusCode, a.body)
			}
			if got := a.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
				t.Errorf("WWW-Authenticate = %q", got)
			}
			// The envelope under /api; claude_error's page elsewhere.
			if !strings.HasPrefix(tc.path, "/api/") {
				if ct := a.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(string(a.body), "access token") {
					t.Errorf("not the error page: %s %q", ct, a.body)
				}
			} else if code := a.code(t); code != "invalid_token" {
				t.Errorf("code = %q", code)
			}
			if after := s.hits(); after != before {
				t.Errorf("%d request(s) reached an upstream", after-before)
			}
		})
	}

	// The same requests with the genuine token pass: the table tests the attacks, not a closed door.
	before := s.backend.Hits.Load()
	if a := s.do(t, http.MethodGet, "localhost", "/api/things", bearer(valid), ""); a.StatusCode != http.StatusOK || s.backend.Hits.Load() != before+1 {
		t.Fatalf("valid token: %d %s", a.StatusCode, a.body)
	}
}

// TestHandMadeTokenAccepted: a token built from the JWT spec alone (base64url
// and HMAC-SHA256, no JWT library) is accepted, so any backend library interoperates.
func TestHandMadeTokenAccepted(t *testing.T) {
	s := startStack(t, testenv.SQLiteDatabase(t), nil)
	now := time.Now().Unix()
	signing := b64json(map[string]string{"alg": "HS256", "typ": "JWT"}) + "." + b64json(map[string]any{
		"iss": "claude-gateway", "aud": "claude-gateway", "sub": "hand-7", "username": "handmade", "role": "user",
		"typ": "access", "jti": "hand-" + testenv.RandomHex(4), "iat": now, "nbf": now, "exp": now + 300,
	})
	mac := hmac.New(sha256.New, []byte(gatewaytest.TestSecret))
	mac.Write([]byte(signing))
	tok := signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	a := s.do(t, http.MethodGet, "localhost", "/api/whoami", bearer(tok), "")
	if a.StatusCode != http.StatusOK {
		t.Fatalf("hand-made token: %d %s", a.StatusCode, a.body)
	}
	got := s.backend.Last.Load().Header
	if got.Get("X-Auth-User-Id") != "hand-7" || got.Get("X-Auth-User-Name") != "handmade" || got.Get("X-Auth-User-Role") != "user" {
		t.Fatalf("identity headers upstream: %v", got)
	}
	me := s.do(t, http.MethodGet, "localhost", "/api/auth/me", bearer(tok), "")
	if me.StatusCode != http.StatusOK || !strings.Contains(string(me.body), `"username":"handmade"`) {
		t.Fatalf("/api/auth/me: %d %s", me.StatusCode, me.body)
	}
}

// TestBrowserNavigation: a page load without a token goes to the login page
// with a same-origin next; an API call gets 401 even from a browser.
func TestBrowserNavigation(t *testing.T) {
	s := startStack(t, testenv.SQLiteDatabase(t), nil)
	html := http.Header{"Accept": {"text/html,application/xhtml+xml,*/*;q=0.8"}}
	cases := []struct {
		name, host, path string
		wantStatus       int
		wantLocation     string
	}{
		{"page", "localhost", "/projects/1?tab=files", http.StatusFound, "/auth/login?next=" + url.QueryEscape("/projects/1?tab=files")},
		// Paths with no single meaning are refused before any redirect (claude_path).
		{"protocol-relative path", "localhost", "//evil.example/x", http.StatusBadRequest, ""},
		{"backslash path", "localhost", "/\\evil.example", http.StatusBadRequest, ""},
		{"API from a browser", "localhost", "/api/things", http.StatusUnauthorized, ""},
		{"IDE host goes to the app host", "ide.localhost", "/", http.StatusFound, fmt.Sprintf("https://localhost:%d/auth/", s.gw.HTTPSPort)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.hits()
			a := s.do(t, http.MethodGet, tc.host, tc.path, html, "")
			loc := a.Header.Get("Location")
			if tc.host != "localhost" {
				// The IDE host's sign-in page on the app host is the IDE sign-on's
				// business; here only: it is on the app host, with next.
				if strings.HasPrefix(loc, tc.wantLocation) && strings.Contains(loc, "next=%2F") {
					loc = tc.wantLocation
				}
			}
			if a.StatusCode != tc.wantStatus || loc != tc.wantLocation {
				t.Fatalf("%d Location %q, want %d %q", a.StatusCode, a.Header.Get("Location"), tc.wantStatus, tc.wantLocation)
			}
			if s.hits() != before {
				t.Fatal("the request reached an upstream")
			}
		})
	}
}

// TestPublicPaths: probes and the login API need no token; everything else does.
func TestPublicPaths(t *testing.T) {
	s := startStack(t, testenv.SQLiteDatabase(t), nil)
	for _, p := range []string{"/api/live", "/api/ready", "/api/health"} {
		if a := s.do(t, http.MethodGet, "localhost", p, nil, ""); a.StatusCode != http.StatusOK {
			t.Errorf("%s without a token: %d %s", p, a.StatusCode, a.body)
		}
	}
	if a := s.postLogin(t, `{"username":"admin","password":"wrong-password"}`); a.StatusCode != http.StatusUnauthorized || a.code(t) != "invalid_credentials" {
		t.Errorf("login without a token: %d %s", a.StatusCode, a.body)
	}
	if a := s.do(t, http.MethodPost, "localhost", "/api/auth/refresh", nil, ""); a.StatusCode != http.StatusUnauthorized || a.code(t) != "invalid_refresh_token" {
		t.Errorf("refresh without a cookie: %d %s", a.StatusCode, a.body)
	}
	// Path tricks that clean to a protected path stay protected: refused
	// as ambiguous (400) or as unauthenticated (401).
	for _, p := range []string{"/auth/../api/things", "/api/live/../things", "/api/health/x", "/API/LIVE", "/Auth/x"} {
		before := s.hits()
		a := s.do(t, http.MethodGet, "localhost", p, nil, "")
		if a.StatusCode != http.StatusUnauthorized && a.StatusCode != http.StatusBadRequest || s.hits() != before {
			t.Errorf("%s: %d, %d upstream hits", p, a.StatusCode, s.hits()-before)
		}
	}
}

// TestSessionFlow: login, cookies, /me, refresh rotation, re-use detection
// and logout, on SQLite and MariaDB.
func TestSessionFlow(t *testing.T) {
	for name, db := range testenv.Databases(t) {
		t.Run(name, func(t *testing.T) {
			s := startStack(t, db, nil)
			l := s.login(t, "admin", adminPassword)

			for _, c := range []*http.Cookie{l.access, l.refresh} {
				if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Domain != "" {
					t.Errorf("cookie %s: HttpOnly %v Secure %v SameSite %v Domain %q", c.Name, c.HttpOnly, c.Secure, c.SameSite, c.Domain)
				}
			}
			if l.access.Path != "/" || l.refresh.Path != "/" || l.access.Value != l.token {
				t.Errorf("cookie paths %q %q", l.access.Path, l.refresh.Path)
			}

			// /me with the Bearer token and with the cookie.
			for _, h := range []http.Header{bearer(l.token), s.cookies(l.access)} {
				a := s.do(t, http.MethodGet, "localhost", "/api/auth/me", h, "")
				var me map[string]string
				json.Unmarshal(a.body, &me)
				if a.StatusCode != http.StatusOK || me["username"] != "admin" || me["role"] != "admin" || me["id"] == "" {
					t.Fatalf("/me: %d %s", a.StatusCode, a.body)
				}
			}
			// The cookie carries browsers (and WebSockets) to upstreams, with the identity.
			if a := s.do(t, http.MethodGet, "localhost", "/", s.cookies(l.access), ""); a.StatusCode != http.StatusOK ||
				s.frontend.Last.Load().Header.Get("X-Auth-User-Name") != "admin" {
				t.Fatalf("cookie to the frontend: %d", a.StatusCode)
			}

			// Refresh rotates.
			r1 := s.do(t, http.MethodPost, "localhost", "/api/auth/refresh", s.cookies(l.refresh), "")
			if r1.StatusCode != http.StatusOK {
				t.Fatalf("refresh: %d %s", r1.StatusCode, r1.body)
			}
			rotated := cookie(t, r1.Response, claudeauth.RefreshCookie)
			newAccess := cookie(t, r1.Response, claudeauth.AccessCookie)
			if rotated.Value == l.refresh.Value || newAccess.Value == l.token {
				t.Fatal("refresh did not rotate")
			}
			if a := s.do(t, http.MethodGet, "localhost", "/api/x", bearer(newAccess.Value), ""); a.StatusCode != http.StatusOK {
				t.Fatalf("refreshed token: %d", a.StatusCode)
			}
			// Re-use of the first refresh token: 401, and the whole session dies.
			if a := s.do(t, http.MethodPost, "localhost", "/api/auth/refresh", s.cookies(l.refresh), ""); a.StatusCode != http.StatusUnauthorized {
				t.Fatalf("re-used refresh token: %d %s", a.StatusCode, a.body)
			}
			if a := s.do(t, http.MethodPost, "localhost", "/api/auth/refresh", s.cookies(rotated), ""); a.StatusCode != http.StatusUnauthorized {
				t.Fatalf("rotated token after re-use: %d %s", a.StatusCode, a.body)
			}
			for _, tok := range []string{l.token, newAccess.Value} {
				if a := s.do(t, http.MethodGet, "localhost", "/api/x", bearer(tok), ""); a.StatusCode != http.StatusUnauthorized {
					t.Fatalf("access token of the re-used session: %d", a.StatusCode)
				}
			}

			// Logout revokes at once: access token, session, refresh token.
			l2 := s.login(t, "admin", adminPassword)
			lo := s.do(t, http.MethodPost, "localhost", "/api/auth/logout", s.cookies(l2.access, l2.refresh), "")
			if lo.StatusCode != http.StatusNoContent {
				t.Fatalf("logout: %d %s", lo.StatusCode, lo.body)
			}
			for _, c := range lo.Cookies() {
				if c.MaxAge >= 0 {
					t.Errorf("logout did not clear cookie %s", c.Name)
				}
			}
			if a := s.do(t, http.MethodGet, "localhost", "/api/x", bearer(l2.token), ""); a.StatusCode != http.StatusUnauthorized {
				t.Fatalf("token after logout: %d", a.StatusCode)
			}
			if a := s.do(t, http.MethodPost, "localhost", "/api/auth/refresh", s.cookies(l2.refresh), ""); a.StatusCode != http.StatusUnauthorized {
				t.Fatalf("refresh after logout: %d", a.StatusCode)
			}

			// Wrong password and unknown user: the same answer.
			wrong := s.postLogin(t, `{"username":"admin","password":"not-the-password"}`)
			unknown := s.postLogin(t, `{"username":"nobody","password":"not-the-password"}`)
			if wrong.StatusCode != http.StatusUnauthorized || unknown.StatusCode != wrong.StatusCode || string(unknown.body) != string(wrong.body) {
				t.Fatalf("wrong password %d %s / unknown user %d %s", wrong.StatusCode, wrong.body, unknown.StatusCode, unknown.body)
			}
			if a := s.postLogin(t, `{"username":`); a.StatusCode != http.StatusBadRequest || a.code(t) != "invalid_request" {
				t.Fatalf("malformed login: %d %s", a.StatusCode, a.body)
			}
			// Login CSRF: a form or text/plain body (no preflight needed cross-site) is refused.
			for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", ""} {
				a := s.do(t, http.MethodPost, "localhost", "/api/auth/login", http.Header{"Content-Type": {ct}},
					`{"username":"admin","password":"`+adminPassword+`"}`)
				if a.StatusCode != http.StatusUnsupportedMediaType || a.Header.Get("Set-Cookie") != "" {
					t.Fatalf("login as %q: %d %s", ct, a.StatusCode, a.body)
				}
			}
			if a := s.do(t, http.MethodGet, "localhost", "/api/auth/login", nil, ""); a.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("GET login: %d %s", a.StatusCode, a.body)
			}
		})
	}
}

// TestSpoofedIdentityHeaders: identity headers sent by a client never reach
// an upstream, on protected and public routes, in any spelling.
func TestSpoofedIdentityHeaders(t *testing.T) {
	up := gatewaytest.NewUpstream(t, "app")
	gw := gatewaytest.Start(t, gatewaytest.Options{
		Caddyfile: fmt.Sprintf(`{
	admin {$CLAUDE_ADMIN}
	local_certs
	skip_install_trust
	storage file_system ./data/caddy
	claude {
		database %s
	}
}
https://localhost:{$CLAUDE_HTTPS_PORT} {
	route {
		claude_health
		claude_auth_api
		claude_auth {
			public /public/*
		}
		reverse_proxy %s
	}
	handle_errors {
		claude_error
	}
}
`, testenv.SQLiteDatabase(t), up.Addr()),
		Env: map[string]string{"SECRET_KEY": gatewaytest.TestSecret},
	})
	s := &stack{gw: gw}
	tok := gatewaytest.AccessToken(t, gatewaytest.TestSecret, "real-id", "realuser", "user", time.Hour)
	spoof := http.Header{
		"X-Auth-User-Id":   {"spoofed-id"},
		"X-Auth-User-Name": {"spoofed"},
		"X-Auth-User-Role": {"admin"},
		"X_auth_user_id":   {"spoofed-underscore"},
		"X-AUTH-USER-ROLE": {"admin"},
	}
	with := func(h http.Header, extra http.Header) http.Header {
		out := h.Clone()
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	cases := []struct {
		name     string
		path     string
		header   http.Header
		wantUser string // "" = anonymous
	}{
		{"protected route with a token", "/private", with(spoof, bearer(tok)), "real-id"},
		{"public route without a token", "/public/page", spoof, ""},
		{"public route with a token", "/public/page", with(spoof, bearer(tok)), "real-id"},
		{"public route with a bad token", "/public/page", with(spoof, bearer("bad.token.here")), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := up.Hits.Load()
			a := s.do(t, http.MethodGet, "localhost", tc.path, tc.header, "")
			if a.StatusCode != http.StatusOK || up.Hits.Load() != before+1 {
				t.Fatalf("%d %s", a.StatusCode, a.body)
			}
			got := up.Last.Load().Header
			for name, vals := range got {
				n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
				if !strings.HasPrefix(n, "x-auth-user-") {
					continue
				}
				for _, v := range vals {
					if strings.Contains(v, "spoofed") || (tc.wantUser == "" && v != "") {
						t.Errorf("upstream got %s: %s", name, v)
					}
				}
			}
			if got.Get("X-Auth-User-Id") != tc.wantUser {
				t.Errorf("X-Auth-User-Id = %q, want %q", got.Get("X-Auth-User-Id"), tc.wantUser)
			}
			if tc.wantUser != "" && got.Get("X-Auth-User-Role") != "user" {
				t.Errorf("X-Auth-User-Role = %q", got.Get("X-Auth-User-Role"))
			}
		})
	}
}

// TestBruteForce: repeated failures ban the username and the address: 429
// with Retry-After, even for the right password.
func TestBruteForce(t *testing.T) {
	s := startStack(t, testenv.SQLiteDatabase(t), nil)
	for i := range 5 {
		a := s.postLogin(t, `{"username":"admin","password":"guess-`+strconv.Itoa(i)+`"}`)
		if a.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d %s", i, a.StatusCode, a.body)
		}
	}
	for _, body := range []string{
		`{"username":"admin","password":"` + adminPassword + `"}`,
		`{"username":"other","password":"whatever-1"}`,
	} {
		a := s.postLogin(t, body)
		if a.StatusCode != http.StatusTooManyRequests || a.code(t) != "too_many_failed_logins" {
			t.Fatalf("after 5 failures: %d %s", a.StatusCode, a.body)
		}
		ra, err := strconv.Atoi(a.Header.Get("Retry-After"))
		if err != nil || ra <= 0 || ra > 300 {
			t.Fatalf("Retry-After %q", a.Header.Get("Retry-After"))
		}
	}
}

// TestReplicasShareRevocationsAndBans: two gateway processes on one MariaDB;
// a logout on one is honoured by the other within the revocation sync bound
// (2s), and failed logins on one ban the username on the other.
func TestReplicasShareRevocationsAndBans(t *testing.T) {
	db := testenv.MySQLDatabase(t)
	a := startStack(t, db, nil)
	b := startStack(t, db, nil)
	l := a.login(t, "admin", adminPassword)
	if r := b.do(t, http.MethodGet, "localhost", "/api/x", bearer(l.token), ""); r.StatusCode != http.StatusOK {
		t.Fatalf("replica b refuses a fresh token: %d", r.StatusCode)
	}
	if r := a.do(t, http.MethodPost, "localhost", "/api/auth/logout", bearer(l.token), ""); r.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", r.StatusCode)
	}
	revokedAt := time.Now()
	// Two sync intervals and a second: on a busy machine one read may come
	// late or slow; a replica that stopped reading would take minutes.
	const bound = 2*2*time.Second + time.Second
	for {
		r := b.do(t, http.MethodGet, "localhost", "/api/x", bearer(l.token), "")
		if r.StatusCode == http.StatusUnauthorized {
			t.Logf("replica b refused the revoked token after %s", time.Since(revokedAt).Round(time.Millisecond))
			break
		}
		if time.Since(revokedAt) > bound {
			t.Fatalf("replica b still accepts the token %s after the logout", time.Since(revokedAt))
		}
		time.Sleep(50 * time.Millisecond)
	}

	for i := range 5 {
		if r := a.postLogin(t, `{"username":"admin","password":"guess-`+strconv.Itoa(i)+`"}`); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failed login %d on a: %d", i, r.StatusCode)
		}
	}
	r := b.postLogin(t, `{"username":"admin","password":"`+adminPassword+`"}`)
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("replica b after 5 failures on a: %d %s", r.StatusCode, r.body)
	}
}

// TestStartupRefusesBadSecret: a short key, or no key at all outside the dev
// config, stops start-up with a message that says what to do.
func TestStartupRefusesBadSecret(t *testing.T) {
	noGenerate := `{
	admin {$CLAUDE_ADMIN}
	storage file_system ./data/caddy
	claude {
		database {$CLAUDE_DATABASE}
	}
}
:{$CLAUDE_HTTPS_PORT} {
	claude_auth
	respond "should not start"
}
`
	dev, err := os.ReadFile(filepath.Join(gatewaytest.RepoRoot(t), "Caddyfile.dev"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, caddyfile string
		env             []string
		want            string
	}{
		{"short SECRET_KEY", string(dev), []string{"SECRET_KEY=0123456789"}, "SECRET_KEY is 10 bytes long; at least 32 are required"},
		{"short SECRET_KEY_FILE", string(dev), []string{"SECRET_KEY_FILE=" + writeFile(t, "short\n")}, "is 5 bytes long; at least 32 are required"},
		{"both set", string(dev), []string{"SECRET_KEY=" + gatewaytest.TestSecret, "SECRET_KEY_FILE=" + writeFile(t, gatewaytest.TestSecret)}, "set only one"},
		{"no key and no dev key file", noGenerate, nil, "no signing key: set SECRET_KEY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := gatewaytest.WriteCaddyfile(t, dir, tc.caddyfile)
			cmd := exec.Command(gatewaytest.Binary(t), "run", "--config", cfg, "--adapter", "caddyfile")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(),
				"CLAUDE_DATABASE="+testenv.SQLiteDatabase(t),
				"CLAUDE_HTTPS_PORT="+strconv.Itoa(gatewaytest.FreePort(t)),
				"CLAUDE_HTTP_PORT="+strconv.Itoa(gatewaytest.FreePort(t)),
				"CLAUDE_ADMIN=127.0.0.1:"+strconv.Itoa(gatewaytest.FreePort(t)),
				"SECRET_KEY=", "SECRET_KEY_FILE=")
			cmd.Env = append(cmd.Env, tc.env...)
			done := make(chan struct{})
			var out []byte
			var runErr error
			go func() { out, runErr = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("the gateway started (or hung) with a bad key:\n%s", out)
			}
			if runErr == nil {
				t.Fatalf("exited 0:\n%s", out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("output lacks %q:\n%s", tc.want, out)
			}
		})
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDevGeneratesSecret: Caddyfile.dev without SECRET_KEY keeps a random key
// (mode 0600) in its data directory and re-uses it after a restart.
func TestDevGeneratesSecret(t *testing.T) {
	s := startStack(t, testenv.SQLiteDatabase(t), map[string]string{"SECRET_KEY": ""})
	keyFile := filepath.Join(s.gw.Dir, "data", "secret_key")
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	l := s.login(t, "admin", adminPassword)
	// Tokens signed with the well-known test key are refused: the key is the generated one.
	if a := s.do(t, http.MethodGet, "localhost", "/api/x", bearer(gatewaytest.AccessToken(t, gatewaytest.TestSecret, "1", "admin", "admin", time.Hour)), ""); a.StatusCode != http.StatusUnauthorized {
		t.Fatalf("test-key token: %d", a.StatusCode)
	}
	s.gw.Stop()
	s.gw.Restart()
	if a := s.do(t, http.MethodGet, "localhost", "/api/x", bearer(l.token), ""); a.StatusCode != http.StatusOK {
		t.Fatalf("token from before the restart: %d %s", a.StatusCode, a.body)
	}
}

// TestWebSocketCookie: a browser WebSocket carries the access cookie (never a
// token in the URL); without a valid one the upgrade is refused before any
// upstream sees it.
func TestWebSocketCookie(t *testing.T) {
	s := startStack(t, testenv.SQLiteDatabase(t), nil)
	l := s.login(t, "admin", adminPassword)
	origin := fmt.Sprintf("https://localhost:%d", s.gw.HTTPSPort)
	dial := func(query string, h http.Header) (*websocket.Conn, *http.Response, error) {
		tr := s.gw.Transport()
		tr.ForceAttemptHTTP2 = false
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return websocket.Dial(ctx, "wss://localhost:"+strconv.Itoa(s.gw.HTTPSPort)+"/ws/agent"+query,
			&websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}, HTTPHeader: h})
	}
	c, _, err := dial("", http.Header{"Origin": {origin}, "Cookie": {claudeauth.AccessCookie + "=" + l.token}})
	if err != nil {
		t.Fatalf("dial with the cookie: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.Read(ctx)
	if err != nil || string(msg) != "backend:hi" {
		t.Fatalf("echo: %q %v", msg, err)
	}
	if got := s.backend.Last.Load().Header.Get("X-Auth-User-Name"); got != "admin" {
		t.Fatalf("the upgrade reached the backend as %q", got)
	}
	c.Close(websocket.StatusNormalClosure, "")

	for name, tc := range map[string]struct {
		query string
		h     http.Header
	}{
		"no token":              {"", http.Header{"Origin": {origin}}},
		"token in the URL only": {"?access_token=" + l.token + "&token=" + l.token, http.Header{"Origin": {origin}}},
		"forged cookie": {"", http.Header{"Origin": {origin}, "Cookie": {claudeauth.AccessCookie + "=" +
			mint(t, jwt.SigningMethodHS256, []byte("wrong-key-0123456789abcdef-0123456789abcdef"), claims(nil))}}},
	} {
		t.Run(name, func(t *testing.T) {
			before := s.hits()
			_, resp, err := dial(tc.query, tc.h)
			if err == nil {
				t.Fatal("upgraded")
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("dial: %v %v", err, resp)
			}
			if s.hits() != before {
				t.Fatal("the upgrade reached an upstream")
			}
		})
	}
}

// TestRegulationAndRevocationsSurviveReload: a config reload keeps the login
// bans and the revocation list (both live in a caddy.UsagePool).
func TestRegulationAndRevocationsSurviveReload(t *testing.T) {
	s := startStack(t, testenv.SQLiteDatabase(t), map[string]string{"SECRET_KEY": ""}) // the dev key file
	l := s.login(t, "admin", adminPassword)
	if a := s.do(t, http.MethodPost, "localhost", "/api/auth/logout", bearer(l.token), ""); a.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", a.StatusCode)
	}
	for i := range 5 {
		s.postLogin(t, `{"username":"admin","password":"guess-`+strconv.Itoa(i)+`"}`)
	}
	if err := s.gw.Load(s.gw.Config + "\n# reloaded\n"); err != nil {
		t.Fatal(err)
	}
	if a := s.postLogin(t, `{"username":"admin","password":"`+adminPassword+`"}`); a.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("ban after reload: %d %s", a.StatusCode, a.body)
	}
	if a := s.do(t, http.MethodGet, "localhost", "/api/x", bearer(l.token), ""); a.StatusCode != http.StatusUnauthorized {
		t.Fatalf("revoked token after reload: %d", a.StatusCode)
	}
}

// TestKeyRotation: after a key change, tokens signed with the previous key
// (SECRET_KEY_PREVIOUS) are still accepted, and new tokens carry the new key.
func TestKeyRotation(t *testing.T) {
	newKey := "rotated-key-0123456789abcdef-0123456789abcdef"
	s := startStack(t, testenv.SQLiteDatabase(t), map[string]string{"SECRET_KEY": newKey, "SECRET_KEY_PREVIOUS": gatewaytest.TestSecret})
	old := gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-old", "olduser", "user", time.Hour)
	if a := s.do(t, http.MethodGet, "localhost", "/api/x", bearer(old), ""); a.StatusCode != http.StatusOK {
		t.Fatalf("token signed with the previous key: %d", a.StatusCode)
	}
	l := s.login(t, "admin", adminPassword)
	if _, err := jwt.Parse(l.token, func(*jwt.Token) (any, error) { return []byte(newKey), nil }, jwt.WithValidMethods([]string{"HS256"})); err != nil {
		t.Fatalf("a new token does not verify with the new key: %v", err)
	}
	if _, err := jwt.Parse(l.token, func(*jwt.Token) (any, error) { return []byte(gatewaytest.TestSecret), nil }); err == nil {
		t.Fatal("a new token verifies with the previous key")
	}
	other := gatewaytest.AccessToken(t, "some-other-key-0123456789abcdef-0123456789", "u-x", "x", "user", time.Hour)
	if a := s.do(t, http.MethodGet, "localhost", "/api/x", bearer(other), ""); a.StatusCode != http.StatusUnauthorized {
		t.Fatalf("token signed with an unknown key: %d", a.StatusCode)
	}
}

// TestFirstStartGeneratesAdmin: with no user and no CLAUDE_ADMIN_PASSWORD the
// gateway creates "admin" with a generated password, logged once only.
func TestFirstStartGeneratesAdmin(t *testing.T) {
	s := startStack(t, testenv.SQLiteDatabase(t), map[string]string{"CLAUDE_ADMIN_PASSWORD": ""})
	var password string
	for _, line := range strings.Split(s.gw.Log(), "\n") {
		var entry struct {
			Msg      string `json:"msg"`
			Username string `json:"username"`
			Password string `json:"password"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Password != "" {
			if password != "" {
				t.Fatal("the password was logged twice")
			}
			password = entry.Password
		}
	}
	if len(password) < 20 {
		t.Fatalf("no generated password (at least 20 characters) in the log:\n%s", s.gw.LogTail(30))
	}
	s.login(t, "admin", password)
	s.gw.Stop()
	s.gw.Restart()
	if n := strings.Count(s.gw.Log(), password); n != 0 {
		t.Fatalf("the password was logged again after a restart")
	}
	s.login(t, "admin", password)
}

// trailerBody is a chunked request body that fills in its request's trailers
// when it ends, the way a client sends them.
type trailerBody struct {
	io.Reader
	req      *http.Request
	trailers http.Header
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err == io.EOF {
		for k, v := range b.trailers {
			b.req.Trailer[k] = v
		}
	}
	return n, err
}

// TestSpoofedIdentityTrailers: identity fields sent as request trailers
// (which reverse_proxy forwards) never reach an upstream either, while
// other trailers still do.
func TestSpoofedIdentityTrailers(t *testing.T) {
	got := make(chan http.Header, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // trailers arrive after the body
		got <- r.Trailer.Clone()
	}))
	t.Cleanup(up.Close)
	gw := gatewaytest.Start(t, gatewaytest.Options{
		Caddyfile: fmt.Sprintf(`{
	admin {$CLAUDE_ADMIN}
	local_certs
	skip_install_trust
	storage file_system ./data/caddy
	claude {
		database %s
	}
}
https://localhost:{$CLAUDE_HTTPS_PORT} {
	route {
		claude_auth
		reverse_proxy %s
	}
	handle_errors {
		claude_error
	}
}
`, testenv.SQLiteDatabase(t), up.Listener.Addr()),
		Env: map[string]string{"SECRET_KEY": gatewaytest.TestSecret},
	})
	tok := gatewaytest.AccessToken(t, gatewaytest.TestSecret, "real-id", "realuser", "user", time.Hour)
	req, err := http.NewRequest(http.MethodPost, gw.URL("localhost", "/upload"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.ContentLength = -1 // chunked, so trailers can follow
	req.Trailer = http.Header{"X-Auth-User-Id": nil, "X-Checksum": nil}
	req.Body = io.NopCloser(&trailerBody{Reader: strings.NewReader("payload"), req: req, trailers: http.Header{
		"X-Auth-User-Id":   {"spoofed-id"},
		"X-Auth-User-Role": {"admin"}, // not even announced
		"X-Checksum":       {"abc"},
	}})
	resp, err := gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var tr http.Header
	select {
	case tr = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream saw no request")
	}
	for name, vals := range tr {
		if strings.HasPrefix(strings.ToLower(name), "x-auth-user-") && len(vals) > 0 {
			t.Errorf("upstream got trailer %s: %v", name, vals)
		}
	}
	if tr.Get("X-Checksum") != "abc" {
		t.Errorf("an ordinary trailer was lost: %v", tr)
	}
}

// TestRefreshCookieCannotBePlanted: a page on a sibling host (the IDE host
// serves user-controlled pages) can set a `__Secure-` cookie for the parent
// domain, and so plant its own refresh token in a victim's browser (login
// CSRF). The refresh cookie is therefore `__Host-` (no Domain possible,
// Path=/); being sent on every request it never reaches an upstream; and a
// refresh presenting two refresh cookies is refused rather than one picked.
func TestRefreshCookieCannotBePlanted(t *testing.T) {
	s := startStack(t, testenv.SQLiteDatabase(t), nil)
	l := s.login(t, "admin", adminPassword)

	t.Run("host-only cookie", func(t *testing.T) {
		c := l.refresh
		if c.Name != "__Host-claude_refresh" || c.Path != "/" || c.Domain != "" ||
			!c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
			t.Fatalf("refresh cookie: %s", c.String())
		}
	})

	t.Run("not forwarded upstream", func(t *testing.T) {
		for _, tc := range []struct {
			path string
			up   *gatewaytest.Upstream
			h    http.Header
		}{
			{"/", s.frontend, s.cookies(&http.Cookie{Name: "theme", Value: "dark"}, l.access, l.refresh)},
			{"/api/x", s.backend, s.cookies(l.refresh, l.access, &http.Cookie{Name: "theme", Value: "dark"})},
			// A public path, where no token is required.
			{"/auth/anything", s.frontend, s.cookies(l.refresh, &http.Cookie{Name: "theme", Value: "dark"})},
		} {
			before := tc.up.Hits.Load()
			a := s.do(t, http.MethodGet, "localhost", tc.path, tc.h, "")
			if a.StatusCode != http.StatusOK || tc.up.Hits.Load() != before+1 {
				t.Fatalf("%s: %d %s", tc.path, a.StatusCode, a.body)
			}
			var echo gatewaytest.Echo
			if err := json.Unmarshal(a.body, &echo); err != nil {
				t.Fatalf("%s: %v %s", tc.path, err, a.body)
			}
			got := strings.Join(echo.Header.Values("Cookie"), "; ")
			if strings.Contains(got, "claude_refresh") || strings.Contains(got, l.refresh.Value) {
				t.Errorf("%s: upstream saw the refresh cookie: %q", tc.path, got)
			}
			if !strings.Contains(got, "theme=dark") {
				t.Errorf("%s: other cookies lost: %q", tc.path, got)
			}
			// Nor the access cookie: upstreams get the identity headers.
			if strings.Contains(got, claudeauth.AccessCookie) || strings.Contains(got, l.access.Value) {
				t.Errorf("%s: upstream saw the access cookie: %q", tc.path, got)
			}
		}
	})

	t.Run("two refresh cookies refused", func(t *testing.T) {
		other := s.login(t, "admin", adminPassword) // stands for a planted token
		for _, order := range [][]*http.Cookie{{l.refresh, other.refresh}, {other.refresh, l.refresh}} {
			a := s.do(t, http.MethodPost, "localhost", "/api/auth/refresh", s.cookies(order...), "")
			if a.StatusCode != http.StatusUnauthorized || a.code(t) != "invalid_refresh_token" {
				t.Fatalf("two refresh cookies: %d %s", a.StatusCode, a.body)
			}
			for _, c := range a.Cookies() {
				if c.Value != "" {
					t.Fatalf("two refresh cookies: a cookie was issued: %s", c.String())
				}
			}
		}
		// Neither token was spent by the refusal: each still refreshes alone.
		for _, c := range []*http.Cookie{l.refresh, other.refresh} {
			if a := s.do(t, http.MethodPost, "localhost", "/api/auth/refresh", s.cookies(c), ""); a.StatusCode != http.StatusOK {
				t.Fatalf("single refresh cookie after the refusal: %d %s", a.StatusCode, a.body)
			}
		}
	})
}

// TestUsernameBanSparesKnownDevice: five wrong passwords for "admin" from
// rotating addresses ban the username. The real admin's browser, which
// signed in before and keeps its device cookie, still signs in from a new
// address; a new client (no device cookie, or a forged one) stays banned; and
// the known browser stays subject to its own failure limit. On SQLite and
// MariaDB.
func TestUsernameBanSparesKnownDevice(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(gatewaytest.RepoRoot(t), "Caddyfile.dev"))
	if err != nil {
		t.Fatal(err)
	}
	// Let the test pick its client addresses through X-Forwarded-For, as
	// clients behind a trusted proxy have theirs.
	cfg := strings.Replace(string(b), "\tservers {\n", "\tservers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t\tclient_ip_headers X-Forwarded-For\n", 1)
	if cfg == string(b) {
		t.Fatal("Caddyfile.dev has no servers block to extend")
	}
	for name, db := range testenv.Databases(t) {
		t.Run(name, func(t *testing.T) {
			up := gatewaytest.NewUpstream(t, "backend")
			g := gatewaytest.Start(t, gatewaytest.Options{Caddyfile: cfg, Env: map[string]string{
				"BACKEND_UPSTREAM": up.Addr(), "FRONTEND_UPSTREAM": up.Addr(), "CODE_SERVER_UPSTREAM": up.Addr(),
				"SECRET_KEY": gatewaytest.TestSecret, "CLAUDE_DATABASE": db, "CLAUDE_ADMIN_PASSWORD": adminPassword,
				"RATE_LIMIT_LOGIN": "10000/min", "RATE_LIMIT_PER_MINUTE": "100000",
			}})
			login := func(password, addr, device string) *http.Response {
				t.Helper()
				req, _ := http.NewRequest(http.MethodPost, g.URL("localhost", "/api/auth/login"),
					strings.NewReader(fmt.Sprintf(`{"username":"admin","password":%q}`, password)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Forwarded-For", addr)
				if device != "" {
					req.Header.Set("Cookie", claudeauth.DeviceCookie+"="+device)
				}
				resp, err := g.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp
			}
			resp := login(adminPassword, "10.1.1.1", "")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("first sign-in: %d", resp.StatusCode)
			}
			dc := cookie(t, resp, claudeauth.DeviceCookie)
			if !dc.HttpOnly || !dc.Secure || dc.Path != "/" || dc.Domain != "" || dc.MaxAge < 30*24*3600 {
				t.Errorf("device cookie attributes: %+v", dc)
			}
			for i := range 5 {
				if r := login("guess-"+strconv.Itoa(i), fmt.Sprintf("203.0.113.%d", i+1), ""); r.StatusCode != http.StatusUnauthorized {
					t.Fatalf("guess %d: %d", i, r.StatusCode)
				}
			}
			for what, device := range map[string]string{"no device cookie": "", "a forged device cookie": dc.Value[:len(dc.Value)-4] + "AAAA"} {
				if r := login(adminPassword, "198.51.100.1", device); r.StatusCode != http.StatusTooManyRequests {
					t.Errorf("new client (%s) after the username ban: %d, want 429", what, r.StatusCode)
				}
			}
			if r := login(adminPassword, "198.51.100.2", dc.Value); r.StatusCode != http.StatusOK {
				t.Fatalf("the admin's own browser after the username ban: %d, want 200", r.StatusCode)
			}
			// The known browser's own failures ban it, whatever its address.
			for i := range 5 {
				if r := login("wrong-"+strconv.Itoa(i), fmt.Sprintf("192.0.2.%d", i+1), dc.Value); r.StatusCode != http.StatusUnauthorized {
					t.Fatalf("device guess %d: %d", i, r.StatusCode)
				}
			}
			if r := login(adminPassword, "192.0.2.99", dc.Value); r.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("a known browser over its own failure limit: %d, want 429", r.StatusCode)
			}
		})
	}
}
