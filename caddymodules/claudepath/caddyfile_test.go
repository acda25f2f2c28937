package claudepath_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/claude-gateway/claude-gateway"
	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
)

// decisive are the handlers that decide on a path or send it upstream; a
// route holding one must start with claude_path.
var decisive = map[string]bool{
	"claude_health": true, "claude_origin": true, "claude_auth": true, "claude_auth_api": true,
	"claude_rate_limit": true, "claude_sessions": true, "claude_exec": true, "claude_ide_gate": true,
	"claude_ide_signon": true, "claude_login_page": true, "reverse_proxy": true,
}

// TestFirstInEveryRoute adapts both Caddyfiles: every route list holding a
// handler that decides on the path starts with an unconditional claude_path.
func TestFirstInEveryRoute(t *testing.T) {
	t.Setenv("DOMAIN", "gateway.example.com")
	t.Setenv("CLAUDE_DATABASE", "sqlite:"+filepath.Join(t.TempDir(), "gateway.db"))
	for _, name := range []string{"Caddyfile", "Caddyfile.dev"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(gatewaytest.RepoRoot(t), name)
			body, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// The full path: its imports are read beside it.
			out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": path})
			if err != nil {
				t.Fatalf("adapting %s: %v", name, err)
			}
			var cfg any
			if err := json.Unmarshal(out, &cfg); err != nil {
				t.Fatal(err)
			}
			var checked int
			var walk func(v any)
			walk = func(v any) {
				switch v := v.(type) {
				case []any:
					for _, e := range v {
						walk(e)
					}
				case map[string]any:
					if routes, ok := v["routes"].([]any); ok && holdsDecisive(routes) {
						checked++
						first, _ := routes[0].(map[string]any)
						handle, _ := first["handle"].([]any)
						if _, matched := first["match"]; matched || len(handle) == 0 || handle[0].(map[string]any)["handler"] != "claude_path" {
							t.Errorf("a route list starts with %s, not an unconditional claude_path", mustJSON(t, first))
						}
					}
					for _, e := range v {
						walk(e)
					}
				}
			}
			walk(cfg)
			if checked < 2 {
				t.Fatalf("%d route lists checked, want one per site (app and IDE host)", checked)
			}
		})
	}
}

// holdsDecisive reports whether one of routes' own handlers is decisive.
func holdsDecisive(routes []any) bool {
	for _, r := range routes {
		m, _ := r.(map[string]any)
		handle, _ := m["handle"].([]any)
		for _, h := range handle {
			if hm, _ := h.(map[string]any); decisive[hm["handler"].(string)] {
				return true
			}
		}
	}
	return false
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
