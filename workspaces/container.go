package workspaces

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	"go.uber.org/zap"
)

// errNameTaken is create's answer when the session's container name is
// already used: another replica (or Ensure) created it meanwhile.
var errNameTaken = errors.New("container name taken")

// createAndStart makes the session's container and starts it, once the
// caps allow one more: the image is pulled first if the policy allows, then
// under the start lock the caps are counted, the IDE state directory
// prepared and the container created and started. A start the caps refuse
// leaves nothing on the engine; a container that does not start is
// removed.
func (m *Manager) createAndStart(ctx context.Context, spec Spec) (string, error) {
	if err := m.ensureImage(ctx); err != nil {
		return "", err
	}
	var id string
	err := m.underCaps(ctx, spec.UserID, func(ctx context.Context) error {
		files, home, err := m.prepareDirs(spec.SessionID)
		if err != nil {
			return err
		}
		opts := m.createOptions(spec, files, home)
		created, err := m.docker.ContainerCreate(ctx, opts)
		switch {
		case err == nil:
		case cerrdefs.IsConflict(err):
			return errNameTaken
		case cerrdefs.IsNotFound(err):
			return fmt.Errorf("%w: %s is not on the Docker engine; %s", ErrImageMissing, m.cfg.Image, MissingImageHint(m.cfg.Image, m.cfg.Pull))
		default:
			return fmt.Errorf("workspaces: creating %s: %w", opts.Name, unavailable(err))
		}
		m.logger.Info("workspace created", zap.String("session", spec.SessionID), zap.String("user", spec.UserID),
			zap.String("container", created.ID), zap.String("image", m.cfg.Image))
		if err := m.startContainer(ctx, spec, created.ID); err != nil {
			m.removeUnstarted(spec.SessionID, created.ID)
			return err
		}
		id = created.ID
		return nil
	})
	return id, err
}

// start starts the session's created or stopped container once the caps
// allow one more.
func (m *Manager) start(ctx context.Context, spec Spec, id string) error {
	return m.underCaps(ctx, spec.UserID, func(ctx context.Context) error {
		return m.startContainer(ctx, spec, id)
	})
}

// startContainer starts container id; the caller holds the start lock.
func (m *Manager) startContainer(ctx context.Context, spec Spec, id string) error {
	m.forget(spec.SessionID)
	if _, err := m.docker.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("workspaces: starting %s: %w", m.name(spec.SessionID), unavailable(err))
	}
	m.logger.Info("workspace started", zap.String("session", spec.SessionID), zap.String("container", id))
	m.notify(Change{SessionID: spec.SessionID, UserID: spec.UserID, ContainerID: id, Running: true})
	return nil
}

// removeUnstarted removes a container createAndStart made but could not
// start, even when the caller's context has ended.
func (m *Manager) removeUnstarted(sessionID, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := m.docker.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		m.logger.Error("removing a workspace that did not start", zap.String("session", sessionID),
			zap.String("container", id), zap.Error(err))
	}
}

// checkCaps counts the running workspaces of the manager's workspace
// directory (its deployment, every replica sharing it included), all and
// the user's. Another deployment's on the same engine do not count: its
// user ids name other people, and its own caps bound it.
func (m *Manager) checkCaps(ctx context.Context, userID string) error {
	list, err := m.docker.ContainerList(ctx, client.ContainerListOptions{
		Filters: client.Filters{}.Add("label", LabelManaged+"=1").Add("label", LabelRoot+"="+m.cfg.DaemonWorkspace).Add("status", "running"),
	})
	if err != nil {
		return fmt.Errorf("workspaces: counting running workspaces: %w", unavailable(err))
	}
	mine := 0
	for _, c := range list.Items {
		if c.Labels[LabelUser] == userID {
			mine++
		}
	}
	retry := min(m.cfg.IdleTimeout/4, time.Minute)
	if mine >= m.cfg.MaxRunningPerUser {
		return &LimitError{PerUser: true, Limit: m.cfg.MaxRunningPerUser, RetryAfter: retry}
	}
	if len(list.Items) >= m.cfg.MaxRunning {
		return &LimitError{Limit: m.cfg.MaxRunning, RetryAfter: retry}
	}
	return nil
}

// prepareDirs checks the session's files/ and creates its ide/ directory,
// both owned by the workspace user, and returns them as the daemon sees them.
func (m *Manager) prepareDirs(sessionID string) (files, home string, err error) {
	dir := m.sessionDir(sessionID)
	fi, err := os.Lstat(filepath.Join(dir, filesSubdir))
	if err != nil || !fi.IsDir() {
		return "", "", fmt.Errorf("workspaces: session %s has no files directory", sessionID)
	}
	ide := filepath.Join(dir, ideSubdir)
	if err := os.Mkdir(ide, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", "", fmt.Errorf("workspaces: creating the IDE state directory: %w", err)
	}
	if fi, err := os.Lstat(ide); err != nil || !fi.IsDir() {
		return "", "", fmt.Errorf("workspaces: %s is not a directory", ide)
	}
	m.own(filepath.Join(dir, filesSubdir))
	m.own(ide)
	return m.daemonPath(sessionID, filesSubdir), m.daemonPath(sessionID, ideSubdir), nil
}

// own hands a directory to the workspace user when the gateway may.
func (m *Manager) own(dir string) {
	if os.Geteuid() != 0 {
		return
	}
	uid, gid, _ := ids(m.cfg.User)
	if err := os.Lchown(dir, uid, gid); err != nil {
		m.logger.Warn("handing a directory to the workspace user", zap.String("dir", dir), zap.Error(err))
	}
}

// daemonPath is a path inside a session's directory as the daemon sees it.
func (m *Manager) daemonPath(sessionID, sub string) string {
	return path.Join(m.cfg.DaemonWorkspace, "sessions", sessionID, sub)
}

// createOptions is the locked-down container of one session.
func (m *Manager) createOptions(spec Spec, files, home string) client.ContainerCreateOptions {
	c := m.cfg
	network := c.Network
	if network == "" {
		network = "none"
	}
	hc := &container.HostConfig{
		NetworkMode:    container.NetworkMode(network),
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		ReadonlyRootfs: true,
		Init:           ptr(true),
		Tmpfs:          c.Tmpfs(),
		LogConfig:      container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1m", "max-file": "1"}},
		Runtime:        c.Runtime,
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 3},
		Resources:      c.Resources(),
		Mounts: []mount.Mount{
			{Type: mount.TypeBind, Source: files, Target: FilesDir, BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate}},
			{Type: mount.TypeBind, Source: home, Target: HomeDir, BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate}},
		},
	}
	hc.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 8192, Hard: 8192}}
	return client.ContainerCreateOptions{
		Name: m.name(spec.SessionID),
		Config: &container.Config{
			Image:      c.Image,
			Entrypoint: []string{"/usr/bin/code-server"},
			Cmd: []string{
				"--auth", "none",
				"--socket", path.Join(HomeDir, socketName),
				"--socket-mode", "0660",
				"--disable-telemetry",
				"--disable-update-check",
				FilesDir,
			},
			User:            c.User,
			WorkingDir:      FilesDir,
			Hostname:        "workspace",
			Env:             []string{"HOME=" + HomeDir, "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"},
			NetworkDisabled: c.Network == "",
			Labels: map[string]string{
				LabelManaged:  "1",
				LabelSession:  spec.SessionID,
				LabelUser:     spec.UserID,
				LabelInstance: c.Instance,
				LabelRoot:     c.DaemonWorkspace,
			},
		},
		HostConfig: hc,
	}
}

// ensureImage makes sure the image is on the engine: pulled (with progress
// in the log) under PullMissing, an error naming the fix under PullNever.
func (m *Manager) ensureImage(ctx context.Context) error {
	image := m.cfg.Image
	_, err := m.docker.ImageInspect(ctx, image)
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("workspaces: inspecting image %s: %w", image, unavailable(err))
	}
	if m.cfg.Pull == PullNever {
		return fmt.Errorf("%w: %s is not on the Docker engine (pull policy %q); %s", ErrImageMissing, image, PullNever, MissingImageHint(image, m.cfg.Pull))
	}
	m.logger.Info("pulling the workspace image", zap.String("image", image))
	begin := time.Now()
	resp, err := m.docker.ImagePull(ctx, image, client.ImagePullOptions{})
	if err != nil {
		return fmt.Errorf("%w: pulling %s: %w; %s", ErrImageMissing, image, unavailable(err), MissingImageHint(image, m.cfg.Pull))
	}
	defer resp.Close()
	last := time.Now()
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return fmt.Errorf("%w: pulling %s: %w; %s", ErrImageMissing, image, err, MissingImageHint(image, m.cfg.Pull))
		}
		if msg.Error != nil {
			return fmt.Errorf("%w: pulling %s: %s; %s", ErrImageMissing, image, msg.Error.Message, MissingImageHint(image, m.cfg.Pull))
		}
		if time.Since(last) >= 2*time.Second || msg.Progress == nil {
			last = time.Now()
			fields := []zap.Field{zap.String("image", image), zap.String("status", msg.Status), zap.String("layer", msg.ID)}
			if msg.Progress != nil && msg.Progress.Total > 0 {
				fields = append(fields, zap.Int64("done", msg.Progress.Current), zap.Int64("total", msg.Progress.Total))
			}
			m.logger.Info("pulling the workspace image", fields...)
		}
	}
	m.logger.Info("pulled the workspace image", zap.String("image", image), zap.Duration("took", time.Since(begin)))
	return nil
}
