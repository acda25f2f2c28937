package executor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	"go.uber.org/zap"
)

// Languages the executor runs.
const (
	Python = "python"
	Bash   = "bash"
)

// WorkspaceDir is where a run sees its session's files.
const WorkspaceDir = "/workspace"

// Spec describes one run.
type Spec struct {
	// Language is Python or Bash.
	Language string
	// Code is the program: a Python script or a bash command line.
	Code string
	// Stdin, when not empty, is the program's standard input; otherwise
	// the program reads an empty input.
	Stdin []byte
	// Timeout is the wall-clock limit; 0 is the configured default.
	Timeout time.Duration
	// SessionID and UserID label the container and key the per-user limit.
	SessionID, UserID string
	// Dir is the directory (as the gateway sees it, under
	// Config.Workspace) mounted read-write at /workspace; empty mounts
	// nothing. A run in a workspace container sees what the workspace
	// mounts there instead.
	Dir string
	// Stdout and Stderr, when set, receive the output as it arrives (the
	// result holds it too). They are called from one goroutine, never at
	// the same time.
	Stdout, Stderr io.Writer
	// Workspace, when set, gives the container of the session's workspace:
	// the run then goes to the claude-run helper in it, over the
	// workspace's run server or as a `docker exec` (Config.Helper), instead
	// of a container of its own, and Images,
	// Runtime, Memory, CPUs, Pids, TmpSize and Dir are the workspace's
	// business.
	Workspace WorkspaceFunc
	// Started, when set, is called once the container runs (after the
	// wait for a slot), before any output.
	Started func()
}

// Result is the outcome of a run.
type Result struct {
	// RunID identifies the run (and its container's label).
	RunID string `json:"run_id"`
	// ExitCode is the program's exit status; 137 when it was killed.
	ExitCode int `json:"exit_code"`
	// Stdout and Stderr are the program's output, each cut at the limit.
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	// DurationMS is the run's wall-clock time from start to exit.
	DurationMS int64 `json:"duration_ms"`
	// TimedOut is set when the wall-clock limit killed the run.
	TimedOut bool `json:"timed_out"`
	// OOMKilled is set when the memory limit killed the run.
	OOMKilled bool `json:"oom_killed"`
	// Truncated is set when an output stream passed the limit and the run
	// was killed.
	Truncated bool `json:"truncated"`
}

// SpecError is a run request the executor refuses; Code is a snake_case
// reason for API errors.
type SpecError struct {
	// Code is the snake_case reason, e.g. "invalid_language".
	Code string
	// Message is a human sentence without the final period.
	Message string
}

// Error returns the message.
func (e *SpecError) Error() string { return e.Message }

// RunPython runs code with python3; spec gives the rest of the run.
func (e *Executor) RunPython(ctx context.Context, code string, spec Spec) (Result, error) {
	spec.Language, spec.Code = Python, code
	return e.Run(ctx, spec)
}

// RunBash runs a bash command line; spec gives the rest of the run.
func (e *Executor) RunBash(ctx context.Context, code string, spec Spec) (Result, error) {
	spec.Language, spec.Code = Bash, code
	return e.Run(ctx, spec)
}

// Run runs spec in its session's workspace container (Spec.Workspace) or, without workspaces, in a new sandbox container that it removes before
// returning, whatever happened. Either way nothing of the run is left when
// it returns. It waits for a slot first (see
// Config.Concurrency); a full queue fails at once with a *BusyError. When
// ctx ends, the run is killed at once and ctx's error returned.
func (e *Executor) Run(ctx context.Context, spec Spec) (Result, error) {
	cmd, err := command(spec)
	if err != nil {
		return Result{}, err
	}
	timeout, err := e.timeout(spec.Timeout)
	if err != nil {
		return Result{}, err
	}
	if len(spec.Stdin) > MaxStdinSize {
		return Result{}, &SpecError{"stdin_too_large", fmt.Sprintf("stdin is larger than %d bytes", MaxStdinSize)}
	}
	var source string
	if spec.Workspace == nil {
		if source, err = e.bindSource(spec.Dir); err != nil {
			return Result{}, err
		}
	}
	release, err := e.limits.acquire(ctx, spec.UserID)
	if err != nil {
		return Result{}, err
	}
	defer release()

	runID := newRunID()
	live.Store(runID, struct{}{})
	defer live.Delete(runID)
	begin := time.Now()
	finish := e.runs.begin(RunInfo{RunID: runID, SessionID: spec.SessionID, UserID: spec.UserID, Language: spec.Language, Started: begin})
	var res Result
	if spec.Workspace != nil {
		res, err = e.runInWorkspace(ctx, spec, runID, cmd, timeout)
	} else {
		res, err = e.run(ctx, spec, runID, cmd, timeout, source)
	}
	e.limits.observe(time.Since(begin))
	res.RunID = runID
	finish(res, err)
	return res, err
}

// run creates, attaches, starts, watches and removes one container.
func (e *Executor) run(ctx context.Context, spec Spec, runID string, cmd []string, timeout time.Duration, source string) (Result, error) {
	// Clean-up must happen even when the caller's context is gone.
	bg := context.WithoutCancel(ctx)
	opts := e.createOptions(spec, runID, cmd, source)
	created, err := e.docker.ContainerCreate(ctx, opts)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return Result{}, fmt.Errorf("%w: %s (%w)", ErrImageMissing, opts.Config.Image, err)
		}
		return Result{}, fmt.Errorf("creating the container: %w", unavailable(err))
	}
	id := created.ID
	defer e.remove(bg, id)

	att, err := e.docker.ContainerAttach(ctx, id, client.ContainerAttachOptions{
		Stream: true, Stdin: len(spec.Stdin) > 0, Stdout: true, Stderr: true,
	})
	if err != nil {
		return Result{}, fmt.Errorf("attaching to the container: %w", unavailable(err))
	}
	defer att.Close()

	waitCtx, stopWait := context.WithCancel(bg)
	defer stopWait()
	wait := e.docker.ContainerWait(waitCtx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})

	stdout := &cappedStream{limit: e.cfg.OutputLimit, sink: spec.Stdout}
	stderr := &cappedStream{limit: e.cfg.OutputLimit, sink: spec.Stderr}
	if _, err := e.docker.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return Result{}, fmt.Errorf("starting the container: %w", unavailable(err))
	}
	started := time.Now()
	if spec.Started != nil {
		spec.Started()
	}
	if len(spec.Stdin) > 0 {
		go func() {
			att.Conn.Write(spec.Stdin)
			att.CloseWrite()
		}()
	}
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(stdout, stderr, att.Reader)
		copied <- err
	}()

	// Watch the run until both its output stream and the container are
	// done. Either can end first: a program may close its stdout and go on.
	var (
		res        Result
		streamDone bool
		streamErr  error
		exited     bool
		killed     bool
		grace      <-chan time.Time // how long an ended run may take to wind up
	)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	deadline := timer.C
	kill := func() {
		if !killed {
			killed, deadline = true, nil
			e.kill(bg, id)
			grace = time.After(30 * time.Second)
		}
	}
	collect := func() {
		if !streamDone {
			att.Close()
			<-copied
			streamDone = true
		}
		res.Stdout, res.Stderr = stdout.buf.String(), stderr.buf.String()
		res.Truncated = stdout.truncated || stderr.truncated
		res.DurationMS = time.Since(started).Milliseconds()
	}
	for !streamDone || !exited {
		select {
		case err := <-copied:
			streamDone = true
			if err != nil {
				// Over the cap, or the stream broke: nobody reads the rest.
				// Close the stream first, or the daemon holds the
				// container's exit until its output is drained.
				if !errors.Is(err, errOutputLimit) {
					streamErr = err
				}
				att.Close()
				kill()
			}
		case w := <-wait.Result:
			exited = true
			deadline = nil
			res.ExitCode = int(w.StatusCode)
			if grace == nil {
				grace = time.After(5 * time.Second)
			}
		case err := <-wait.Error:
			collect()
			return res, fmt.Errorf("waiting for the container: %w", unavailable(err))
		case <-deadline:
			res.TimedOut = true
			kill()
		case <-ctx.Done():
			// The caller is gone: nobody wants the rest. A forced removal
			// kills and removes in one call; the deferred one finds nothing.
			att.Close()
			e.remove(bg, id)
			collect()
			return res, ctx.Err()
		case <-grace:
			collect()
			if !exited {
				return res, errors.New("the container did not exit after it was killed")
			}
		}
	}
	collect()
	if streamErr != nil {
		return res, fmt.Errorf("reading the output: %w", unavailable(streamErr))
	}
	if res.ExitCode == 137 { // SIGKILL: ours, or the kernel's OOM killer
		insp, err := e.docker.ContainerInspect(bg, id, client.ContainerInspectOptions{})
		if err == nil && insp.Container.State != nil {
			res.OOMKilled = insp.Container.State.OOMKilled
		}
	}
	return res, nil
}

// createOptions is the locked-down container of one run.
func (e *Executor) createOptions(spec Spec, runID string, cmd []string, source string) client.ContainerCreateOptions {
	c := e.cfg
	stdin := len(spec.Stdin) > 0
	hc := &container.HostConfig{
		NetworkMode:    "none",
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		ReadonlyRootfs: true,
		Tmpfs:          c.Tmpfs(),
		// Output is read through the attach stream; nothing is kept on the
		// daemon's disk, however much the program prints.
		LogConfig: container.LogConfig{Type: "none"},
		Runtime:   c.Runtime,
		Resources: c.Resources(),
	}
	hc.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 1024}}
	if source != "" {
		hc.Mounts = []mount.Mount{{
			Type:        mount.TypeBind,
			Source:      source,
			Target:      WorkspaceDir,
			BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate},
		}}
	}
	return client.ContainerCreateOptions{
		Name: "claude-run-" + runID,
		Config: &container.Config{
			Image:           c.Image(spec.Language),
			Cmd:             cmd,
			User:            c.User,
			WorkingDir:      WorkspaceDir,
			Hostname:        "sandbox",
			Env:             []string{"HOME=/tmp", "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1", "LANG=C.UTF-8"},
			AttachStdin:     stdin,
			OpenStdin:       stdin,
			StdinOnce:       stdin,
			AttachStdout:    true,
			AttachStderr:    true,
			NetworkDisabled: true,
			Labels: map[string]string{
				LabelManaged:  "1",
				LabelRun:      runID,
				LabelSession:  spec.SessionID,
				LabelUser:     spec.UserID,
				LabelInstance: c.Instance,
			},
		},
		HostConfig: hc,
	}
}

func (e *Executor) kill(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := e.docker.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		e.logger.Debug("killing a sandbox container", zap.String("container", id), zap.Error(err))
	}
}

func (e *Executor) remove(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := e.docker.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
		// The sweep retries it.
		e.logger.Warn("removing a sandbox container", zap.String("container", id), zap.Error(err))
	}
}

// command is the container command of spec.
func command(spec Spec) ([]string, error) {
	if spec.Code == "" {
		return nil, &SpecError{"invalid_code", "code is empty"}
	}
	if len(spec.Code) > MaxCodeSize {
		return nil, &SpecError{"code_too_large", fmt.Sprintf("code is larger than %d bytes", MaxCodeSize)}
	}
	if strings.IndexByte(spec.Code, 0) >= 0 {
		return nil, &SpecError{"invalid_code", "code contains a NUL byte"}
	}
	switch spec.Language {
	case Python:
		return []string{"python3", "-c", spec.Code}, nil
	case Bash:
		return []string{"bash", "-c", spec.Code}, nil
	}
	return nil, &SpecError{"invalid_language", fmt.Sprintf("language %q is not one of %q, %q", spec.Language, Python, Bash)}
}

// timeout checks a requested wall-clock limit against the configured maximum.
func (e *Executor) timeout(d time.Duration) (time.Duration, error) {
	switch {
	case d == 0:
		return e.cfg.Timeout, nil
	case d < 0 || d > e.cfg.MaxTimeout:
		return 0, &SpecError{"invalid_timeout", fmt.Sprintf("timeout must be between 1 and %d seconds", int(e.cfg.MaxTimeout.Seconds()))}
	}
	return d, nil
}

// bindSource maps dir, as the gateway sees it, to the daemon's path, and
// makes it writable for the sandbox user.
func (e *Executor) bindSource(dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	if e.cfg.Workspace == "" {
		return "", errors.New("a run directory needs the executor's workspace")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(e.cfg.Workspace, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("run directory %s is outside the workspace %s", dir, e.cfg.Workspace)
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return "", fmt.Errorf("run directory: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("run directory %s is not a directory", dir)
	}
	e.ownDir(abs, fi)
	return path.Join(e.cfg.DaemonWorkspace, filepath.ToSlash(rel)), nil
}

// ownDir hands the mounted directory to the sandbox user, so code can write
// its files; the gateway, running as root, keeps full access.
func (e *Executor) ownDir(dir string, fi os.FileInfo) {
	if os.Geteuid() != 0 {
		return
	}
	uidS, gidS, _ := strings.Cut(e.cfg.User, ":")
	uid, err1 := strconv.Atoi(uidS)
	gid, err2 := strconv.Atoi(gidS)
	if err1 != nil || err2 != nil {
		return
	}
	if uid2, gid2, ok := owner(fi); ok && uid2 == uid && gid2 == gid {
		return
	}
	if err := os.Lchown(dir, uid, gid); err != nil {
		e.logger.Warn("handing the run directory to the sandbox user", zap.String("dir", dir), zap.Error(err))
	}
}

func newRunID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}
