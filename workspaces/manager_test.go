package workspaces

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// testImage is the image `make workspace-image` builds for the tests.
func testImage() string {
	if img := os.Getenv("CLAUDE_WORKSPACE_IMAGE"); img != "" {
		return img
	}
	return LocalImage
}

// harness is a manager on the machine's engine with its own workspace,
// instance and container names, and a session index the test controls.
type harness struct {
	t      *testing.T
	m      *Manager
	docker *client.Client
	cfg    Config

	mu       sync.Mutex
	sessions map[string]time.Time
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	testenv.DockerImage(t, testImage())
	docker, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, docker: docker, sessions: map[string]time.Time{}}
	if cfg.Workspace == "" {
		cfg.Workspace = shortTempDir(t)
	}
	cfg.Image = testImage()
	cfg.Pull = PullNever
	cfg.Instance = "test-" + testenv.RandomHex(6)
	cfg.NamePrefix = "claude-ws-test-" + testenv.RandomHex(4) + "-"
	if cfg.StartWait == 0 {
		cfg.StartWait = 30 * time.Second
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = -1
	}
	h.cfg = cfg
	h.m = h.manager()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		list, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true,
			Filters: client.Filters{}.Add("label", LabelInstance+"="+cfg.Instance)})
		if err == nil {
			for _, c := range list.Items {
				docker.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
			}
		}
		docker.Close()
	})
	return h
}

// manager starts a manager of h's settings (a second one is a replica or a
// restarted gateway).
func (h *harness) manager() *Manager {
	m, err := New(h.cfg, h.docker, h.index, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { m.Close() })
	return m
}

func (h *harness) index(context.Context) (map[string]time.Time, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]time.Time, len(h.sessions))
	for k, v := range h.sessions {
		out[k] = v
	}
	return out, nil
}

// session makes a session directory with one file and registers it.
func (h *harness) session(user string) Spec {
	id := "session-" + testenv.RandomHex(16)
	dir := filepath.Join(h.cfg.Workspace, "sessions", id, "files")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret-of-"+user+".txt"), []byte(user), 0o644); err != nil {
		h.t.Fatal(err)
	}
	h.mu.Lock()
	h.sessions[id] = time.Now()
	h.mu.Unlock()
	return Spec{SessionID: id, UserID: user}
}

func (h *harness) inspect(name string) (running bool, exists bool) {
	info, err := h.docker.ContainerInspect(context.Background(), name, client.ContainerInspectOptions{})
	if err != nil {
		return false, false
	}
	return info.Container.State.Running, true
}

// exec runs a command in a workspace with the docker CLI, as its user.
func (h *harness) exec(w *Workspace, args ...string) (string, error) {
	out, err := exec.Command("docker", append([]string{"exec", "-u", w.User, w.ContainerID}, args...)...).CombinedOutput()
	return string(out), err
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestEnsureStartsALockedDownWorkspace starts a workspace, reaches its IDE
// through the gateway's socket link, and checks the container's hardening:
// only its session's files, only the loopback interface, non-root, no
// capabilities, read-only root.
func TestEnsureStartsALockedDownWorkspace(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := ctxT(t)
	alice, bob := h.session("alice"), h.session("bob")
	wa, err := h.m.EnsureIDE(ctx, alice)
	if err != nil {
		t.Fatalf("EnsureIDE: %v", err)
	}
	wb, err := h.m.EnsureIDE(ctx, bob)
	if err != nil {
		t.Fatalf("EnsureIDE: %v", err)
	}
	if err := probe(ctx, wa.Socket); err != nil {
		t.Fatalf("the IDE does not answer on %s: %v", wa.Socket, err)
	}
	again, err := h.m.Ensure(ctx, alice)
	if err != nil || again.ContainerID != wa.ContainerID {
		t.Fatalf("a second Ensure made another container: %v %v", again, err)
	}

	out, err := h.exec(wb, "bash", "-c", "ls /sys/class/net; id -u; ls /workspace; ls / /home /workspace/.. | tr '\\n' ' '; grep -c . /proc/self/status >/dev/null; grep CapEff /proc/self/status; touch /x 2>&1; echo done")
	if err != nil {
		t.Fatalf("exec: %v\n%s", err, out)
	}
	lines := strings.Split(out, "\n")
	if strings.TrimSpace(lines[0]) != "lo" {
		t.Errorf("interfaces in bob's workspace: %q, want only lo", lines[0])
	}
	if strings.TrimSpace(lines[1]) != "1000" {
		t.Errorf("uid %q, want 1000", lines[1])
	}
	if strings.TrimSpace(lines[2]) != "secret-of-bob.txt" {
		t.Errorf("bob's /workspace holds %q", lines[2])
	}
	if strings.Contains(out, "alice") || strings.Contains(out, alice.SessionID) {
		t.Errorf("something of alice's is visible in bob's workspace:\n%s", out)
	}
	if !strings.Contains(out, "CapEff:\t0000000000000000") {
		t.Errorf("capabilities left:\n%s", out)
	}
	if !strings.Contains(out, "Read-only file system") {
		t.Errorf("the root file system is writable:\n%s", out)
	}

	info, err := h.docker.ContainerInspect(ctx, wb.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hc := info.Container.HostConfig
	if hc.NetworkMode != "none" || !hc.ReadonlyRootfs || hc.Memory != DefaultLimits.Memory || hc.MemorySwap != DefaultLimits.Memory ||
		hc.PidsLimit == nil || *hc.PidsLimit != DefaultLimits.Pids || len(hc.CapDrop) != 1 || hc.CapDrop[0] != "ALL" ||
		!strings.Contains(strings.Join(hc.SecurityOpt, ","), "no-new-privileges") || hc.Privileged {
		t.Errorf("host config not locked down: %+v", hc)
	}
	labels := info.Container.Config.Labels
	if labels[LabelSession] != bob.SessionID || labels[LabelUser] != "bob" || labels[LabelInstance] != h.cfg.Instance {
		t.Errorf("labels %v", labels)
	}
	for _, m := range info.Container.Mounts {
		if !strings.Contains(m.Source, bob.SessionID) && m.Type == "bind" {
			t.Errorf("bob's workspace mounts %s", m.Source)
		}
	}
}

// TestSocketSymlinkIsNeverDialled plants, in place of the IDE's socket, a
// link to a socket of the gateway's side (as a user with a terminal in the
// workspace could): the gateway must neither link nor dial it.
func TestSocketSymlinkIsNeverDialled(t *testing.T) {
	h := newHarness(t, Config{})
	spec := h.session("mallory")
	dir := filepath.Join(h.cfg.Workspace, "sessions", spec.SessionID)
	if err := os.Mkdir(filepath.Join(dir, ideSubdir), 0o700); err != nil {
		t.Fatal(err)
	}
	private := filepath.Join(t.TempDir(), "admin.sock")
	ln, err := net.Listen("unix", private)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var dialled sync.WaitGroup
	hits := make(chan struct{}, 10)
	dialled.Add(1)
	go func() {
		defer dialled.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			hits <- struct{}{}
			c.Close()
		}
	}()
	if err := os.Symlink(private, filepath.Join(dir, ideSubdir, socketName)); err != nil {
		t.Fatal(err)
	}
	if err := h.m.linkSocket(spec.SessionID); err == nil {
		t.Fatal("a symbolic link was taken for the IDE socket")
	}
	// A symlinked ide/ directory is refused as well.
	os.RemoveAll(filepath.Join(dir, ideSubdir))
	if err := os.Symlink(filepath.Dir(private), filepath.Join(dir, ideSubdir)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(private, filepath.Join(filepath.Dir(private), socketName)); err != nil {
		t.Fatal(err)
	}
	if err := h.m.linkSocket(spec.SessionID); err == nil {
		t.Fatal("a symbolic link was followed to the IDE directory")
	}
	if _, err := os.Lstat(filepath.Join(dir, linkName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a link was made: %v", err)
	}
	ln.Close()
	dialled.Wait()
	if len(hits) != 0 {
		t.Errorf("the gateway side socket was dialled %d times", len(hits))
	}
}

// TestStopRestartRemove: a stopped workspace starts again with its IDE
// state, Remove takes the container away, a second Remove is no error.
func TestStopRestartRemove(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := ctxT(t)
	spec := h.session("alice")
	w, err := h.m.EnsureIDE(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := h.exec(w, "bash", "-c", "echo kept > $HOME/state"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if err := h.m.Stop(ctx, spec.SessionID); err != nil {
		t.Fatal(err)
	}
	if running, exists := h.inspect(w.Name); running || !exists {
		t.Fatalf("after Stop: running %v, exists %v", running, exists)
	}
	w2, err := h.m.EnsureIDE(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if w2.ContainerID != w.ContainerID {
		t.Errorf("a new container after a stop")
	}
	if out, err := h.exec(w2, "cat", HomeDir+"/state"); err != nil || strings.TrimSpace(out) != "kept" {
		t.Errorf("IDE state lost across a stop: %q %v", out, err)
	}
	if err := h.m.Remove(ctx, spec.SessionID); err != nil {
		t.Fatal(err)
	}
	if _, exists := h.inspect(w.Name); exists {
		t.Fatal("the container survived Remove")
	}
	if err := h.m.Remove(ctx, spec.SessionID); err != nil {
		t.Errorf("a second Remove: %v", err)
	}
}

// TestCaps refuses a start past the per-user and the overall cap.
func TestCaps(t *testing.T) {
	h := newHarness(t, Config{MaxRunning: 3, MaxRunningPerUser: 2})
	ctx := ctxT(t)
	for i := 0; i < 2; i++ {
		if _, err := h.m.Ensure(ctx, h.session("carol")); err != nil {
			t.Fatal(err)
		}
	}
	_, err := h.m.Ensure(ctx, h.session("carol"))
	var le *LimitError
	if !errors.As(err, &le) || !le.PerUser || le.Limit != 2 || le.RetryAfter <= 0 {
		t.Fatalf("third workspace of one user: %v", err)
	}
	_, err = h.m.Ensure(ctx, h.session("dave"))
	if err != nil {
		t.Fatalf("dave: %v", err)
	}
	_, err = h.m.Ensure(ctx, h.session("erin"))
	if !errors.As(err, &le) || le.PerUser {
		t.Fatalf("fourth workspace overall: %v", err)
	}
}

// containersOf lists every container (running or not) that carries the
// session's label, on the whole engine.
func (h *harness) containersOf(ctx context.Context, sessionID string) []string {
	h.t.Helper()
	list, err := h.docker.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: client.Filters{}.Add("label", LabelSession+"="+sessionID)})
	if err != nil {
		h.t.Fatal(err)
	}
	var ids []string
	for _, c := range list.Items {
		ids = append(ids, c.ID+" ("+string(c.State)+")")
	}
	return ids
}

// running counts the running workspaces of h's workspace directory.
func (h *harness) running(ctx context.Context) int {
	h.t.Helper()
	list, err := h.docker.ContainerList(ctx, client.ContainerListOptions{
		Filters: client.Filters{}.Add("label", LabelRoot+"="+h.m.Config().DaemonWorkspace).Add("status", "running")})
	if err != nil {
		h.t.Fatal(err)
	}
	return len(list.Items)
}

// ensureAtOnce calls Ensure for every spec at once, spec i through manager
// i modulo the managers, and returns what each call returned.
func ensureAtOnce(ctx context.Context, managers []*Manager, specs []Spec) ([]*Workspace, []error) {
	ws := make([]*Workspace, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws[i], errs[i] = managers[i%len(managers)].Ensure(ctx, specs[i])
		}()
	}
	wg.Wait()
	return ws, errs
}

// TestRefusedStartLeavesNoContainer: a start the caps refuse (the user's
// own, then all users'; through Ensure and EnsureIDE) creates nothing on
// the engine for the refused session.
func TestRefusedStartLeavesNoContainer(t *testing.T) {
	h := newHarness(t, Config{MaxRunning: 2, MaxRunningPerUser: 1})
	ctx := ctxT(t)
	if _, err := h.m.Ensure(ctx, h.session("carol")); err != nil {
		t.Fatal(err)
	}
	var le *LimitError
	perUser := h.session("carol")
	if _, err := h.m.Ensure(ctx, perUser); !errors.As(err, &le) || !le.PerUser {
		t.Fatalf("carol's second workspace: %v, want the per-user cap", err)
	}
	if _, err := h.m.EnsureIDE(ctx, perUser); !errors.As(err, &le) || !le.PerUser {
		t.Fatalf("carol's second IDE: %v, want the per-user cap", err)
	}
	if ids := h.containersOf(ctx, perUser.SessionID); len(ids) != 0 {
		t.Errorf("the refused session of carol has containers: %v", ids)
	}
	if _, err := h.m.Ensure(ctx, h.session("dave")); err != nil {
		t.Fatal(err)
	}
	overall := h.session("erin")
	if _, err := h.m.EnsureIDE(ctx, overall); !errors.As(err, &le) || le.PerUser {
		t.Fatalf("a third workspace: %v, want the overall cap", err)
	}
	if ids := h.containersOf(ctx, overall.SessionID); len(ids) != 0 {
		t.Errorf("the refused session of erin has containers: %v", ids)
	}
	if n := h.running(ctx); n != 2 {
		t.Errorf("%d workspaces run, want 2", n)
	}
	if locks := h.startLocks(ctx); len(locks) != 0 {
		t.Errorf("start locks left: %v", locks)
	}
}

// startLocks lists the start lock containers of h's workspace directory.
func (h *harness) startLocks(ctx context.Context) []string {
	h.t.Helper()
	list, err := h.docker.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: client.Filters{}.Add("label", LabelStartLock+"=1").Add("label", LabelRoot+"="+h.m.Config().DaemonWorkspace)})
	if err != nil {
		h.t.Fatal(err)
	}
	var ids []string
	for _, c := range list.Items {
		ids = append(ids, c.ID)
	}
	return ids
}

// TestStartLockLeftByAKilledGateway: a start lock that its holder never
// released (a gateway killed under it) holds starts back for its lease, then
// is taken over; a start waiting for it ends with its caller's context.
func TestStartLockLeftByAKilledGateway(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := ctxT(t)
	killed := h.manager()
	if _, err := killed.lockStarts(ctx); err != nil { // never released
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	spec := h.session("alice")
	if _, err := h.m.Ensure(short, spec); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ensure while another manager holds the start lock: %v, want the caller's deadline", err)
	}
	if ids := h.containersOf(ctx, spec.SessionID); len(ids) != 0 {
		t.Errorf("containers of the session that waited: %v", ids)
	}
	h.m.startLockLease = time.Second
	begin := time.Now()
	w, err := h.m.Ensure(ctx, spec)
	if err != nil {
		t.Fatalf("Ensure after the lease: %v", err)
	}
	if took := time.Since(begin); took < time.Second {
		t.Errorf("the lock was taken over after %s, before its lease", took)
	}
	if running, _ := h.inspect(w.Name); !running {
		t.Error("the workspace does not run")
	}
	if locks := h.startLocks(ctx); len(locks) != 0 {
		t.Errorf("start locks left: %v", locks)
	}
}

// TestCapsHoldUnderConcurrentEnsure: many sessions ensured at once through
// two managers (two replicas on one engine) start exactly as many
// workspaces as the caps allow; every other one is refused with a
// LimitError and has no container at all.
func TestCapsHoldUnderConcurrentEnsure(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		users   []string
		perUser bool
	}{
		{"overall", Config{MaxRunning: 3, MaxRunningPerUser: 1}, []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"}, false},
		{"per user", Config{MaxRunning: 8, MaxRunningPerUser: 2}, []string{"carol", "carol", "carol", "carol", "carol", "carol"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.cfg)
			ctx := ctxT(t)
			other := h.manager()
			specs := make([]Spec, len(tc.users))
			for i, u := range tc.users {
				specs[i] = h.session(u)
			}
			_, errs := ensureAtOnce(ctx, []*Manager{h.m, other}, specs)
			want := tc.cfg.MaxRunning
			if tc.perUser {
				want = tc.cfg.MaxRunningPerUser
			}
			started := 0
			for i, err := range errs {
				var le *LimitError
				switch {
				case err == nil:
					started++
				case errors.As(err, &le) && le.PerUser == tc.perUser:
					if ids := h.containersOf(ctx, specs[i].SessionID); len(ids) != 0 {
						t.Errorf("refused session %d has containers: %v", i, ids)
					}
				default:
					t.Errorf("Ensure %d: %v", i, err)
				}
			}
			if started != want {
				t.Errorf("%d workspaces started, want %d (the cap)", started, want)
			}
			if n := h.running(ctx); n != want {
				t.Errorf("%d workspaces run, want %d (the cap)", n, want)
			}
		})
	}
}

// TestCapsCountOwnDeployment: the caps count the workspaces of the
// manager's own workspace directory (its deployment, replicas included),
// not another deployment's on the same engine, whose user ids may be the
// same strings for other people.
func TestCapsCountOwnDeployment(t *testing.T) {
	other := newHarness(t, Config{MaxRunning: 2, MaxRunningPerUser: 2})
	h := newHarness(t, Config{MaxRunning: 2, MaxRunningPerUser: 1})
	ctx := ctxT(t)
	for i := 0; i < 2; i++ {
		if _, err := other.m.Ensure(ctx, other.session("carol")); err != nil {
			t.Fatalf("the other deployment's workspace %d: %v", i, err)
		}
	}
	if _, err := h.m.Ensure(ctx, h.session("carol")); err != nil {
		t.Fatalf("carol's first workspace here, beside another deployment's two: %v", err)
	}
	if _, err := h.m.Ensure(ctx, h.session("dave")); err != nil {
		t.Fatalf("dave's first workspace here: %v", err)
	}
	// The caps still hold for this deployment's own workspaces.
	_, err := h.m.Ensure(ctx, h.session("carol"))
	var le *LimitError
	if !errors.As(err, &le) || !le.PerUser {
		t.Fatalf("carol's second workspace here: %v, want the per-user cap", err)
	}
	_, err = h.m.Ensure(ctx, h.session("erin"))
	if !errors.As(err, &le) || le.PerUser || le.Limit != 2 {
		t.Fatalf("a third workspace here: %v, want the overall cap", err)
	}
}

// TestTwoManagersOneContainer: two managers (replicas) ensuring one session
// at once end with one container.
func TestTwoManagersOneContainer(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := ctxT(t)
	other := h.manager()
	spec := h.session("alice")
	ws, errs := ensureAtOnce(ctx, []*Manager{h.m, other}, []Spec{spec, spec, spec, spec, spec, spec})
	ids := make([]string, len(ws))
	for i, w := range ws {
		if w != nil {
			ids[i] = w.ContainerID
		}
	}
	for i := range ids {
		if errs[i] != nil {
			t.Fatalf("Ensure %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("two containers for one session: %s and %s", ids[0], ids[i])
		}
	}
	list, err := h.docker.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: client.Filters{}.Add("label", LabelSession+"="+spec.SessionID)})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("containers of the session: %d, %v", len(list.Items), err)
	}
}

// TestSweep stops an idle workspace, keeps a used one, and removes the one
// whose session is gone — also when a new manager (a restarted gateway)
// does it.
func TestSweep(t *testing.T) {
	h := newHarness(t, Config{IdleTimeout: 2 * time.Second})
	ctx := ctxT(t)
	idle, busy, gone := h.session("alice"), h.session("alice"), h.session("bob")
	var ws []*Workspace
	for _, s := range []Spec{idle, busy, gone} {
		w, err := h.m.Ensure(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	h.mu.Lock()
	h.sessions[idle.SessionID] = time.Now().Add(-time.Hour)
	h.sessions[busy.SessionID] = time.Now().Add(-time.Hour)
	delete(h.sessions, gone.SessionID)
	h.mu.Unlock()

	restarted := h.manager() // knows nothing of what h.m did
	time.Sleep(2 * time.Second)
	restarted.Touch(busy.SessionID)
	rep, err := restarted.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stopped != 1 || rep.Removed != 1 {
		t.Errorf("sweep: %+v, want 1 stopped and 1 removed", rep)
	}
	if _, exists := h.inspect(ws[2].Name); exists {
		t.Error("the workspace of a session that is gone survived the sweep")
	}
	if running, _ := h.inspect(ws[0].Name); running {
		t.Error("the idle workspace still runs")
	}
	if running, _ := h.inspect(ws[1].Name); !running {
		t.Error("the used workspace was stopped")
	}
}

// shortTempDir is a temporary directory short enough for the IDE sockets
// beneath it (t.TempDir's names are long); removed when the test ends.
func shortTempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "ws")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestMissingImage: under pull policy never, a missing image is
// ErrImageMissing naming the command that fixes it, and nothing is created.
func TestMissingImage(t *testing.T) {
	h := newHarness(t, Config{})
	for _, tc := range []struct{ image, fix string }{
		{LocalImage + "-missing-" + testenv.RandomHex(4), "docker build -t"},
		{"claude-workspace:missing-" + testenv.RandomHex(4), "deploy/workspace"},
	} {
		cfg := h.cfg
		cfg.Image = tc.image
		m, err := New(cfg, h.docker, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		spec := h.session("alice")
		_, err = m.Ensure(ctxT(t), spec)
		m.Close()
		if !errors.Is(err, ErrImageMissing) || !strings.Contains(err.Error(), tc.fix) || !strings.Contains(err.Error(), tc.image) {
			t.Errorf("missing %s: %v", tc.image, err)
		}
		if _, exists := h.inspect(m.name(spec.SessionID)); exists {
			t.Error("a container was created without its image")
		}
	}
	if hint := MissingImageHint(LocalImage, PullNever); !strings.Contains(hint, "make workspace-image") {
		t.Errorf("the hint for %s: %q", LocalImage, hint)
	}
	const other = "registry.example/workspace:1"
	if hint := MissingImageHint(other, PullNever); !strings.Contains(hint, "pull policy") {
		t.Errorf("the hint under pull never does not offer the pull policy: %q", hint)
	}
	if hint := MissingImageHint(other, PullMissing); strings.Contains(hint, "pull policy") || !strings.Contains(hint, "docker build -t "+other) {
		t.Errorf("the hint under pull missing: %q", hint)
	}
}

// TestPullMissing: under pull policy missing, an image the engine lacks is
// pulled first (the engine is asked, with progress in the log); where no
// registry answers — here a registry name that cannot resolve — the start
// fails with ErrImageMissing, the engine's reason and the command that
// builds the image, and nothing is created.
func TestPullMissing(t *testing.T) {
	h := newHarness(t, Config{})
	cfg := h.cfg
	cfg.Pull = PullMissing
	cfg.Image = "registry.invalid/claude-workspace:missing-" + testenv.RandomHex(4)
	core, logs := observer.New(zap.InfoLevel)
	m, err := New(cfg, h.docker, nil, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	spec := h.session("alice")
	_, err = m.Ensure(ctxT(t), spec)
	if !errors.Is(err, ErrImageMissing) {
		t.Fatalf("got %v, want ErrImageMissing", err)
	}
	t.Logf("the error: %v", err)
	for _, want := range []string{"pulling " + cfg.Image, "from daemon", "https://registry.invalid/v2/", "docker build -t " + cfg.Image + " -f deploy/workspace/Dockerfile ."} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if n := logs.FilterMessage("pulling the workspace image").FilterField(zap.String("image", cfg.Image)).Len(); n == 0 {
		t.Error("no pull was logged")
	}
	if _, exists := h.inspect(m.name(spec.SessionID)); exists {
		t.Error("a container was created without its image")
	}
}
