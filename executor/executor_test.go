package executor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/claude-gateway/claude-gateway/containerlimits"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// sandboxImage is the image `make sandbox-image` builds for the tests.
const sandboxImage = "claude-sandbox:local"

func testImage() string {
	if img := os.Getenv("CLAUDE_SANDBOX_IMAGE"); img != "" {
		return img
	}
	return sandboxImage
}

// newTestExecutor starts an executor on the machine's engine with its own
// instance name and workspace. When the test ends it checks that the
// daemon still answers and that no container of this executor is left.
func newTestExecutor(t *testing.T, cfg Config) *Executor {
	t.Helper()
	testenv.DockerImage(t, testImage())
	if cfg.Images == nil {
		cfg.Images = map[string]string{"default": testImage()}
	}
	if cfg.Instance == "" {
		cfg.Instance = "test-" + testenv.RandomHex(6)
	}
	if cfg.Workspace == "" {
		cfg.Workspace = t.TempDir()
	}
	if cfg.CleanupInterval == 0 {
		cfg.CleanupInterval = -1
	}
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		defer e.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.IsAvailable(ctx); err != nil {
			t.Errorf("the daemon is not healthy after the test: %v", err)
		}
		if left := containersOf(t, e, LabelInstance+"="+e.cfg.Instance); len(left) > 0 {
			t.Errorf("containers left behind: %v", left)
		}
	})
	return e
}

// containersOf lists the ids of the containers (running or not) with a label.
func containersOf(t *testing.T, e *Executor, label string) []string {
	t.Helper()
	list, err := e.docker.ContainerList(context.Background(), client.ContainerListOptions{
		All: true, Filters: client.Filters{}.Add("label", label),
	})
	if err != nil {
		t.Fatalf("listing containers: %v", err)
	}
	var ids []string
	for _, c := range list.Items {
		ids = append(ids, c.ID[:12])
	}
	return ids
}

// sessionDir makes <workspace>/sessions/<id>/files with the given files.
func sessionDir(t *testing.T, e *Executor, id string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(e.cfg.Workspace, "sessions", id, "files")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRunOutcomes(t *testing.T) {
	t.Parallel()
	e := newTestExecutor(t, Config{})
	tests := []struct {
		name           string
		lang, code     string
		stdin          string
		exit           int
		stdout, stderr string
	}{
		{"python print", Python, "print(1)", "", 0, "1\n", ""},
		{"streams apart, in order", Bash, "for i in 1 2 3; do echo out$i; echo err$i >&2; done; exit 3", "", 3, "out1\nout2\nout3\n", "err1\nerr2\nerr3\n"},
		{"exit code", Bash, "exit 42", "", 42, "", ""},
		{"python SystemExit", Python, "raise SystemExit(7)", "", 7, "", ""},
		{"stdin", Python, "import sys; print(sys.stdin.read().upper(), end='')", "hello\nworld\n", 0, "HELLO\nWORLD\n", ""},
		{"no stdin reads empty", Bash, "cat; echo done", "", 0, "done\n", ""},
		{"non-root, no capabilities, no new privileges", Bash,
			"id -u; id -g; grep -E '^(CapEff|CapPrm|NoNewPrivs)' /proc/self/status | tr -s '\\t ' ' '", "",
			0, "1000\n1000\nCapPrm: 0000000000000000\nCapEff: 0000000000000000\nNoNewPrivs: 1\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := e.Run(context.Background(), Spec{Language: tt.lang, Code: tt.code, Stdin: []byte(tt.stdin), UserID: "u-" + tt.name})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.ExitCode != tt.exit || res.Stdout != tt.stdout || res.Stderr != tt.stderr {
				t.Errorf("got exit %d stdout %q stderr %q; want %d %q %q", res.ExitCode, res.Stdout, res.Stderr, tt.exit, tt.stdout, tt.stderr)
			}
			if res.TimedOut || res.OOMKilled || res.Truncated {
				t.Errorf("flags set on a normal run: %+v", res)
			}
		})
	}
	t.Run("python exception", func(t *testing.T) {
		t.Parallel()
		res, err := e.RunPython(context.Background(), "print('before')\nraise ValueError('boom')", Spec{})
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode != 1 || res.Stdout != "before\n" || !strings.Contains(res.Stderr, "ValueError: boom") {
			t.Errorf("got %+v", res)
		}
	})
}

func TestRunRejectsBadSpecs(t *testing.T) {
	t.Parallel()
	e := newTestExecutor(t, Config{Timeout: 5 * time.Second, MaxTimeout: 10 * time.Second})
	tests := []struct {
		name string
		spec Spec
		code string
	}{
		{"unknown language", Spec{Language: "ruby", Code: "puts 1"}, "invalid_language"},
		{"empty code", Spec{Language: Python}, "invalid_code"},
		{"code too large", Spec{Language: Python, Code: strings.Repeat("#", MaxCodeSize+1)}, "code_too_large"},
		{"timeout over the maximum", Spec{Language: Python, Code: "1", Timeout: 11 * time.Second}, "invalid_timeout"},
		{"stdin too large", Spec{Language: Python, Code: "1", Stdin: make([]byte, MaxStdinSize+1)}, "stdin_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Run(context.Background(), tt.spec)
			var se *SpecError
			if !errors.As(err, &se) || se.Code != tt.code {
				t.Fatalf("got %v, want SpecError %s", err, tt.code)
			}
		})
	}
	if _, err := e.Run(context.Background(), Spec{Language: Bash, Code: "true", Dir: t.TempDir()}); err == nil {
		t.Error("a directory outside the workspace was accepted")
	}
}

// TestAttacks runs the hostile programs of the attack table. Each
// must end, with its container removed and the daemon healthy (checked by
// newTestExecutor's clean-up).
func TestAttacks(t *testing.T) {
	t.Parallel()
	e := newTestExecutor(t, Config{Limits: containerlimits.Limits{Memory: 64 << 20, Pids: 64, TmpSize: 16 << 20}, Concurrency: 8, PerUser: 8})
	secretDir := sessionDir(t, e, "session-b", map[string]string{"secret.txt": "TOPSECRET-b"})
	_ = secretDir
	ownDir := sessionDir(t, e, "session-a", map[string]string{"mine.txt": "mine"})
	bridgeIP := dockerBridgeIP(t)

	t.Run("fork bomb: the pids limit holds", func(t *testing.T) {
		t.Parallel()
		code := `import os, time
n = 0
while True:
    try:
        pid = os.fork()
    except OSError as e:
        print("stopped after", n, "forks:", e.strerror)
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    n += 1
`
		res, err := e.RunPython(context.Background(), code, Spec{Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if _, err := fmt.Sscanf(res.Stdout, "stopped after %d forks", &n); err != nil || n >= 64 {
			t.Fatalf("the pids limit did not stop the forks: %+v", res)
		}
	})
	t.Run("bash fork bomb ends at the timeout", func(t *testing.T) {
		t.Parallel()
		res, err := e.RunBash(context.Background(), ":(){ :|:& };:; sleep 100", Spec{Timeout: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if !res.TimedOut || res.DurationMS > 4000 {
			t.Errorf("fork bomb not stopped by the timeout: %+v", res)
		}
	})
	t.Run("memory bomb is OOM-killed", func(t *testing.T) {
		t.Parallel()
		res, err := e.RunPython(context.Background(), "a = []\nwhile True:\n    a.append('x' * 10**7)", Spec{Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if !res.OOMKilled || res.ExitCode != 137 || res.TimedOut {
			t.Errorf("want oom_killed and exit 137: %+v", res)
		}
	})
	// The wall-clock bounds below leave room for a loaded engine (stopping a
	// container can take a second or more there) while still failing a run
	// that escaped its 2 s limit: the programs would run forever or 100 s.
	t.Run("busy loop times out at its timeout", func(t *testing.T) {
		t.Parallel()
		begin := time.Now()
		res, err := e.RunPython(context.Background(), "while True: pass", Spec{Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if !res.TimedOut || res.ExitCode != 137 {
			t.Errorf("want timed_out: %+v", res)
		}
		if res.DurationMS < 2000 || res.DurationMS > 6000 {
			t.Errorf("ran %d ms for a 2 s timeout", res.DurationMS)
		}
		t.Logf("whole call, container create and removal included: %s", time.Since(begin))
	})
	t.Run("closing its output does not escape the timeout", func(t *testing.T) {
		t.Parallel()
		res, err := e.RunBash(context.Background(), "echo bye; exec >&- 2>&-; sleep 100", Spec{Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if !res.TimedOut || res.Stdout != "bye\n" || res.DurationMS > 6000 {
			t.Errorf("want timed_out after 2 s: %+v", res)
		}
	})
	t.Run("no network, the daemon's ports included", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", net.JoinHostPort(bridgeIP, "0"))
		if err != nil {
			t.Fatalf("listening on the docker bridge: %v", err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("OPEN"))
				c.Close()
			}
		}()
		port := ln.Addr().(*net.TCPAddr).Port
		code := fmt.Sprintf(`import socket, os
targets = [(%q, %d), (%q, 2375), (%q, 2376), ("1.1.1.1", 80), ("8.8.8.8", 53)]
for host, port in targets:
    try:
        socket.create_connection((host, port), timeout=2).close()
        print("OPEN", host, port)
    except OSError as e:
        print("blocked", host, port)
try:
    socket.getaddrinfo("deb.debian.org", 80)
    print("OPEN dns")
except OSError:
    print("blocked dns")
print("docker.sock", os.path.exists("/var/run/docker.sock"))
print(sorted(os.listdir("/sys/class/net")))
`, bridgeIP, port, bridgeIP, bridgeIP)
		res, err := e.RunPython(context.Background(), code, Spec{Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(res.Stdout, "OPEN") || strings.Count(res.Stdout, "blocked") != 6 ||
			!strings.Contains(res.Stdout, "docker.sock False") || !strings.Contains(res.Stdout, "['lo']") {
			t.Fatalf("the sandbox reached the network: %q %q", res.Stdout, res.Stderr)
		}
		// Control: the same probe from a container with a network reaches
		// the listener, so the probe itself can succeed.
		out, err := exec.Command("docker", "run", "--rm", "--label", LabelInstance+"="+e.cfg.Instance, testImage(),
			"python3", "-c", fmt.Sprintf("import socket; print(socket.create_connection((%q, %d), timeout=5).recv(4).decode())", bridgeIP, port)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "OPEN") {
			t.Errorf("control run with a network did not reach the listener (%v): %s", err, out)
		}
	})
	t.Run("root filesystem is read-only, /tmp bounded", func(t *testing.T) {
		t.Parallel()
		code := `for f in /pwned /etc/pwned /usr/bin/pwned /workspace/../pwned; do echo x > $f && echo "WROTE $f"; done
echo ok > /tmp/ok && cat /tmp/ok
head -c 64M /dev/zero > /tmp/big || echo "tmp full"`
		res, err := e.RunBash(context.Background(), code, Spec{Dir: ownDir})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(res.Stdout, "WROTE") || strings.Count(res.Stderr, "Read-only file system") != 4 {
			t.Errorf("wrote to the root filesystem: %q %q", res.Stdout, res.Stderr)
		}
		if !strings.Contains(res.Stdout, "ok\n") || !strings.Contains(res.Stdout, "tmp full") {
			t.Errorf("/tmp not writable or not bounded: %q %q", res.Stdout, res.Stderr)
		}
	})
	t.Run("another session's files are not there", func(t *testing.T) {
		t.Parallel()
		code := `ls -a /workspace; cat /workspace/../session-b/files/secret.txt 2>/dev/null; grep -rs TOPSECRET / --exclude-dir=proc --exclude-dir=sys -l; echo end`
		res, err := e.RunBash(context.Background(), code, Spec{Dir: ownDir, SessionID: "session-a", Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(res.Stdout, "TOPSECRET") || strings.Contains(res.Stdout, "secret.txt") {
			t.Errorf("another session's file is visible: %q", res.Stdout)
		}
		if !strings.Contains(res.Stdout, "mine.txt") || !strings.HasSuffix(res.Stdout, "end\n") {
			t.Errorf("own workspace not mounted: %q %q", res.Stdout, res.Stderr)
		}
	})
	t.Run("files written to /workspace reach the session", func(t *testing.T) {
		t.Parallel()
		dir := sessionDir(t, e, "session-w", nil)
		res, err := e.RunPython(context.Background(), "open('/workspace/out.txt','w').write('from the sandbox')", Spec{Dir: dir})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("%v %+v", err, res)
		}
		b, err := os.ReadFile(filepath.Join(dir, "out.txt"))
		if err != nil || string(b) != "from the sandbox" {
			t.Errorf("out.txt = %q, %v", b, err)
		}
	})
}

// TestOutputFloodIsCapped prints 100 MiB: the run is killed at the 1 MiB cap
// and the executor's heap never holds much more than the cap.
func TestOutputFloodIsCapped(t *testing.T) {
	e := newTestExecutor(t, Config{})
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	var streamed atomic.Int64
	sink := writerFunc(func(p []byte) (int, error) { streamed.Add(int64(len(p))); return len(p), nil })
	res, err := e.RunPython(context.Background(),
		"import sys\nchunk = 'x' * 65536\nfor _ in range(1600):\n    sys.stdout.write(chunk)\nprint('not reached', file=sys.stderr)",
		Spec{Stdout: sink, Timeout: 60 * time.Second})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !res.Truncated || len(res.Stdout) != DefaultOutputLimit || streamed.Load() != DefaultOutputLimit || res.TimedOut {
		t.Errorf("want truncated at %d bytes: truncated=%v stdout=%d streamed=%d timed_out=%v", DefaultOutputLimit, res.Truncated, len(res.Stdout), streamed.Load(), res.TimedOut)
	}
	if strings.Contains(res.Stderr, "not reached") {
		t.Error("the program ran to its end past the cap")
	}
	grew := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("heap in use grew by %d KiB at most while 100 MiB were printed", grew>>10)
	if grew > 16<<20 {
		t.Errorf("heap grew by %d MiB for a 1 MiB cap", grew>>20)
	}
}

type writerFunc func(p []byte) (int, error)

// signalOnWrite is a sink that closes ch on its first write.
func signalOnWrite(ch chan struct{}) writerFunc {
	var once sync.Once
	return func(p []byte) (int, error) {
		once.Do(func() { close(ch) })
		return len(p), nil
	}
}

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestStreamingDeliversOutputBeforeTheEnd(t *testing.T) {
	t.Parallel()
	e := newTestExecutor(t, Config{})
	first := make(chan time.Time, 1)
	sink := writerFunc(func(p []byte) (int, error) {
		select {
		case first <- time.Now():
		default:
		}
		return len(p), nil
	})
	done := time.Now()
	res, err := e.RunPython(context.Background(), "import time\nprint('first')\ntime.sleep(3)\nprint('second')", Spec{Stdout: sink})
	done = time.Now()
	if err != nil || res.Stdout != "first\nsecond\n" {
		t.Fatalf("%v %+v", err, res)
	}
	select {
	case at := <-first:
		if done.Sub(at) < 2*time.Second {
			t.Errorf("first line arrived %s before the end; want about 3 s", done.Sub(at))
		}
	default:
		t.Fatal("the sink got nothing")
	}
}

func TestCancelKillsTheRunAtOnce(t *testing.T) {
	t.Parallel()
	e := newTestExecutor(t, Config{MaxTimeout: 10 * time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	sink := signalOnWrite(started)
	errc := make(chan error, 1)
	go func() {
		_, err := e.RunBash(ctx, "echo up; sleep 600", Spec{Stdout: sink, Timeout: 10 * time.Minute})
		errc <- err
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not start")
	}
	if n := len(containersOf(t, e, LabelInstance+"="+e.cfg.Instance)); n != 1 {
		t.Fatalf("%d containers while running, want 1", n)
	}
	cancel()
	at := time.Now()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2 s of the cancellation")
	}
	if left := containersOf(t, e, LabelInstance+"="+e.cfg.Instance); len(left) > 0 {
		t.Errorf("container still there %s after the cancellation: %v", time.Since(at), left)
	}
}

func TestConcurrencyLimitAndQueue(t *testing.T) {
	t.Parallel()
	e := newTestExecutor(t, Config{Concurrency: 2, PerUser: 2, Queue: 1})
	const n = 2 + 1 + 1 // limit + queue + 1
	var wg sync.WaitGroup
	var ok, busy atomic.Int32
	for i := range n {
		wg.Go(func() {
			res, err := e.RunBash(context.Background(), "sleep 2; echo done", Spec{UserID: fmt.Sprint("user", i)})
			var be *BusyError
			switch {
			case errors.As(err, &be):
				busy.Add(1)
				if be.RetryAfter < time.Second {
					t.Errorf("RetryAfter %s", be.RetryAfter)
				}
			case err == nil && res.Stdout == "done\n":
				ok.Add(1)
			default:
				t.Errorf("run %d: %v %+v", i, err, res)
			}
		})
		// The next run arrives once this one holds a slot or waits.
		for deadline := time.Now().Add(30 * time.Second); i < n-1; time.Sleep(5 * time.Millisecond) {
			if s := e.Stats(); s.Running+s.Queued > i {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %d neither runs nor waits: %+v", i, e.Stats())
			}
		}
	}
	wg.Wait()
	if ok.Load() != 3 || busy.Load() != 1 {
		t.Errorf("ok=%d busy=%d; want 3 and 1", ok.Load(), busy.Load())
	}
	if s := e.Stats(); s.Running != 0 || s.Queued != 0 {
		t.Errorf("stats after the runs: %+v", s)
	}
}

// TestCleanupRemovesOrphans plays a gateway killed mid-run: its container,
// labelled with this instance but owned by no run of this process, is removed
// by the start-up sweep, while a fresh container of another instance is left.
func TestCleanupRemovesOrphans(t *testing.T) {
	t.Parallel()
	testenv.DockerImage(t, testImage())
	instance := "test-" + testenv.RandomHex(6)
	other := "test-other-" + testenv.RandomHex(6)
	start := func(inst string) string {
		out, err := exec.Command("docker", "run", "-d", "--network", "none",
			"--label", LabelManaged+"=1", "--label", LabelInstance+"="+inst, "--label", LabelRun+"="+testenv.RandomHex(4),
			testImage(), "sleep", "600").CombinedOutput()
		if err != nil {
			t.Fatalf("docker run: %v %s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	orphan := start(instance)
	foreign := start(other)
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", orphan, foreign).Run() })

	e := newTestExecutor(t, Config{Instance: instance, CleanupInterval: time.Hour})
	deadline := time.Now().Add(15 * time.Second)
	for len(containersOf(t, e, LabelInstance+"="+instance)) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the start-up sweep did not remove the orphan")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(containersOf(t, e, LabelInstance+"="+other)) != 1 {
		t.Error("the sweep removed a fresh container of another instance")
	}
	// A running run of this process is never swept.
	started := make(chan struct{})
	sink := signalOnWrite(started)
	errc := make(chan error, 1)
	go func() {
		res, err := e.RunBash(context.Background(), "echo up; sleep 2; echo end", Spec{Stdout: sink})
		if err == nil && res.Stdout != "up\nend\n" {
			err = fmt.Errorf("output %q", res.Stdout)
		}
		errc <- err
	}()
	<-started
	if _, err := e.Cleanup(context.Background()); err != nil {
		t.Errorf("Cleanup during a run: %v", err)
	}
	if n := len(containersOf(t, e, LabelInstance+"="+instance)); n != 1 {
		t.Errorf("%d containers of the instance after a sweep during a run, want the run's", n)
	}
	if err := <-errc; err != nil {
		t.Errorf("the run was disturbed by the sweep: %v", err)
	}
}

func TestUnavailableDaemon(t *testing.T) {
	t.Parallel()
	e, err := New(Config{Host: "tcp://127.0.0.1:1", CleanupInterval: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.IsAvailable(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("IsAvailable = %v, want ErrUnavailable", err)
	}
	if _, err := e.RunPython(context.Background(), "print(1)", Spec{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Run = %v, want ErrUnavailable", err)
	}
	if s := e.Stats(); s.Running != 0 {
		t.Errorf("a failed run kept its slot: %+v", s)
	}
}

func TestMissingImage(t *testing.T) {
	t.Parallel()
	e := newTestExecutor(t, Config{Images: map[string]string{"python": "claude-sandbox:no-such-tag-" + testenv.RandomHex(4)}})
	if _, err := e.RunPython(context.Background(), "print(1)", Spec{}); !errors.Is(err, ErrImageMissing) {
		t.Errorf("got %v, want ErrImageMissing", err)
	}
}

func TestHardeningOfTheContainer(t *testing.T) {
	t.Parallel()
	e := newTestExecutor(t, Config{Limits: containerlimits.Limits{Memory: 96 << 20, CPUs: 0.5, Pids: 50}, DaemonWorkspace: ""})
	dir := sessionDir(t, e, "session-h", nil)
	started := make(chan struct{})
	sink := signalOnWrite(started)
	errc := make(chan error, 1)
	go func() {
		_, err := e.RunBash(context.Background(), "echo up; sleep 3", Spec{Dir: dir, Stdout: sink, SessionID: "session-h", UserID: "u1"})
		errc <- err
	}()
	<-started
	ids := containersOf(t, e, LabelSession+"=session-h")
	if len(ids) != 1 {
		t.Fatalf("containers of the session: %v", ids)
	}
	insp, err := e.docker.ContainerInspect(context.Background(), ids[0], client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, hc := insp.Container.Config, insp.Container.HostConfig
	checks := []struct {
		name      string
		got, want any
	}{
		{"user", c.User, "1000:1000"},
		{"cap drop", fmt.Sprint(hc.CapDrop), "[ALL]"},
		{"security opt", fmt.Sprint(hc.SecurityOpt), "[no-new-privileges]"},
		{"read-only root", hc.ReadonlyRootfs, true},
		{"network", string(hc.NetworkMode), "none"},
		{"memory", hc.Memory, int64(96 << 20)},
		{"swap = memory", hc.MemorySwap, int64(96 << 20)},
		{"cpus", hc.NanoCPUs, int64(5e8)},
		{"pids", *hc.PidsLimit, int64(50)},
		{"log driver", hc.LogConfig.Type, "none"},
		{"privileged", hc.Privileged, false},
		{"mounts", len(insp.Container.Mounts), 1},
		{"tmpfs", hc.Tmpfs["/tmp"] != "", true},
		{"label user", c.Labels[LabelUser], "u1"},
		{"label managed", c.Labels[LabelManaged], "1"},
	}
	for _, ck := range checks {
		if fmt.Sprint(ck.got) != fmt.Sprint(ck.want) {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	for _, m := range insp.Container.Mounts {
		if m.Destination == WorkspaceDir && (m.Source != dir || !m.RW) {
			t.Errorf("workspace mount %+v, want %s read-write", m, dir)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestDaemonWorkspaceMapping(t *testing.T) {
	ws := t.TempDir()
	e, err := New(Config{Workspace: ws, DaemonWorkspace: "/workspaces", CleanupInterval: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	dir := filepath.Join(ws, "sessions", "session-x", "files")
	os.MkdirAll(dir, 0o755)
	tests := []struct {
		dir, want string
		ok        bool
	}{
		{dir, "/workspaces/sessions/session-x/files", true},
		{filepath.Join(ws, "sessions", "..", "..", "elsewhere"), "", false},
		{t.TempDir(), "", false},
		{filepath.Join(ws, "missing"), "", false},
	}
	for _, tt := range tests {
		got, err := e.bindSource(tt.dir)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("bindSource(%s) = %q, %v; want %q ok=%v", tt.dir, got, err, tt.want, tt.ok)
		}
	}
}

// dockerBridgeIP is the host's address on the default bridge (docker0),
// where a daemon listening on TCP would be reached from a networked container.
func dockerBridgeIP(t *testing.T) string {
	t.Helper()
	ifc, err := net.InterfaceByName("docker0")
	if err != nil {
		t.Fatalf("docker bridge: %v", err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		t.Fatalf("docker bridge: %v", err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	t.Fatalf("docker0 has no IPv4 address: %v", addrs)
	return ""
}
