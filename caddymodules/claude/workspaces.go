package claude

import (
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/claude-gateway/claude-gateway/caddymodules/internal/caddyfileopt"
	"github.com/claude-gateway/claude-gateway/containerlimits"
	"github.com/claude-gateway/claude-gateway/workspaces"
)

func init() {
	RegisterOption("workspaces", parseWorkspaces)
	RegisterOption("workspace_idle_timeout", func(d *caddyfile.Dispenser, app *App) error {
		return caddyfileopt.Duration(d, &app.workspacesConfig().IdleTimeout)
	})
}

// WorkspacesConfig configures the session workspaces: one container per
// session on the executor's Docker engine, hosting the session's IDE and
// its runs (the `workspaces` sub-option). Zero fields take the defaults.
type WorkspacesConfig struct {
	// Image is the workspace image: code-server with python3 and bash.
	// Default: claude-workspace:4.96.2 (deploy/workspace/Dockerfile).
	Image string `json:"image,omitempty"`

	// Pull is when the image is pulled: "missing" (when the engine lacks
	// it; the default) or "never" (DinD and air-gapped engines: load it
	// beforehand).
	Pull string `json:"pull,omitempty"`

	// Runtime is the OCI runtime of the workspaces, e.g. "runsc".
	Runtime string `json:"runtime,omitempty"`

	// Network is the Docker network workspaces join, for deployments that
	// let them reach the internet (package installs). Default: none, only
	// the loopback interface.
	Network string `json:"network,omitempty"`

	// Limits bound the container of one workspace, its IDE and its runs
	// together (its JSON fields memory, cpus, pids and tmp_size sit in this
	// object). Default: 2 GiB of memory (swap equals it), 1 CPU, 512
	// processes, a 256 MiB /tmp (workspaces.DefaultLimits).
	containerlimits.Limits

	// IdleTimeout is how long a workspace runs without IDE traffic or runs
	// before it is stopped; the next visit starts it again. Default: 15m.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`

	// MaxRunning caps the running workspaces of all users, counted over
	// every replica sharing the workspace directory. Default: 20.
	MaxRunning int `json:"max_running,omitempty"`

	// MaxRunningPerUser caps the running workspaces of one user. Default: 3.
	MaxRunningPerUser int `json:"max_running_per_user,omitempty"`

	// StartWait bounds how long a start may take before the IDE answers.
	// Default: 60s.
	StartWait caddy.Duration `json:"start_wait,omitempty"`

	// ContainerPrefix starts the name of every workspace container (the
	// rest is the session id). Give each deployment sharing an engine its
	// own. Default: "claude-ws-".
	ContainerPrefix string `json:"container_prefix,omitempty"`

	// SweepInterval is the period of the sweep that stops idle workspaces
	// and removes those of sessions that are gone. Default: a quarter of
	// IdleTimeout, at most 1m.
	SweepInterval caddy.Duration `json:"sweep_interval,omitempty"`
}

func (a *App) workspacesConfig() *WorkspacesConfig {
	if a.WorkspacesConfig == nil {
		a.WorkspacesConfig = new(WorkspacesConfig)
	}
	return a.WorkspacesConfig
}

// WorkspaceSettings returns the workspace manager's configuration for this
// app: its own settings, the executor's engine, user and instance, and the
// workspace directory.
func (a *App) WorkspaceSettings() workspaces.Config {
	c := a.workspacesConfig()
	e := a.ExecutorSettings()
	ws := a.Workspace
	if abs, err := filepath.Abs(ws); err == nil {
		ws = abs
	}
	instance := e.Instance
	if a.svc.executor != nil {
		instance = a.svc.executor.Config().Instance
	}
	return workspaces.Config{
		Workspace:         ws,
		DaemonWorkspace:   e.DaemonWorkspace,
		Image:             c.Image,
		Pull:              c.Pull,
		Runtime:           c.Runtime,
		User:              e.User,
		Network:           c.Network,
		Limits:            c.Limits,
		IdleTimeout:       time.Duration(c.IdleTimeout),
		MaxRunning:        c.MaxRunning,
		MaxRunningPerUser: c.MaxRunningPerUser,
		StartWait:         time.Duration(c.StartWait),
		SweepInterval:     time.Duration(c.SweepInterval),
		Instance:          instance,
		NamePrefix:        c.ContainerPrefix,
	}
}

// parseWorkspaces reads the `workspaces` block:
//
//	workspaces {
//	    image                <image>
//	    pull                 missing|never
//	    runtime              runsc
//	    network              <docker network>
//	    memory               2GiB
//	    cpus                 1
//	    pids                 512
//	    tmp_size             256MiB
//	    idle_timeout         15m
//	    max_running          20
//	    max_running_per_user 3
//	    start_wait           60s
//	    container_prefix     claude-ws-
//	    sweep_interval       1m
//	}
func parseWorkspaces(d *caddyfile.Dispenser, app *App) error {
	c := app.workspacesConfig()
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
		case "image":
			if !d.AllArgs(&c.Image) {
				err = d.ArgErr()
			}
		case "pull":
			if !d.AllArgs(&c.Pull) {
				err = d.ArgErr()
			}
		case "runtime":
			if !d.AllArgs(&c.Runtime) {
				err = d.ArgErr()
			}
		case "network":
			if !d.AllArgs(&c.Network) {
				err = d.ArgErr()
			}
		case "container_prefix":
			if !d.AllArgs(&c.ContainerPrefix) {
				err = d.ArgErr()
			}
		case "max_running":
			err = caddyfileopt.Count(d, &c.MaxRunning)
		case "max_running_per_user":
			err = caddyfileopt.Count(d, &c.MaxRunningPerUser)
		case "idle_timeout":
			err = caddyfileopt.Duration(d, &c.IdleTimeout)
		case "start_wait":
			err = caddyfileopt.Duration(d, &c.StartWait)
		case "sweep_interval":
			err = caddyfileopt.Duration(d, &c.SweepInterval)
		default:
			return d.Errf("unknown workspaces option %q", name)
		}
		if err != nil {
			return err
		}
	}
	if err := app.WorkspaceSettings().Validate(); err != nil {
		return d.Errf("%v", err)
	}
	return nil
}
