package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/executor/runner"
)

// dialWait bounds the connection to a workspace's run server: it is local,
// so a server that does not accept at once is not there.
const dialWait = 2 * time.Second

// acceptWait bounds how long the run server may take to accept a run;
// one that does not answer in time gets no run, which is a docker exec
// instead.
const acceptWait = 10 * time.Second

// errServerGone is runOverSocket's error when the run server did not accept
// the run: nothing ran, and the run may go another way.
var errServerGone = errors.New("the workspace's run server did not accept the run")

// killedWait is how long a run asked to stop over its connection gets to
// report that its processes are gone, before it is killed with a docker
// exec instead.
const killedWait = 5 * time.Second

// dialRunServer connects to a workspace's run server.
func dialRunServer(ctx context.Context, socket string) (*net.UnixConn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialWait)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, err
	}
	return conn.(*net.UnixConn), nil
}

// runOverSocket runs cmd through the run server of workspace ws on conn
// (see runner.Serve): the request, then the helper's frames as the program
// writes. To stop the run (its time is up past the helper's own limit, or
// the caller went away) it sends a byte and waits for the helper's result,
// which comes once the run's processes are gone; a server that does not
// answer gets a docker exec kill request instead. A gateway that dies
// mid-run closes the connection, which kills the run the same way.
func (e *Executor) runOverSocket(ctx context.Context, spec Spec, conn *net.UnixConn, ws WorkspaceContainer, runID string, cmd []string, timeout time.Duration) (Result, error) {
	bg := context.WithoutCancel(ctx)
	defer conn.Close()
	cid, user := e.workspaceUser(ws)
	req := runner.Request{RunID: runID, Argv: cmd, Env: runEnv, Dir: WorkspaceDir,
		TimeoutMS: timeout.Milliseconds(), OutputLimit: e.cfg.OutputLimit, Stdin: spec.Stdin}
	conn.SetDeadline(time.Now().Add(acceptWait))
	if err := runner.WriteRequest(conn, req); err != nil {
		return Result{}, fmt.Errorf("%w: sending the run: %w", errServerGone, err)
	}
	var first [1]byte
	if _, err := io.ReadFull(conn, first[:]); err != nil {
		return Result{}, fmt.Errorf("%w: waiting for the server to accept the run: %w", errServerGone, err)
	}
	conn.SetDeadline(time.Time{})
	frames := io.Reader(conn)
	if first[0] != runner.Accepted { // a refusal: the server's error frame
		frames = io.MultiReader(bytes.NewReader(first[:]), conn)
	}
	started := time.Now()
	if spec.Started != nil {
		spec.Started()
	}
	out := newHelperOutput(e.cfg.OutputLimit, spec, started)
	decoded := out.decode(frames, func() {})

	var res Result
	finish := func(r runner.Result) { out.finish(&res, r) }
	// stop asks the server to end the run and waits for the helper's
	// result; without one in time, the run is killed with a docker exec.
	stop := func() (runner.Result, bool) {
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := conn.Write([]byte{0}); err == nil {
			select {
			case o := <-decoded:
				if o.err == nil {
					return o.res, true
				}
			case <-time.After(killedWait):
			}
		}
		conn.Close()
		e.killRun(bg, cid, user, runID)
		return runner.Result{ExitCode: 128 + 9}, false
	}
	deadline := time.NewTimer(timeout + helperGrace)
	defer deadline.Stop()
	for {
		select {
		case o := <-decoded:
			if o.err == nil {
				finish(o.res)
				return res, nil
			}
			// The helper died (the run killed it) or the stream broke:
			// what carries the run's id is killed still.
			finish(runner.Result{ExitCode: -1})
			e.killRun(bg, cid, user, runID)
			return res, fmt.Errorf("the run's helper sent no result over the run server of workspace %s: %w", shortID(cid), o.err)
		case <-deadline.C:
			// The helper did not stop the run at its limit.
			res.TimedOut = true
			r, reported := stop()
			finish(r)
			if !reported {
				return res, errors.New("the run did not report after it was killed")
			}
			return res, nil
		case <-ctx.Done():
			// The caller is gone: nobody wants the rest, but nothing of the
			// run may stay behind.
			r, _ := stop()
			r.ExitCode = 128 + 9
			finish(r)
			e.logger.Debug("run stopped: its caller went away", zap.String("run", runID))
			return res, ctx.Err()
		}
	}
}
