package workspaces

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/moby/client"
	"go.uber.org/zap"
)

// SweepReport counts what a sweep did.
type SweepReport struct {
	// Stopped are running workspaces idle for IdleTimeout.
	Stopped int
	// Removed are containers whose session no longer exists.
	Removed int
}

// Sweep stops the workspaces idle for IdleTimeout (no IDE request or run
// through this manager, and the session not used on any replica) and
// removes the containers whose session is gone, whichever gateway made
// them, among the containers of its workspace directory. It needs the SessionIndex given to New; without one it does nothing.
func (m *Manager) Sweep(ctx context.Context) (SweepReport, error) {
	var rep SweepReport
	if m.index == nil {
		return rep, nil
	}
	list, err := m.docker.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: client.Filters{}.Add("label", LabelManaged+"=1").Add("label", LabelRoot+"="+m.cfg.DaemonWorkspace),
	})
	if err != nil {
		return rep, fmt.Errorf("workspaces: listing workspaces: %w", unavailable(err))
	}
	if len(list.Items) == 0 {
		return rep, nil
	}
	known, err := m.index(ctx)
	if err != nil {
		return rep, fmt.Errorf("workspaces: listing sessions: %w", err)
	}
	now := time.Now()
	var firstErr error
	note := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	for _, c := range list.Items {
		id := c.Labels[LabelSession]
		if len(c.Names) > 0 && c.Names[0] != "/"+m.name(id) {
			continue // another manager's naming (another gateway deployment on this engine)
		}
		used, exists := known[id]
		if !exists {
			// The container was listed before the index was read, and is
			// only ever made for a session that exists: the session went.
			if err := m.Remove(ctx, id); err != nil {
				note(err)
				continue
			}
			rep.Removed++
			m.logger.Info("removed the workspace of a session that is gone", zap.String("session", id),
				zap.String("container", c.ID), zap.String("instance", c.Labels[LabelInstance]))
			continue
		}
		if c.State != "running" {
			continue
		}
		cutoff := now.Add(-m.cfg.IdleTimeout)
		if used.After(cutoff) || m.inUse(id, cutoff) {
			continue
		}
		if err := m.stopIdle(ctx, id, m.cfg.IdleTimeout); err != nil {
			note(err)
			continue
		}
		rep.Stopped++
		m.logger.Info("stopped an idle workspace", zap.String("session", id), zap.String("container", c.ID),
			zap.Time("session_last_used", used))
	}
	return rep, firstErr
}

// stopIdle stops a workspace unless it was used meanwhile (an Ensure holds
// the session's lock while it starts it).
func (m *Manager) stopIdle(ctx context.Context, id string, idle time.Duration) error {
	unlock := m.locks.lock(id)
	defer unlock()
	if m.inUse(id, time.Now().Add(-idle)) {
		return nil
	}
	return m.stopFor(ctx, id, ReasonIdle)
}

// sweepLoop runs Sweep at once and then every SweepInterval until Close.
func (m *Manager) sweepLoop() {
	defer close(m.done)
	if m.cfg.SweepInterval < 0 || m.index == nil {
		return
	}
	ticker := time.NewTicker(m.cfg.SweepInterval)
	defer ticker.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if _, err := m.Sweep(ctx); err != nil {
			m.logger.Warn("workspace sweep", zap.Error(err))
		}
		cancel()
		select {
		case <-m.stop:
			return
		case <-ticker.C:
		}
	}
}
