package workspaces

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Why a workspace stopped (Change.Reason).
const (
	// ReasonIdle is a workspace the sweep stopped after IdleTimeout.
	ReasonIdle = "idle"
	// ReasonStopped is a workspace stopped by Stop (e.g. an administrator).
	ReasonStopped = "stopped"
	// ReasonRemoved is a running workspace removed with its session.
	ReasonRemoved = "removed"
)

// Change is a workspace container that started or stopped.
type Change struct {
	// SessionID is the workspace's session.
	SessionID string
	// UserID is the session's owner, from the container's label.
	UserID string
	// ContainerID is the engine's id of the container.
	ContainerID string
	// Running is true when the container started, false when it stopped.
	Running bool
	// Reason says why a container stopped: ReasonIdle, ReasonStopped or
	// ReasonRemoved; empty for a start.
	Reason string
}

// SetObserver sets the function called after every workspace container
// this manager starts or stops (idle stop, Stop, removal of a running
// one). It is called on the caller's goroutine and must not block; nil
// removes it.
func (m *Manager) SetObserver(f func(Change)) {
	m.mu.Lock()
	m.observer = f
	m.mu.Unlock()
}

// notify tells the observer of a change.
func (m *Manager) notify(c Change) {
	m.mu.Lock()
	obs := m.observer
	m.mu.Unlock()
	if obs != nil {
		obs(c)
	}
}

// Running reports, for every workspace container of this manager's
// workspace directory, whether it is running, by session id. A session
// without a container is absent.
func (m *Manager) Running(ctx context.Context) (map[string]bool, error) {
	list, err := m.docker.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: client.Filters{}.Add("label", LabelManaged+"=1").Add("label", LabelRoot+"="+m.cfg.DaemonWorkspace),
	})
	if err != nil {
		return nil, fmt.Errorf("workspaces: listing workspaces: %w", unavailable(err))
	}
	out := make(map[string]bool, len(list.Items))
	for _, c := range list.Items {
		id := c.Labels[LabelSession]
		if len(c.Names) == 0 || c.Names[0] != "/"+m.name(id) {
			continue // another manager's naming
		}
		out[id] = c.State == "running"
	}
	return out, nil
}

// runningContainer inspects a session's container: its id and owner when
// it is running, ok false when it is missing or not running.
func (m *Manager) runningContainer(ctx context.Context, sessionID string) (id, userID string, ok bool, err error) {
	info, err := m.docker.ContainerInspect(ctx, m.name(sessionID), client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("workspaces: inspecting %s: %w", m.name(sessionID), unavailable(err))
	}
	c := info.Container
	if c.State == nil || !c.State.Running {
		return c.ID, "", false, nil
	}
	if c.Config != nil {
		userID = c.Config.Labels[LabelUser]
	}
	return c.ID, userID, true, nil
}
