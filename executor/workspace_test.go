package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

var (
	helperOnce sync.Once
	helperPath string
	helperErr  error
)

// TestMain removes the claude-run binary the workspace tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if helperPath != "" {
		os.RemoveAll(filepath.Dir(helperPath))
	}
	os.Exit(code)
}

// testHelper builds cmd/claude-run (static) once per test binary.
func testHelper(t testing.TB) string {
	t.Helper()
	helperOnce.Do(func() {
		dir, err := os.MkdirTemp("", "claude-run-test-")
		if err != nil {
			helperErr = err
			return
		}
		out := filepath.Join(dir, "claude-run")
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, "../cmd/claude-run")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			helperErr = fmt.Errorf("building claude-run: %v: %s", err, b)
			return
		}
		helperPath = out
	})
	if helperErr != nil {
		t.Fatal(helperErr)
	}
	return helperPath
}

// testWorkspaces plays the workspace manager: one container per session,
// hardened like a run's, the session's files at /workspace, the test-built
// helper at DefaultHelper, docker-init as PID 1 and an IDE stand-in (a
// python process holding some memory) as its program.
type testWorkspaces struct {
	t        testing.TB
	docker   *client.Client
	instance string
	root     string // the sessions' root
	memory   int64
	helper   bool // mount the helper

	mu         sync.Mutex
	containers map[string]string // session → container id
}

func newTestWorkspaces(t testing.TB, e *Executor, memory int64, helper bool) *testWorkspaces {
	w := &testWorkspaces{t: t, docker: e.docker, instance: e.cfg.Instance, root: e.cfg.Workspace,
		memory: memory, helper: helper, containers: map[string]string{}}
	t.Cleanup(func() {
		for _, id := range w.containers {
			w.docker.ContainerRemove(context.Background(), id, client.ContainerRemoveOptions{Force: true})
		}
	})
	return w
}

// ideStandIn is the workspace's long-lived program; tests check it survives.
const ideStandIn = "import time; ide = bytearray(32 << 20); time.sleep(1e9)"

// of is the WorkspaceFunc of a session.
func (w *testWorkspaces) of(session, user string) WorkspaceFunc {
	return func(ctx context.Context) (WorkspaceContainer, func(), error) {
		id, err := w.container(ctx, session, user)
		return WorkspaceContainer{ID: id}, func() {}, err
	}
}

func (w *testWorkspaces) container(ctx context.Context, session, user string) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if id, ok := w.containers[session]; ok {
		return id, nil
	}
	dir := filepath.Join(w.root, "sessions", session, "files")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return "", err
	}
	os.Chmod(dir, 0o777)
	init, pids := true, int64(256)
	mounts := []mount.Mount{{Type: mount.TypeBind, Source: dir, Target: WorkspaceDir}}
	if w.helper {
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: testHelper(w.t), Target: DefaultHelper, ReadOnly: true})
	}
	created, err := w.docker.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image: testImage(), User: "1000:1000", WorkingDir: WorkspaceDir,
			Cmd:    []string{"python3", "-c", ideStandIn},
			Labels: map[string]string{LabelInstance: w.instance, LabelSession: session, LabelUser: user},
		},
		HostConfig: &container.HostConfig{
			Init: &init, NetworkMode: "none", CapDrop: []string{"ALL"}, SecurityOpt: []string{"no-new-privileges"},
			ReadonlyRootfs: true, Tmpfs: map[string]string{"/tmp": "rw,nosuid,nodev,size=67108864"},
			LogConfig: container.LogConfig{Type: "none"}, Mounts: mounts,
			Resources: container.Resources{Memory: w.memory, MemorySwap: w.memory, PidsLimit: &pids},
		},
	})
	if err != nil {
		return "", err
	}
	w.containers[session] = created.ID
	if _, err := w.docker.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return "", err
	}
	return created.ID, nil
}

// newWorkspaceExecutor is an executor whose runs go to testWorkspaces.
func newWorkspaceExecutor(t *testing.T, cfg Config, memory int64) (*Executor, *testWorkspaces) {
	t.Helper()
	testHelper(t)
	e := newTestExecutor(t, cfg)
	return e, newTestWorkspaces(t, e, memory, true)
}

// inContainer runs a command in a container as root-less uid 1000 and
// returns its output.
func inContainer(t testing.TB, docker *client.Client, id string, cmd ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	created, err := docker.ExecCreate(ctx, id, client.ExecCreateOptions{User: "1000:1000", Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	att, err := docker.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	defer att.Close()
	var out, errb bytes.Buffer
	stdcopy.StdCopy(&out, &errb, att.Reader)
	return out.String()
}

// processes lists "pid cmdline" of every process in the container but the
// listing itself, read from /proc (the image has no ps).
func processes(t testing.TB, docker *client.Client, id string) []string {
	t.Helper()
	out := inContainer(t, docker, id, "bash", "-c",
		`for p in /proc/[0-9]*; do [ "${p#/proc/}" = "$$" ] && continue; c=$(tr '\0\n' '  ' < $p/cmdline 2>/dev/null) && [ -n "$c" ] && echo "${p#/proc/} $c"; done`)
	var procs []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" && !strings.Contains(l, "/proc/[0-9]*") {
			procs = append(procs, l)
		}
	}
	return procs
}

// ideAlive reports whether the IDE stand-in runs, and its pid.
func ideAlive(t testing.TB, docker *client.Client, id string) (int, bool) {
	for _, p := range processes(t, docker, id) {
		if strings.Contains(p, "ide = bytearray") {
			pid, _ := strconv.Atoi(strings.Fields(p)[0])
			return pid, true
		}
	}
	return 0, false
}

// expectOnlyTheWorkspace fails when the container runs anything but its init
// and the IDE stand-in.
func expectOnlyTheWorkspace(t testing.TB, docker *client.Client, id string) {
	t.Helper()
	for _, p := range processes(t, docker, id) {
		if !strings.Contains(p, "docker-init") && !strings.Contains(p, "ide = bytearray") {
			t.Errorf("left in the workspace: %s", p)
		}
	}
}

func TestWorkspaceRunOutcomes(t *testing.T) {
	t.Parallel()
	e, ws := newWorkspaceExecutor(t, Config{}, 256<<20)
	const session = "session-outcomes"
	tests := []struct {
		name           string
		lang, code     string
		stdin          string
		exit           int
		stdout, stderr string
	}{
		{"python print", Python, "print(1)", "", 0, "1\n", ""},
		{"streams apart, in order", Bash, "for i in 1 2 3; do echo out$i; echo err$i >&2; done; exit 3", "", 3, "out1\nout2\nout3\n", "err1\nerr2\nerr3\n"},
		{"python SystemExit", Python, "raise SystemExit(7)", "", 7, "", ""},
		{"stdin", Python, "import sys; print(sys.stdin.read().upper(), end='')", "hello\nworld\n", 0, "HELLO\nWORLD\n", ""},
		{"no stdin reads empty", Bash, "cat; echo done", "", 0, "done\n", ""},
		{"a signal is 128+n", Bash, "kill -TERM $$", "", 143, "", ""},
		{"the session's files, cwd /workspace", Bash, "echo hi > f.txt; pwd; cat /workspace/f.txt", "", 0, "/workspace\nhi\n", ""},
		{"non-root, no capabilities, no new privileges", Bash,
			"id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status | tr -s '\\t ' ' '", "",
			0, "1000\nCapEff: 0000000000000000\nNoNewPrivs: 1\n", ""},
		{"the run has the highest OOM score", Bash, "cat /proc/self/oom_score_adj", "", 0, "1000\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.Run(context.Background(), Spec{Language: tt.lang, Code: tt.code, Stdin: []byte(tt.stdin), SessionID: session, UserID: "u1", Workspace: ws.of(session, "u1")})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.ExitCode != tt.exit || res.Stdout != tt.stdout || res.Stderr != tt.stderr {
				t.Errorf("got exit %d stdout %q stderr %q; want %d %q %q", res.ExitCode, res.Stdout, res.Stderr, tt.exit, tt.stdout, tt.stderr)
			}
			if res.TimedOut || res.OOMKilled || res.Truncated || res.RunID == "" {
				t.Errorf("flags set on a normal run: %+v", res)
			}
		})
	}
	if n := len(containersOf(t, e, LabelInstance+"="+e.cfg.Instance)); n != 1 {
		t.Errorf("%d containers after the runs, want the workspace only", n)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.Workspace, "sessions", session, "files", "f.txt")); err != nil {
		t.Errorf("the run's file is not in the session's files: %v", err)
	}
	expectOnlyTheWorkspace(t, e.docker, ws.containers[session])
}

// TestWorkspaceRunLeavesNothing: a run that ends, or is killed by its limit,
// leaves none of its processes in the workspace — daemons that call setsid,
// double-fork, close their output and clear their environment included —
// and the IDE stand-in is untouched.
func TestWorkspaceRunLeavesNothing(t *testing.T) {
	t.Parallel()
	e, ws := newWorkspaceExecutor(t, Config{}, 256<<20)
	const session = "session-daemons"
	daemons := `setsid bash -c 'exec sleep 601' </dev/null >/dev/null 2>&1 &
( setsid env -i /bin/sleep 602 </dev/null >/dev/null 2>&1 & ) 
nohup sleep 603 >/dev/null 2>&1 &
sleep 604 &
`
	t.Run("the program ends", func(t *testing.T) {
		res, err := e.RunBash(context.Background(), daemons+"echo started", Spec{SessionID: session, UserID: "u1", Workspace: ws.of(session, "u1")})
		if err != nil || res.ExitCode != 0 || res.Stdout != "started\n" {
			t.Fatalf("got %+v, %v", res, err)
		}
		expectOnlyTheWorkspace(t, e.docker, ws.containers[session])
	})
	t.Run("the limit kills it", func(t *testing.T) {
		begin := time.Now()
		res, err := e.RunBash(context.Background(), daemons+"echo started; sleep 600", Spec{SessionID: session, UserID: "u1", Workspace: ws.of(session, "u1"), Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if !res.TimedOut || res.ExitCode != 137 || res.Stdout != "started\n" || res.OOMKilled {
			t.Errorf("got %+v", res)
		}
		if took := time.Since(begin); took > 10*time.Second {
			t.Errorf("a 2 s run took %s", took)
		}
		expectOnlyTheWorkspace(t, e.docker, ws.containers[session])
	})
	if _, ok := ideAlive(t, e.docker, ws.containers[session]); !ok {
		t.Error("the IDE stand-in is gone")
	}
}

// TestWorkspaceHelperKilledByTheRun: a program that kills its helper gets
// an error, and what it started is killed all the same (by the run's id).
func TestWorkspaceHelperKilledByTheRun(t *testing.T) {
	t.Parallel()
	e, ws := newWorkspaceExecutor(t, Config{}, 256<<20)
	const session = "session-helperkill"
	_, err := e.RunBash(context.Background(), "setsid sleep 631 </dev/null >/dev/null 2>&1 & sleep 632 & kill -9 $PPID; sleep 633",
		Spec{SessionID: session, UserID: "u1", Workspace: ws.of(session, "u1")})
	if err == nil || !strings.Contains(err.Error(), "no result") {
		t.Errorf("got %v, want the helper's missing result", err)
	}
	expectOnlyTheWorkspace(t, e.docker, ws.containers[session])
}

// TestWorkspaceCancelKillsTheTree: a caller that goes away (a client that
// disconnects) ends the run with all its processes before Run returns.
func TestWorkspaceCancelKillsTheTree(t *testing.T) {
	t.Parallel()
	e, ws := newWorkspaceExecutor(t, Config{MaxTimeout: 10 * time.Minute}, 256<<20)
	const session = "session-cancel"
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		_, err := e.RunBash(ctx, "setsid bash -c 'exec sleep 611' </dev/null >/dev/null 2>&1 & echo up; sleep 612",
			Spec{SessionID: session, UserID: "u1", Workspace: ws.of(session, "u1"), Stdout: signalOnWrite(started), Timeout: 10 * time.Minute})
		errc <- err
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not start")
	}
	id := ws.containers[session]
	if procs := strings.Join(processes(t, e.docker, id), "\n"); !strings.Contains(procs, "sleep 611") || !strings.Contains(procs, "sleep 612") {
		t.Fatalf("the run's processes are not there while it runs:\n%s", procs)
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
	expectOnlyTheWorkspace(t, e.docker, id)
}

// TestWorkspaceMemoryBomb: a run that eats all the workspace's memory is
// the one the kernel kills (reported as oom_killed), and the IDE lives on.
func TestWorkspaceMemoryBomb(t *testing.T) {
	t.Parallel()
	e, ws := newWorkspaceExecutor(t, Config{}, 160<<20)
	const session = "session-bomb"
	if _, err := e.RunBash(context.Background(), "true", Spec{SessionID: session, UserID: "u1", Workspace: ws.of(session, "u1")}); err != nil {
		t.Fatal(err)
	}
	id := ws.containers[session]
	before, ok := ideAlive(t, e.docker, id)
	if !ok {
		t.Fatal("no IDE stand-in")
	}
	res, err := e.RunPython(context.Background(), "x = []\nwhile True: x.append(bytearray(8 << 20))", Spec{SessionID: session, UserID: "u1", Workspace: ws.of(session, "u1")})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OOMKilled || res.ExitCode != 137 || res.TimedOut {
		t.Errorf("got %+v, want an OOM kill (137)", res)
	}
	after, ok := ideAlive(t, e.docker, id)
	if !ok || after != before {
		t.Errorf("the IDE stand-in (pid %d) did not survive: now %d, %v", before, after, ok)
	}
	res, err = e.RunPython(context.Background(), "print(1)", Spec{SessionID: session, UserID: "u1", Workspace: ws.of(session, "u1")})
	if err != nil || res.Stdout != "1\n" || res.OOMKilled {
		t.Errorf("the next run: %+v, %v", res, err)
	}
	expectOnlyTheWorkspace(t, e.docker, id)
}

// TestWorkspaceOutputCap: a flood stops at the cap, the run is killed and
// reported truncated.
func TestWorkspaceOutputCap(t *testing.T) {
	t.Parallel()
	e, ws := newWorkspaceExecutor(t, Config{OutputLimit: 64 << 10}, 256<<20)
	const session = "session-flood"
	res, err := e.RunBash(context.Background(), "yes >&2 & yes", Spec{SessionID: session, UserID: "u1", Workspace: ws.of(session, "u1")})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Truncated || max(len(res.Stdout), len(res.Stderr)) != 64<<10 || len(res.Stdout) > 64<<10 || len(res.Stderr) > 64<<10 || res.ExitCode != 137 {
		t.Errorf("got truncated=%v exit=%d stdout %d bytes stderr %d bytes", res.Truncated, res.ExitCode, len(res.Stdout), len(res.Stderr))
	}
	expectOnlyTheWorkspace(t, e.docker, ws.containers[session])
}

// TestWorkspaceWithoutHelper: an image without claude-run is a clear error.
func TestWorkspaceWithoutHelper(t *testing.T) {
	t.Parallel()
	e := newTestExecutor(t, Config{})
	ws := newTestWorkspaces(t, e, 128<<20, false)
	_, err := e.RunPython(context.Background(), "print(1)", Spec{SessionID: "session-nohelper", UserID: "u1", Workspace: ws.of("session-nohelper", "u1")})
	if !errors.Is(err, ErrHelperMissing) {
		t.Errorf("got %v, want ErrHelperMissing", err)
	}
}
