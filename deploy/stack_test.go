package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// The whole stack as `make up` starts it (docker-compose.yml +
// docker-compose.dind.yml, with a test override that swaps only images and
// what this engine cannot grant), used through the gateway's published port
// and operated through the Makefile's targets. Runs under CI=true (make test)
// and with CLAUDE_STACK_TEST=1 (make stack-test); it takes minutes.
func TestStack(t *testing.T) {
	if os.Getenv("CLAUDE_STACK_TEST") == "" && !testenv.InCI() {
		t.Skip("SKIPPED: the whole-stack test runs under CI=true or with CLAUDE_STACK_TEST=1 (make stack-test)")
	}
	testenv.Docker(t)
	started := time.Now()
	root := repoRoot(t)
	images := append(os.Environ(), "SANDBOX_IMAGE="+sandboxImage, "WORKSPACE_IMAGE="+workspaceImg)
	for _, script := range []string{"scripts/workspace-image.sh", "scripts/standin-images.sh"} {
		if r := run(t, root, images, 20*time.Minute, script); r.err != nil {
			t.Fatalf("%s: %v\n%s", script, r.err, r.stderr)
		}
	}
	id := "cgwstack-" + testenv.RandomHex(4)
	gatewayImage := buildGatewayImage(t, id+"-gateway:test")
	peerImage := buildPeerImage(t, id+"-peer:test")
	t.Logf("images ready in %s", time.Since(started).Round(time.Second))

	s := newStack(t, gatewayImage)
	s.make("up")
	s.make("dind-image")
	s.make("dind-workspace-image")
	s.waitHealthy(4 * time.Minute)
	t.Logf("stack healthy in %s", time.Since(started).Round(time.Second))

	c := s.client()
	password := "pw-" + testenv.RandomHex(12)
	var token, sessionID string
	// What the first run saw of the network.
	var probe struct {
		Wrote      int
		Interfaces []string
		Reached    []string
		Tried      int
	}

	s.run("health", func(t *testing.T) {
		r := s.api(c, http.MethodGet, "/api/health", "", nil)
		var health struct {
			Status   string
			Services map[string]struct{ Status string }
		}
		r.decode(t, &health)
		if r.status != http.StatusOK || health.Status != "healthy" ||
			health.Services["database"].Status != "healthy" || health.Services["docker"].Status != "healthy" {
			t.Errorf("/api/health: %s", r)
		}
	})

	if !s.run("sign in, session, file, run on the daemon", func(t *testing.T) {
		s.addUser(stackUser, stackUserRole, password)
		token = s.login(c, stackUser, password)
		r := s.api(c, http.MethodPost, "/api/sessions", token, []byte(`{}`))
		var sess struct{ ID string }
		r.decode(t, &sess)
		if r.status != http.StatusCreated || !strings.HasPrefix(sess.ID, "session-") {
			t.Fatalf("POST /api/sessions: %s", r)
		}
		sessionID = sess.ID
		if r := s.api(c, http.MethodPut, "/api/sessions/"+sessionID+"/files/input.txt", token, []byte("hello from the host\n")); r.status/100 != 2 {
			t.Fatalf("upload: %s", r)
		}
		since := docker(t, "exec", s.container("dind"), "date", "+%s")
		// One run (each is a container on the daemon's vfs storage, seconds to
		// create): it writes a file and tries every service by name and address.
		targets := map[string]string{"mysql": "3306", "dind": "2376", "frontend": "3000", "backend": "8000", "gateway": "443"}
		var tries []string
		for service, port := range targets {
			tries = append(tries, "('"+service+"', "+port+")")
			for _, ip := range s.addresses(t, service) {
				tries = append(tries, "('"+ip+"', "+port+")")
			}
		}
		code := "import json, os, pathlib, socket\n" +
			"text = pathlib.Path('input.txt').read_text()\n" +
			"pathlib.Path('output.txt').write_text(text.upper())\n" +
			"out = {'wrote': len(text), 'interfaces': sorted(os.listdir('/sys/class/net')), 'reached': [], 'tried': 0}\n" +
			"for host, port in [" + strings.Join(tries, ", ") + "]:\n" +
			"    out['tried'] += 1\n" +
			"    try:\n" +
			"        socket.create_connection((host, port), timeout=2).close()\n" +
			"        out['reached'].append('%s:%d' % (host, port))\n" +
			"    except OSError:\n" +
			"        pass\n" +
			"print(json.dumps(out))\n"
		run := s.exec(c, token, sessionID, code)
		if err := json.Unmarshal([]byte(run.Stdout), &probe); err != nil || run.ExitCode != 0 || probe.Wrote != 20 {
			t.Fatalf("run: %+v %v", run, err)
		}
		if got := s.api(c, http.MethodGet, "/api/sessions/"+sessionID+"/files/output.txt", token, nil); got.status != http.StatusOK || string(got.body) != "HELLO FROM THE HOST\n" {
			t.Errorf("the file the run wrote: %s", got)
		}
		// The run went to the session's workspace container on the DinD daemon
		// (over the gateway's TLS connection: the gateway has no other engine).
		events := docker(t, "exec", s.container("dind"), "docker", "events", "--since", since,
			"--until", strings.TrimSpace(docker(t, "exec", s.container("dind"), "date", "+%s")),
			"--filter", "type=container", "--filter", "event=exec_start", "--format", "{{.Actor.Attributes.name}}")
		if !strings.Contains(events, sessionID) {
			t.Errorf("the DinD daemon ran nothing in the session's container: events %q", events)
		}
	}) {
		t.FailNow()
	}

	s.run("the session's IDE in its workspace on the daemon", func(t *testing.T) {
		browser := s.client()
		s.login(browser, stackUser, password) // the app host's cookies, as a browser gets them
		echo := s.ideVisit(t, browser, "/s/"+sessionID+"/")
		if echo.Name != "code-server" || echo.Folder != "/workspace" {
			t.Errorf("the IDE answered as %q over %q, want code-server over /workspace", echo.Name, echo.Folder)
		}
		for _, cookie := range echo.Headers["Cookie"] {
			if strings.Contains(cookie, "claude_") {
				t.Errorf("the gateway's cookie reached the IDE: %s", cookie)
			}
		}
		// The IDE is the session's workspace container, on the daemon.
		name := docker(t, "exec", s.container("dind"), "docker", "ps", "--filter", "status=running", "--format", "{{.Names}}")
		if !strings.Contains(name, sessionID) {
			t.Errorf("no running workspace of %s on the daemon: %q", sessionID, name)
		}
		// Its WebSocket echoes through the gateway.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, resp, err := websocket.Dial(ctx, "wss://"+stackIDEHost+"/s/"+sessionID+"/ws", &websocket.DialOptions{
			HTTPClient: browser,
			HTTPHeader: http.Header{"Origin": {"https://" + stackIDEHost}},
		})
		if err != nil {
			t.Fatalf("IDE WebSocket: %v %v", err, resp)
		}
		defer conn.CloseNow()
		if err := conn.Write(ctx, websocket.MessageText, []byte("ping the IDE")); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := conn.Read(ctx); err != nil || string(msg) != "ping the IDE" {
			t.Errorf("IDE echo: %q %v", msg, err)
		}
		conn.Close(websocket.StatusNormalClosure, "")
	})

	s.run("frontend and backend routes, as the signed-in user", func(t *testing.T) {
		for path, want := range map[string]string{"/": "frontend", "/api/agent/status": "backend"} {
			r := s.api(c, http.MethodGet, path, token, nil, "Accept", "application/json")
			var echo standinEcho
			r.decode(t, &echo)
			if r.status != http.StatusOK || echo.Name != want {
				t.Errorf("GET %s: %s, want an answer from %s", path, r, want)
				continue
			}
			// The identity, not the credentials.
			if echo.Headers.Get("X-Auth-User-Name") != stackUser || echo.Headers.Get("Authorization") != "" {
				t.Errorf("GET %s reached %s with identity %q and Authorization %q", path, want,
					echo.Headers.Get("X-Auth-User-Name"), echo.Headers.Get("Authorization"))
			}
		}
	})

	s.run("WebSocket echo through the backend route", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, resp, err := websocket.Dial(ctx, "wss://"+stackAppHost+"/ws/echo", &websocket.DialOptions{
			HTTPClient: s.client(),
			HTTPHeader: http.Header{"Authorization": {"Bearer " + token}, "Origin": {"https://" + stackAppHost}},
		})
		if err != nil {
			t.Fatalf("dial: %v %v", err, resp)
		}
		defer conn.CloseNow()
		if err := conn.Write(ctx, websocket.MessageText, []byte("ping through the gateway")); err != nil {
			t.Fatal(err)
		}
		_, msg, err := conn.Read(ctx)
		if err != nil || string(msg) != "ping through the gateway" {
			t.Errorf("echo: %q %v", msg, err)
		}
		conn.Close(websocket.StatusNormalClosure, "")
	})

	s.run("only the gateway publishes ports, on loopback", func(t *testing.T) {
		services := 0
		for _, cid := range s.containers() {
			var info []struct {
				Name       string
				HostConfig struct {
					PortBindings map[string][]struct{ HostIP, HostPort string }
				}
				Config struct{ Labels map[string]string }
			}
			if err := json.Unmarshal([]byte(docker(t, "inspect", cid)), &info); err != nil || len(info) != 1 {
				t.Fatalf("inspect %s: %v", cid, err)
			}
			service := info[0].Config.Labels["com.docker.compose.service"]
			services++
			bound := 0
			for port, bindings := range info[0].HostConfig.PortBindings {
				for _, b := range bindings {
					bound++
					if b.HostIP != "127.0.0.1" {
						t.Errorf("%s publishes %s on %q", service, port, b.HostIP)
					}
				}
			}
			if service != "gateway" && bound > 0 {
				t.Errorf("%s publishes ports: %v", service, info[0].HostConfig.PortBindings)
			}
			if service == "gateway" && bound != 3 {
				t.Errorf("gateway publishes %d bindings, want 80, 443, 443/udp: %v", bound, info[0].HostConfig.PortBindings)
			}
		}
		if services != 5 {
			t.Errorf("%d containers in the project, want 5 (gateway, frontend, backend, mysql, dind)", services)
		}
	})

	s.run("the daemon speaks mutual TLS only", func(t *testing.T) {
		// The Makefile's own check: TLS API, plaintext 2375 closed, a sandbox run.
		out := s.make("dind-test")
		if !strings.Contains(out, "dind: sandbox ok") || !strings.Contains(out, "ok: no plaintext API on 2375") {
			t.Errorf("make dind-test:\n%s", out)
		}
		// From the daemon's network, only 2376 answers.
		open := s.probe(t, peerImage, "sandbox", "dind:1-65535").Open
		if !slices.Equal(open, []string{"dind:2376"}) {
			t.Errorf("open ports of the daemon on its network: %v, want only dind:2376", open)
		}
		// A client that trusts the daemon's CA but has no client certificate is
		// refused in the handshake; the same client with the certificate is served.
		client := []string{"exec", "-T", "dind", "docker", "-H", "tcp://dind:2376", "--tlsverify", "--tlscacert", "/certs/client/ca.pem"}
		r := s.compose(time.Minute, append(client, "version", "--format", "{{.Server.Version}}")...)
		if r.err == nil || strings.TrimSpace(r.stdout) != "" || !strings.Contains(r.stderr, "bad certificate") {
			t.Errorf("a client without the certificate: %v %q %s", r.err, r.stdout, r.stderr)
		}
		r = s.compose(time.Minute, append(client, "--tlscert", "/certs/client/cert.pem", "--tlskey", "/certs/client/key.pem",
			"version", "--format", "{{.Server.Version}}")...)
		if r.err != nil || strings.TrimSpace(r.stdout) == "" {
			t.Errorf("the same client with the certificate: %v %q %s", r.err, r.stdout, r.stderr)
		}
	})

	s.run("a sandbox run reaches nothing", func(t *testing.T) {
		if !slices.Equal(probe.Interfaces, []string{"lo"}) {
			t.Errorf("network interfaces of a run: %v, want only lo", probe.Interfaces)
		}
		if len(probe.Reached) > 0 {
			t.Errorf("a sandbox run reached %v", probe.Reached)
		}
		if probe.Tried < 10 {
			t.Errorf("only %d targets probed", probe.Tried)
		}
	})

	s.run("secrets never in docker inspect", func(t *testing.T) {
		secrets := map[string]string{"alice's password": password}
		for _, name := range []string{"secret_key", "mysql_password", "mysql_root_password"} {
			b, err := os.ReadFile(filepath.Join(s.secrets, name))
			if err != nil || len(strings.TrimSpace(string(b))) < 32 {
				t.Fatalf("secret %s from make secrets: %q %v", name, b, err)
			}
			secrets[name] = strings.TrimSpace(string(b))
		}
		for _, cid := range s.containers() {
			inspect := docker(t, "inspect", cid)
			for name, value := range secrets {
				if strings.Contains(inspect, value) {
					t.Errorf("container %s: docker inspect shows %s", cid[:12], name)
				}
			}
		}
	})

	s.run("backup, down, up on new volumes, restore", func(t *testing.T) {
		out := s.make("backup")
		backups, _ := filepath.Glob(filepath.Join(s.backups, "backup-*"))
		if len(backups) != 1 {
			t.Fatalf("make backup wrote %v:\n%s", backups, out)
		}
		s.make("down")
		// A new host: the database and the workspace start empty.
		docker(t, "volume", "rm", s.project+"_mysql-data", s.project+"_workspace")
		s.make("up")
		s.waitAPI("/api/ready", http.StatusOK, 3*time.Minute)
		if r := s.api(s.client(), http.MethodPost, "/api/auth/login", "", []byte(`{"username":"`+stackUser+`","password":"`+password+`"}`)); r.status != http.StatusUnauthorized {
			t.Fatalf("alice on the empty database: %s", r)
		}
		s.make("restore", "BACKUP="+backups[0])
		s.waitAPI("/api/ready", http.StatusOK, 2*time.Minute)
		token = s.login(c, stackUser, password)
		if r := s.api(c, http.MethodGet, "/api/sessions/"+sessionID, token, nil); r.status != http.StatusOK {
			t.Errorf("the session after restore: %s", r)
		}
		if r := s.api(c, http.MethodGet, "/api/sessions/"+sessionID+"/files/output.txt", token, nil); r.status != http.StatusOK || string(r.body) != "HELLO FROM THE HOST\n" {
			t.Errorf("the file after restore: %s", r)
		}
		// The daemon kept its storage volume, so the sandbox image is still there.
		if r := s.exec(c, token, sessionID, "print(open('input.txt').read(), end='')"); r.Stdout != "hello from the host\n" {
			t.Errorf("a run after restore: %+v", r)
		}
	})

	s.run("stack-reload under a request loop", func(t *testing.T) {
		var sent, failed atomic.Int64
		var failures sync.Map
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lc := s.client()
				paths := []string{"/api/live", "/", "/api/sessions/" + sessionID + "/files/input.txt"}
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					p := paths[n%len(paths)]
					r, err := s.do(lc, http.MethodGet, stackAppHost, p, token, nil)
					sent.Add(1)
					if err != nil || r.status != http.StatusOK {
						failed.Add(1)
						failures.Store(p, r.String()+" "+errString(err))
					}
				}
			}()
		}
		time.Sleep(time.Second)
		for i := 0; i < 3; i++ {
			s.make("stack-reload")
			time.Sleep(500 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		if failed.Load() > 0 || sent.Load() < 50 {
			failures.Range(func(k, v any) bool { t.Logf("%s: %s", k, v); return true })
			t.Errorf("%d of %d requests failed across 3 reloads", failed.Load(), sent.Load())
		}
		t.Logf("%d requests across 3 reloads, %d failed", sent.Load(), failed.Load())
	})

	// `docker kill` is a deliberate stop to the engine (no restart policy applies
	// after it, as after `docker stop`); a crash is the gateway's process killed
	// from outside, as the kernel's OOM killer does.
	s.run("a crashed gateway is restarted by its policy", func(t *testing.T) {
		gw := s.container("gateway")
		before := docker(t, "inspect", "-f", "{{.RestartCount}}", gw)
		pid, _ := strconv.Atoi(docker(t, "inspect", "-f", "{{.State.Pid}}", gw))
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); pid <= 0 || err != nil {
			testenv.Missing(t, "the gateway container's process on this host (a Docker engine on this host)", err)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 of the gateway's process %d: %v", pid, err)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for docker(t, "inspect", "-f", "{{.RestartCount}}", gw) == before {
			if time.Now().After(deadline) {
				t.Fatalf("the gateway was not restarted: %s", docker(t, "inspect", "-f", "{{.State.Status}} {{.HostConfig.RestartPolicy.Name}}", gw))
			}
			time.Sleep(500 * time.Millisecond)
		}
		s.waitAPI("/api/ready", http.StatusOK, 2*time.Minute)
		if r := s.api(c, http.MethodGet, "/api/sessions/"+sessionID+"/files/output.txt", token, nil); r.status != http.StatusOK {
			t.Errorf("the session after the restart: %s", r)
		}
	})

	s.run("MySQL restarted: not ready, then ready again", func(t *testing.T) {
		if r := s.compose(2*time.Minute, "stop", "mysql"); r.err != nil {
			t.Fatalf("stop mysql: %v %s", r.err, r.stderr)
		}
		down := s.waitAPI("/api/ready", http.StatusServiceUnavailable, time.Minute)
		during := s.api(c, http.MethodGet, "/api/sessions", token, nil)
		for _, r := range []apiResponse{down, during} {
			if r.status/100 != 5 || !noStackTrace(r.body) {
				t.Errorf("answer while MySQL is down: %s", r)
			}
		}
		var envelope struct {
			Error struct{ Code, Message string }
		}
		during.decode(t, &envelope)
		if envelope.Error.Code == "" {
			t.Errorf("GET /api/sessions while MySQL is down, not the error envelope: %s", during)
		}
		if r := s.compose(2*time.Minute, "start", "mysql"); r.err != nil {
			t.Fatalf("start mysql: %v %s", r.err, r.stderr)
		}
		s.waitAPI("/api/ready", http.StatusOK, 2*time.Minute)
		if r := s.api(c, http.MethodGet, "/api/sessions/"+sessionID, token, nil); r.status != http.StatusOK {
			t.Errorf("the session once MySQL is back: %s", r)
		}
	})

	t.Logf("whole-stack test: %s", time.Since(started).Round(time.Second))
}

// errString is err's message, or nothing.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// noStackTrace reports whether an answer carries nothing of a Go panic or trace.
func noStackTrace(body []byte) bool {
	for _, sign := range []string{"goroutine ", "panic", ".go:", "runtime/"} {
		if strings.Contains(string(body), sign) {
			return false
		}
	}
	return true
}
