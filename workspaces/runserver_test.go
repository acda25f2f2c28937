package workspaces

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/executor/runner"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// runOver runs argv through the run server behind socket, as the executor
// does, and returns its stdout and result.
func runOver(t *testing.T, socket string, argv ...string) (string, runner.Result) {
	t.Helper()
	conn, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatalf("dialling the run server: %v", err)
	}
	defer conn.Close()
	if err := runner.WriteRequest(conn, runner.Request{RunID: "t" + testenv.RandomHex(8), Argv: argv, Dir: FilesDir, TimeoutMS: 60_000}); err != nil {
		t.Fatal(err)
	}
	var ack [1]byte
	if _, err := conn.Read(ack[:]); err != nil || ack[0] != runner.Accepted {
		t.Fatalf("the run server answered %v, %v", ack, err)
	}
	var stdout, stderr bytes.Buffer
	res, _, err := runner.Demux(conn, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run %v: %v (stderr %q)", argv, err, stderr.String())
	}
	return stdout.String(), res
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestRunServerIsTheSessionsOwn: each workspace gets a run server the
// gateway reaches through its own link, which runs in that workspace only;
// from bob's workspace, alice's run server is nowhere: no file of its socket
// (looked for by inode over the whole tree), no listener in bob's network
// namespace but bob's own, and the path the gateway dials does not exist
// there, whether bob asks directly or through his own run server.
func TestRunServerIsTheSessionsOwn(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := ctxT(t)
	alice, bob := h.session("alice"), h.session("bob")
	wa, err := h.m.EnsureRun(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	wb, err := h.m.EnsureRun(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	if wa.RunSocket == "" || wb.RunSocket == "" || wa.RunSocket == wb.RunSocket {
		t.Fatalf("run sockets %q and %q", wa.RunSocket, wb.RunSocket)
	}
	if out, res := runOver(t, wa.RunSocket, "bash", "-c", "ls /workspace; exit 3"); out != "secret-of-alice.txt\n" || res.ExitCode != 3 {
		t.Errorf("alice's run server: %q, %+v", out, res)
	}
	aliceIno, bobIno := inode(t, wa.RunSocket), inode(t, wb.RunSocket)

	// Every socket file bob's workspace can see, with its inode.
	find := `import os, stat
for top in ("/",):
    for d, dirs, files in os.walk(top):
        if d in ("/proc", "/sys", "/dev"):
            dirs[:] = []
            continue
        for n in dirs + files:
            p = os.path.join(d, n)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISSOCK(st.st_mode):
                print(st.st_ino, p)
`
	out, err := h.exec(wb, "python3", "-c", find)
	if err != nil {
		t.Fatalf("listing sockets in bob's workspace: %v: %s", err, out)
	}
	sawOwn := false
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		ino, p, _ := strings.Cut(line, " ")
		switch ino {
		case strconv.FormatUint(aliceIno, 10):
			t.Errorf("alice's run socket is visible in bob's workspace at %s", p)
		case strconv.FormatUint(bobIno, 10):
			sawOwn = p == HomeDir+"/"+runSocketName
		}
	}
	if !sawOwn {
		t.Errorf("bob's own run socket is not at %s/%s in his workspace:\n%s", HomeDir, runSocketName, out)
	}

	// The listeners of bob's network namespace: his run server's only.
	netUnix, err := h.exec(wb, "cat", "/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(netUnix, HomeDir+"/"+runSocketName); n != 1 {
		t.Errorf("bob's workspace lists %d run server sockets:\n%s", n, netUnix)
	}

	// Dialling what the gateway dials for alice, from bob's workspace.
	dial := `import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
    print("connected")
except OSError as e:
    print(type(e).__name__)
`
	for _, p := range []string{wa.RunSocket, h.m.sessionDir(alice.SessionID) + "/" + ideSubdir + "/" + runSocketName} {
		if out, err := h.exec(wb, "python3", "-c", dial, p); err != nil || strings.TrimSpace(out) != "FileNotFoundError" {
			t.Errorf("bob dialling %s: %q, %v", p, out, err)
		}
		if out, _ := runOver(t, wb.RunSocket, "python3", "-c", dial, p); strings.TrimSpace(out) != "FileNotFoundError" {
			t.Errorf("bob's run server dialling %s: %q", p, out)
		}
	}
}

// TestRunServerAfterRestart: a stopped and started workspace gets a new run
// server, and the gateway's link follows it (the old socket refuses).
func TestRunServerAfterRestart(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := ctxT(t)
	alice := h.session("alice")
	w, err := h.m.EnsureRun(ctx, alice)
	if err != nil || w.RunSocket == "" {
		t.Fatalf("%+v, %v", w, err)
	}
	before := inode(t, w.RunSocket)
	if err := h.m.Stop(ctx, alice.SessionID); err != nil {
		t.Fatal(err)
	}
	w, err = h.m.EnsureRun(ctx, alice)
	if err != nil || w.RunSocket == "" {
		t.Fatalf("after the restart: %+v, %v", w, err)
	}
	if inode(t, w.RunSocket) == before {
		t.Error("the link still names the old socket")
	}
	if out, res := runOver(t, w.RunSocket, "echo", "again"); out != "again\n" || res.ExitCode != 0 {
		t.Errorf("after the restart: %q, %+v", out, res)
	}
}

// TestRunServerMissingFromImage: with an image whose claude-run cannot
// serve (one built before the run server), a workspace starts without one
// and without waiting out runServerWait, runs are left to docker exec, and
// the IDE answers.
func TestRunServerMissingFromImage(t *testing.T) {
	h := newHarness(t, Config{})
	image := "claude-workspace:noserve-" + testenv.RandomHex(4)
	build := exec.Command("docker", "build", "-q", "-t", image, "-")
	build.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	build.Stdin = strings.NewReader("FROM " + testImage() + `
USER 0:0
RUN mv ` + RunHelper + ` /usr/local/bin/claude-run.real && printf '#!/bin/sh\n[ "$1" = serve ] && exit 2\nexec /usr/local/bin/claude-run.real "$@"\n' > ` + RunHelper + ` && chmod 755 ` + RunHelper + `
USER 1000:1000
`)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v: %s", image, err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "image", "rm", "-f", image).Run() })
	cfg := h.cfg
	cfg.Image = image
	m, err := New(cfg, h.docker, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	alice := h.session("alice")
	begin := time.Now()
	w, err := m.EnsureRun(ctxT(t), alice)
	if err != nil {
		t.Fatal(err)
	}
	if w.RunSocket != "" {
		t.Errorf("a run socket %s without a run server", w.RunSocket)
	}
	if took := time.Since(begin); took >= runServerWait {
		t.Errorf("the start waited %s for a server that had exited", took)
	}
	if out, err := h.exec(w, RunHelper, "exec", "--id", "t1", "--", "echo", "by exec"); err != nil || !strings.Contains(out, "by exec") {
		t.Errorf("a docker exec of the helper: %q, %v", out, err)
	}
	if _, err := m.EnsureIDE(ctxT(t), alice); err != nil {
		t.Errorf("the IDE: %v", err)
	}
}
