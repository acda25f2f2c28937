package claudeide

import (
	"context"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestHandoffNeedsIDEOrigin: a hand-off without an IDE origin — none given,
// or an environment variable that is not set — is refused at load time with
// a message that names the option, before any other set-up.
func TestHandoffNeedsIDEOrigin(t *testing.T) {
	for _, ide := range []string{"", "{env.CLAUDE_TEST_SURELY_UNSET_IDE_ORIGIN}"} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := (&Handoff{IDEOrigin: ide}).Provision(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "ide_origin is required") {
			t.Errorf("Provision with ide_origin %q = %v, want an error naming ide_origin", ide, err)
		}
	}
}
