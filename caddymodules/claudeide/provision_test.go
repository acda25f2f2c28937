package claudeide

import (
	"context"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestHandoffNeedsIDEOrigin: a hand-off without an IDE origin — none given,
// or an environment variable that is not set — is refused at load time with
// a message that names the option, before any other set-up.
func TestHandoffNeedsIDEOrigin(t *testing.T) {
	for _, ide := range []string{"", "{env.CLAUDE_TEST_SURELY_UNSET_IDE_ORIGIN}"} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := (&SignOn{IDEOrigin: ide}).Provision(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "ide_origin is required") {
			t.Errorf("Provision with ide_origin %q = %v, want an error naming ide_origin", ide, err)
		}
	}
}

// TestGateHandoffURL: the gate needs the app host's hand-off URL, absolute,
// and appends its query to it whatever query it already has.
func TestGateHandoffURL(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"", "", "handoff_url is required"},
		{"/auth/ide", "", "absolute"},
		{"ftp://example.com/auth/ide", "", "absolute"},
		{"https://user@example.com/auth/ide", "", "absolute"},
		{"https://example.com/auth/ide#x", "", "absolute"},
		{"https://example.com/auth/ide", "https://example.com/auth/ide?", ""},
		{"https://example.com/auth/ide?", "https://example.com/auth/ide?", ""},
		{"https://example.com:8443/auth/ide?x=1", "https://example.com:8443/auth/ide?x=1&", ""},
	} {
		got, err := handoffURL(tc.in)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("handoffURL(%q) = %q, %v; want %q, error with %q", tc.in, got, err, tc.want, tc.err)
		}
	}
	// An unset environment variable is no URL: refused at load time.
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := (&Gate{HandoffURL: "{env.CLAUDE_TEST_SURELY_UNSET_HANDOFF_URL}"}).Provision(ctx)
	if err == nil || !strings.Contains(err.Error(), "handoff_url is required") {
		t.Errorf("Provision with an unset handoff_url = %v", err)
	}
}

// TestFormerSignOnDirective: a Caddyfile written with claude_ide_handoff, the
// sign-on directive's former name, adapts to the same handler as one written
// with claude_ide_signon.
func TestFormerSignOnDirective(t *testing.T) {
	adapted := map[string]string{}
	for _, directive := range []string{"claude_ide_signon", "claude_ide_handoff"} {
		src := "example.com {\n\troute {\n\t\t" + directive + " https://ide.example.com {\n\t\t\tticket_ttl 30s\n\t\t}\n\t}\n}\n"
		cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
		if err != nil || len(warnings) > 0 {
			t.Fatalf("%s: adapt: %v %v", directive, err, warnings)
		}
		if !strings.Contains(string(cfg), `"handler":"claude_ide_signon"`) {
			t.Fatalf("%s adapted to %s, want the claude_ide_signon handler", directive, cfg)
		}
		adapted[directive] = string(cfg)
	}
	if adapted["claude_ide_signon"] != adapted["claude_ide_handoff"] {
		t.Fatalf("the two names adapt differently:\n%s\n%s", adapted["claude_ide_signon"], adapted["claude_ide_handoff"])
	}
}
