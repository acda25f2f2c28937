package sqlstorage

import (
	"context"
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/claude-gateway/claude-gateway/caddymodules/claude"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// TestPoolSharing: the storage shares the setting's pool with its other
// users (here, what the claude app holds), and its Cleanup never closes a
// pool still in use — not by another user, nor by a lock it still holds.
func TestPoolSharing(t *testing.T) {
	setting := testenv.MySQLDatabase(t)
	bg := context.Background()
	appDB, _, err := claude.AcquireDB(bg, setting)
	if err != nil {
		t.Fatal(err)
	}
	appReleased := false
	t.Cleanup(func() {
		if !appReleased {
			claude.ReleaseDB(setting)
		}
	})

	provision := func() *Storage {
		t.Helper()
		ctx, cancel := caddy.NewContext(caddy.Context{Context: bg})
		t.Cleanup(cancel)
		s := &Storage{DSN: setting}
		if err := s.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		return s
	}

	// A storage comes and goes while the app keeps the pool.
	s := provision()
	cm, err := s.CertMagicStorage()
	if err != nil {
		t.Fatal(err)
	}
	if err := cm.Store(bg, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := appDB.PingContext(bg); err != nil {
		t.Fatalf("the storage's Cleanup closed the pool the app still uses: %v", err)
	}

	// A storage that still holds a lock keeps the pool past its Cleanup,
	// until the lock is released, even when it is the pool's last user.
	s = provision()
	cm, _ = s.CertMagicStorage()
	if err := cm.Lock(bg, "issue_cert_app.test"); err != nil {
		t.Fatal(err)
	}
	appReleased = true
	if err := claude.ReleaseDB(setting); err != nil {
		t.Fatal(err)
	}
	if err := s.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := appDB.PingContext(bg); err != nil {
		t.Fatalf("the pool closed while the storage held a lock: %v", err)
	}
	if err := cm.Unlock(bg, "issue_cert_app.test"); err != nil {
		t.Fatalf("Unlock after Cleanup: %v", err)
	}
	// The deferred release runs in the background once the lock is gone.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && appDB.PingContext(bg) == nil; {
		time.Sleep(10 * time.Millisecond)
	}
	if err := appDB.PingContext(bg); err == nil {
		t.Fatal("the pool stayed open after its last user let go")
	}
	if _, err := cm.Load(bg, "k"); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load on a closed pool = %v, want a database error", err)
	}
}

func TestProvisionWithoutDatabase(t *testing.T) {
	// Outside a config (as `caddy storage export` provisions storage), no
	// dsn and no claude app is a clear error.
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := (&Storage{}).Provision(ctx)
	if err == nil || !errors.Is(err, caddy.ErrNotConfigured) {
		t.Fatalf("Provision without dsn or app = %v, want an error wrapping ErrNotConfigured", err)
	}
	if err := (&Storage{DSN: "postgres://x"}).Provision(ctx); err == nil {
		t.Fatal("Provision with an unknown scheme succeeded")
	}
	if err := (&Storage{Lease: -1}).Validate(); err == nil {
		t.Fatal("a negative lease validated")
	}
}

// TestFailedProvisionCleansUp: when Provision fails after it took the
// database pool (here: a lease certstore refuses), Caddy calls Cleanup on
// the half-provisioned module. Cleanup must not panic, and the pool must be
// given back, not leaked.
func TestFailedProvisionCleansUp(t *testing.T) {
	setting := testenv.SQLiteDatabase(t)
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	s := &Storage{DSN: setting, Lease: caddy.Duration(100 * time.Millisecond)}
	if err := s.Provision(ctx); err == nil {
		t.Fatal("Provision with a 100ms lease succeeded")
	}
	if err := s.Cleanup(); err != nil {
		t.Fatalf("Cleanup after a failed Provision: %v", err)
	}
	db, reused, err := claude.AcquireDB(context.Background(), setting)
	if err != nil {
		t.Fatal(err)
	}
	defer claude.ReleaseDB(setting)
	if reused {
		t.Fatal("the failed Provision kept a reference to the pool: it would never close")
	}
	if err := db.PingContext(context.Background()); err != nil {
		t.Fatal(err)
	}
}
