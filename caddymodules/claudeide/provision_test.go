package claudeide

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestSignOnNeedsIDEOrigin: a sign-on without an IDE origin — none given,
// or an environment variable that is not set — is refused at load time with
// a message that names the option, before any other set-up.
func TestSignOnNeedsIDEOrigin(t *testing.T) {
	for _, ide := range []string{"", "{env.CLAUDE_TEST_SURELY_UNSET_IDE_ORIGIN}"} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := (&SignOn{IDEOrigin: ide}).Provision(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "ide_origin is required") {
			t.Errorf("Provision with ide_origin %q = %v, want an error naming ide_origin", ide, err)
		}
	}
}

// TestGateSignOnURL: the gate needs the app host's claude_ide_signon URL,
// absolute, and appends its query to it whatever query it already has.
func TestGateSignOnURL(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"", "", "signon_url is required"},
		{"/auth/ide", "", "absolute"},
		{"ftp://example.com/auth/ide", "", "absolute"},
		{"https://user@example.com/auth/ide", "", "absolute"},
		{"https://example.com/auth/ide#x", "", "absolute"},
		{"https://example.com/auth/ide", "https://example.com/auth/ide?", ""},
		{"https://example.com/auth/ide?", "https://example.com/auth/ide?", ""},
		{"https://example.com:8443/auth/ide?x=1", "https://example.com:8443/auth/ide?x=1&", ""},
	} {
		got, err := signOnURL(tc.in)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("signOnURL(%q) = %q, %v; want %q, error with %q", tc.in, got, err, tc.want, tc.err)
		}
	}
	// An unset environment variable is no URL: refused at load time.
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := (&Gate{SignOnURL: "{env.CLAUDE_TEST_SURELY_UNSET_SIGNON_URL}"}).Provision(ctx)
	if err == nil || !strings.Contains(err.Error(), "signon_url is required") {
		t.Errorf("Provision with an unset signon_url = %v", err)
	}
}

// TestFormerGateOption: handoff_url, the gate's option before the sign-on
// rename, still works: in a Caddyfile it adapts to the same config as
// signon_url, and a JSON config holding it (an autosaved one) provisions with
// that URL.
func TestFormerGateOption(t *testing.T) {
	adapted := map[string]string{}
	for _, src := range []string{
		"claude_ide_gate https://example.com/auth/ide",
		"claude_ide_gate {\n\t\t\tsignon_url https://example.com/auth/ide\n\t\t}",
		"claude_ide_gate {\n\t\t\thandoff_url https://example.com/auth/ide\n\t\t}",
	} {
		cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte("ide.example.com {\n\troute {\n\t\t"+src+"\n\t}\n}\n"), nil)
		if err != nil || len(warnings) > 0 {
			t.Fatalf("%s: adapt: %v %v", src, err, warnings)
		}
		if !strings.Contains(string(cfg), `"signon_url":"https://example.com/auth/ide"`) {
			t.Fatalf("%s adapted to %s, want signon_url", src, cfg)
		}
		adapted[string(cfg)] = src
	}
	if len(adapted) != 1 {
		t.Fatalf("the spellings adapt differently: %v", adapted)
	}

	// Provision checks the URL before it looks for the claude app (which
	// does not run here): a bad one under the former name is refused as
	// signon_url's, so it was read.
	var g Gate
	if err := json.Unmarshal([]byte(`{"handoff_url":"/auth/ide"}`), &g); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := g.Provision(ctx); err == nil || !strings.Contains(err.Error(), `signon_url "/auth/ide": want an absolute`) {
		t.Fatalf("Provision with handoff_url /auth/ide = %v, want it refused as signon_url", err)
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
