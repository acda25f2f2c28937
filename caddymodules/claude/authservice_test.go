package claude

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// provisionApp provisions a `claude` app on setting and workspace, as one
// config load does, and cleans it up when the test ends unless done first.
func provisionApp(t *testing.T, setting, workspace string) (*App, func()) {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	app := &App{Database: setting, Workspace: workspace}
	if err := app.Provision(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := false
	cleanup := func() {
		if done {
			return
		}
		done = true
		if err := app.Cleanup(); err != nil {
			t.Error(err)
		}
		cancel()
	}
	t.Cleanup(cleanup)
	return app, cleanup
}

// TestAuthServiceOwnedByApp: Auth builds the service once per config, with
// the "revocations" check registered; a second config on the same database
// (a reload) shares the revocation list and its loop and creates no second
// admin; the state goes when the last config is cleaned up.
func TestAuthServiceOwnedByApp(t *testing.T) {
	t.Setenv("SECRET_KEY", strings.Repeat("k", 32))
	t.Setenv("SECRET_KEY_FILE", "")
	t.Setenv("CLAUDE_ADMIN_PASSWORD", "first-admin-password")
	setting, ws := testenv.SQLiteDatabase(t), t.TempDir()

	old, cleanupOld := provisionApp(t, setting, ws)
	if slices.Contains(old.Health().Names(), "revocations") {
		t.Fatal(`"revocations" registered before anything asked for the auth service`)
	}
	svc, err := old.Auth()
	if err != nil {
		t.Fatal(err)
	}
	if again, err := old.Auth(); err != nil || again != svc {
		t.Fatalf("second Auth of one config: %p, %v; want the same service %p", again, err, svc)
	}
	if !slices.Contains(old.Health().Names(), "revocations") {
		t.Fatalf(`no "revocations" health check: %v`, old.Health().Names())
	}
	ctx := context.Background()
	if n, err := svc.Users.Count(ctx); err != nil || n != 1 {
		t.Fatalf("%d users (%v) after the first Auth, want the first admin", n, err)
	}
	if err := svc.Revocations.RevokeSession(ctx, "sid-before-reload"); err != nil {
		t.Fatal(err)
	}

	// A reload: the new config is provisioned before the old is cleaned up.
	t.Setenv("CLAUDE_ADMIN_PASSWORD", "") // a second admin would get a generated password
	next, cleanupNext := provisionApp(t, setting, ws)
	nsvc, err := next.Auth()
	if err != nil {
		t.Fatal(err)
	}
	if nsvc == svc || nsvc.Revocations != svc.Revocations {
		t.Fatal("the reloaded config did not get its own service over the shared revocation list")
	}
	cleanupOld()
	if !nsvc.Revocations.SessionRevoked("sid-before-reload") {
		t.Fatal("a revocation made before the reload is forgotten")
	}
	if n, err := nsvc.Users.Count(ctx); err != nil || n != 1 {
		t.Fatalf("%d users (%v) after the reload, want the one admin", n, err)
	}
	if _, err := nsvc.Login(ctx, "admin", "first-admin-password", "192.0.2.1"); err != nil {
		t.Fatalf("the first admin's password no longer works: %v", err)
	}
	if n, _ := authStates.References(setting); n != 1 {
		t.Fatalf("%d references to the auth state with one config left, want 1", n)
	}
	cleanupNext()
	if n, ok := authStates.References(setting); ok {
		t.Fatalf("the auth state is still pooled (%d references) after the last config's cleanup", n)
	}
}
