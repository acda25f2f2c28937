// Package workspaces runs one container per session through the Docker Engine
// API: the session's workspace, which hosts its IDE (code-server listening on
// a unix socket the gateway proxies to) and its runs (through the run server
// it starts in each workspace, runserver.go, or docker exec). A
// workspace mounts only its session's files/ (at /workspace) and IDE state
// (at /home/coder), runs as a non-root user with no capabilities, a read-only
// root, bounded memory, CPU and processes, and has no network unless one is
// configured. It is started on demand, stopped when idle, and removed with
// its session; containers left by a killed gateway are adopted or removed.
package workspaces

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/sessions"
)

// Labels that mark workspace containers.
const (
	// LabelManaged marks every workspace container ("1").
	LabelManaged = "org.claude-gateway.workspace"
	// LabelSession holds the session id.
	LabelSession = "org.claude-gateway.session"
	// LabelUser holds the id of the session's owner.
	LabelUser = "org.claude-gateway.user"
	// LabelInstance holds the Config.Instance of the gateway that created it.
	LabelInstance = "org.claude-gateway.instance"
	// LabelRoot holds the workspace directory (as the daemon sees it) whose
	// session the container serves: the sweep of a gateway touches only the
	// containers of its own directory, never another deployment's (or
	// another test's) on the same engine.
	LabelRoot = "org.claude-gateway.workspace.root"
)

// Paths inside a workspace container.
const (
	// FilesDir is where the session's files/ are mounted: the IDE's folder
	// and the working directory of runs.
	FilesDir = "/workspace"
	// HomeDir is where the session's IDE state is mounted (HOME).
	HomeDir = "/home/coder"
	// socketName is code-server's socket inside HomeDir.
	socketName = ".code-server.sock"
)

// Names inside a session's directory (<Workspace>/sessions/<id>/).
const (
	filesSubdir = "files"
	// ideSubdir holds the IDE's state and socket; mounted at HomeDir.
	ideSubdir = "ide"
	// linkName is the gateway's own hard link to the IDE socket, beside
	// the mounts, where nothing in the container can replace it.
	linkName = "ide.sock"
)

// Errors of Ensure and EnsureIDE.
var (
	// ErrUnavailable wraps every failure to reach the Docker daemon.
	ErrUnavailable = errors.New("docker daemon unavailable")
	// ErrImageMissing is returned when the workspace image is not on the
	// engine and may not (or could not) be pulled; the message names the
	// command that fixes it.
	ErrImageMissing = errors.New("workspace image missing")
	// ErrNotReady is returned by EnsureIDE when the IDE did not answer
	// within the wait; the workspace keeps starting.
	ErrNotReady = errors.New("the IDE is still starting")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("workspace manager closed")
)

// LimitError is returned when a cap on running workspaces refuses a start.
type LimitError struct {
	// PerUser is set when the user's own cap was reached, clear when the
	// cap of all users was.
	PerUser bool
	// Limit is the cap that was reached.
	Limit int
	// RetryAfter is a fair time to try again.
	RetryAfter time.Duration
}

// Error describes the cap.
func (e *LimitError) Error() string {
	if e.PerUser {
		return fmt.Sprintf("you already have %d running workspaces; close one or wait until one stops", e.Limit)
	}
	return fmt.Sprintf("all %d workspaces are in use; try again shortly", e.Limit)
}

// Spec names the session whose workspace is wanted. The caller has checked
// that UserID owns SessionID.
type Spec struct {
	// SessionID is the session's id ("session-…").
	SessionID string
	// UserID is the id of the session's owner; it labels the container and
	// keys the per-user cap.
	UserID string
}

// Workspace is a session's running container.
type Workspace struct {
	// SessionID and UserID are the Spec's.
	SessionID, UserID string
	// ContainerID is the engine's id of the container; runs are
	// `docker exec` in it, as User, in FilesDir.
	ContainerID string
	// Name is the container's name: NamePrefix + SessionID.
	Name string
	// User is the uid:gid processes in the workspace run as.
	User string
	// Socket is the IDE's unix socket as the gateway dials it (a reverse
	// proxy upstream "unix/" + Socket). It answers once EnsureIDE returned.
	Socket string
	// RunSocket, when not empty, is the run server's unix socket as the
	// gateway dials it (see runner.Serve); it answered for this container
	// start. Empty: runs are docker execs of RunHelper.
	RunSocket string
}

// SessionIndex reports the sessions that exist and when each was last used
// (over every replica sharing the database). The manager removes the
// containers of sessions not in it and stops those idle for IdleTimeout.
type SessionIndex func(ctx context.Context) (map[string]time.Time, error)

// Manager creates, starts, stops and removes the workspace containers. It is
// safe for concurrent use; one per engine and process is enough, and a
// config reload may start a second one beside it (both see the same
// containers, named after their sessions).
type Manager struct {
	cfg     Config
	docker  *client.Client
	logger  *zap.Logger
	index   SessionIndex
	sessDir string // <Workspace>/sessions

	startMu sync.Mutex // one start at a time in this manager; the start lock (startlock.go) orders the managers
	locks   keyedMutex // one Ensure per session at a time

	startLockLease time.Duration // see startlock.go; tests shorten it

	mu         sync.Mutex
	lastUsed   map[string]time.Time      // session id → last IDE request or run
	held       map[string]int            // session id → uses in progress (open IDE sockets, runs)
	ready      map[string]readyMark      // session id → the IDE answered for this container start
	runServers map[string]runServerState // session id → its run server
	observer   func(Change)              // told of starts and stops, see SetObserver

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// readyMark records that a container's IDE answered, and when.
type readyMark struct {
	containerID string
	checked     time.Time
}

// New returns a manager of the workspaces on docker's engine. It does not
// own docker (the caller closes it, after Close). index, when not nil,
// drives the sweep that stops idle workspaces and removes those whose
// session is gone (at once, then every SweepInterval); a killed
// predecessor's containers are thereby adopted or removed.
func New(cfg Config, docker *client.Client, index SessionIndex, logger *zap.Logger) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if docker == nil {
		return nil, errors.New("workspaces: no docker client")
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	if cfg.Instance == "" {
		host, _ := os.Hostname()
		cfg.Instance = host
	}
	m := &Manager{
		cfg:        cfg,
		docker:     docker,
		logger:     logger,
		index:      index,
		sessDir:    filepath.Join(cfg.Workspace, "sessions"),
		lastUsed:   map[string]time.Time{},
		held:       map[string]int{},
		ready:      map[string]readyMark{},
		runServers: map[string]runServerState{},
		stop:       make(chan struct{}),

		startLockLease: defaultStartLockLease,
		done:           make(chan struct{}),
	}
	go m.sweepLoop()
	return m, nil
}

// Config returns the manager's configuration, defaults applied.
func (m *Manager) Config() Config { return m.cfg }

// Close stops the sweep. Running workspaces are left running: a reload's
// next manager, or a restarted gateway, takes them over.
func (m *Manager) Close() error {
	m.stopOnce.Do(func() { close(m.stop) })
	<-m.done
	return nil
}

func (m *Manager) closed() bool {
	select {
	case <-m.stop:
		return true
	default:
		return false
	}
}

// Touch records use of a session's workspace (an IDE request, a run), which
// keeps it from being stopped as idle for IdleTimeout.
func (m *Manager) Touch(sessionID string) {
	m.mu.Lock()
	m.lastUsed[sessionID] = time.Now()
	m.mu.Unlock()
}

// Hold marks a use of a session's workspace in progress (an open IDE
// WebSocket, a run): the workspace is not stopped as idle until release is
// called, and counts as used at that moment.
func (m *Manager) Hold(sessionID string) (release func()) {
	m.mu.Lock()
	m.held[sessionID]++
	m.lastUsed[sessionID] = time.Now()
	m.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			if m.held[sessionID]--; m.held[sessionID] <= 0 {
				delete(m.held, sessionID)
			}
			m.lastUsed[sessionID] = time.Now()
			m.mu.Unlock()
		})
	}
}

// inUse reports whether a session's workspace is held or was used within d.
func (m *Manager) inUse(sessionID string, since time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held[sessionID] > 0 || m.lastUsed[sessionID].After(since)
}

// name is the container name of a session.
func (m *Manager) name(sessionID string) string { return m.cfg.NamePrefix + sessionID }

// sessionDir is the directory of a session as the gateway sees it.
func (m *Manager) sessionDir(sessionID string) string { return filepath.Join(m.sessDir, sessionID) }

// workspaceOf builds the Workspace of a container.
func (m *Manager) workspaceOf(spec Spec, containerID string) *Workspace {
	return &Workspace{
		SessionID:   spec.SessionID,
		UserID:      spec.UserID,
		ContainerID: containerID,
		Name:        m.name(spec.SessionID),
		User:        m.cfg.User,
		Socket:      filepath.Join(m.sessionDir(spec.SessionID), linkName),
	}
}

// Ensure returns the session's workspace running, creating or starting its
// container as needed (subject to the caps: a *LimitError). It does not wait
// for the IDE; EnsureIDE does.
func (m *Manager) Ensure(ctx context.Context, spec Spec) (*Workspace, error) {
	if m.closed() {
		return nil, ErrClosed
	}
	if !sessions.ValidID(spec.SessionID) || spec.UserID == "" {
		return nil, fmt.Errorf("workspaces: invalid spec %q/%q", spec.SessionID, spec.UserID)
	}
	unlock := m.locks.lock(spec.SessionID)
	defer unlock()
	m.Touch(spec.SessionID)
	for attempt := 0; ; attempt++ {
		info, err := m.docker.ContainerInspect(ctx, m.name(spec.SessionID), client.ContainerInspectOptions{})
		switch {
		case err == nil:
			c := info.Container
			if c.Config == nil || c.Config.Labels[LabelSession] != spec.SessionID || c.Config.Labels[LabelManaged] != "1" {
				return nil, fmt.Errorf("workspaces: container %s is not the workspace of %s", m.name(spec.SessionID), spec.SessionID)
			}
			if c.Config.Labels[LabelUser] != spec.UserID {
				return nil, fmt.Errorf("workspaces: container %s belongs to another user", m.name(spec.SessionID))
			}
			if c.State != nil && c.State.Running && !c.State.Paused {
				w := m.workspaceOf(spec, c.ID)
				w.RunSocket = m.runSocketOf(spec, c.ID)
				return w, nil
			}
			if err := m.start(ctx, spec, c.ID); err != nil {
				return nil, err
			}
			return m.started(ctx, spec, c.ID), nil
		case cerrdefs.IsNotFound(err):
			id, err := m.createAndStart(ctx, spec)
			if errors.Is(err, errNameTaken) && attempt < 40 {
				// Another replica created it first: use theirs once the
				// engine shows it (it reserves the name a moment earlier).
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if err != nil {
				return nil, err
			}
			return m.started(ctx, spec, id), nil
		default:
			return nil, fmt.Errorf("workspaces: inspecting %s: %w", m.name(spec.SessionID), unavailable(err))
		}
	}
}

// started is the Workspace of container id, just started: its run server
// is started too, and RunSocket set once it answers.
func (m *Manager) started(ctx context.Context, spec Spec, id string) *Workspace {
	w := m.workspaceOf(spec, id)
	m.mu.Lock()
	m.runServers[spec.SessionID] = runServerState{containerID: id, userID: spec.UserID, starting: true, tried: time.Now()}
	m.mu.Unlock()
	live := m.startRunServer(ctx, spec.SessionID, id) == nil
	m.markRunServer(spec.SessionID, id, live)
	if live {
		w.RunSocket = m.runLink(spec.SessionID)
	}
	return w
}

// EnsureIDE is Ensure, then waits until the IDE answers on Workspace.Socket,
// at most until ctx ends or StartWait passed (ErrNotReady: the workspace
// keeps starting, ask again).
func (m *Manager) EnsureIDE(ctx context.Context, spec Spec) (*Workspace, error) {
	if w, ok := m.readyWorkspace(spec); ok {
		m.Touch(spec.SessionID)
		return w, nil
	}
	w, err := m.Ensure(ctx, spec)
	if err != nil {
		return nil, err
	}
	if err := m.waitIDE(ctx, w); err != nil {
		return nil, err
	}
	return w, nil
}

// Stop stops the session's workspace (its container stays, with its state,
// and starts again on the next Ensure). A missing container is no error.
func (m *Manager) Stop(ctx context.Context, sessionID string) error {
	return m.stopFor(ctx, sessionID, ReasonStopped)
}

// stopFor stops the session's workspace if it runs, and tells the observer
// why.
func (m *Manager) stopFor(ctx context.Context, sessionID, reason string) error {
	m.forget(sessionID)
	id, userID, running, err := m.runningContainer(ctx, sessionID)
	if err != nil || !running {
		return err
	}
	_, err = m.docker.ContainerStop(ctx, m.name(sessionID), client.ContainerStopOptions{Timeout: ptr(5)})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("workspaces: stopping %s: %w", m.name(sessionID), unavailable(err))
	}
	m.notify(Change{SessionID: sessionID, UserID: userID, ContainerID: id, Reason: reason})
	return nil
}

// Remove removes the session's workspace container, running or not, and the
// gateway's link to its IDE socket. A missing container is no error. The
// session's files and IDE state stay: they go with the session's directory.
func (m *Manager) Remove(ctx context.Context, sessionID string) error {
	if !sessions.ValidID(sessionID) {
		return fmt.Errorf("workspaces: invalid session id %q", sessionID)
	}
	unlock := m.locks.lock(sessionID)
	defer unlock()
	m.forget(sessionID)
	m.mu.Lock()
	delete(m.lastUsed, sessionID)
	m.mu.Unlock()
	id, userID, running, err := m.runningContainer(ctx, sessionID)
	if err != nil {
		return err
	}
	_, err = m.docker.ContainerRemove(ctx, m.name(sessionID), client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("workspaces: removing %s: %w", m.name(sessionID), unavailable(err))
	}
	if running {
		m.notify(Change{SessionID: sessionID, UserID: userID, ContainerID: id, Reason: ReasonRemoved})
	}
	os.Remove(filepath.Join(m.sessionDir(sessionID), linkName))
	os.Remove(m.runLink(sessionID))
	return nil
}

// forget drops what the manager knows of a session's IDE readiness and run
// server.
func (m *Manager) forget(sessionID string) {
	m.mu.Lock()
	delete(m.ready, sessionID)
	delete(m.runServers, sessionID)
	m.mu.Unlock()
}

// IsAvailable reports whether the Docker daemon answers; the error says why not.
func (m *Manager) IsAvailable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := m.docker.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
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

func ptr[T any](v T) *T { return &v }

// keyedMutex is a set of mutexes by key, dropped when unused.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedEntry{}
	}
	e := k.locks[key]
	if e == nil {
		e = new(keyedEntry)
		k.locks[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
