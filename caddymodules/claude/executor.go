package claude

import (
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/claude-gateway/claude-gateway/caddymodules/internal/caddyfileopt"
	"github.com/claude-gateway/claude-gateway/containerlimits"
	"github.com/claude-gateway/claude-gateway/executor"
)

func init() {
	RegisterOption("executor", parseExecutor)
}

// ExecutorConfig configures sandboxed code execution (the `executor`
// sub-option). Zero fields take the executor's defaults.
type ExecutorConfig struct {
	// Host is the Docker Engine address, e.g. "tcp://dind:2376" or
	// "unix:///var/run/docker.sock". Default: DOCKER_HOST (with
	// DOCKER_TLS_VERIFY and DOCKER_CERT_PATH), else the local socket.
	Host string `json:"host,omitempty"`

	// TLSCA, TLSCert and TLSKey are PEM files for a TLS connection to Host:
	// the CA that signed the daemon's certificate, and the client
	// certificate and key.
	TLSCA   string `json:"tls_ca,omitempty"`
	TLSCert string `json:"tls_cert,omitempty"`
	TLSKey  string `json:"tls_key,omitempty"`

	// DaemonWorkspace is where the Docker daemon sees the `workspace`
	// directory (DinD: "/workspaces"); bind mounts use it. Default: the
	// workspace's own absolute path.
	DaemonWorkspace string `json:"daemon_workspace,omitempty"`

	// Images maps a language ("python", "bash", or "default") to its
	// sandbox image. Default: python:3.11-slim for every language.
	Images map[string]string `json:"images,omitempty"`

	// Runtime is the OCI runtime of the sandboxes, e.g. "runsc" (gVisor).
	Runtime string `json:"runtime,omitempty"`

	// Helper is the path of the claude-run helper inside a session's
	// workspace container, which every run executes through. Default:
	// /usr/local/bin/claude-run.
	Helper string `json:"helper,omitempty"`

	// Limits bound the container of a run (its JSON fields memory, cpus,
	// pids and tmp_size sit in this object). Default: 256 MiB of memory
	// (swap equals it), 1 CPU, 128 processes, a 64 MiB /tmp
	// (executor.DefaultLimits).
	containerlimits.Limits

	// Timeout is a run's wall-clock limit when the request sets none.
	// Default: 30s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// MaxTimeout is the largest limit a request may ask for. Default: 5m.
	MaxTimeout caddy.Duration `json:"max_timeout,omitempty"`

	// OutputLimit caps each of stdout and stderr in bytes; past it the run
	// is killed and reported truncated. Default: 1 MiB.
	OutputLimit int64 `json:"output_limit,omitempty"`

	// Concurrency is the number of runs at once. Default: 4.
	Concurrency int `json:"concurrency,omitempty"`

	// PerUser is the number of runs at once of one user. Default: 2.
	PerUser int `json:"per_user,omitempty"`

	// Queue is how many runs may wait for a slot before requests get 429.
	// Default: 16; negative: no waiting.
	Queue int `json:"queue,omitempty"`

	// QueuePerUser is how many runs of one user may wait for a slot; past
	// it that user's runs get 429 while other users' runs still queue.
	// Default: 4 (at most Queue).
	QueuePerUser int `json:"queue_per_user,omitempty"`

	// Instance names this gateway's containers, so a restarted gateway
	// removes what its killed predecessor left. Give every replica sharing
	// a daemon its own. Default: a name generated once and kept in
	// <Caddy data directory>/claude/executor-instance.
	Instance string `json:"instance,omitempty"`

	// CleanupInterval is the period of the sweep that removes orphaned
	// sandbox containers. Default: 1m.
	CleanupInterval caddy.Duration `json:"cleanup_interval,omitempty"`

	// BuildContextLimit bounds an uploaded image build context in bytes.
	// Default: 64 MiB.
	BuildContextLimit int64 `json:"build_context_limit,omitempty"`

	// BuildTimeout bounds an image build. Default: 10m.
	BuildTimeout caddy.Duration `json:"build_timeout,omitempty"`
}

// ExecutorSettings returns the executor's configuration for this app,
// defaults and the workspace included.
func (a *App) ExecutorSettings() executor.Config {
	c := a.ExecutorConfig
	if c == nil {
		c = new(ExecutorConfig)
	}
	ws := a.Workspace
	if abs, err := filepath.Abs(ws); err == nil {
		ws = abs
	}
	return executor.Config{
		Host:            c.Host,
		TLSCA:           c.TLSCA,
		TLSCert:         c.TLSCert,
		TLSKey:          c.TLSKey,
		Workspace:       ws,
		DaemonWorkspace: c.DaemonWorkspace,
		Images:          c.Images,
		Runtime:         c.Runtime,
		Helper:          c.Helper,
		Limits:          c.Limits,
		Timeout:         time.Duration(c.Timeout),
		MaxTimeout:      time.Duration(c.MaxTimeout),
		OutputLimit:     c.OutputLimit,
		Concurrency:     c.Concurrency,
		PerUser:         c.PerUser,
		Queue:           c.Queue,
		QueuePerUser:    c.QueuePerUser,
		Instance:        c.Instance,
		CleanupInterval: time.Duration(c.CleanupInterval),
	}
}

// parseExecutor reads the `executor` block:
//
//	executor {
//	    host             tcp://dind:2376
//	    tls              <ca.pem> <cert.pem> <key.pem>
//	    daemon_workspace /workspaces
//	    image            <language> <image>
//	    runtime          runsc
//	    helper           /usr/local/bin/claude-run
//	    memory           256MiB
//	    cpus             1
//	    pids             128
//	    tmp_size         64MiB
//	    timeout          30s
//	    max_timeout      5m
//	    output_limit     1MiB
//	    concurrency      4
//	    per_user         2
//	    queue            16
//	    queue_per_user   4
//	    instance         <name>
//	    cleanup_interval 1m
//	    build_context_limit 64MiB
//	    build_timeout    10m
//	}
func parseExecutor(d *caddyfile.Dispenser, app *App) error {
	if app.ExecutorConfig == nil {
		app.ExecutorConfig = new(ExecutorConfig)
	}
	c := app.ExecutorConfig
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if ok, err := parseLimit(d, &c.Limits); ok {
			if err != nil {
				return err
			}
			continue
		}
		var err error
		switch name := d.Val(); name {
		case "host":
			if !d.AllArgs(&c.Host) {
				err = d.ArgErr()
			}
		case "tls":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 3 || len(args) == 2 {
				return d.Errf("tls takes <ca> or <ca> <cert> <key>")
			}
			c.TLSCA = args[0]
			if len(args) == 3 {
				c.TLSCert, c.TLSKey = args[1], args[2]
			}
		case "daemon_workspace":
			if !d.AllArgs(&c.DaemonWorkspace) {
				err = d.ArgErr()
			}
		case "image":
			var lang, image string
			if !d.AllArgs(&lang, &image) {
				return d.Errf("image takes <language> <image>")
			}
			if c.Images == nil {
				c.Images = map[string]string{}
			}
			c.Images[lang] = image
		case "runtime":
			if !d.AllArgs(&c.Runtime) {
				err = d.ArgErr()
			}
		case "helper":
			if !d.AllArgs(&c.Helper) {
				err = d.ArgErr()
			}
		case "output_limit":
			err = caddyfileopt.Size(d, &c.OutputLimit)
		case "build_context_limit":
			err = caddyfileopt.Size(d, &c.BuildContextLimit)
		case "concurrency":
			err = caddyfileopt.Count(d, &c.Concurrency)
		case "per_user":
			err = caddyfileopt.Count(d, &c.PerUser)
		case "queue_per_user":
			err = caddyfileopt.Count(d, &c.QueuePerUser)
		case "queue":
			if err = caddyfileopt.Count(d, &c.Queue); err == nil && c.Queue == 0 {
				c.Queue = -1 // "queue 0": no waiting (0 in JSON is the default)
			}
		case "timeout":
			err = caddyfileopt.Duration(d, &c.Timeout)
		case "max_timeout":
			err = caddyfileopt.Duration(d, &c.MaxTimeout)
		case "cleanup_interval":
			err = caddyfileopt.Duration(d, &c.CleanupInterval)
		case "build_timeout":
			err = caddyfileopt.Duration(d, &c.BuildTimeout)
		case "instance":
			if !d.AllArgs(&c.Instance) {
				err = d.ArgErr()
			}
		default:
			return d.Errf("unknown executor option %q", name)
		}
		if err != nil {
			return err
		}
	}
	if err := app.ExecutorSettings().Validate(); err != nil {
		return d.Errf("%v", err)
	}
	return nil
}
