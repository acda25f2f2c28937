package workspaces

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/claude-gateway/claude-gateway/containerlimits"
)

// Defaults of the zero Config fields.
const (
	// DefaultImage is the production workspace image: code-server 4.96.2
	// with python3, built from deploy/workspace/Dockerfile.
	DefaultImage = "claude-workspace:4.96.2"
	// LocalImage is the stand-in image `make workspace-image` builds.
	LocalImage        = "claude-workspace:local"
	DefaultUser       = "1000:1000"
	DefaultIdle       = 15 * time.Minute
	DefaultMaxRunning = 20
	DefaultPerUser    = 3
	DefaultStartWait  = 60 * time.Second
	DefaultNamePrefix = "claude-ws-"
)

// DefaultLimits are the limits of a workspace's container where
// Config.Limits leaves them zero: 2 GiB of memory, one CPU, 512 processes,
// a 256 MiB /tmp.
var DefaultLimits = containerlimits.Limits{Memory: 2 << 30, CPUs: 1, Pids: 512, TmpSize: 256 << 20}

// MinLimits are the floors of a workspace's limits: 64 MiB of memory (the
// IDE alone needs more), a hundredth of a CPU, 16 processes, a 1 MiB /tmp.
var MinLimits = containerlimits.Limits{Memory: 64 << 20, CPUs: 0.01, Pids: 16, TmpSize: 1 << 20}

// maxSocketPath is the longest unix socket path Linux accepts.
const maxSocketPath = 107

// Pull policies: when the manager asks the engine to pull the image.
const (
	// PullMissing pulls the image when the engine does not have it.
	PullMissing = "missing"
	// PullNever never pulls: the image must be loaded into the engine
	// beforehand (DinD, air-gapped engines, tests).
	PullNever = "never"
)

// Config configures the workspace containers. The zero value of every field
// means its default.
type Config struct {
	// Workspace is the directory holding the sessions' directories
	// (<Workspace>/sessions/<id>/) as the gateway sees it.
	Workspace string
	// DaemonWorkspace is the same directory as the Docker daemon sees it
	// (DinD: "/workspaces"). Empty: Workspace (daemon on the same host).
	DaemonWorkspace string

	// Image is the workspace image: code-server with python3 and bash.
	// Default: DefaultImage.
	Image string
	// Pull is PullMissing (the default) or PullNever.
	Pull string
	// Runtime is the OCI runtime of the containers (e.g. "runsc"); empty is
	// the daemon's default.
	Runtime string
	// User is the uid:gid everything in the container runs as; never root.
	User string
	// Network is the Docker network a workspace joins; empty means none at
	// all (only the loopback interface). Set it only where workspaces may
	// reach the internet (package installs).
	Network string

	// Limits bound the container of one workspace, its IDE and its runs
	// together (memory, CPUs, processes, /tmp). Default: DefaultLimits.
	containerlimits.Limits

	// IdleTimeout is how long a workspace runs without IDE traffic or runs
	// before it is stopped. Default: 15m.
	IdleTimeout time.Duration
	// MaxRunning caps the running workspaces of the workspace directory
	// (every replica sharing it counts), all users together. Default: 20.
	MaxRunning int
	// MaxRunningPerUser caps the running workspaces of one user. Default: 3.
	MaxRunningPerUser int
	// StartWait bounds how long EnsureIDE waits for the IDE to answer after
	// a start. Default: 60s.
	StartWait time.Duration
	// SweepInterval is the period of the idle and orphan sweep. Default: a
	// quarter of IdleTimeout, at most one minute; negative disables it.
	SweepInterval time.Duration

	// Instance names this gateway process among the engine's clients; its
	// containers carry it.
	Instance string
	// NamePrefix starts every container name; the rest is the session id,
	// so the engine itself refuses a second container for one session.
	// Default: "claude-ws-".
	NamePrefix string
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Image == "" {
		c.Image = DefaultImage
	}
	if c.Pull == "" {
		c.Pull = PullMissing
	}
	if c.User == "" {
		c.User = DefaultUser
	}
	c.Limits = c.Limits.WithDefaults(DefaultLimits)
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdle
	}
	if c.MaxRunning == 0 {
		c.MaxRunning = DefaultMaxRunning
	}
	if c.MaxRunningPerUser == 0 {
		c.MaxRunningPerUser = min(DefaultPerUser, c.MaxRunning)
	}
	if c.StartWait == 0 {
		c.StartWait = DefaultStartWait
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = max(min(c.IdleTimeout/4, time.Minute), 100*time.Millisecond)
	}
	if c.NamePrefix == "" {
		c.NamePrefix = DefaultNamePrefix
	}
	if c.Workspace != "" {
		if abs, err := filepath.Abs(c.Workspace); err == nil {
			c.Workspace = abs
		}
		if c.DaemonWorkspace == "" {
			c.DaemonWorkspace = c.Workspace
		}
	}
	return c
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	c = c.withDefaults()
	if err := c.Limits.Validate(MinLimits); err != nil {
		return fmt.Errorf("workspaces: %w", err)
	}
	switch {
	case c.Workspace == "":
		return errors.New("workspaces: the sessions' workspace directory is not set")
	case c.Pull != PullMissing && c.Pull != PullNever:
		return fmt.Errorf("workspaces: pull policy %q is neither %q nor %q", c.Pull, PullMissing, PullNever)
	case c.IdleTimeout < time.Second:
		return fmt.Errorf("workspaces: idle timeout %s is below one second", c.IdleTimeout)
	case c.MaxRunning < 1, c.MaxRunningPerUser < 1:
		return errors.New("workspaces: max_running and max_running_per_user must be positive")
	case c.MaxRunningPerUser > c.MaxRunning:
		return fmt.Errorf("workspaces: max_running_per_user %d exceeds max_running %d", c.MaxRunningPerUser, c.MaxRunning)
	case c.StartWait < time.Second:
		return fmt.Errorf("workspaces: start wait %s is below one second", c.StartWait)
	case c.Network == "host" || strings.HasPrefix(c.Network, "container:"):
		return fmt.Errorf("workspaces: network %q would share another namespace", c.Network)
	case !strings.HasPrefix(c.DaemonWorkspace, "/"):
		return fmt.Errorf("workspaces: daemon workspace %q is not an absolute path", c.DaemonWorkspace)
	}
	if _, _, err := ids(c.User); err != nil {
		return err
	}
	return nil
}

// ids parses a numeric "uid:gid" that is not root.
func ids(user string) (uid, gid int, err error) {
	u, g, ok := strings.Cut(user, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return 0, 0, fmt.Errorf("workspaces: user %q is not a numeric uid:gid", user)
	}
	if uid == 0 {
		return 0, 0, fmt.Errorf("workspaces: user %q may not be root", user)
	}
	return uid, gid, nil
}

// MissingImageHint is the sentence that tells an operator how to get image
// onto the engine under the pull policy pull; it suggests the policy
// "missing" only where it is not already the one in force.
func MissingImageHint(image, pull string) string {
	if image == LocalImage {
		return "build it with `make workspace-image` (for DinD, then `make dind-workspace-image`)"
	}
	hint := fmt.Sprintf("build it with `docker build -t %s -f deploy/workspace/Dockerfile .` (for DinD, then `make dind-workspace-image WORKSPACE_IMAGE=%s`)", image, image)
	if pull != PullMissing {
		hint += fmt.Sprintf(", or set the pull policy to %q where the engine reaches a registry", PullMissing)
	}
	return hint
}
