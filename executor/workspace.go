package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/executor/runner"
)

// DefaultHelper is where the workspace image installs the claude-run helper.
const DefaultHelper = "/usr/local/bin/claude-run"

// ErrHelperMissing is returned when the workspace container has no
// claude-run helper at Config.Helper (an image built without it).
var ErrHelperMissing = errors.New("the workspace image has no claude-run helper")

// WorkspaceContainer is a session's running workspace container.
type WorkspaceContainer struct {
	// ID is the engine's id (or name) of the container.
	ID string
	// User is the uid:gid the run executes as; empty is Config.User.
	User string
	// RunSocket, when not empty, is the workspace's run server (claude-run
	// serve) as the gateway dials it: the run is a connection to it
	// instead of a docker exec.
	RunSocket string
	// RunServerLost, when set, is called when RunSocket did not answer;
	// the run then asks for the workspace again and is a docker exec.
	RunServerLost func()
}

// WorkspaceFunc returns the running workspace container of a run's session,
// starting it when needed, and a function the run calls when it ends (the
// workspace counts as in use until then). It is called once the run holds
// a slot.
type WorkspaceFunc func(ctx context.Context) (WorkspaceContainer, func(), error)

// helperGrace is how long past a run's limit the executor waits for the
// helper's own timeout before it sends a kill request.
const helperGrace = 3 * time.Second

// runEnv is the environment of a run, whichever way it runs.
var runEnv = []string{"HOME=/tmp", "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1", "LANG=C.UTF-8"}

// runInWorkspace runs cmd through the claude-run helper in the session's
// workspace container (spec.Workspace): over the workspace's run server
// when it answers (runOverSocket), else as a docker exec (execInWorkspace).
// The helper enforces the limit and the cap, and kills the run's whole
// process tree when it ends; a run whose caller goes away is killed, and its
// processes are gone, before Run returns.
func (e *Executor) runInWorkspace(ctx context.Context, spec Spec, runID string, cmd []string, timeout time.Duration) (Result, error) {
	ws, done, err := spec.Workspace(ctx)
	if err != nil {
		return Result{}, err
	}
	if ws.RunSocket != "" {
		conn, err := dialRunServer(ctx, ws.RunSocket)
		if err == nil {
			res, err := e.runOverSocket(ctx, spec, conn, ws, runID, cmd, timeout)
			if !errors.Is(err, errServerGone) {
				done()
				return res, err
			}
		}
		e.logger.Info("the workspace's run server did not answer; the run is a docker exec",
			zap.String("run", runID), zap.String("container", shortID(ws.ID)), zap.Error(err))
		if ws.RunServerLost != nil {
			ws.RunServerLost()
		}
		// The container may have stopped with its server: ask again.
		done()
		if ws, done, err = spec.Workspace(ctx); err != nil {
			return Result{}, err
		}
	}
	defer done()
	return e.execInWorkspace(ctx, spec, ws, runID, cmd, timeout)
}

// execInWorkspace runs cmd as a docker exec of the claude-run helper in
// workspace container ws. A run whose caller goes away gets a kill request
// (a second exec naming the run) before it returns.
func (e *Executor) execInWorkspace(ctx context.Context, spec Spec, ws WorkspaceContainer, runID string, cmd []string, timeout time.Duration) (Result, error) {
	bg := context.WithoutCancel(ctx)
	cid, user := e.workspaceUser(ws)
	if isRoot(user) {
		return Result{}, fmt.Errorf("workspace user %q may not be root", user)
	}
	stdin := len(spec.Stdin) > 0
	argv := append([]string{e.cfg.Helper, "exec", "--id", runID,
		"--timeout-ms", strconv.FormatInt(timeout.Milliseconds(), 10),
		"--output-limit", strconv.FormatInt(e.cfg.OutputLimit, 10), "--"}, cmd...)
	created, err := e.docker.ExecCreate(ctx, cid, client.ExecCreateOptions{
		User: user, WorkingDir: WorkspaceDir, Env: runEnv, Cmd: argv,
		AttachStdin: stdin, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return Result{}, fmt.Errorf("creating the run in workspace %s: %w", shortID(cid), unavailable(err))
	}
	att, err := e.docker.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return Result{}, fmt.Errorf("starting the run in workspace %s: %w", shortID(cid), unavailable(err))
	}
	defer att.Close()
	started := time.Now()
	if spec.Started != nil {
		spec.Started()
	}
	if stdin {
		go func() {
			att.Conn.Write(spec.Stdin)
			att.CloseWrite()
		}()
	}

	out := newHelperOutput(e.cfg.OutputLimit, spec, started)
	helperOut := &cappedStream{limit: 16 << 10}
	frames, framesW := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(framesW, helperOut, att.Reader)
		framesW.CloseWithError(err)
	}()
	decoded := out.decode(frames, func() {
		frames.CloseWithError(io.ErrClosedPipe) // unblock StdCopy if the result came early
	})

	var res Result
	finish := func(r runner.Result) { out.finish(&res, r) }
	deadline := time.NewTimer(timeout + helperGrace)
	defer deadline.Stop()
	var grace <-chan time.Time
	for {
		select {
		case o := <-decoded:
			if o.err == nil {
				finish(o.res)
				return res, nil
			}
			finish(runner.Result{ExitCode: -1})
			err := e.helperFailure(bg, created.ID, o.err, helperOut.buf.String())
			if !errors.Is(err, ErrHelperMissing) {
				// The helper died (the program killed it, or the workspace
				// went away): what carries the run's id is killed still.
				e.killRun(bg, cid, user, runID)
			}
			return res, err
		case <-deadline.C:
			// The helper did not stop the run at its limit: kill it from outside.
			res.TimedOut = true
			e.killRun(bg, cid, user, runID)
			grace = time.After(15 * time.Second)
		case <-ctx.Done():
			// The caller is gone: nobody wants the rest, but nothing of the
			// run may stay behind.
			att.Close()
			e.killRun(bg, cid, user, runID)
			finish(runner.Result{ExitCode: 128 + 9})
			return res, ctx.Err()
		case <-grace:
			finish(runner.Result{ExitCode: 128 + 9})
			return res, errors.New("the run did not end after it was killed")
		}
	}
}

// workspaceUser is the container and the user a run in ws executes as.
func (e *Executor) workspaceUser(ws WorkspaceContainer) (cid, user string) {
	if ws.User == "" {
		return ws.ID, e.cfg.User
	}
	return ws.ID, ws.User
}

// helperOutput collects the output of a run whose helper sends frames.
type helperOutput struct {
	stdout, stderr *cappedStream
	started        time.Time
}

// helperOutcome is what the helper's frame stream came to.
type helperOutcome struct {
	res           runner.Result
	writeErr, err error
}

func newHelperOutput(limit int64, spec Spec, started time.Time) *helperOutput {
	return &helperOutput{
		stdout:  &cappedStream{limit: limit, sink: spec.Stdout},
		stderr:  &cappedStream{limit: limit, sink: spec.Stderr},
		started: started,
	}
}

// decode demultiplexes frames in the background; ended is called when the
// stream is done with, and the outcome then sent.
func (h *helperOutput) decode(frames io.Reader, ended func()) <-chan helperOutcome {
	decoded := make(chan helperOutcome, 1)
	go func() {
		var o helperOutcome
		o.res, o.writeErr, o.err = runner.Demux(frames, h.stdout, h.stderr)
		ended()
		decoded <- o
	}()
	return decoded
}

// finish fills res from the helper's result r and the output so far.
func (h *helperOutput) finish(res *Result, r runner.Result) {
	res.ExitCode = r.ExitCode
	res.TimedOut = res.TimedOut || r.TimedOut
	res.OOMKilled = r.OOMKilled
	res.Truncated = r.Truncated || h.stdout.truncated || h.stderr.truncated
	res.Stdout, res.Stderr = h.stdout.buf.String(), h.stderr.buf.String()
	res.DurationMS = time.Since(h.started).Milliseconds()
}

// helperFailure explains a run whose helper sent no result: a missing
// helper, an unreachable daemon, or a helper that died.
func (e *Executor) helperFailure(ctx context.Context, execID string, err error, helperOut string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	insp, ierr := e.docker.ExecInspect(ctx, execID, client.ExecInspectOptions{})
	msg := strings.TrimSpace(helperOut)
	if ierr == nil && (insp.ExitCode == 126 || insp.ExitCode == 127) && !strings.Contains(msg, "claude-run:") {
		return fmt.Errorf("%w at %s (exit code %d) %s", ErrHelperMissing, e.cfg.Helper, insp.ExitCode, msg)
	}
	if ierr != nil {
		return fmt.Errorf("the run's helper sent no result (%w); inspecting it: %w", err, unavailable(ierr))
	}
	return fmt.Errorf("the run's helper sent no result (%w), exit code %d: %s", err, insp.ExitCode, msg)
}

// killRun asks the helper of runID in container cid (as user) to kill its
// run, and waits until the request is done (the run's processes are gone).
func (e *Executor) killRun(ctx context.Context, cid, user, runID string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	fail := func(err error) {
		e.logger.Warn("killing a run in its workspace", zap.String("run", runID), zap.String("container", shortID(cid)), zap.Error(err))
	}
	created, err := e.docker.ExecCreate(ctx, cid, client.ExecCreateOptions{
		User: user, Cmd: []string{e.cfg.Helper, "kill", runID}, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		if !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) { // a stopped workspace took the run with it
			fail(err)
		}
		return
	}
	att, err := e.docker.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		fail(err)
		return
	}
	defer att.Close()
	var out bytes.Buffer
	stdcopy.StdCopy(&out, &out, io.LimitReader(att.Reader, 64<<10))
	if insp, err := e.docker.ExecInspect(ctx, created.ID, client.ExecInspectOptions{}); err == nil && insp.ExitCode != 0 {
		fail(fmt.Errorf("exit code %d: %s", insp.ExitCode, strings.TrimSpace(out.String())))
	}
}

func shortID(id string) string { return id[:min(len(id), 12)] }
