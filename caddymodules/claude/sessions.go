package claude

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/audit"
	"github.com/claude-gateway/claude-gateway/caddymodules/internal/caddyfileopt"
	"github.com/claude-gateway/claude-gateway/sessions"
)

func init() {
	RegisterOption("sessions", parseSessions)
	for alias, name := range sessionsAliases {
		RegisterOption(alias, func(d *caddyfile.Dispenser, app *App) error {
			return sessionsOptions[name](d, app.sessionsConfig())
		})
	}
}

// sessionsOptions holds the parsers of the `sessions` block's options, named
// like their JSON fields.
var sessionsOptions = map[string]func(d *caddyfile.Dispenser, c *SessionsConfig) error{
	"timeout": func(d *caddyfile.Dispenser, c *SessionsConfig) error {
		return caddyfileopt.Duration(d, &c.Timeout)
	},
	"reap_interval": func(d *caddyfile.Dispenser, c *SessionsConfig) error {
		return caddyfileopt.Duration(d, &c.ReapInterval)
	},
	"max_sessions": func(d *caddyfile.Dispenser, c *SessionsConfig) error {
		return caddyfileopt.Count(d, &c.MaxSessions)
	},
	"max_sessions_per_user": func(d *caddyfile.Dispenser, c *SessionsConfig) error {
		return caddyfileopt.Count(d, &c.MaxSessionsPerUser)
	},
	"max_file_size": func(d *caddyfile.Dispenser, c *SessionsConfig) error {
		return caddyfileopt.Size(d, &c.MaxFileSize)
	},
	"max_history_size": func(d *caddyfile.Dispenser, c *SessionsConfig) error {
		return caddyfileopt.Size(d, &c.MaxHistorySize)
	},
	"quota": func(d *caddyfile.Dispenser, c *SessionsConfig) error {
		return caddyfileopt.Size(d, &c.Quota)
	},
}

// sessionsAliases maps the flat spellings of the sessions options, written
// directly in the `claude` block before the `sessions` block existed, to
// their names in the block. Both spellings stay valid.
var sessionsAliases = map[string]string{
	"session_timeout":       "timeout",
	"session_reap_interval": "reap_interval",
	"max_sessions":          "max_sessions",
	"max_sessions_per_user": "max_sessions_per_user",
	"max_file_size":         "max_file_size",
	"max_history_size":      "max_history_size",
	"session_quota":         "quota",
}

// parseSessions reads the `sessions` block. Syntax:
//
//	sessions {
//	    timeout               <duration>
//	    reap_interval         <duration>
//	    max_sessions          <count>
//	    max_sessions_per_user <count>
//	    max_file_size         <size>
//	    max_history_size      <size>
//	    quota                 <size>
//	}
func parseSessions(d *caddyfile.Dispenser, app *App) error {
	c := app.sessionsConfig()
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		parse, ok := sessionsOptions[d.Val()]
		if !ok {
			return d.Errf("unknown sessions option %q", d.Val())
		}
		if err := parse(d, c); err != nil {
			return err
		}
	}
	return nil
}

// sessionStores holds the session stores (and their reapers) by database and
// workspace, so a reload re-uses the running store instead of starting a
// second reaper.
var sessionStores = caddy.NewUsagePool()

// SessionsConfig configures the session workspaces. In the Caddyfile it is
// the `sessions` block of the `claude` block; the flat spellings written
// directly in the `claude` block (session_timeout, max_sessions, …,
// session_quota) remain aliases of its options.
type SessionsConfig struct {
	// Timeout is how long a session may stay idle before it and its
	// workspace are removed (`timeout`, seconds or a duration).
	// Default: 1h.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// ReapInterval is how often idle sessions are looked for, and
	// interrupted creates and uploads repaired (`reap_interval`).
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
	// together (`quota`): uploads and history appends past it get
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

// Interface guard
var _ caddy.Destructor = pooledSessions{}
