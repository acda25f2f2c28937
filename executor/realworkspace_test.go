package executor_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"go.uber.org/zap/zaptest"

	"github.com/claude-gateway/claude-gateway/containerlimits"
	"github.com/claude-gateway/claude-gateway/executor"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
	"github.com/claude-gateway/claude-gateway/workspaces"
)

func workspaceImage() string {
	if img := os.Getenv("CLAUDE_WORKSPACE_IMAGE"); img != "" {
		return img
	}
	return workspaces.LocalImage
}

func sandboxImage() string {
	if img := os.Getenv("CLAUDE_SANDBOX_IMAGE"); img != "" {
		return img
	}
	return "claude-sandbox:local"
}

// realWorkspaces is an executor beside the gateway's workspace manager, on
// the machine's engine with the image `make workspace-image` builds (the
// IDE stand-in and the claude-run helper in it).
type realWorkspaces struct {
	e    *executor.Executor
	m    *workspaces.Manager
	root string
}

func newRealWorkspaces(tb testing.TB, memory int64) *realWorkspaces {
	tb.Helper()
	testenv.DockerImage(tb, workspaceImage())
	testenv.DockerImage(tb, sandboxImage())
	root, err := os.MkdirTemp("", "ws") // short: the IDE socket path is bounded
	if err != nil {
		tb.Fatal(err)
	}
	instance := "test-" + testenv.RandomHex(6)
	e, err := executor.New(executor.Config{
		Workspace: root, Images: map[string]string{"default": sandboxImage()},
		Instance: instance, CleanupInterval: -1, Concurrency: 4, PerUser: 4,
	}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := workspaces.New(workspaces.Config{
		Workspace: root, Image: workspaceImage(), Pull: workspaces.PullNever, Instance: instance,
		NamePrefix: "claude-ws-test-" + testenv.RandomHex(4) + "-", SweepInterval: -1, Limits: containerlimits.Limits{Memory: memory},
		MaxRunning: 100, MaxRunningPerUser: 10,
	}, e.Docker(), nil, zaptest.NewLogger(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		m.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		list, err := e.Docker().ContainerList(ctx, client.ContainerListOptions{All: true,
			Filters: client.Filters{}.Add("label", executor.LabelInstance+"="+instance)})
		if err == nil {
			for _, c := range list.Items {
				e.Docker().ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
			}
		}
		e.Close()
		os.RemoveAll(root)
	})
	return &realWorkspaces{e: e, m: m, root: root}
}

// session makes a session directory and returns its id.
func (r *realWorkspaces) session(tb testing.TB) string {
	id := "session-" + testenv.RandomHex(16)
	if err := os.MkdirAll(filepath.Join(r.root, "sessions", id, "files"), 0o755); err != nil {
		tb.Fatal(err)
	}
	return id
}

// spec is a run of user u1 in session id's workspace, as claude_exec makes it.
func (r *realWorkspaces) spec(id string) executor.Spec {
	return executor.Spec{SessionID: id, UserID: "u1", Workspace: func(ctx context.Context) (executor.WorkspaceContainer, func(), error) {
		w, err := r.m.EnsureRun(ctx, workspaces.Spec{SessionID: id, UserID: "u1"})
		if err != nil {
			return executor.WorkspaceContainer{}, nil, err
		}
		return executor.WorkspaceContainer{ID: w.ContainerID, User: w.User, RunSocket: w.RunSocket,
			RunServerLost: func() { r.m.RunServerLost(id, w.ContainerID) }}, func() { r.m.Touch(id) }, nil
	}}
}

// idePID is the pid of the workspace's code-server, 0 when none runs.
func (r *realWorkspaces) idePID(t testing.TB, id string) string {
	t.Helper()
	res, err := r.e.RunBash(context.Background(),
		`for p in /proc/[0-9]*; do case "$(tr '\0' ' ' < $p/cmdline 2>/dev/null)" in /usr/bin/code-server*) echo ${p#/proc/};; esac; done`, r.spec(id))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(res.Stdout)
}

// TestMemoryBombInTheGatewaysWorkspace: in the workspace container the
// gateway's manager makes, a run that eats all its memory is the one the
// kernel kills, reported oom_killed, and the IDE keeps running (same pid).
func TestMemoryBombInTheGatewaysWorkspace(t *testing.T) {
	t.Parallel()
	r := newRealWorkspaces(t, 192<<20)
	id := r.session(t)
	before := r.idePID(t, id)
	if before == "" {
		t.Fatal("no code-server in the workspace")
	}
	res, err := r.e.RunPython(context.Background(), "x = []\nwhile True: x.append(bytearray(8 << 20))", r.spec(id))
	if err != nil {
		t.Fatal(err)
	}
	if !res.OOMKilled || res.ExitCode != 137 {
		t.Errorf("got %+v, want an OOM kill (137)", res)
	}
	if after := r.idePID(t, id); after != before {
		t.Errorf("code-server was pid %s before the bomb and is %q after", before, after)
	}
}

// BenchmarkPrintOneWorkspaceVersusContainer measures `print(1)` through
// the executor in a warm workspace over its run server (a connection, no
// docker exec), in the same warm workspace as a docker exec of claude-run
// (the way without a run server), and through today's container-per-run
// path (create, attach, start, wait, remove), taking turns in the same run,
// and the cold first run of a session (its workspace created and started,
// then the run). It reports p50/p95 of each, the speed-up of the warm
// runs over a container per run, and the p50 of the warm socket runs' own
// duration_ms (helper and python3 starting and ending inside the
// workspace): what is left of a warm run once the way there costs nothing.
//
//	go test -run '^$' -bench PrintOne -benchtime 30x ./executor/
func BenchmarkPrintOneWorkspaceVersusContainer(b *testing.B) {
	r := newRealWorkspaces(b, 0)
	ctx := context.Background()
	var inside time.Duration // duration_ms of the last run
	run := func(spec executor.Spec) time.Duration {
		start := time.Now()
		res, err := r.e.RunPython(ctx, "print(1)", spec)
		d := time.Since(start)
		if err != nil || res.Stdout != "1\n" || res.ExitCode != 0 {
			b.Fatalf("print(1): %+v, %v", res, err)
		}
		inside = time.Duration(res.DurationMS) * time.Millisecond
		return d
	}
	// Cold: each a new session, whose workspace the run creates and starts.
	var cold []time.Duration
	for range 3 {
		cold = append(cold, run(r.spec(r.session(b))))
	}
	id := r.session(b)
	socket := r.spec(id)
	run(socket)
	if w, err := r.m.EnsureRun(ctx, workspaces.Spec{SessionID: id, UserID: "u1"}); err != nil || w.RunSocket == "" {
		b.Fatalf("the warm workspace has no run server: %v", err)
	}
	// The same workspace, its run server not used.
	dockerExec := r.spec(id)
	dockerExec.Workspace = func(ctx context.Context) (executor.WorkspaceContainer, func(), error) {
		ws, done, err := socket.Workspace(ctx)
		ws.RunSocket = ""
		return ws, done, err
	}
	run(dockerExec)
	perRun := executor.Spec{UserID: "u1"}
	run(perRun)
	var ws, in, ex, ct []time.Duration
	b.ResetTimer()
	for b.Loop() {
		ws = append(ws, run(socket))
		in = append(in, inside)
		ex = append(ex, run(dockerExec))
		ct = append(ct, run(perRun))
	}
	b.StopTimer()
	w50, w95 := percentiles(ws)
	e50, e95 := percentiles(ex)
	c50, c95 := percentiles(ct)
	cold50, _ := percentiles(cold)
	b.ReportMetric(ms(w50), "warm-p50-ms")
	b.ReportMetric(ms(w95), "warm-p95-ms")
	i50, _ := percentiles(in)
	b.ReportMetric(ms(i50), "warm-inside-p50-ms")
	b.ReportMetric(ms(e50), "warm-exec-p50-ms")
	b.ReportMetric(ms(e95), "warm-exec-p95-ms")
	b.ReportMetric(ms(c50), "container-p50-ms")
	b.ReportMetric(ms(c95), "container-p95-ms")
	b.ReportMetric(ms(cold50), "cold-p50-ms")
	b.ReportMetric(float64(c50)/float64(w50), "speedup-p50")
	b.ReportMetric(float64(c50)/float64(e50), "exec-speedup-p50")
	b.ReportMetric(0, "ns/op")
}

func percentiles(d []time.Duration) (p50, p95 time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return at(0.50), at(0.95)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
