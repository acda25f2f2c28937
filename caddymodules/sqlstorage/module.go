// Package sqlstorage is the `caddy.storage.sql` module (also registered under
// its former name `caddy.storage.mysql`): Caddy's storage (certificates,
// keys, ACME accounts, locks) in the gateway's SQL database, so
// gateway replicas sharing MySQL/MariaDB share certificates and coordinate
// their issuance instead of each ordering its own.
package sqlstorage

import (
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/caddymodules/claude"
	"github.com/claude-gateway/claude-gateway/certstore"
)

func init() {
	caddy.RegisterModule(Storage{})
	caddy.RegisterModule(MySQLStorage{})
}

// drainTimeout bounds how long a retired config's storage keeps its database
// pool open for the locks it still holds.
const drainTimeout = 5 * time.Minute

// Storage is the `caddy.storage.sql` module. Configure it with the global
// option `storage sql { … }`.
type Storage struct {
	// DSN is the database to store in, a `database` setting:
	// "mysql://user:pass@tcp(host:3306)/db" (or "sqlite:<path>" for a single
	// instance). Placeholders such as {env.CLAUDE_DATABASE} are replaced.
	// Default: the database of the `claude` app, whose pool is then shared.
	DSN string `json:"dsn,omitempty"`

	// Lease is how long a lock stays valid without renewal. A held lock is
	// renewed in the background every third of it; the lock of a replica
	// that died is taken over once its lease ran out. Default: 1m.
	Lease caddy.Duration `json:"lease,omitempty"`

	// PollInterval caps the wait between two attempts to take a lock that
	// another replica holds; waits start shorter and are jittered. Default: 1s.
	PollInterval caddy.Duration `json:"poll_interval,omitempty"`

	setting string
	storage *certstore.Storage
	logger  *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Storage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.storage.sql",
		New: func() caddy.Module { return new(Storage) },
	}
}

// MySQLStorage is the `caddy.storage.mysql` module, the name of the storage
// in configurations written before it was named `caddy.storage.sql`
// (`storage mysql { … }`); it is the same storage with the same options.
type MySQLStorage struct {
	Storage
}

// CaddyModule returns the Caddy module information.
func (MySQLStorage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.storage.mysql",
		New: func() caddy.Module { return new(MySQLStorage) },
	}
}

// Provision acquires the shared database pool and sets up the storage. Caddy
// provisions storage before any app; when no DSN is given, the `claude` app
// is loaded here, early, to learn its database.
func (s *Storage) Provision(ctx caddy.Context) error {
	s.logger = ctx.Logger()
	setting := caddy.NewReplacer().ReplaceKnown(s.DSN, "")
	if setting == "" {
		app, err := ctx.AppIfConfigured("claude")
		if err != nil {
			return fmt.Errorf("storage sql: no dsn, and no claude app to take the database from: %w", err)
		}
		setting = app.(*claude.App).Database
	}
	db, reused, err := claude.AcquireDB(ctx, setting)
	if err != nil {
		return fmt.Errorf("storage sql: %w", err)
	}

	owner := "caddy"
	if id, err := caddy.InstanceID(); err == nil {
		owner = id.String()
	} else {
		s.logger.Warn("no instance id for the lock owner", zap.Error(err))
	}
	s.storage, err = certstore.New(db, certstore.Options{
		Owner:        owner,
		Lease:        time.Duration(s.Lease),
		PollInterval: time.Duration(s.PollInterval),
		Logger:       s.logger,
	})
	if err != nil {
		// Cleanup, which Caddy runs next, only releases a pool that a
		// provisioned storage holds: give this one back here.
		if rerr := claude.ReleaseDB(setting); rerr != nil {
			s.logger.Error("releasing the storage's database pool", zap.Error(rerr))
		}
		return fmt.Errorf("storage sql: %w", err)
	}
	s.setting = setting
	s.logger.Info("certificate storage ready",
		zap.String("database", db.Redacted), zap.Bool("shared_pool", reused), zap.String("lock_owner", s.storage.Owner()))
	return nil
}

// Validate checks the lock timings.
func (s *Storage) Validate() error {
	if s.Lease < 0 || s.PollInterval < 0 {
		return errors.New("storage sql: lease and poll_interval must not be negative")
	}
	return nil
}

// CertMagicStorage returns the storage for Caddy and CertMagic.
func (s *Storage) CertMagicStorage() (certmagic.Storage, error) {
	if s.storage == nil {
		return nil, errors.New("storage sql: not provisioned")
	}
	return s.storage, nil
}

// Cleanup gives back this config's reference to the database pool — once
// the locks this storage still holds are released, since Caddy unloads the
// config before it releases the locks of a stopping process. The pool closes
// only when its last user lets go.
func (s *Storage) Cleanup() error {
	if s.setting == "" {
		return nil
	}
	setting, drained := s.setting, s.storage.Drained()
	s.setting = ""
	select {
	case <-drained:
		return claude.ReleaseDB(setting)
	default:
	}
	go func() {
		t := time.NewTimer(drainTimeout)
		defer t.Stop()
		select {
		case <-drained:
		case <-t.C:
			s.logger.Warn("closing the storage's database pool with locks still held", zap.Duration("waited", drainTimeout))
		}
		if err := claude.ReleaseDB(setting); err != nil {
			s.logger.Error("releasing the storage's database pool", zap.Error(err))
		}
	}()
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner      = (*Storage)(nil)
	_ caddy.Validator        = (*Storage)(nil)
	_ caddy.CleanerUpper     = (*Storage)(nil)
	_ caddy.StorageConverter = (*Storage)(nil)

	_ caddy.Provisioner      = (*MySQLStorage)(nil)
	_ caddy.Validator        = (*MySQLStorage)(nil)
	_ caddy.CleanerUpper     = (*MySQLStorage)(nil)
	_ caddy.StorageConverter = (*MySQLStorage)(nil)
)
