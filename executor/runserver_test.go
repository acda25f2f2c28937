package executor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/claude-gateway/claude-gateway/executor"
	"github.com/claude-gateway/claude-gateway/executor/runner"
	"github.com/claude-gateway/claude-gateway/workspaces"
)

// warmWorkspace makes a session, starts its workspace (memory: its limit,
// 0 the default) and checks that its run server answers.
func warmWorkspace(t *testing.T, memory int64) (*realWorkspaces, string, *workspaces.Workspace) {
	t.Helper()
	r := newRealWorkspaces(t, memory)
	id := r.session(t)
	w, err := r.m.EnsureRun(context.Background(), workspaces.Spec{SessionID: id, UserID: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if w.RunSocket == "" {
		t.Fatal("the started workspace has no run server")
	}
	return r, id, w
}

// execsDuring runs fn and returns the docker execs the engine started in
// container cid meanwhile (from its event log).
func (r *realWorkspaces) execsDuring(t *testing.T, cid string, fn func()) []string {
	t.Helper()
	since := time.Now()
	fn()
	time.Sleep(100 * time.Millisecond) // the engine's clock stamps the last events
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stamp := func(at time.Time) string { return fmt.Sprintf("%d.%09d", at.Unix(), at.Nanosecond()) }
	ev := r.e.Docker().Events(ctx, client.EventsListOptions{Since: stamp(since.Add(-50 * time.Millisecond)), Until: stamp(time.Now()),
		Filters: client.Filters{}.Add("container", cid)})
	var execs []string
	for {
		select {
		case m := <-ev.Messages:
			if strings.HasPrefix(string(m.Action), "exec_create") {
				execs = append(execs, string(m.Action))
			}
		case err := <-ev.Err:
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("reading the engine's events: %v", err)
			}
			return execs
		}
	}
}

// workspaceProcesses lists "pid cmdline" of every process in container cid
// but the listing (docker exec through the CLI; the image has no ps).
func workspaceProcesses(t *testing.T, cid string) []string {
	t.Helper()
	out, err := exec.Command("docker", "exec", "-u", "1000:1000", cid, "bash", "-c",
		`for p in /proc/[0-9]*; do [ "${p#/proc/}" = "$$" ] && continue; mapfile -d '' a < $p/cmdline 2>/dev/null && [ ${#a[@]} -gt 0 ] && echo "${p#/proc/} ${a[*]}"; done`).CombinedOutput()
	if err != nil {
		t.Fatalf("listing the workspace's processes: %v: %s", err, out)
	}
	var procs []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && !strings.Contains(l, "/proc/[0-9]*") {
			procs = append(procs, l)
		}
	}
	return procs
}

// pidOf returns the pid of the workspace's process whose command line
// starts with prefix, "" when none.
func pidOf(t *testing.T, cid, prefix string) string {
	for _, p := range workspaceProcesses(t, cid) {
		pid, cmd, _ := strings.Cut(p, " ")
		if strings.HasPrefix(cmd, prefix) {
			return pid
		}
	}
	return ""
}

// expectOnlyWorkspace fails when the workspace runs more than its init, its
// IDE and its run server, within a few seconds.
func expectOnlyWorkspace(t *testing.T, cid string) {
	t.Helper()
	var extra []string
	for range 50 {
		extra = extra[:0]
		for _, p := range workspaceProcesses(t, cid) {
			_, cmd, _ := strings.Cut(p, " ")
			if !strings.HasPrefix(cmd, "/sbin/docker-init") && !strings.HasPrefix(cmd, "/usr/bin/code-server") &&
				!strings.HasPrefix(cmd, workspaces.RunHelper+" serve") {
				extra = append(extra, p)
			}
		}
		if len(extra) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("left in the workspace:\n%s", strings.Join(extra, "\n"))
}

// TestRunServerRuns: on a warm workspace a run is a connection to its run
// server, no docker exec: stdout and stderr apart, stdin, the exit code,
// the run's environment and working directory, the output cap.
func TestRunServerRuns(t *testing.T) {
	t.Parallel()
	r, id, w := warmWorkspace(t, 0)
	spec := r.spec(id)
	var res executor.Result
	var err error
	execs := r.execsDuring(t, w.ContainerID, func() {
		spec.Stdin = []byte("from stdin")
		res, err = r.e.RunBash(context.Background(), `echo out; echo err >&2; cat; echo; pwd; echo $HOME; exit 7`, spec)
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "out\nfrom stdin\n/workspace\n/tmp\n" || res.Stderr != "err\n" || res.ExitCode != 7 || res.TimedOut || res.OOMKilled {
		t.Errorf("got %+v", res)
	}
	if len(execs) != 0 {
		t.Errorf("the run was %d docker execs: %v", len(execs), execs)
	}
	big, err := r.e.RunPython(context.Background(), "import sys\nsys.stdout.write('x' * (3 << 20))", r.spec(id))
	if err != nil {
		t.Fatal(err)
	}
	if limit := r.e.Config().OutputLimit; !big.Truncated || int64(len(big.Stdout)) != limit {
		t.Errorf("3 MiB of output: truncated %v, %d bytes kept (cap %d)", big.Truncated, len(big.Stdout), limit)
	}
	expectOnlyWorkspace(t, w.ContainerID)
}

// TestRunServerTimeoutLeavesNothing: a run over the server that passes its
// limit is killed with everything it started, daemons included.
func TestRunServerTimeoutLeavesNothing(t *testing.T) {
	t.Parallel()
	r, id, w := warmWorkspace(t, 0)
	spec := r.spec(id)
	spec.Timeout = 2 * time.Second
	res, err := r.e.RunBash(context.Background(), `setsid bash -c 'exec sleep 701' </dev/null >/dev/null 2>&1 &
( setsid env -i /bin/sleep 702 </dev/null >/dev/null 2>&1 & )
sleep 703 & echo started; sleep 704`, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut || res.ExitCode != 137 || res.Stdout != "started\n" {
		t.Errorf("got %+v", res)
	}
	expectOnlyWorkspace(t, w.ContainerID)
}

// TestRunServerClientGone: a client that goes away mid-run (the gateway
// killed: the kernel closes its connection) leaves nothing of the run, and
// so does a caller that cancels through the executor.
func TestRunServerClientGone(t *testing.T) {
	t.Parallel()
	r, id, w := warmWorkspace(t, 0)
	t.Run("connection closed", func(t *testing.T) {
		conn, err := net.Dial("unix", w.RunSocket)
		if err != nil {
			t.Fatal(err)
		}
		err = runner.WriteRequest(conn, runner.Request{RunID: "gone-" + id[8:20], Dir: "/workspace", TimeoutMS: 600_000,
			Argv: []string{"bash", "-c", "setsid bash -c 'exec sleep 711' </dev/null >/dev/null 2>&1 & sleep 712 & echo up; sleep 713"}})
		if err != nil {
			t.Fatal(err)
		}
		var hdr [6]byte // accepted, then the header of the first frame
		if _, err := io.ReadFull(conn, hdr[:]); err != nil || hdr[0] != runner.Accepted || hdr[1] != runner.FrameStdout {
			t.Fatalf("the answer begins %v: %v", hdr, err)
		}
		if procs := strings.Join(workspaceProcesses(t, w.ContainerID), "\n"); !strings.Contains(procs, "sleep 711") || !strings.Contains(procs, "sleep 713") {
			t.Fatalf("the run's processes are not there while it runs:\n%s", procs)
		}
		conn.Close()
		expectOnlyWorkspace(t, w.ContainerID)
	})
	t.Run("caller cancels", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		spec := r.spec(id)
		spec.Timeout = 4 * time.Minute
		up := make(chan struct{}, 1)
		spec.Stdout = writerFunc(func(p []byte) (int, error) {
			select {
			case up <- struct{}{}:
			default:
			}
			return len(p), nil
		})
		errc := make(chan error, 1)
		go func() {
			_, err := r.e.RunBash(ctx, "setsid bash -c 'exec sleep 721' </dev/null >/dev/null 2>&1 & echo up; sleep 722", spec)
			errc <- err
		}()
		select {
		case err := <-errc:
			t.Fatalf("the run ended before it was cancelled: %v", err)
		case <-up:
		case <-time.After(30 * time.Second):
			t.Fatal("the run did not start")
		}
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("got %v, want context.Canceled", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return after the cancellation")
		}
		// Run returned once the processes were gone: no waiting here.
		for _, p := range workspaceProcesses(t, w.ContainerID) {
			if strings.Contains(p, "sleep 72") {
				t.Errorf("left in the workspace when Run returned: %s", p)
			}
		}
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestRunServerMemoryBomb: a run over the server that eats all the
// workspace's memory is the one the kernel kills; the run server and the
// IDE keep their pids, and the next run still needs no docker exec.
func TestRunServerMemoryBomb(t *testing.T) {
	t.Parallel()
	r, id, w := warmWorkspace(t, 192<<20)
	server, ide := pidOf(t, w.ContainerID, workspaces.RunHelper+" serve"), pidOf(t, w.ContainerID, "/usr/bin/code-server")
	if server == "" || ide == "" {
		t.Fatalf("run server %q, IDE %q", server, ide)
	}
	res, err := r.e.RunPython(context.Background(), "x = []\nwhile True: x.append(bytearray(8 << 20))", r.spec(id))
	if err != nil {
		t.Fatal(err)
	}
	if !res.OOMKilled || res.ExitCode != 137 {
		t.Errorf("got %+v, want an OOM kill (137)", res)
	}
	if now := pidOf(t, w.ContainerID, workspaces.RunHelper+" serve"); now != server {
		t.Errorf("the run server was pid %s before the bomb and is %q after", server, now)
	}
	if now := pidOf(t, w.ContainerID, "/usr/bin/code-server"); now != ide {
		t.Errorf("the IDE was pid %s before the bomb and is %q after", ide, now)
	}
	execs := r.execsDuring(t, w.ContainerID, func() {
		if res, err := r.e.RunPython(context.Background(), "print(2)", r.spec(id)); err != nil || res.Stdout != "2\n" {
			t.Errorf("after the bomb: %+v, %v", res, err)
		}
	})
	if len(execs) != 0 {
		t.Errorf("the run after the bomb was a docker exec: %v", execs)
	}
}

// TestRunServerGone: when the run server is gone (the run killed it: same
// uid), the next run is a docker exec and succeeds, and the manager starts
// another server, which the runs after it use.
func TestRunServerGone(t *testing.T) {
	t.Parallel()
	r, id, w := warmWorkspace(t, 0)
	res, err := r.e.RunBash(context.Background(), `for p in /proc/[0-9]*; do mapfile -d '' a < $p/cmdline; [ "${a[1]}" = serve ] && kill -9 ${p#/proc/}; done; echo killed`, r.spec(id))
	if err != nil || res.Stdout != "killed\n" {
		t.Fatalf("killing the server: %+v, %v", res, err)
	}
	execs := r.execsDuring(t, w.ContainerID, func() {
		if res, err := r.e.RunPython(context.Background(), "print(3)", r.spec(id)); err != nil || res.Stdout != "3\n" || res.ExitCode != 0 {
			t.Errorf("without the server: %+v, %v", res, err)
		}
	})
	if len(execs) == 0 {
		t.Error("the run without a server was no docker exec")
	}
	// The manager restarts it in the background; the runs after it go over it.
	var last []string
	for range 100 {
		last = r.execsDuring(t, w.ContainerID, func() {
			if res, err := r.e.RunPython(context.Background(), "print(4)", r.spec(id)); err != nil || res.Stdout != "4\n" {
				t.Fatalf("after the restart: %+v, %v", res, err)
			}
		})
		if len(last) == 0 {
			if pidOf(t, w.ContainerID, workspaces.RunHelper+" serve") == "" {
				t.Error("no run server runs, yet the run was no docker exec")
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("the runs stay docker execs: %v", last)
}
