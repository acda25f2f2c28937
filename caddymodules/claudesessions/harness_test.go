package claudesessions_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/sessions"
)

// gw is a running gateway (Caddyfile.dev, real binary) with tokens for three users.
type gw struct {
	t                 testing.TB
	g                 *gatewaytest.Gateway
	c                 *http.Client
	setting           string
	alice, bob, admin string
}

// startGateway runs the real binary on the repository's Caddyfile.dev with
// the database setting and extra environment (SESSION_TIMEOUT, MAX_SESSIONS…).
func startGateway(t testing.TB, setting string, env map[string]string) *gw {
	t.Helper()
	cfg, err := os.ReadFile(filepath.Join(gatewaytest.RepoRoot(t), "Caddyfile.dev"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "claude_auth") || !strings.Contains(string(cfg), "claude_sessions") {
		t.Fatal("Caddyfile.dev lacks claude_auth or claude_sessions")
	}
	e := map[string]string{
		"CLAUDE_DATABASE": setting,
		"SECRET_KEY":      gatewaytest.TestSecret,
		// These tests measure the session API, not the per-user API limit.
		"RATE_LIMIT_PER_MINUTE": "1000000",
	}
	for k, v := range env {
		e[k] = v
	}
	g := gatewaytest.Start(t, gatewaytest.Options{Caddyfile: string(cfg), Env: e})
	c := g.Client()
	c.Timeout = time.Minute
	return &gw{
		t: t, g: g, c: c, setting: setting,
		alice: gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-alice", "alice", "user", time.Hour),
		bob:   gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-bob", "bob", "user", time.Hour),
		admin: gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-admin", "root", "admin", time.Hour),
	}
}

// sessionsDir is <workspace>/sessions of the gateway.
func (w *gw) sessionsDir() string { return filepath.Join(w.g.Dir, "workspace", "sessions") }

// reply is an answer of the gateway.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) code() string {
	var env struct {
		Error struct{ Code string } `json:"error"`
	}
	json.Unmarshal(r.body, &env)
	return env.Error.Code
}

func (r reply) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("status %d, body %q: %v", r.status, r.body, err)
	}
}

// do sends a request whose path goes on the wire exactly as written
// (no cleaning, no re-escaping).
func (w *gw) do(method, rawPath, token string, body io.Reader) reply {
	w.t.Helper()
	req, err := http.NewRequest(method, w.g.URL("localhost", "/"), body)
	if err != nil {
		w.t.Fatal(err)
	}
	req.URL.Opaque = rawPath
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if b, ok := body.(*bytes.Reader); ok {
		req.ContentLength = int64(b.Len())
	}
	resp, err := w.c.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, rawPath, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func (w *gw) create(token string) sessions.Session {
	w.t.Helper()
	r := w.do("POST", "/api/sessions", token, nil)
	if r.status != http.StatusCreated {
		w.t.Fatalf("create: %d %s", r.status, r.body)
	}
	var s sessions.Session
	r.json(w.t, &s)
	return s
}

// expect checks a reply's status and, for errors, its envelope code.
func expect(t testing.TB, what string, r reply, status int, code string) {
	t.Helper()
	if r.status != status || r.code() != code {
		t.Errorf("%s: %d %q (%s), want %d %q", what, r.status, r.code(), bytes.TrimSpace(r.body), status, code)
	}
}
