package executor

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
	DefaultTimeout     = 30 * time.Second
	DefaultMaxTimeout  = 5 * time.Minute
	DefaultOutputLimit = 1 << 20
	DefaultConcurrency = 4
	DefaultPerUser     = 2
	DefaultQueue       = 16
	// DefaultQueuePerUser bounds the waiting runs of one user: a quarter
	// of DefaultQueue, so one user cannot fill the queue for everyone.
	DefaultQueuePerUser = 4
	DefaultUser         = "1000:1000"
	DefaultImage        = "python:3.11-slim"
	// MaxCodeSize bounds the code of one run: it travels as one argument
	// of the command line, which Linux caps at 128 KiB.
	MaxCodeSize = 100 << 10
	// MaxStdinSize bounds the standard input of one run.
	MaxStdinSize = 1 << 20
)

// DefaultLimits are the limits of a run's container where Config.Limits
// leaves them zero: 256 MiB of memory, one CPU, 128 processes, a 64 MiB /tmp.
var DefaultLimits = containerlimits.Limits{Memory: 256 << 20, CPUs: 1, Pids: 128, TmpSize: 64 << 20}

// MinLimits are the floors of a run's limits: 8 MiB of memory, a hundredth
// of a CPU, 4 processes, a 1 MiB /tmp.
var MinLimits = containerlimits.Limits{Memory: 8 << 20, CPUs: 0.01, Pids: 4, TmpSize: 1 << 20}

// Config is the executor's configuration. The zero value of every field
// means its default.
type Config struct {
	// Host is the Docker Engine address ("unix:///var/run/docker.sock",
	// "tcp://dind:2376"). Empty: DOCKER_HOST, or the platform default.
	Host string
	// TLSCA, TLSCert and TLSKey are PEM files for a TLS connection to Host
	// (the server is verified against TLSCA). Empty: DOCKER_CERT_PATH and
	// DOCKER_TLS_VERIFY decide.
	TLSCA, TLSCert, TLSKey string

	// Workspace is the sessions' root directory as the gateway sees it.
	Workspace string
	// DaemonWorkspace is the same directory as the Docker daemon sees it
	// (DinD: "/workspaces"); bind sources are translated from Workspace to
	// it. Empty: the absolute Workspace (daemon on the same host).
	DaemonWorkspace string

	// Images maps a language ("python", "bash") to its image.
	// Missing languages use the "default" entry, then DefaultImage.
	Images map[string]string
	// Runtime is the OCI runtime of the sandboxes (e.g. "runsc"); empty is
	// the daemon's default.
	Runtime string
	// User is the uid:gid the code runs as; never root.
	User string

	// Limits bound the container of one run (memory, CPUs, processes,
	// /tmp). Default: DefaultLimits.
	containerlimits.Limits
	// Timeout is a run's wall-clock limit when the request gives none.
	Timeout time.Duration
	// MaxTimeout is the largest wall-clock limit a request may ask for.
	MaxTimeout time.Duration
	// OutputLimit is the cap of each of stdout and stderr, in bytes; past it
	// the run is killed and its result marked truncated.
	OutputLimit int64

	// Concurrency is the number of runs at once, over all users.
	Concurrency int
	// PerUser is the number of runs at once of one user.
	PerUser int
	// Queue is how many runs may wait for a slot; past it Run fails with
	// a *BusyError. Negative means no queue: a run that finds no free slot
	// fails at once.
	Queue int
	// QueuePerUser is how many runs of one user may wait for a slot; past
	// it that user's runs fail with a *BusyError while others still queue.
	// 0 is DefaultQueuePerUser (at most Queue).
	QueuePerUser int

	// Helper is the path of the claude-run helper inside a workspace
	// container (runs with Spec.Workspace). Default: DefaultHelper.
	Helper string

	// Instance names this gateway process among the daemon's clients; its
	// containers carry it, so a restarted gateway with the same name removes
	// what its predecessor left at once. Default: the host name; the
	// claude app gives each data directory its own (InstanceFromDir).
	Instance string
	// CleanupInterval is the period of the orphan sweep; 0 is one minute,
	// negative disables it.
	CleanupInterval time.Duration
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.Limits = c.Limits.WithDefaults(DefaultLimits)
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxTimeout == 0 {
		c.MaxTimeout = max(DefaultMaxTimeout, c.Timeout)
	}
	if c.OutputLimit == 0 {
		c.OutputLimit = DefaultOutputLimit
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.PerUser == 0 {
		c.PerUser = min(DefaultPerUser, c.Concurrency)
	}
	if c.Queue == 0 {
		c.Queue = DefaultQueue
	}
	if c.QueuePerUser == 0 {
		c.QueuePerUser = min(DefaultQueuePerUser, max(c.Queue, 0))
	}
	if c.User == "" {
		c.User = DefaultUser
	}
	if c.Helper == "" {
		c.Helper = DefaultHelper
	}
	if c.CleanupInterval == 0 {
		c.CleanupInterval = time.Minute
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
		return err
	}
	switch {
	case c.Timeout < time.Second:
		return fmt.Errorf("timeout %s is below one second", c.Timeout)
	case c.MaxTimeout < c.Timeout:
		return fmt.Errorf("max_timeout %s is below timeout %s", c.MaxTimeout, c.Timeout)
	case c.OutputLimit < 1024:
		return fmt.Errorf("output_limit %d is below 1 KiB", c.OutputLimit)
	case c.Concurrency < 1, c.PerUser < 1:
		return errors.New("concurrency and per_user must be positive")
	case c.QueuePerUser < 0:
		return fmt.Errorf("queue_per_user %d is negative", c.QueuePerUser)
	case c.PerUser > c.Concurrency:
		return fmt.Errorf("per_user %d exceeds concurrency %d", c.PerUser, c.Concurrency)
	case isRoot(c.User):
		return fmt.Errorf("user %q may not be root (nor leave the user to the image)", c.User)
	case !isSlashAbs(c.Helper):
		return fmt.Errorf("helper %q is not an absolute path", c.Helper)
	case c.DaemonWorkspace != "" && !filepath.IsAbs(c.DaemonWorkspace) && !isSlashAbs(c.DaemonWorkspace):
		return fmt.Errorf("daemon_workspace %q is not an absolute path", c.DaemonWorkspace)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("tls client certificate and key go together")
	}
	return nil
}

// Image returns the image of a language.
func (c Config) Image(language string) string {
	if img := c.Images[language]; img != "" {
		return img
	}
	if img := c.Images["default"]; img != "" {
		return img
	}
	return DefaultImage
}

// isRoot reports whether the user part of a "user[:group]" setting is root
// (by name or uid 0, however spelt) or empty, which leaves it to the image.
func isRoot(user string) bool {
	name, _, _ := strings.Cut(user, ":")
	if uid, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uid == 0
	}
	return name == "" || name == "root"
}

func isSlashAbs(p string) bool { return len(p) > 0 && p[0] == '/' }
