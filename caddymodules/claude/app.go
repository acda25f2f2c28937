// Package claude is the `claude` Caddy app: it owns what outlives a request and
// must survive a config reload — the database pool, the health registry, the
// audit trail, the session store, the auth service, the executor and the
// session workspaces — and shares them with the gateway's handlers.
package claude

import (
	"fmt"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/audit"
	"github.com/claude-gateway/claude-gateway/database"
	"github.com/claude-gateway/claude-gateway/health"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the `claude` app. Configure it with the `claude` global option.
type App struct {
	// Database selects the gateway's store: "sqlite:<path>" (embedded, the
	// default, in Caddy's data directory) or
	// "mysql://user:pass@tcp(host:3306)/db" for MySQL 8.0 / MariaDB 10.11,
	// which replicas share. Global placeholders ({env.*}, {file.*}) are
	// expanded at provisioning, so the password may come from a secret file.
	Database string `json:"database,omitempty"`

	// Workspace is the directory that holds the session workspaces
	// (<workspace>/sessions/session-<id>/). Default: "./workspace".
	Workspace string `json:"workspace,omitempty"`

	// SessionsConfig configures the session workspaces: idle timeout, caps,
	// file size and quota (the session_* and max_* options; see sessions.go).
	// Nil means the defaults.
	SessionsConfig *SessionsConfig `json:"sessions,omitempty"`

	// AuthConfig configures access tokens, refresh tokens and login
	// regulation (the `auth` sub-option; see auth.go). Nil means the defaults.
	AuthConfig *AuthConfig `json:"auth,omitempty"`

	// ExecutorConfig configures sandboxed code execution (the `executor`
	// sub-option; see executor.go). Nil means the defaults.
	ExecutorConfig *ExecutorConfig `json:"executor,omitempty"`

	// WorkspacesConfig configures the session workspaces, one container per
	// session hosting its IDE and its runs (the `workspaces` sub-option; see
	// workspaces.go). Nil means the defaults.
	WorkspacesConfig *WorkspacesConfig `json:"workspaces,omitempty"`

	// AuditConfig configures the audit trail (the `audit` sub-option; see
	// audit.go). Nil means the defaults.
	AuditConfig *AuditConfig `json:"audit,omitempty"`

	svc    services
	db     *database.DB
	audit  *audit.Writer
	health *health.Registry
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "claude",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision opens (or re-uses) the database pool and applies migrations.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	if a.Database == "" {
		a.Database = DefaultDatabase()
	}
	// Global placeholders let the password come from a secret file, e.g.
	// mysql://claude:{file./run/secrets/mysql_password}@tcp(mysql:3306)/db,
	// so it is neither in the environment nor in the autosaved config.
	a.Database = caddy.NewReplacer().ReplaceKnown(a.Database, "")
	if a.Workspace == "" {
		a.Workspace = "./workspace"
	}
	db, loaded, err := AcquireDB(ctx, a.Database)
	if err != nil {
		return fmt.Errorf("claude: %w", err)
	}
	a.db = db
	a.logger.Info("database ready", zap.String("database", a.db.Redacted), zap.Bool("reused", loaded))

	a.health = health.NewRegistry()
	a.health.Register("database", true, a.db.PingContext)
	if err := a.provisionAudit(ctx); err != nil {
		return err
	}
	if err := a.provisionSessions(ctx); err != nil {
		return err
	}
	return nil
}

// Start implements caddy.App.
func (a *App) Start() error { return nil }

// Stop implements caddy.App.
func (a *App) Stop() error { return nil }

// Cleanup releases this config's reference to the database pool; the pool
// closes when no config uses it any more.
func (a *App) Cleanup() error {
	if a.db == nil {
		return nil
	}
	a.cleanupServices()
	a.cleanupSessions()
	a.cleanupAudit()
	return ReleaseDB(a.Database)
}

// DB returns the shared database pool.
func (a *App) DB() *database.DB { return a.db }

// Health returns the registry of the checks behind /api/health and /api/ready.
func (a *App) Health() *health.Registry { return a.health }

// Logger returns the app's logger.
func (a *App) Logger() *zap.Logger { return a.logger }

// DefaultDatabase is the embedded SQLite file in Caddy's data directory.
func DefaultDatabase() string {
	return "sqlite:" + filepath.Join(caddy.AppDataDir(), "claude", "gateway.db")
}

// FromContext returns the `claude` app of the config being provisioned,
// loading it with its defaults when the config has no `claude` option.
func FromContext(ctx caddy.Context) (*App, error) {
	v, err := ctx.App("claude")
	if err != nil {
		return nil, fmt.Errorf("loading the claude app: %w", err)
	}
	return v.(*App), nil
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
