package workspaces

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The IDE listens on a socket in its HOME, a directory the workspace user
// controls: it could put a symbolic link there (to the gateway's admin socket,
// to the Docker socket) and have the gateway proxy its IDE traffic to it. So
// the gateway never dials that path. It opens the socket file without
// following links (O_PATH|O_NOFOLLOW, in the ide/ directory it opened itself,
// whose parent the container does not see), checks that it is a socket, and
// hard-links that very inode to <session>/ide.sock beside the mounts, where
// nothing in the container can replace it. A link cannot cross mounts, so
// nothing outside the workspace's own mount can be linked in.

// The run server's socket (runserver.go) sits beside the IDE's and is
// linked the same way.

// linkSocket (re)creates the gateway's link to the IDE socket.
func (m *Manager) linkSocket(sessionID string) error {
	return m.linkSocketAs(sessionID, socketName, linkName, "the IDE socket")
}

// linkSocketAs (re)creates the gateway's hard link link, in the session's
// directory, to the socket name in its ide/ directory; what names the
// socket in errors.
func (m *Manager) linkSocketAs(sessionID, name, link, what string) error {
	dir := m.sessionDir(sessionID)
	ide, err := unix.Open(filepath.Join(dir, ideSubdir), unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the IDE directory: %w", err)
	}
	defer unix.Close(ide)
	fd, err := unix.Openat(ide, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", what, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("checking %s: %w", what, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("%s is not a socket", what)
	}
	tmp := filepath.Join(dir, link+".tmp")
	os.Remove(tmp)
	if err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, tmp, unix.AT_SYMLINK_FOLLOW); err != nil {
		return fmt.Errorf("linking %s: %w", what, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, link)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("linking %s: %w", what, err)
	}
	return nil
}

// probe asks the IDE behind the gateway's link for /healthz.
func probe(ctx context.Context, socket string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://workspace/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("the IDE answered %d", resp.StatusCode)
	}
	return nil
}

// readyWorkspace returns the session's workspace when its IDE answered
// recently (within readyTrust) for the container still known to run.
func (m *Manager) readyWorkspace(spec Spec) (*Workspace, bool) {
	m.mu.Lock()
	mark, ok := m.ready[spec.SessionID]
	m.mu.Unlock()
	if !ok || time.Since(mark.checked) > readyTrust {
		return nil, false
	}
	return m.workspaceOf(spec, mark.containerID), true
}

// readyTrust is how long a successful readiness check is trusted before the
// container is inspected again (another replica may have stopped it).
const readyTrust = 5 * time.Second

// waitIDE links and probes the IDE socket until it answers, ctx ends or
// StartWait passes.
func (m *Manager) waitIDE(ctx context.Context, w *Workspace) error {
	// A unix socket path holds at most 107 bytes; runs work without it.
	if len(w.Socket) > maxSocketPath {
		return fmt.Errorf("workspaces: the IDE socket %s is longer than a unix socket path may be (%d bytes, at most %d): move the workspace directory to a shorter path", w.Socket, len(w.Socket), maxSocketPath)
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.StartWait)
	defer cancel()
	delay := 20 * time.Millisecond
	var last error
	for {
		if last = m.linkSocket(w.SessionID); last == nil {
			if last = probe(ctx, w.Socket); last == nil {
				m.mu.Lock()
				m.ready[w.SessionID] = readyMark{containerID: w.ContainerID, checked: time.Now()}
				m.mu.Unlock()
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%v)", ErrNotReady, last)
		case <-time.After(delay):
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}
