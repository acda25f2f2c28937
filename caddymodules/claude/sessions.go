package claude

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/audit"
	"github.com/claude-gateway/claude-gateway/sessions"
)

func init() {
	RegisterOption("session_timeout", func(d *caddyfile.Dispenser, app *App) error {
		return parseSeconds(d, &app.sessionsConfig().Timeout)
	})
	RegisterOption("session_reap_interval", func(d *caddyfile.Dispenser, app *App) error {
		return parseSeconds(d, &app.sessionsConfig().ReapInterval)
	})
	RegisterOption("max_sessions", func(d *caddyfile.Dispenser, app *App) error {
		return parseCount(d, &app.sessionsConfig().MaxSessions)
	})
	RegisterOption("max_sessions_per_user", func(d *caddyfile.Dispenser, app *App) error {
		return parseCount(d, &app.sessionsConfig().MaxSessionsPerUser)
	})
	RegisterOption("max_file_size", func(d *caddyfile.Dispenser, app *App) error {
		return parseBytes(d, &app.sessionsConfig().MaxFileSize)
	})
	RegisterOption("max_history_size", func(d *caddyfile.Dispenser, app *App) error {
		return parseBytes(d, &app.sessionsConfig().MaxHistorySize)
	})
	RegisterOption("session_quota", func(d *caddyfile.Dispenser, app *App) error {
		return parseBytes(d, &app.sessionsConfig().Quota)
	})
}

// sessionStores holds the session stores (and their reapers) by database and
// workspace, so a reload re-uses the running store instead of starting a
// second reaper.
var sessionStores = caddy.NewUsagePool()

// SessionsConfig configures the session workspaces. In the Caddyfile its
// fields are the session_* and max_* options of the `claude` block.
type SessionsConfig struct {
	// Timeout is how long a session may stay idle before it and its
	// workspace are removed (`session_timeout`, seconds or a duration).
	// Default: 1h.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// ReapInterval is how often idle sessions are looked for, and
	// interrupted creates and uploads repaired (`session_reap_interval`).
	// Default: a quarter of Timeout, at most 1m.
	ReapInterval caddy.Duration `json:"reap_interval,omitempty"`

	// MaxSessions caps the sessions of all users together (`max_sessions`).
	// Default: 100.
	MaxSessions int `json:"max_sessions,omitempty"`

	// MaxSessionsPerUser caps the sessions of one user
	// (`max_sessions_per_user`), so one user cannot take every session.
	// Default: 10 (at most MaxSessions).
	MaxSessionsPerUser int `json:"max_sessions_per_user,omitempty"`

	// MaxFileSize bounds one uploaded file, in bytes (`max_file_size`, bytes
	// or a size such as 10MiB). Default: 10485760 (10 MiB).
	MaxFileSize int64 `json:"max_file_size,omitempty"`

	// MaxHistorySize bounds one session's history
	// (.claude/history.json) in bytes (`max_history_size`); an append past
	// it is refused with 413. Default: 33554432 (32 MiB).
	MaxHistorySize int64 `json:"max_history_size,omitempty"`

	// Quota bounds the bytes of one session, its files/ and its history
	// together (`session_quota`): uploads and history appends past it get
	// 507, a run that writes past it is killed, and the session then gets
	// 507 for uploads and runs until files are removed. Default: 0, no
	// quota.
	Quota int64 `json:"quota,omitempty"`

	store *sessions.Store // this config's reference into sessionStores
	key   string          // its key there
}

// pooledSessions lets a session store live in a caddy.UsagePool.
type pooledSessions struct{ *sessions.Store }

// Destruct stops the reaper and closes the store.
func (p pooledSessions) Destruct() error { return p.Close() }

func (a *App) sessionsConfig() *SessionsConfig {
	if a.SessionsConfig == nil {
		a.SessionsConfig = new(SessionsConfig)
	}
	return a.SessionsConfig
}

// provisionSessions opens (or re-uses and reconfigures) the session store
// and registers the active_sessions gauge in this config's metrics registry.
func (a *App) provisionSessions(ctx caddy.Context) error {
	conf := a.sessionsConfig()
	cfg := sessions.Config{
		Timeout:            time.Duration(conf.Timeout),
		MaxSessions:        conf.MaxSessions,
		MaxSessionsPerUser: conf.MaxSessionsPerUser,
		MaxFileSize:        conf.MaxFileSize,
		MaxHistorySize:     conf.MaxHistorySize,
		Quota:              conf.Quota,
	}
	if cfg.MaxSessions < 0 || cfg.MaxSessionsPerUser < 0 || cfg.MaxFileSize < 0 || cfg.MaxHistorySize < 0 || cfg.Quota < 0 || conf.Timeout < 0 {
		return fmt.Errorf("claude: session limits must not be negative")
	}
	interval := time.Duration(conf.ReapInterval)
	if interval <= 0 {
		timeout := cfg.Timeout
		if timeout <= 0 {
			timeout = sessions.DefaultTimeout
		}
		interval = max(min(timeout/4, time.Minute), 100*time.Millisecond)
	}
	ws, err := filepath.Abs(a.Workspace)
	if err != nil {
		return fmt.Errorf("claude: workspace %q: %w", a.Workspace, err)
	}
	key := a.Database + "\x00" + ws
	logger := a.logger.Named("sessions")
	val, loaded, err := sessionStores.LoadOrNew(key, func() (caddy.Destructor, error) {
		st, err := sessions.New(a.db, ws, cfg, logger)
		if err != nil {
			return nil, err
		}
		repairCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if _, err := st.StartupRepair(repairCtx); err != nil {
			st.Close()
			return nil, err
		}
		return pooledSessions{st}, nil
	})
	if err != nil {
		return fmt.Errorf("claude: sessions: %w", err)
	}
	conf.key = key
	conf.store = val.(pooledSessions).Store
	if loaded {
		conf.store.SetConfig(cfg)
	}
	conf.store.StartReaper(interval)
	trail := a.audit
	conf.store.OnExpire(func(id, userID string) {
		trail.Record(audit.Event{Kind: audit.SessionExpired, Actor: "system", Subject: id,
			Details: map[string]string{"owner_id": userID}})
	})
	logger.Info("session store ready", zap.String("dir", conf.store.Dir()), zap.Bool("reused", loaded),
		zap.Duration("reap_interval", interval))

	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "claude",
		Name:      "active_sessions",
		Help:      "Number of live sessions (all replicas sharing the database).",
	}, activeSessions(conf.store, logger))
	if err := ctx.GetMetricsRegistry().Register(gauge); err != nil {
		if _, dup := err.(prometheus.AlreadyRegisteredError); !dup {
			return fmt.Errorf("claude: registering the active_sessions gauge: %w", err)
		}
	}
	return nil
}

// activeSessions reads the gauge's value; a failed count keeps the last one.
func activeSessions(st *sessions.Store, logger *zap.Logger) func() float64 {
	var last atomic.Int64
	return func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := st.Count(ctx)
		if err != nil {
			logger.Warn("counting sessions for the active_sessions gauge", zap.Error(err))
			return float64(last.Load())
		}
		last.Store(int64(n))
		return float64(n)
	}
}

// cleanupSessions releases this config's reference to the session store; the
// store and its reaper stop when no config uses them any more.
func (a *App) cleanupSessions() {
	conf := a.SessionsConfig
	if conf == nil || conf.store == nil {
		return
	}
	if _, err := sessionStores.Delete(conf.key); err != nil {
		a.logger.Error("releasing the session store", zap.Error(err))
	}
	conf.store = nil
}

// Sessions returns the session store: sessions, their workspaces and files.
// Handlers take it in Provision, after FromContext.
func (a *App) Sessions() *sessions.Store { return a.sessionsConfig().store }

// parseSeconds reads a duration: a bare integer is seconds (as the
// SESSION_TIMEOUT environment variable is), anything else a Go duration.
func parseSeconds(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	var s string
	if err := OneArg(d, &s); err != nil {
		return err
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return d.Errf("%s must not be negative", s)
		}
		*dst = caddy.Duration(time.Duration(n) * time.Second)
		return nil
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil || dur < 0 {
		return d.Errf("%q is neither seconds nor a duration", s)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// parseCount reads a non-negative integer.
func parseCount(d *caddyfile.Dispenser, dst *int) error {
	var s string
	if err := OneArg(d, &s); err != nil {
		return err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return d.Errf("%q is not a non-negative integer", s)
	}
	*dst = n
	return nil
}

// parseBytes reads a size: bytes, or a number with a unit such as 10MiB.
func parseBytes(d *caddyfile.Dispenser, dst *int64) error {
	var s string
	if err := OneArg(d, &s); err != nil {
		return err
	}
	n, err := humanize.ParseBytes(s)
	if err != nil || n > 1<<62 {
		return d.Errf("%q is not a size in bytes", s)
	}
	*dst = int64(n)
	return nil
}

// Interface guard
var _ caddy.Destructor = pooledSessions{}
