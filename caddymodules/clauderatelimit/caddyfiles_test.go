package clauderatelimit_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/claude-gateway/claude-gateway"
	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// TestDevCaddyfileLimits runs the repository's Caddyfile.dev: sign-in is
// limited per IP across the API and the form, /api/* per user once the token
// is verified, and the probes never.
func TestDevCaddyfileLimits(t *testing.T) {
	backend := gatewaytest.NewUpstream(t, "backend")
	// The IDE sockets beneath the workspace need a short path.
	workspace, err := os.MkdirTemp("", "cw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(workspace) })
	g := gatewaytest.Start(t, gatewaytest.Options{Env: map[string]string{
		"CLAUDE_WORKSPACE":      workspace,
		"BACKEND_UPSTREAM":      backend.Addr(),
		"FRONTEND_UPSTREAM":     gatewaytest.NewUpstream(t, "frontend").Addr(),
		"CODE_SERVER_UPSTREAM":  gatewaytest.NewUpstream(t, "ide").Addr(),
		"CLAUDE_DATABASE":       testenv.SQLiteDatabase(t),
		"SECRET_KEY":            gatewaytest.TestSecret,
		"RATE_LIMIT_PER_MINUTE": "4",
		"RATE_LIMIT_LOGIN":      "2/min",
	}})
	c := g.Client()
	origin := g.URL("localhost", "")

	// Sign-in: two attempts (one by the API, one by the form) spend the
	// strict per-IP budget; the third is refused before any password check.
	login := func(path, contentType, body string) answer {
		req, _ := http.NewRequest(http.MethodPost, g.URL("localhost", path), strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Origin", origin)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
	}
	first := login("/api/auth/login", "application/json", `{"username":"nobody","password":"wrong-password"}`)
	if first.Status == http.StatusTooManyRequests || first.Header.Get("X-RateLimit-Limit") != "2" {
		t.Fatalf("first sign-in: %d, X-RateLimit-Limit %q; want it answered, within the login zone", first.Status, first.Header.Get("X-RateLimit-Limit"))
	}
	second := login("/auth/login", "application/x-www-form-urlencoded", url.Values{"username": {"nobody"}, "password": {"wrong"}}.Encode())
	if second.Status == http.StatusTooManyRequests {
		t.Fatalf("second sign-in (form) refused: %s", second.Body)
	}
	third := login("/api/auth/login", "application/json", `{"username":"nobody","password":"wrong-password"}`)
	if third.Status != http.StatusTooManyRequests || !strings.Contains(third.Body, `"rate_limited"`) || third.Header.Get("Retry-After") == "" {
		t.Fatalf("third sign-in: %d %q, want 429 rate_limited", third.Status, third.Body)
	}
	form := login("/auth/login", "application/x-www-form-urlencoded", "username=a&password=b")
	if form.Status != http.StatusTooManyRequests {
		t.Fatalf("form sign-in after the budget: %d %q, want 429", form.Status, form.Body)
	}

	// /api/*: per user. Alice spends her budget; Bob, from the same address, has his own.
	alice := map[string]string{"Authorization": "Bearer " + gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-alice", "alice", "user", time.Hour)}
	bob := map[string]string{"Authorization": "Bearer " + gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-bob", "bob", "user", time.Hour)}
	for i := int64(1); i <= 4; i++ {
		checkAllowed(t, get(t, g, "/api/things", alice), 4, 4-i)
	}
	checkRefused(t, get(t, g, "/api/things", alice), 4)
	checkAllowed(t, get(t, g, "/api/things", bob), 4, 3)
	if n := backend.Hits.Load(); n != 5 {
		t.Fatalf("the backend saw %d requests, want the 5 allowed", n)
	}

	// Probes are never limited: claude_health answers them first.
	for i := 0; i < 8; i++ {
		for _, p := range []string{"/api/live", "/api/ready", "/api/health"} {
			if a := get(t, g, p, nil); a.Status != http.StatusOK {
				t.Fatalf("%s: %d %s", p, a.Status, a.Body)
			}
		}
	}
}

// TestProductionCaddyfile adapts the repository's production Caddyfile: the
// sign-in and API zones are in place and the client IP is taken strictly
// from the right of X-Forwarded-For.
func TestProductionCaddyfile(t *testing.T) {
	path := filepath.Join("..", "..", "Caddyfile")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOMAIN", "gateway.example.com")
	t.Setenv("CLAUDE_DATABASE", "mysql://u:p@tcp(mysql:3306)/claude")
	for _, v := range []string{"RATE_LIMIT_PER_MINUTE", "RATE_LIMIT_LOGIN"} {
		t.Setenv(v, "") // restored after the test
		os.Unsetenv(v)  // the defaults are under test
	}
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(b, map[string]any{"filename": path}) // its imports are read beside it
	if err != nil {
		t.Fatal(err)
	}
	var cfg any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"trusted_proxies_strict":1`) {
		t.Error("the production servers do not take the client IP strictly (trusted_proxies_strict)")
	}
	// The app host's route: the handler list that holds claude_sessions.
	var route []any
	var zones = map[string]map[string]any{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				if m, ok := e.(map[string]any); ok && m["handler"] == "claude_sessions" {
					route = v
				}
				walk(e)
			}
		case map[string]any:
			if v["handler"] == "claude_rate_limit" {
				for _, z := range v["zones"].([]any) {
					zm := z.(map[string]any)
					zones[zm["name"].(string)] = zm
				}
			}
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(cfg)
	pos := map[string][]int{}
	for i, h := range route {
		name, _ := h.(map[string]any)["handler"].(string)
		pos[name] = append(pos[name], i)
	}
	if len(pos["claude_rate_limit"]) != 2 || len(pos["claude_auth"]) != 2 || len(pos["claude_auth_api"]) != 1 {
		t.Fatalf("app route handlers: %v", pos)
	}
	// The API zone counts between the claude_auth that identifies the
	// caller and the one that refuses.
	if lim, api, auth := pos["claude_rate_limit"], pos["claude_auth_api"][0], pos["claude_auth"]; !(lim[0] < api && api < auth[0] && auth[0] < lim[1] && lim[1] < auth[1]) {
		t.Errorf("order: per-IP limits %d, claude_auth_api %d, claude_auth %d, API limit %d, claude_auth %d", lim[0], api, auth[0], lim[1], auth[1])
	}
	for name, want := range map[string]string{
		"login":    `{"key":["{http.vars.client_ip}"],"match":[{"path":["/api/auth/login"]},{"method":["POST"],"path":["/auth/login"]}],"name":"login","on_failure":"fail_closed","rate":"5/min","store":"sql"}`,
		"auth_api": `{"key":["{http.vars.client_ip}"],"match":[{"path":["/api/auth/*"]}],"name":"auth_api","rate":"30/min","store":"sql"}`,
		"api":      `{"key":["{http.auth.user.id}","{http.vars.client_ip}"],"match":[{"path":["/api/*"]}],"name":"api","rate":"30/min","store":"sql"}`,
	} {
		got, _ := json.Marshal(zones[name])
		if string(got) != want {
			t.Errorf("zone %s:\n got %s\nwant %s", name, got, want)
		}
	}
}
