package workspaces

import (
	"context"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/moby/moby/client"
	"go.uber.org/zap"
)

// Each workspace start also starts the run server (`claude-run serve`, one
// detached docker exec) listening on a socket in the IDE's HOME. The
// gateway reaches it the way it reaches the IDE: through its own hard link
// in the session's directory (socket.go), never through the path the
// workspace controls. A run then costs a connection instead of a docker
// exec. The server has the workspace user's uid in the workspace's own
// container, so code of that workspace that reaches it gains nothing; no
// other workspace mounts the session's directory. Without a live server
// (an image without it, a server the run killed, a gateway on another node)
// runs are docker execs as before.

// Names of the run server.
const (
	// RunHelper is where the workspace image installs claude-run.
	RunHelper = "/usr/local/bin/claude-run"
	// runSocketName is the run server's socket inside HomeDir.
	runSocketName = ".claude-run.sock"
	// runLinkName is the gateway's hard link to it in the session's
	// directory.
	runLinkName = "run.sock"
)

// runServerWait bounds the wait for a started run server's socket.
const runServerWait = 5 * time.Second

// runServerRetry is how long after a failed start of a container's run
// server the next start is tried.
const runServerRetry = 30 * time.Second

// runServerState is what the manager knows of a session's run server.
type runServerState struct {
	containerID string
	userID      string    // the owner Ensure checked the container's labels against
	live        bool      // the link answered for this container start
	tried       time.Time // the last start of a server
	starting    bool
}

// runSocketOf returns the gateway's link to the session's run server when
// it is known to listen for container id, else "" (and, for a container
// whose server is not known, links an existing server or starts one in the
// background: this run goes the docker exec way).
func (m *Manager) runSocketOf(spec Spec, id string) string {
	m.mu.Lock()
	st := m.runServers[spec.SessionID]
	if st.containerID == id && st.live {
		m.mu.Unlock()
		return m.runLink(spec.SessionID)
	}
	if st.containerID == id && (st.starting || time.Since(st.tried) < runServerRetry) {
		m.mu.Unlock()
		return ""
	}
	m.runServers[spec.SessionID] = runServerState{containerID: id, userID: spec.UserID, starting: true, tried: time.Now()}
	m.mu.Unlock()
	// A server may listen already: a gateway restarted, a reload's manager.
	if m.linkRunServer(context.Background(), spec.SessionID) == nil {
		m.markRunServer(spec.SessionID, id, true)
		return m.runLink(spec.SessionID)
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		m.markRunServer(spec.SessionID, id, m.startRunServer(ctx, spec.SessionID, id) == nil)
	}()
	return ""
}

// EnsureRun is Ensure for a run. While the session's run server answered
// for its container it asks nothing of the engine: the run's connection to
// the server is the proof that the container runs, and a run that cannot
// connect reports RunServerLost and asks again.
func (m *Manager) EnsureRun(ctx context.Context, spec Spec) (*Workspace, error) {
	m.mu.Lock()
	st := m.runServers[spec.SessionID]
	m.mu.Unlock()
	if st.live && spec.UserID != "" && st.userID == spec.UserID && !m.closed() {
		m.Touch(spec.SessionID)
		w := m.workspaceOf(spec, st.containerID)
		w.RunSocket = m.runLink(spec.SessionID)
		return w, nil
	}
	return m.Ensure(ctx, spec)
}

// markRunServer records whether container id's run server answered.
func (m *Manager) markRunServer(sessionID, id string, live bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.runServers[sessionID]; st.containerID == id {
		m.runServers[sessionID] = runServerState{containerID: id, userID: st.userID, live: live, tried: st.tried}
	}
}

// RunServerLost tells the manager that the run server of container id did
// not answer: its next use starts another one, and runs meanwhile are
// docker execs.
func (m *Manager) RunServerLost(sessionID, id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.runServers[sessionID]; st.containerID == id && st.live {
		delete(m.runServers, sessionID)
	}
}

// runLink is the gateway's link to a session's run server.
func (m *Manager) runLink(sessionID string) string {
	return filepath.Join(m.sessionDir(sessionID), runLinkName)
}

// startRunServer starts the run server in the just started container id
// (a detached exec as the workspace user) and waits until it answers.
func (m *Manager) startRunServer(ctx context.Context, sessionID, id string) error {
	if len(m.runLink(sessionID)) > maxSocketPath {
		return fmt.Errorf("workspaces: the run socket %s is longer than a unix socket path may be", m.runLink(sessionID))
	}
	os.Remove(m.runLink(sessionID))
	created, err := m.docker.ExecCreate(ctx, id, client.ExecCreateOptions{
		User: m.cfg.User, WorkingDir: FilesDir,
		Cmd: []string{RunHelper, "serve", "--socket", path.Join(HomeDir, runSocketName)},
	})
	if err == nil {
		_, err = m.docker.ExecStart(ctx, created.ID, client.ExecStartOptions{Detach: true})
	}
	if err != nil {
		m.logger.Warn("starting the run server; runs are docker execs", zap.String("session", sessionID), zap.Error(unavailable(err)))
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, runServerWait)
	defer cancel()
	delay := 5 * time.Millisecond
	for {
		err := m.linkRunServer(ctx, sessionID)
		if err == nil {
			return nil
		}
		if delay >= 80*time.Millisecond {
			// A server that exited (an image whose claude-run has no
			// serve) will not answer: no need to wait the whole time.
			if insp, ierr := m.docker.ExecInspect(ctx, created.ID, client.ExecInspectOptions{}); ierr == nil && !insp.Running {
				err = fmt.Errorf("the run server exited (exit code %d): %w", insp.ExitCode, err)
				m.logger.Warn("the run server did not start; runs are docker execs", zap.String("session", sessionID), zap.Error(err))
				return err
			}
		}
		select {
		case <-ctx.Done():
			m.logger.Warn("the run server did not answer; runs are docker execs", zap.String("session", sessionID), zap.Error(err))
			return err
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// linkRunServer links the run server's socket and checks that it accepts a
// connection (a socket left by an earlier start refuses).
func (m *Manager) linkRunServer(ctx context.Context, sessionID string) error {
	if err := m.linkSocketAs(sessionID, runSocketName, runLinkName, "the run socket"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "unix", m.runLink(sessionID))
	if err != nil {
		return err
	}
	return conn.Close()
}
