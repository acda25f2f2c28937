package workspaces

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"go.uber.org/zap"
)

// The caps are counted, and a container created and started, under one lock
// that every manager of the workspace directory takes on the engine: the
// holder creates a container (never started) named after the directory and
// removes it when done. The engine refuses a second container of one name,
// so two managers (a reload's pair, two replicas) never count at the same
// time, and a start the caps refuse has created nothing.
//
// A holder killed before removing it leaves it behind: a lock that a waiter
// has seen under the same id for a lease (30s) is removed by that id (only
// one waiter succeeds), and a holder keeps it at most startLockHold, well
// within the lease.

// LabelStartLock marks the start lock's container ("1"); it carries
// LabelRoot and LabelInstance too, and never LabelManaged.
const LabelStartLock = "org.claude-gateway.workspace.start-lock"

const (
	// startLockHold bounds what a holder does under the lock.
	startLockHold = 20 * time.Second
	// defaultStartLockLease is how long a waiter sees one lock before it
	// takes the lock as left by a killed holder (Manager.startLockLease).
	defaultStartLockLease = 30 * time.Second
	// startLockPoll is the pause between a waiter's tries.
	startLockPoll = 25 * time.Millisecond
)

// startLockName is the start lock's container name: one per workspace
// directory, as the caps count.
func (m *Manager) startLockName() string {
	sum := sha256.Sum256([]byte(m.cfg.DaemonWorkspace))
	return m.cfg.NamePrefix + "start-lock-" + hex.EncodeToString(sum[:6])
}

// underCaps runs fn while no other manager of the workspace directory
// starts a workspace, once the caps allow the user one more (else a
// *LimitError, and fn is not run). fn's context ends after startLockHold.
func (m *Manager) underCaps(ctx context.Context, userID string, fn func(ctx context.Context) error) error {
	m.startMu.Lock()
	defer m.startMu.Unlock()
	unlock, err := m.lockStarts(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(ctx, startLockHold)
	defer cancel()
	if err := m.checkCaps(ctx, userID); err != nil {
		return err
	}
	return fn(ctx)
}

// lockStarts takes the start lock, waiting while another manager holds it
// (until ctx ends).
func (m *Manager) lockStarts(ctx context.Context) (unlock func(), err error) {
	name := m.startLockName()
	opts := client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:           m.cfg.Image,
			Entrypoint:      []string{"/bin/true"},
			NetworkDisabled: true,
			Labels: map[string]string{
				LabelStartLock: "1",
				LabelRoot:      m.cfg.DaemonWorkspace,
				LabelInstance:  m.cfg.Instance,
			},
		},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	}
	var seenID string
	var seenSince time.Time
	for {
		created, err := m.docker.ContainerCreate(ctx, opts)
		if err == nil {
			return func() { m.unlockStarts(created.ID) }, nil
		}
		if !cerrdefs.IsConflict(err) {
			return nil, fmt.Errorf("workspaces: taking the start lock %s: %w", name, unavailable(err))
		}
		info, err := m.docker.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
		switch {
		case cerrdefs.IsNotFound(err):
			continue // released meanwhile
		case err != nil:
			return nil, fmt.Errorf("workspaces: inspecting the start lock %s: %w", name, unavailable(err))
		case info.Container.ID != seenID:
			seenID, seenSince = info.Container.ID, time.Now()
		case time.Since(seenSince) >= m.startLockLease:
			m.logger.Warn("taking over a start lock held too long (its gateway was killed?)",
				zap.String("lock", name), zap.String("container", seenID))
			m.unlockStarts(seenID)
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("workspaces: waiting for the start lock %s: %w", name, ctx.Err())
		case <-time.After(startLockPoll):
		}
	}
}

// unlockStarts removes the start lock's container id, even when the
// caller's context has ended.
func (m *Manager) unlockStarts(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := m.docker.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		m.logger.Error("releasing the start lock", zap.String("lock", m.startLockName()), zap.Error(err))
	}
}
