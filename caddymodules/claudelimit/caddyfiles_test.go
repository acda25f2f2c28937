package claudelimit_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// TestDevCaddyfileLimits runs the repository's Caddyfile.dev: sign-in is
// limited per IP across the API and the form, /api/* per user once the token
// is verified, and the probes never.
func TestDevCaddyfileLimits(t *testing.T) {
	backend := gatewaytest.NewUpstream(t, "backend")
	g := gatewaytest.Start(t, gatewaytest.Options{Env: map[string]string{
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

	// Probes are exempt.
	for i := 0; i < 8; i++ {
		for _, p := range []string{"/api/live", "/api/ready", "/api/health"} {
			if a := get(t, g, p, nil); a.Status != http.StatusOK {
				t.Fatalf("%s: %d %s", p, a.Status, a.Body)
			}
		}
	}
}
