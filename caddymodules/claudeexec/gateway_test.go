package claudeexec_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/executor"
	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
	"github.com/claude-gateway/claude-gateway/workspaces"
)

const sandboxImage = "claude-sandbox:local"

func image() string {
	if img := os.Getenv("CLAUDE_SANDBOX_IMAGE"); img != "" {
		return img
	}
	return sandboxImage
}

// workspaceImage is the image runs execute in: `make workspace-image`'s,
// with the IDE stand-in and the claude-run helper.
func workspaceImage() string {
	if img := os.Getenv("CLAUDE_WORKSPACE_IMAGE"); img != "" {
		return img
	}
	return workspaces.LocalImage
}

// gw is a gateway running the repository's Caddyfile.dev with its executor
// block replaced by the test's, with tokens for two users and an admin.
type gw struct {
	t                 testing.TB
	g                 *gatewaytest.Gateway
	c                 *http.Client
	instance          string
	config            string
	alice, bob, admin string
}

// start runs the gateway; settings are lines of the executor block, or of
// the workspaces block when they start with "workspaces.".
func start(t *testing.T, settings ...string) *gw {
	t.Helper()
	return startTB(t, settings...)
}

func startTB(t testing.TB, settings ...string) *gw {
	t.Helper()
	return startEnv(t, nil, settings...)
}

// startEnv is start with extra environment for Caddyfile.dev.
func startEnv(t testing.TB, extra map[string]string, settings ...string) *gw {
	t.Helper()
	testenv.DockerImage(t, image())
	testenv.DockerImage(t, workspaceImage())
	instance := "gwtest-" + testenv.RandomHex(6)
	cfg := caddyfile(t, instance, settings...)
	env := map[string]string{
		"SECRET_KEY":      gatewaytest.TestSecret,
		"CLAUDE_DATABASE": testenv.SQLiteDatabase(t),
		// The per-user API rate limit is not what these tests are about.
		"RATE_LIMIT_PER_MINUTE": "100000",
	}
	for k, v := range extra {
		env[k] = v
	}
	g := gatewaytest.Start(t, gatewaytest.Options{Caddyfile: cfg, Env: env, Dir: shortDir(t)})
	c := g.Client()
	c.Timeout = 2 * time.Minute
	w := &gw{
		t: t, g: g, c: c, instance: instance, config: cfg,
		alice: gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-alice", "alice", "user", time.Hour),
		bob:   gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-bob", "bob", "user", time.Hour),
		admin: gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-admin", "root", "admin", time.Hour),
	}
	t.Cleanup(func() {
		// Runs after the gateway stopped (cleanups run last-in first-out):
		// the daemon must be healthy and nothing of this gateway left.
		if out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
			t.Errorf("the daemon is not healthy after the test: %v %s", err, out)
		}
		if left := w.containers(); len(left) > 0 {
			t.Errorf("containers left behind: %v", left)
			exec.Command("docker", append([]string{"rm", "-f"}, left...)...).Run()
		}
		// The session workspaces outlive a gateway on purpose (the next
		// one adopts them); the test's go with it.
		if out, err := exec.Command("docker", "ps", "-aq", "--filter", "label="+workspaces.LabelManaged+"=1",
			"--filter", "label="+workspaces.LabelInstance+"="+instance).Output(); err == nil && len(strings.Fields(string(out))) > 0 {
			exec.Command("docker", append([]string{"rm", "-f"}, strings.Fields(string(out))...)...).Run()
		}
	})
	return w
}

// shortDir is a gateway's working directory with a short path: the IDE
// sockets of the workspaces beneath it have a bounded path.
func shortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// caddyfile is Caddyfile.dev with the test's executor block.
func caddyfile(t testing.TB, instance string, settings ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(gatewaytest.RepoRoot(t), "Caddyfile.dev"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	i := strings.Index(cfg, "\t\texecutor {\n")
	j := strings.Index(cfg[i:], "\n\t\t}\n")
	if i < 0 || j < 0 || !strings.Contains(cfg, "\t\tclaude_exec\n") {
		t.Fatal("Caddyfile.dev lacks the executor block or the claude_exec directive")
	}
	block := "\t\texecutor {\n\t\t\timage default " + image() + "\n\t\t\tinstance " + instance + "\n"
	ws := "\t\tworkspaces {\n\t\t\timage " + workspaceImage() + "\n\t\t\tpull never\n\t\t\tcontainer_prefix " + containerPrefix(instance) + "\n"
	for _, s := range settings {
		if rest, ok := strings.CutPrefix(s, "workspaces."); ok {
			ws += "\t\t\t" + rest + "\n"
			continue
		}
		block += "\t\t\t" + s + "\n"
	}
	rest := cfg[i+j+len("\n\t\t}\n"):]
	// Caddyfile.dev's own workspaces block gives way to the test's.
	if k := strings.Index(rest, "\t\tworkspaces {\n"); k >= 0 {
		if l := strings.Index(rest[k:], "\n\t\t}\n"); l >= 0 {
			rest = rest[:k] + rest[k+l+len("\n\t\t}\n"):]
		}
	}
	return cfg[:i] + block + "\t\t}\n" + ws + "\t\t}\n" + rest
}

// containerPrefix names the test's workspace containers.
func containerPrefix(instance string) string { return "claude-ws-" + instance + "-" }

// processes lists "pid command line" of the processes in a session's
// workspace (read from /proc: the image has no ps), the listing excluded.
func (w *gw) processes(session string) []string {
	w.t.Helper()
	procs, err := w.tryProcesses(session)
	if err != nil {
		w.t.Fatal(err)
	}
	return procs
}

// tryProcesses is processes, with an error when the workspace does not run.
func (w *gw) tryProcesses(session string) ([]string, error) {
	out, err := exec.Command("docker", "exec", "-u", "1000:1000", containerPrefix(w.instance)+session, "bash", "-c",
		`for p in /proc/[0-9]*; do [ "${p#/proc/}" = "$$" ] && continue; c=$(tr '\0\n' '  ' < $p/cmdline 2>/dev/null) && [ -n "$c" ] && echo "${p#/proc/} $c"; done`).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		state, _ := exec.Command("docker", "inspect", "--format", "{{.State.Status}} exit={{.State.ExitCode}} oom={{.State.OOMKilled}} restarts={{.RestartCount}}", containerPrefix(w.instance)+session).CombinedOutput()
		return nil, fmt.Errorf("listing the processes of workspace %s: %w (%s; container %s)", session, err, bytes.TrimSpace(stderr), bytes.TrimSpace(state))
	}
	var procs []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && !strings.Contains(l, "/proc/[0-9]*") {
			procs = append(procs, l)
		}
	}
	return procs, nil
}

// runProcesses is processes without the workspace's own (init, the IDE,
// the run server).
func (w *gw) runProcesses(session string) []string {
	var run []string
	for _, p := range w.processes(session) {
		if !strings.Contains(p, "docker-init") && !strings.Contains(p, "/usr/bin/code-server") && !strings.Contains(p, workspaces.RunHelper+" serve") {
			run = append(run, p)
		}
	}
	return run
}

// idePID is the pid of the workspace's code-server.
func (w *gw) idePID(session string) string {
	for _, p := range w.processes(session) {
		if f := strings.Fields(p); len(f) > 1 && f[1] == "/usr/bin/code-server" {
			return f[0]
		}
	}
	return ""
}

// containers lists this gateway's per-run sandbox containers (runs execute
// in the session workspaces: there should be none).
func (w *gw) containers() []string {
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label="+executor.LabelManaged+"=1",
		"--filter", "label="+executor.LabelInstance+"="+w.instance).Output()
	if err != nil {
		w.t.Fatalf("docker ps: %v", err)
	}
	return strings.Fields(string(out))
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) code() string {
	var env struct {
		Error struct{ Code string } `json:"error"`
	}
	json.Unmarshal(r.body, &env)
	return env.Error.Code
}

func (w *gw) request(ctx context.Context, method, path, token string, body io.Reader, header ...string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, w.g.URL("localhost", path), body)
	if err != nil {
		w.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return w.c.Do(req)
}

func (w *gw) do(method, path, token string, body io.Reader, header ...string) reply {
	w.t.Helper()
	resp, err := w.request(context.Background(), method, path, token, body, header...)
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

func (w *gw) session(token string) string {
	w.t.Helper()
	r := w.do("POST", "/api/sessions", token, nil)
	if r.status != http.StatusCreated {
		w.t.Fatalf("creating a session: %d %s", r.status, r.body)
	}
	var s struct{ ID string }
	json.Unmarshal(r.body, &s)
	return s.ID
}

func execBody(lang, code string, extra ...any) io.Reader {
	m := map[string]any{"language": lang, "code": code}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	b, _ := json.Marshal(m)
	return bytes.NewReader(b)
}

type result struct {
	ExitCode   int    `json:"exit_code"`
	Stdout     string `json:"stdout"`
	Stderr     string `json:"stderr"`
	DurationMS int64  `json:"duration_ms"`
	TimedOut   bool   `json:"timed_out"`
	OOMKilled  bool   `json:"oom_killed"`
	Truncated  bool   `json:"truncated"`
}

func (w *gw) exec(token, id, lang, code string, extra ...any) (reply, result) {
	w.t.Helper()
	r := w.do("POST", "/api/sessions/"+id+"/exec", token, execBody(lang, code, extra...), "Content-Type", "application/json")
	var res result
	if r.status == http.StatusOK {
		if err := json.Unmarshal(r.body, &res); err != nil {
			w.t.Fatalf("exec answer %s: %v", r.body, err)
		}
	}
	return r, res
}

func TestExecAPI(t *testing.T) {
	t.Parallel()
	w := start(t, "timeout 10", "max_timeout 20", "workspaces.memory 192MiB")
	alice := w.session(w.alice)

	t.Run("run, streams apart, exit code", func(t *testing.T) {
		r, res := w.exec(w.alice, alice, "bash", "echo out; echo err >&2; exit 5")
		if r.status != 200 || res.ExitCode != 5 || res.Stdout != "out\n" || res.Stderr != "err\n" {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		r, res := w.exec(w.alice, alice, "python", "import sys; print(sum(int(x) for x in sys.stdin.read().split()))", "stdin", "1 2 3\n4")
		if r.status != 200 || res.Stdout != "10\n" {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("files written to /workspace appear in the files API", func(t *testing.T) {
		r, res := w.exec(w.alice, alice, "python", "import os\nos.makedirs('/workspace/out', exist_ok=True)\nopen('/workspace/out/result.txt','w').write('42')")
		if r.status != 200 || res.ExitCode != 0 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		f := w.do("GET", "/api/sessions/"+alice+"/files/out/result.txt", w.alice, nil)
		if f.status != 200 || string(f.body) != "42" {
			t.Errorf("files API: %d %q", f.status, f.body)
		}
		// And the other way: an uploaded file is there for the next run.
		if p := w.do("PUT", "/api/sessions/"+alice+"/files/in.txt", w.alice, strings.NewReader("uploaded")); p.status/100 != 2 {
			t.Fatalf("upload: %d %s", p.status, p.body)
		}
		if r, res := w.exec(w.alice, alice, "bash", "cat /workspace/in.txt"); r.status != 200 || res.Stdout != "uploaded" {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("memory bomb is oom_killed, the IDE lives on", func(t *testing.T) {
		ide := w.idePID(alice)
		if ide == "" {
			t.Fatalf("no code-server in the workspace: %q", w.processes(alice))
		}
		r, res := w.exec(w.alice, alice, "python", "a = []\nwhile True:\n    a.append('x' * 10**7)")
		if r.status != 200 || !res.OOMKilled || res.ExitCode != 137 {
			t.Errorf("%d %s", r.status, r.body)
		}
		if now := w.idePID(alice); now != ide {
			t.Errorf("code-server was pid %s before the bomb, %q after", ide, now)
		}
	})
	t.Run("a timed-out run leaves no process, daemons included", func(t *testing.T) {
		r, res := w.exec(w.alice, alice, "bash",
			"setsid bash -c 'exec sleep 601' </dev/null >/dev/null 2>&1 & ( setsid env -i /bin/sleep 602 </dev/null >/dev/null 2>&1 & ); while :; do :; done",
			"timeout_seconds", 2)
		if r.status != 200 || !res.TimedOut || res.ExitCode != 137 || res.DurationMS > 10000 {
			t.Errorf("%d %s", r.status, r.body)
		}
		if left := w.runProcesses(alice); len(left) > 0 {
			t.Errorf("left in the workspace: %q", left)
		}
	})
	t.Run("no container per run", func(t *testing.T) {
		if left := w.containers(); len(left) > 0 {
			t.Errorf("run containers: %v", left)
		}
	})

	tests := []struct {
		name, token, path, body string
		status                  int
		code                    string
	}{
		{"no token", "", "/api/sessions/" + alice + "/exec", `{"language":"python","code":"1"}`, 401, ""},
		{"someone else's session", w.bob, "/api/sessions/" + alice + "/exec", `{"language":"python","code":"print(1)"}`, 404, "session_not_found"},
		{"malformed session id", w.alice, "/api/sessions/nope/exec", `{"language":"python","code":"1"}`, 404, "session_not_found"},
		{"not JSON", w.alice, "/api/sessions/" + alice + "/exec", `print(1)`, 400, "invalid_request"},
		{"unknown field", w.alice, "/api/sessions/" + alice + "/exec", `{"language":"python","code":"1","image":"alpine"}`, 400, "invalid_request"},
		{"unknown language", w.alice, "/api/sessions/" + alice + "/exec", `{"language":"ruby","code":"1"}`, 400, "invalid_language"},
		{"empty code", w.alice, "/api/sessions/" + alice + "/exec", `{"language":"python","code":""}`, 400, "invalid_code"},
		{"timeout over max_timeout", w.alice, "/api/sessions/" + alice + "/exec", `{"language":"python","code":"1","timeout_seconds":21}`, 400, "invalid_timeout"},
		{"negative timeout", w.alice, "/api/sessions/" + alice + "/exec", `{"language":"python","code":"1","timeout_seconds":-1}`, 400, "invalid_timeout"},
		{"cleanup is admin-only", w.alice, "/api/executor/cleanup", ``, 403, "forbidden"},
		{"image build is admin-only", w.alice, "/api/executor/images?tag=x:y", ``, 403, "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.do("POST", tt.path, tt.token, strings.NewReader(tt.body))
			if r.status != tt.status || (tt.code != "" && r.code() != tt.code) {
				t.Errorf("%d %s, want %d %s", r.status, r.body, tt.status, tt.code)
			}
		})
	}
	t.Run("code too large", func(t *testing.T) {
		r, _ := w.exec(w.alice, alice, "python", strings.Repeat("#", executor.MaxCodeSize+1))
		if r.status != 400 || r.code() != "code_too_large" {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("status", func(t *testing.T) {
		r := w.do("GET", "/api/executor", w.alice, nil)
		var s struct {
			Available          bool
			Running, Queued    int
			Concurrency, Queue int
		}
		json.Unmarshal(r.body, &s)
		if r.status != 200 || !s.Available || s.Running != 0 || s.Concurrency != 4 {
			t.Errorf("%d %s", r.status, r.body)
		}
		h := w.do("GET", "/api/health", "", nil)
		if !strings.Contains(string(h.body), `"docker":{"status":"healthy"`) {
			t.Errorf("/api/health: %s", h.body)
		}
	})
}

// TestSSE checks that the first line arrives while the run goes on, and
// that a client that goes away kills its run at once.
// TestLongRunKeepsItsSession: a run that lasts longer than the session
// timeout keeps its session, and the workspace it writes to, from expiring.
func TestLongRunKeepsItsSession(t *testing.T) {
	t.Parallel()
	w := startEnv(t, map[string]string{"SESSION_TIMEOUT": "3"}, "timeout 20")
	id := w.session(w.alice)
	r, res := w.exec(w.alice, id, "bash", "sleep 5; echo done > /workspace/out.txt")
	if r.status != 200 || res.ExitCode != 0 {
		t.Fatalf("run: %d %s", r.status, r.body)
	}
	if g := w.do("GET", "/api/sessions/"+id, w.alice, nil); g.status != 200 {
		t.Fatalf("the session expired during its run: %d %s", g.status, g.body)
	}
	if f := w.do("GET", "/api/sessions/"+id+"/files/out.txt", w.alice, nil); f.status != 200 || string(f.body) != "done\n" {
		t.Errorf("the run's file: %d %q", f.status, f.body)
	}
}

func TestSSE(t *testing.T) {
	t.Parallel()
	w := start(t, "max_timeout 15m")
	id := w.session(w.alice)

	t.Run("events as output arrives", func(t *testing.T) {
		resp, err := w.request(context.Background(), "POST", "/api/sessions/"+id+"/exec", w.alice,
			execBody("python", "import sys, time\nprint('first')\ntime.sleep(2)\nprint('oops', file=sys.stderr)\nprint('last')\nsys.exit(3)"),
			"Accept", "text/event-stream")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
			t.Fatalf("%d %s", resp.StatusCode, ct)
		}
		begin := time.Now()
		streams := map[string]string{}
		var firstAt, exitAt time.Duration
		var exit string
		sc := bufio.NewScanner(resp.Body)
		var event string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data := strings.TrimPrefix(line, "data: ")
				if event == "exit" {
					exit, exitAt = data, time.Since(begin)
					continue
				}
				var chunk string
				if err := json.Unmarshal([]byte(data), &chunk); err != nil {
					t.Fatalf("%s data %q: %v", event, data, err)
				}
				streams[event] += chunk
				if firstAt == 0 && strings.Contains(streams["stdout"], "first") {
					firstAt = time.Since(begin)
				}
			}
		}
		// Order holds within a stream; the two streams are separate pipes.
		if streams["stdout"] != "first\nlast\n" || streams["stderr"] != "oops\n" ||
			!strings.HasPrefix(exit, `{"run_id":`) || !strings.Contains(exit, `"exit_code":3`) {
			t.Fatalf("streams %q, exit %s", streams, exit)
		}
		if firstAt == 0 || exitAt-firstAt < 1500*time.Millisecond {
			t.Errorf("first line at %s, exit at %s: not streamed", firstAt, exitAt)
		}
	})

	t.Run("client disconnect kills the run", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp, err := w.request(ctx, "POST", "/api/sessions/"+id+"/exec", w.alice,
			execBody("bash", "setsid bash -c 'exec sleep 611' </dev/null >/dev/null 2>&1 & echo up; sleep 612", "timeout_seconds", 900), "Accept", "text/event-stream")
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("stream ended before the first line: %v", err)
			}
			if strings.HasPrefix(line, "data: \"up") {
				break
			}
		}
		if procs := strings.Join(w.runProcesses(id), "\n"); !strings.Contains(procs, "sleep 611") || !strings.Contains(procs, "sleep 612") {
			t.Fatalf("the run's processes during the run:\n%s", procs)
		}
		cancel()
		resp.Body.Close()
		at := time.Now()
		for left := w.runProcesses(id); len(left) > 0; left = w.runProcesses(id) {
			if time.Since(at) > 10*time.Second {
				t.Fatalf("still in the workspace 10 s after the client left: %q", left)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("the run's processes gone %s after the client left", time.Since(at))
	})
}

// TestConcurrencyLimit sends limit+queue+1 runs at once: the extra one gets
// 429 with Retry-After, the others finish, nothing hangs.
func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	w := start(t, "concurrency 2", "per_user 2", "queue 1")
	id := w.session(w.alice)
	const n = 2 + 1 + 1
	replies := make([]reply, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { replies[i], _ = w.exec(w.alice, id, "bash", "sleep 2; echo done") })
		if i < n-1 {
			// The next one arrives once this one holds a slot or waits,
			// however slowly the machine runs.
			w.waitLoad(i + 1)
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("runs hang")
	}
	ok, busy := 0, 0
	for _, r := range replies {
		switch {
		case r.status == 200 && strings.Contains(string(r.body), `"stdout":"done\n"`):
			ok++
		case r.status == 429 && r.code() == "executor_busy":
			busy++
			if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
			}
		default:
			t.Errorf("unexpected %d %s", r.status, r.body)
		}
	}
	if ok != 3 || busy != 1 {
		t.Errorf("ok=%d busy=%d, want 3 and 1", ok, busy)
	}
}

// waitLoad waits until GET /api/executor counts n runs running or queued.
func (w *gw) waitLoad(n int) {
	w.t.Helper()
	var load struct{ Running, Queued int }
	for deadline := time.Now().Add(30 * time.Second); ; {
		r := w.do("GET", "/api/executor", w.alice, nil)
		if json.Unmarshal(r.body, &load) == nil && load.Running+load.Queued >= n {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("the executor counts %+v, want %d runs running or queued: %d %s", load, n, r.status, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKilledGatewayLeavesNoOrphan kills the gateway with -9 during a run:
// nobody is left to send a kill request, and the run's helper ends the run
// with its whole process tree at the run's limit by itself.
func TestKilledGatewayLeavesNoOrphan(t *testing.T) {
	t.Parallel()
	w := start(t, "max_timeout 15m")
	id := w.session(w.alice)
	answer := make(chan string, 1)
	go func() {
		resp, err := w.request(context.Background(), "POST", "/api/sessions/"+id+"/exec", w.alice,
			execBody("bash", "setsid bash -c 'exec sleep 621' </dev/null >/dev/null 2>&1 & sleep 622", "timeout_seconds", 6))
		if err != nil {
			answer <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answer <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	deadline := time.Now().Add(2 * time.Minute) // a busy engine starts a workspace slowly
	for {
		procs, err := w.tryProcesses(id) // the workspace may still be starting
		if strings.Contains(strings.Join(procs, "\n"), "sleep 622") {
			break
		}
		select {
		case a := <-answer:
			t.Fatalf("the run ended before the gateway was killed: %s", a)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run did not start: %q, %v", procs, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	w.g.Kill()
	at := time.Now()
	for left := w.runProcesses(id); len(left) > 0; left = w.runProcesses(id) {
		if time.Since(at) > 20*time.Second {
			t.Fatalf("the run outlived its limit by far after kill -9: %q", left)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the run's processes gone %s after kill -9", time.Since(at))
	w.g.Restart()
	if r, res := w.exec(w.alice, id, "python", "print(1)"); r.status != 200 || res.Stdout != "1\n" {
		t.Errorf("after the restart: %d %s", r.status, r.body)
	}
}

// TestReloadKeepsRuns reloads the config (with changed executor settings)
// during a run: the run finishes normally.
func TestReloadKeepsRuns(t *testing.T) {
	t.Parallel()
	w := start(t)
	id := w.session(w.alice)
	type out struct {
		r   reply
		res result
	}
	done := make(chan out, 1)
	go func() {
		r, res := w.exec(w.alice, id, "bash", "sleep 3; echo survived")
		done <- out{r, res}
	}()
	w.waitLoad(1)
	changed := strings.Replace(w.config, "\t\t\tinstance "+w.instance+"\n", "\t\t\tinstance "+w.instance+"\n\t\t\ttimeout 20\n", 1)
	if err := w.g.Load(changed); err != nil {
		t.Fatalf("reload: %v", err)
	}
	o := <-done
	if o.r.status != 200 || o.res.Stdout != "survived\n" || o.res.ExitCode != 0 {
		t.Errorf("run across a reload: %d %s", o.r.status, o.r.body)
	}
	if r, res := w.exec(w.alice, id, "python", "print(2)"); r.status != 200 || res.Stdout != "2\n" {
		t.Errorf("after the reload: %d %s", r.status, r.body)
	}
}

// TestDockerDown points the executor at a dead address: runs get 503
// executor_unavailable, the health report is degraded, not down.
func TestDockerDown(t *testing.T) {
	t.Parallel()
	w := start(t, "host tcp://127.0.0.1:"+strconv.Itoa(gatewaytest.FreePort(t)))
	id := w.session(w.alice)
	r, _ := w.exec(w.alice, id, "python", "print(1)")
	if r.status != 503 || r.code() != "executor_unavailable" {
		t.Errorf("exec: %d %s", r.status, r.body)
	}
	s := w.do("GET", "/api/executor", w.alice, nil)
	if s.status != 200 || !strings.Contains(string(s.body), `"available":false`) {
		t.Errorf("status: %d %s", s.status, s.body)
	}
	h := w.do("GET", "/api/health", "", nil)
	if !strings.Contains(string(h.body), `"status":"degraded"`) || !strings.Contains(string(h.body), `"docker":{"status":"unavailable"`) {
		t.Errorf("health: %d %s", h.status, h.body)
	}
	if ready := w.do("GET", "/api/ready", "", nil); ready.status != 200 {
		t.Errorf("ready with docker down: %d (docker is not critical)", ready.status)
	}
}

// TestOutputFloodGatewayMemory prints 100 MiB through the gateway: the answer
// is truncated at the cap and the gateway's peak RSS barely moves.
func TestOutputFloodGatewayMemory(t *testing.T) {
	t.Parallel()
	w := start(t)
	id := w.session(w.alice)
	if r, _ := w.exec(w.alice, id, "python", "print(1)"); r.status != 200 {
		t.Fatalf("warm-up: %d %s", r.status, r.body)
	}
	before := peakRSS(t, w.g.Pid())
	r, res := w.exec(w.alice, id, "python", "import sys\nchunk = 'x' * 65536\nfor _ in range(1600):\n    sys.stdout.write(chunk)", "timeout_seconds", 60)
	after := peakRSS(t, w.g.Pid())
	if r.status != 200 || !res.Truncated || len(res.Stdout) != 1<<20 {
		t.Fatalf("%d truncated=%v stdout=%d", r.status, res.Truncated, len(res.Stdout))
	}
	t.Logf("gateway peak RSS %d MiB → %d MiB for 100 MiB of output", before>>20, after>>20)
	if after-before > 32<<20 {
		t.Errorf("gateway peak RSS grew by %d MiB", (after-before)>>20)
	}
}

// peakRSS reads a process's peak resident set size (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestAdminAPI builds an image from an uploaded context and runs code in it;
// sweeps on demand; refuses an oversized context.
func TestAdminAPI(t *testing.T) {
	t.Parallel()
	w := start(t, "build_context_limit 64KiB", "cleanup_interval 1h")
	tag := "claude-sandbox-test:" + testenv.RandomHex(4)
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag).Run() })

	ctxTar := tarball(t, map[string]string{
		"Dockerfile":   "FROM " + image() + "\nCOPY greeting.txt /opt/greeting.txt\n",
		"greeting.txt": "built here\n",
	})
	r := w.do("POST", "/api/executor/images?tag="+tag, w.admin, bytes.NewReader(ctxTar), "Content-Type", "application/x-tar")
	if r.status != 201 || !strings.Contains(string(r.body), `"image_id":"sha256:`) {
		t.Fatalf("build: %d %s", r.status, r.body)
	}
	if out, err := exec.Command("docker", "run", "--rm", "--network", "none", tag, "cat", "/opt/greeting.txt").CombinedOutput(); err != nil || string(out) != "built here\n" {
		t.Errorf("built image: %v %q", err, out)
	}

	bad := tarball(t, map[string]string{"Dockerfile": "FROM " + image() + "\nRUN exit 9\n"})
	if r := w.do("POST", "/api/executor/images?tag="+tag+"-bad", w.admin, bytes.NewReader(bad)); r.status != 422 || r.code() != "build_failed" {
		t.Errorf("failing build: %d %s", r.status, r.body)
	}
	big := tarball(t, map[string]string{"Dockerfile": "FROM scratch\n", "blob": strings.Repeat("z", 100<<10)})
	if r := w.do("POST", "/api/executor/images?tag="+tag+"-big", w.admin, bytes.NewReader(big)); r.status != 413 || r.code() != "build_context_too_large" {
		t.Errorf("oversized context: %d %s", r.status, r.body)
	}
	if r := w.do("POST", "/api/executor/images?tag=Bad%20Tag", w.admin, bytes.NewReader(ctxTar)); r.status != 400 || r.code() != "invalid_tag" {
		t.Errorf("bad tag: %d %s", r.status, r.body)
	}

	// An orphan of this instance (a run no process owns) goes on demand.
	out, err := exec.Command("docker", "create", "--label", executor.LabelManaged+"=1",
		"--label", executor.LabelInstance+"="+w.instance, image(), "true").CombinedOutput()
	if err != nil {
		t.Fatalf("docker create: %v %s", err, out)
	}
	orphan := strings.TrimSpace(string(out))
	r = w.do("POST", "/api/executor/cleanup", w.admin, nil)
	var swept struct{ Removed int }
	json.Unmarshal(r.body, &swept)
	// At least ours: stale containers of other instances may go too.
	if r.status != 200 || swept.Removed < 1 {
		t.Errorf("cleanup: %d %s", r.status, r.body)
	}
	if err := exec.Command("docker", "inspect", orphan).Run(); err == nil {
		t.Error("the orphan is still there after the cleanup")
	}
}

func tarball(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))})
		tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestQueueFairShare: one user sending 18 runs beyond their running ones
// fills no more than their own share of the queue (the rest get 429), and
// another user's run still queues and finishes.
func TestQueueFairShare(t *testing.T) {
	t.Parallel()
	w := start(t, "concurrency 2", "per_user 2", "queue 16")
	alice, bob := w.session(w.alice), w.session(w.bob)
	const flood = 2 + 18
	replies := make([]reply, flood)
	var answered atomic.Int32
	var wg sync.WaitGroup
	for i := range flood {
		wg.Go(func() {
			replies[i], _ = w.exec(w.alice, alice, "bash", "sleep 2; echo done")
			answered.Add(1)
		})
	}
	// Every one of alice's runs has been answered, or runs, or waits.
	var load struct{ Running, Queued int }
	for deadline := time.Now().Add(60 * time.Second); ; {
		r := w.do("GET", "/api/executor", w.alice, nil)
		json.Unmarshal(r.body, &load)
		if load.Running+load.Queued+int(answered.Load()) >= flood {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's runs never all arrived: %+v, %d answered", load, answered.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("alice: %d running, %d queued, %d answered", load.Running, load.Queued, answered.Load())
	r, res := w.exec(w.bob, bob, "bash", "echo bob")
	if r.status != http.StatusOK || res.Stdout != "bob\n" {
		t.Errorf("bob's run while alice floods the queue: %d %s", r.status, r.body)
	}
	wg.Wait()
	ok, busy := 0, 0
	for _, r := range replies {
		switch {
		case r.status == 200:
			ok++
		case r.status == 429 && r.code() == "executor_busy":
			busy++
			if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
			}
		default:
			t.Errorf("unexpected %d %s", r.status, r.body)
		}
	}
	if want := 2 + executor.DefaultQueuePerUser; ok != want || busy != flood-want {
		t.Errorf("alice: %d ran, %d got 429; want %d and %d", ok, busy, want, flood-want)
	}
}

// TestRunPastTheQuota: a run that keeps writing past a 1 MiB session quota
// is stopped and answered 507; the session then refuses uploads and runs
// with 507 until the files are removed.
func TestRunPastTheQuota(t *testing.T) {
	t.Parallel()
	w := startEnv(t, map[string]string{"SESSION_QUOTA": "1048576", "MAX_FILE_SIZE": "1048576"}, "timeout 60", "max_timeout 60")
	id := w.session(w.alice)
	begin := time.Now()
	r, _ := w.exec(w.alice, id, "bash", "mkdir -p junk; i=0; while true; do head -c 65536 /dev/zero > junk/f$i; i=$((i+1)); done")
	if r.status != http.StatusInsufficientStorage || r.code() != "quota_exceeded" {
		t.Fatalf("a run writing without end: %d %s", r.status, r.body)
	}
	t.Logf("stopped after %s", time.Since(begin))
	files := "/api/sessions/" + id + "/files/"
	if r := w.do("PUT", files+"small.txt", w.alice, strings.NewReader("x")); r.status != http.StatusInsufficientStorage || r.code() != "quota_exceeded" {
		t.Errorf("an upload to a session over its quota: %d %s", r.status, r.body)
	}
	if r, _ := w.exec(w.alice, id, "bash", "echo hi"); r.status != http.StatusInsufficientStorage || r.code() != "quota_exceeded" {
		t.Errorf("a run in a session over its quota: %d %s", r.status, r.body)
	}
	if r := w.do("DELETE", files+"junk/", w.alice, nil); r.status != http.StatusNoContent {
		t.Fatalf("deleting the run's files: %d %s", r.status, r.body)
	}
	if r := w.do("PUT", files+"small.txt", w.alice, strings.NewReader("x")); r.status != http.StatusCreated {
		t.Errorf("an upload once the files are gone: %d %s", r.status, r.body)
	}
	if r, res := w.exec(w.alice, id, "bash", "cat small.txt"); r.status != http.StatusOK || res.Stdout != "x" {
		t.Errorf("a run once the files are gone: %d %s", r.status, r.body)
	}
}

// TestTwoGatewaysKeepTheirRuns: two gateways on one host and one engine,
// neither with an `instance` setting, sweeping every second: a run of one
// outlives several sweeps of the other. (With the host name as the default,
// the other's sweep removed the run's container as an orphan.)
func TestTwoGatewaysKeepTheirRuns(t *testing.T) {
	t.Parallel()
	testenv.DockerImage(t, image())
	prefix := containerPrefix("unnamed-" + testenv.RandomHex(6))
	t.Cleanup(func() {
		out, _ := exec.Command("docker", "ps", "-aq", "--filter", "name=^/"+prefix).Output()
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
		}
	})
	unnamed := func() *gatewaytest.Gateway {
		cfg := caddyfile(t, "unset", "cleanup_interval 1s")
		cfg = strings.Replace(cfg, "\t\t\tinstance unset\n", "", 1)
		cfg = strings.Replace(cfg, "container_prefix "+containerPrefix("unset"), "container_prefix "+prefix, 1)
		return gatewaytest.Start(t, gatewaytest.Options{Caddyfile: cfg, Dir: shortDir(t), Env: map[string]string{
			"SECRET_KEY":            gatewaytest.TestSecret,
			"CLAUDE_DATABASE":       testenv.SQLiteDatabase(t),
			"RATE_LIMIT_PER_MINUTE": "100000",
		}})
	}
	ga, gb := unnamed(), unnamed()
	a := &gw{t: t, g: ga, c: ga.Client(), alice: gatewaytest.AccessToken(t, gatewaytest.TestSecret, "u-alice", "alice", "user", time.Hour)}
	a.c.Timeout = 2 * time.Minute
	id := a.session(a.alice)
	r, res := a.exec(a.alice, id, "bash", "sleep 5; echo survived")
	if r.status != http.StatusOK || res.Stdout != "survived\n" {
		t.Errorf("a run while another gateway sweeps: %d %s", r.status, r.body)
	}
	if !strings.Contains(gb.Log(), "executor ready") {
		t.Errorf("the second gateway started no executor:\n%s", gb.LogTail(20))
	}
}
