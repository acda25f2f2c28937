package claude

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// parseBlock parses the global option `claude { <block> }` and returns the
// app it configures. With wantErr set it checks that parsing fails with an
// error containing wantErr and reports ok=false; otherwise a failure is fatal.
func parseBlock(t *testing.T, block, wantErr string) (app App, ok bool) {
	t.Helper()
	out, err := parseGlobalOption(caddyfile.NewTestDispenser("claude {\n"+block+"\n}"), nil)
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error %v, want one containing %q", err, wantErr)
		}
		return app, false
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out.(httpcaddyfile.App).Value, &app); err != nil {
		t.Fatal(err)
	}
	return app, true
}
