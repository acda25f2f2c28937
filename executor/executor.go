// Package executor runs untrusted code (Python snippets, bash commands) in
// throw-away, locked-down containers through the Docker Engine API, and builds
// the images they run from. Every container is non-root, has no capabilities,
// no network, a read-only root, bounded memory, CPU, processes, time and
// output, sees only its session's files, and is removed when its run ends;
// containers that outlive their run (a crashed gateway) are swept away.
package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"go.uber.org/zap"
)

// Labels that mark the executor's containers.
const (
	// LabelManaged marks every container the executor creates.
	LabelManaged = "org.claude-gateway.executor"
	// LabelSession holds the session id of a run.
	LabelSession = "org.claude-gateway.session"
	// LabelRun holds the run id.
	LabelRun = "org.claude-gateway.run"
	// LabelUser holds the id of the user who started the run.
	LabelUser = "org.claude-gateway.user"
	// LabelInstance holds the Config.Instance of the gateway that owns the run.
	LabelInstance = "org.claude-gateway.instance"
)

// ErrUnavailable wraps every failure to reach the Docker daemon.
var ErrUnavailable = errors.New("docker daemon unavailable")

// ErrImageMissing is returned when a language's sandbox image is not on the
// daemon (nothing is pulled).
var ErrImageMissing = errors.New("sandbox image missing")

// live holds the ids of the runs in progress in this process. It is shared
// by every Executor of the process, so a config reload's new Executor never
// takes a run of the old one for an orphan.
var live sync.Map // run id → struct{}

// Executor runs code in sandbox containers. It is safe for concurrent use.
type Executor struct {
	cfg    Config
	docker *client.Client
	logger *zap.Logger
	limits *limiter
	runs   runTable

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// New connects to the Docker daemon described by cfg (nothing is sent
// until the first call) and starts the periodic orphan sweep.
func New(cfg Config, logger *zap.Logger) (*Executor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.Instance == "" {
		host, err := os.Hostname()
		if err != nil {
			host = "gateway"
		}
		cfg.Instance = host
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	docker, err := NewDockerClient(cfg)
	if err != nil {
		return nil, err
	}
	e := &Executor{
		cfg:    cfg,
		docker: docker,
		logger: logger,
		limits: newLimiter(cfg.Concurrency, cfg.PerUser, cfg.Queue, cfg.QueuePerUser),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go e.sweepLoop()
	return e, nil
}

// NewDockerClient returns a client of the Docker Engine that cfg describes
// (Host and the TLS files, else DOCKER_HOST, DOCKER_TLS_VERIFY and
// DOCKER_CERT_PATH); nothing is sent until its first call.
func NewDockerClient(cfg Config) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv}
	if cfg.TLSCA != "" || cfg.TLSCert != "" {
		opts = append(opts, client.WithTLSClientConfig(cfg.TLSCA, cfg.TLSCert, cfg.TLSKey))
	}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	docker, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return docker, nil
}

// Docker returns the executor's Docker Engine client, for the services that
// share its engine (the session workspaces). It stays open until Close.
func (e *Executor) Docker() *client.Client { return e.docker }

// Config returns the executor's configuration, defaults applied.
func (e *Executor) Config() Config { return e.cfg }

// IsAvailable reports whether the Docker daemon answers; the error says why not.
func (e *Executor) IsAvailable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := e.docker.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Stats is the executor's load.
type Stats struct {
	// Running is the number of runs holding a slot.
	Running int `json:"running"`
	// Queued is the number of runs waiting for one.
	Queued int `json:"queued"`
	// Concurrency is the global limit.
	Concurrency int `json:"concurrency"`
	// PerUser is the per-user limit.
	PerUser int `json:"per_user"`
	// Queue is the size of the wait queue.
	Queue int `json:"queue"`
	// QueuePerUser bounds the waiting runs of one user.
	QueuePerUser int `json:"queue_per_user"`
}

// Stats returns the executor's current load.
func (e *Executor) Stats() Stats {
	r, q := e.limits.stats()
	return Stats{Running: r, Queued: q, Concurrency: e.cfg.Concurrency, PerUser: e.cfg.PerUser, Queue: max(e.cfg.Queue, 0), QueuePerUser: e.cfg.QueuePerUser}
}

// Close stops the orphan sweep and releases idle connections. Runs in
// progress are not touched: they finish, and remove their containers, on
// their own.
func (e *Executor) Close() error {
	e.stopOnce.Do(func() { close(e.stop) })
	<-e.done
	return e.docker.Close()
}

// unavailable marks errors that mean the daemon could not be reached.
func unavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	if client.IsErrConnectionFailed(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}
