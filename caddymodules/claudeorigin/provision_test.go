package claudeorigin

import (
	"context"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestProvisionNeedsAppOrigin: no app origin — none given, or an environment
// variable that is not set — is refused at load time, naming the handler.
func TestProvisionNeedsAppOrigin(t *testing.T) {
	for _, app := range []string{"", "{env.CLAUDE_TEST_SURELY_UNSET_APP_ORIGIN}"} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := (&Handler{AppOrigin: app}).Provision(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "claude_origin: origin: the app origin is required") {
			t.Errorf("Provision with app_origin %q = %v", app, err)
		}
	}
}
