package claude

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/audit"
	"github.com/claude-gateway/claude-gateway/caddymodules/internal/caddyfileopt"
	"github.com/claude-gateway/claude-gateway/executor"
	"github.com/claude-gateway/claude-gateway/workspaces"
)

func init() {
	RegisterOption("audit", parseAuditOption)
}

// auditWriters holds the audit writers by database, so a reload keeps the
// running writer (its buffer and its loop) instead of starting a second one.
var auditWriters = caddy.NewUsagePool()

// AuditConfig configures the audit trail (the `audit` sub-option).
type AuditConfig struct {
	// Retention is how long audit events are kept in the database; older
	// ones are deleted hourly. Default: 2160h (90 days). "forever" (-1 in
	// JSON) keeps them all.
	Retention caddy.Duration `json:"retention,omitempty"`

	// Buffer is how many events may wait to be written. Past it, new events
	// are dropped and counted in claude_gateway_audit_dropped_total: the
	// requests they describe never wait. Default: 4096.
	Buffer int `json:"buffer,omitempty"`
}

// pooledAudit lets an audit writer live in a caddy.UsagePool.
type pooledAudit struct{ *audit.Writer }

// Destruct writes what is buffered and stops the writer.
func (p pooledAudit) Destruct() error { return p.Close() }

// provisionAudit takes (or starts) the audit writer of the database,
// registers its counters and records the configuration load.
func (a *App) provisionAudit(ctx caddy.Context) error {
	c := a.AuditConfig
	if c == nil {
		c = new(AuditConfig)
	}
	if c.Buffer < 0 {
		return fmt.Errorf("claude: audit buffer must not be negative")
	}
	cfg := audit.Config{Retention: time.Duration(c.Retention), Buffer: c.Buffer}
	val, loaded, err := auditWriters.LoadOrNew(a.Database, func() (caddy.Destructor, error) {
		return pooledAudit{audit.NewWriter(a.db, a.logger.Named("audit"), cfg)}, nil
	})
	if err != nil {
		return fmt.Errorf("claude: audit: %w", err)
	}
	a.audit = val.(pooledAudit).Writer
	a.audit.SetRetention(cfg.Retention)
	w := a.audit
	for _, m := range []struct {
		name, help string
		value      func() uint64
	}{
		{"dropped_total", "Audit events lost because the audit buffer was full.", w.Dropped},
		{"failed_total", "Audit events the database refused (they are in the log only).", w.Failed},
		{"written_total", "Audit events written to the database.", w.Written},
	} {
		value := m.value
		counter := prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "claude_gateway", Subsystem: "audit", Name: m.name, Help: m.help,
		}, func() float64 { return float64(value()) })
		if err := ctx.GetMetricsRegistry().Register(counter); err != nil {
			if _, dup := err.(prometheus.AlreadyRegisteredError); !dup {
				return fmt.Errorf("claude: registering the audit metrics: %w", err)
			}
		}
	}
	outcome := "started"
	if loaded {
		outcome = "reloaded"
	}
	a.audit.Record(audit.Event{Kind: audit.ConfigLoaded, Actor: "system", Outcome: outcome})
	a.logger.Info("audit trail ready", zap.Bool("reused", loaded), zap.Duration("retention", a.audit.Retention()))
	return nil
}

// cleanupAudit releases this config's reference to the writer; it stops
// (after writing its buffer) when no config uses it any more.
func (a *App) cleanupAudit() {
	if a.audit == nil {
		return
	}
	if _, err := auditWriters.Delete(a.Database); err != nil {
		a.logger.Error("releasing the audit writer", zap.Error(err))
	}
	a.audit = nil
}

// Audit returns the audit writer: handlers record events with it (Record
// never blocks). Take it in Provision, after FromContext.
func (a *App) Audit() *audit.Writer { return a.audit }

// parseAuditOption reads the `audit` block of the `claude` option. Syntax:
//
//	audit {
//	    retention <duration>|forever
//	    buffer    <events>
//	}
func parseAuditOption(d *caddyfile.Dispenser, app *App) error {
	if app.AuditConfig == nil {
		app.AuditConfig = new(AuditConfig)
	}
	c := app.AuditConfig
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch name := d.Val(); name {
		case "retention":
			if d.CountRemainingArgs() == 1 && d.NextArg() {
				if d.Val() == "forever" {
					c.Retention = -1
					continue
				}
				d.Prev()
			}
			if err := caddyfileopt.PositiveDuration(d, &c.Retention); err != nil {
				return err
			}
		case "buffer":
			if err := caddyfileopt.PositiveCount(d, &c.Buffer); err != nil {
				return err
			}
		default:
			return d.Errf("unknown audit option %q", name)
		}
	}
	return nil
}

// runEvent is the audit event of a finished run: session, language, exit
// code, duration, timed out, OOM; never the code or its output.
func runEvent(info executor.RunInfo, res executor.Result, err error) audit.Event {
	e := audit.Event{Kind: audit.Run, ActorID: info.UserID, Subject: info.SessionID, Outcome: "exited",
		Details: map[string]string{
			"run_id":      info.RunID,
			"language":    info.Language,
			"exit_code":   strconv.Itoa(res.ExitCode),
			"duration_ms": strconv.FormatInt(res.DurationMS, 10),
			"timed_out":   strconv.FormatBool(res.TimedOut),
			"oom_killed":  strconv.FormatBool(res.OOMKilled),
			"truncated":   strconv.FormatBool(res.Truncated),
		}}
	var spec *executor.SpecError
	switch {
	case err == nil:
	case errors.As(err, &spec):
		e.Outcome = "refused: " + spec.Code
	default:
		e.Outcome = "failed"
	}
	return e
}

// workspaceEvent is the audit event of a workspace container started or
// stopped: its session, owner, container and, for a stop, why.
func workspaceEvent(c workspaces.Change) audit.Event {
	e := audit.Event{Kind: audit.WorkspaceStarted, ActorID: c.UserID, Subject: c.SessionID, Outcome: "started",
		Details: map[string]string{"container_id": c.ContainerID}}
	if !c.Running {
		e.Kind, e.Outcome = audit.WorkspaceStopped, c.Reason
	}
	return e
}

// Interface guard
var _ caddy.Destructor = pooledAudit{}
