package handoff_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/claude-gateway/claude-gateway"
	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
)

// TestCaddyfilesEnableHandoff adapts both Caddyfiles: every HTTP server must
// listen on the handoff network behind the handoff listener wrapper, and the
// production file must not hand "handoff/" to ACME as the challenge bind host
// (httpcaddyfile copies default_bind there once a global ACME option is set,
// and the HTTP-01 and TLS-ALPN-01 solvers could not listen on it).
func TestCaddyfilesEnableHandoff(t *testing.T) {
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
			var cfg struct {
				Apps struct {
					HTTP struct {
						Servers map[string]struct {
							Listen           []string          `json:"listen"`
							ListenerWrappers []json.RawMessage `json:"listener_wrappers"`
						} `json:"servers"`
					} `json:"http"`
				} `json:"apps"`
			}
			if err := json.Unmarshal(out, &cfg); err != nil {
				t.Fatal(err)
			}
			if len(cfg.Apps.HTTP.Servers) == 0 {
				t.Fatal("no HTTP servers")
			}
			for srvName, srv := range cfg.Apps.HTTP.Servers {
				for _, addr := range srv.Listen {
					if !strings.HasPrefix(addr, "handoff/") {
						t.Errorf("server %s listens on %q, not on the handoff network", srvName, addr)
					}
				}
				if !strings.Contains(string(mustJSON(t, srv.ListenerWrappers)), `"wrapper":"handoff"`) {
					t.Errorf("server %s has no handoff listener wrapper: %s", srvName, mustJSON(t, srv.ListenerWrappers))
				}
			}
			if strings.Contains(string(out), `"bind_host":"handoff/`) {
				t.Errorf("%s gives ACME the challenge bind host \"handoff/\": drop the global ACME option or default_bind (README, Reloading)", name)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
