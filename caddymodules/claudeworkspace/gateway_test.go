package claudeworkspace_test

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/moby/moby/client"

	"github.com/claude-gateway/claude-gateway/apierror"
	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
	"github.com/claude-gateway/claude-gateway/workspaces"
)

const password = "correct horse battery staple"

// stack is the real gateway on Caddyfile.dev with the workspace stand-in
// image on the machine's engine, and the accounts alice, bob and admin.
type stack struct {
	gw       *gatewaytest.Gateway
	database string
	prefix   string
	docker   *client.Client
}

func workspaceImage() string {
	if img := os.Getenv("CLAUDE_WORKSPACE_IMAGE"); img != "" {
		return img
	}
	return workspaces.LocalImage
}

func startStack(t *testing.T, env map[string]string) *stack {
	t.Helper()
	testenv.DockerImage(t, workspaceImage())
	docker, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { docker.Close() })
	// The IDE sockets live under the workspace: a unix socket path is short.
	ws, err := os.MkdirTemp("", "gw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(ws) })
	s := &stack{database: testenv.SQLiteDatabase(t), prefix: "claude-ws-t" + testenv.RandomHex(4) + "-", docker: docker}
	t.Cleanup(func() { s.removeContainers() })
	for _, u := range []string{"alice", "bob", "admin"} {
		role := "user"
		if u == "admin" {
			role = "admin"
		}
		cmd := exec.Command(gatewaytest.Binary(t), "users", "add", "--role", role, u)
		cmd.Env = append(os.Environ(), "CLAUDE_DATABASE="+s.database)
		cmd.Stdin = strings.NewReader(password + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("users add %s: %v\n%s", u, err, out)
		}
	}
	up := gatewaytest.NewUpstream(t, "frontend")
	e := map[string]string{
		"CLAUDE_DATABASE":         s.database,
		"CLAUDE_WORKSPACE":        ws,
		"CLAUDE_WORKSPACE_IMAGE":  workspaceImage(),
		"CLAUDE_WORKSPACE_PULL":   "never",
		"CLAUDE_WORKSPACE_PREFIX": s.prefix,
		"FRONTEND_UPSTREAM":       up.Addr(),
		"BACKEND_UPSTREAM":        up.Addr(),
		"SECRET_KEY":              gatewaytest.TestSecret,
	}
	for k, v := range env {
		e[k] = v
	}
	s.gw = gatewaytest.Start(t, gatewaytest.Options{Env: e})
	return s
}

// removeContainers removes what the test's gateway left (nothing, if it
// did its job; the tests check that before).
func (s *stack) removeContainers() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range s.containers() {
		s.docker.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
	}
}

type container struct {
	ID, Session, State string
}

// containers lists the workspace containers of this test's gateway.
func (s *stack) containers() []container {
	list, err := s.docker.ContainerList(context.Background(), client.ContainerListOptions{All: true,
		Filters: client.Filters{}.Add("label", workspaces.LabelManaged+"=1").Add("name", s.prefix)})
	if err != nil {
		return nil
	}
	var out []container
	for _, c := range list.Items {
		out = append(out, container{ID: c.ID, Session: c.Labels[workspaces.LabelSession], State: string(c.State)})
	}
	return out
}

// containerOf returns the session's container, if any.
func (s *stack) containerOf(session string) (container, bool) {
	for _, c := range s.containers() {
		if c.Session == session {
			return c, true
		}
	}
	return container{}, false
}

// user is a signed-in account with a browser.
type user struct {
	name    string
	token   string
	browser *gatewaytest.Browser
}

func (s *stack) login(t *testing.T, name string) *user {
	t.Helper()
	b := s.gw.NewBrowser(t)
	u := &user{name: name, browser: b, token: b.Login(t, name, password)}
	// The IDE host's single sign-on, as a browser's first navigation there
	// does it: it ends on the IDE host's root, which is no IDE.
	resp, _ := b.Get(t, s.gw.URL("ide.localhost", "/"), "text/html")
	if resp.StatusCode != http.StatusNotFound || resp.Request.URL.Host != "ide.localhost:"+strconv.Itoa(s.gw.HTTPSPort) {
		t.Fatalf("IDE sign-on of %s ended with %d at %s", name, resp.StatusCode, resp.Request.URL)
	}
	return u
}

// newSession creates a session through the API and returns its id.
func (s *stack) newSession(t *testing.T, u *user) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.gw.URL("localhost", "/api/sessions"), nil)
	req.Header.Set("Authorization", "Bearer "+u.token)
	resp, err := s.gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating a session: %d %v", resp.StatusCode, err)
	}
	return body.ID
}

// ide is the URL of a session's IDE.
func (s *stack) ide(session, rest string) string {
	return s.gw.URL("ide.localhost", "/s/"+session+rest)
}

// echo is what the stand-in IDE answers to a JSON request.
type echo struct {
	Upstream string      `json:"upstream"`
	Folder   string      `json:"folder"`
	Path     string      `json:"path"`
	RawQuery string      `json:"raw_query"`
	Header   http.Header `json:"header"`
}

// openIDE signs u in on the IDE host and asks its session's IDE for JSON.
func (s *stack) openIDE(t *testing.T, u *user, session, rest string) (int, echo) {
	t.Helper()
	resp, body := u.browser.Get(t, s.ide(session, rest), "application/json")
	var e echo
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Fatalf("IDE answer %q: %v", body, err)
		}
	}
	return resp.StatusCode, e
}

// TestIDEIsolation: each session's IDE is its own container, reachable only
// by its owner, with only its own files and no network.
func TestIDEIsolation(t *testing.T) {
	s := startStack(t, nil)
	alice, bob, admin := s.login(t, "alice"), s.login(t, "bob"), s.login(t, "admin")
	aliceSession, bobSession := s.newSession(t, alice), s.newSession(t, bob)

	// Attack first: bob and the admin ask for alice's IDE. 404, and nothing
	// was started for it.
	for _, u := range []*user{bob, admin} {
		for _, rest := range []string{"/", "", "/static/x.js", "/healthz"} {
			code, _ := s.openIDE(t, u, aliceSession, rest)
			if code != http.StatusNotFound {
				t.Errorf("%s on alice's IDE %q: %d, want 404", u.name, rest, code)
			}
		}
	}
	if c, ok := s.containerOf(aliceSession); ok {
		t.Fatalf("a container was started for alice's session by someone else's visit: %+v", c)
	}

	// alice gets hers, with the prefix stripped and no gateway cookie or
	// token passed on.
	code, e := s.openIDE(t, alice, aliceSession, "/some/file.js?x=1")
	if code != http.StatusOK || e.Upstream != "code-server" || e.Path != "/some/file.js" || e.RawQuery != "x=1" || e.Folder != workspaces.FilesDir {
		t.Fatalf("alice's IDE: %d %+v", code, e)
	}
	if c := e.Header.Get("Cookie"); strings.Contains(c, "claude") {
		t.Errorf("the IDE received the gateway's cookies: %q", c)
	}
	if e.Header.Get("Authorization") != "" {
		t.Error("the IDE received an Authorization header")
	}
	// /s/{id} without the slash goes to /s/{id}/.
	resp, _ := alice.browser.Get(t, s.ide(aliceSession, ""), "text/html")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/s/"+aliceSession+"/" {
		t.Errorf("/s/{id}: %d at %s", resp.StatusCode, resp.Request.URL.Path)
	}

	// bob's own workspace: only lo, only his files, nothing of alice's, no
	// way to the gateway's admin API, MySQL or the Docker API.
	if code, _ := s.openIDE(t, bob, bobSession, "/"); code != http.StatusOK {
		t.Fatalf("bob's IDE: %d", code)
	}
	c, ok := s.containerOf(bobSession)
	if !ok {
		t.Fatal("no container for bob's session")
	}
	bridge := dockerBridgeIP(t)
	probe := `import socket, os, sys
print(" ".join(sorted(os.listdir("/sys/class/net"))))
print(" ".join(sorted(os.listdir("/workspace"))))
for host, port in [("` + bridge + `", ` + strings.Split(s.gw.AdminAddr, ":")[1] + `), ("` + bridge + `", 3306), ("` + bridge + `", 2375), ("` + bridge + `", 2376), ("127.0.0.1", ` + strings.Split(s.gw.AdminAddr, ":")[1] + `), ("1.1.1.1", 443)]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        print("REACHED", host, port)
    except OSError as e:
        print("refused", host, port, e.errno)
print("docker.sock" if os.path.exists("/var/run/docker.sock") else "no-docker-sock")
`
	out, err := exec.Command("docker", "exec", "-u", "1000:1000", c.ID, "python3", "-c", probe).CombinedOutput()
	if err != nil {
		t.Fatalf("probing bob's workspace: %v\n%s", err, out)
	}
	lines := strings.Split(string(out), "\n")
	if lines[0] != "lo" {
		t.Errorf("interfaces in bob's workspace: %q", lines[0])
	}
	if strings.Contains(lines[1], aliceSession) || strings.Contains(string(out), "alice") {
		t.Errorf("bob's workspace shows something of alice's: %s", out)
	}
	if strings.Contains(string(out), "REACHED") || !strings.Contains(string(out), "no-docker-sock") {
		t.Errorf("bob's workspace reaches out:\n%s", out)
	}
}

// dockerBridgeIP is the host's address on the engine's default bridge, where
// a workspace with a network would find the host's services.
func dockerBridgeIP(t *testing.T) string {
	out, err := exec.Command("docker", "network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		return "172.17.0.1"
	}
	return strings.TrimSpace(string(out))
}

// TestIDEWebSocketIdleAndDelete: a WebSocket echoes through the gateway and
// survives a config reload; the idle workspace stops and starts again on the next visit; deleting the
// session removes its container.
func TestIDEWebSocketIdleAndDelete(t *testing.T) {
	s := startStack(t, map[string]string{"WORKSPACE_IDLE_TIMEOUT": "3s"})
	alice := s.login(t, "alice")
	session := s.newSession(t, alice)
	if code, _ := s.openIDE(t, alice, session, "/"); code != http.StatusOK {
		t.Fatalf("IDE: %d", code)
	}
	first, ok := s.containerOf(session)
	if !ok || first.State != "running" {
		t.Fatalf("container after the first visit: %+v %v", first, ok)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ideOrigin := s.gw.URL("ide.localhost", "")
	conn, _, err := websocket.Dial(ctx, s.ide(session, "/stable-1?reconnectionToken=abc"), &websocket.DialOptions{
		HTTPClient: alice.browser.Client,
		HTTPHeader: http.Header{"Origin": {ideOrigin}},
	})
	if err != nil {
		t.Fatalf("WebSocket through the gateway: %v", err)
	}
	if err := conn.Write(ctx, websocket.MessageText, []byte("hello workspace")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := conn.Read(ctx); err != nil || string(msg) != "hello workspace" {
		t.Fatalf("echo %q %v", msg, err)
	}
	// A config reload keeps the workspace and the open socket.
	if err := s.gw.Load(s.gw.Config); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if err := conn.Write(ctx, websocket.MessageText, []byte("after the reload")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := conn.Read(ctx); err != nil || string(msg) != "after the reload" {
		t.Fatalf("echo after the reload %q %v", msg, err)
	}
	if c, _ := s.containerOf(session); c.ID != first.ID || c.State != "running" {
		t.Fatalf("the workspace after the reload: %+v, want %s running", c, first.ID)
	}
	// An open IDE socket is use: the workspace stays up past the idle time.
	time.Sleep(5 * time.Second)
	if c, _ := s.containerOf(session); c.State != "running" {
		t.Fatalf("the workspace stopped under an open WebSocket: %+v", c)
	}
	conn.Close(websocket.StatusNormalClosure, "")

	deadline := time.Now().Add(30 * time.Second)
	for {
		c, _ := s.containerOf(session)
		if c.State == "exited" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the idle workspace still runs: %+v", c)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if code, _ := s.openIDE(t, alice, session, "/"); code != http.StatusOK {
		t.Fatalf("IDE after the idle stop: %d", code)
	}
	again, _ := s.containerOf(session)
	if again.ID != first.ID || again.State != "running" {
		t.Fatalf("after the next visit: %+v, want %s running again", again, first.ID)
	}

	req, _ := http.NewRequest(http.MethodDelete, s.gw.URL("localhost", "/api/sessions/"+session), nil)
	req.Header.Set("Authorization", "Bearer "+alice.token)
	resp, err := s.gw.Client().Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("deleting the session: %v %v", resp, err)
	}
	resp.Body.Close()
	if c, ok := s.containerOf(session); ok {
		t.Fatalf("the deleted session's container is left: %+v", c)
	}
}

// TestKilledGatewayLeavesNoOrphan: after kill -9, a restarted gateway adopts
// the workspace of a live session (same container, IDE still served) and
// removes the one whose session went while it was down.
func TestKilledGatewayLeavesNoOrphan(t *testing.T) {
	s := startStack(t, nil)
	alice, bob := s.login(t, "alice"), s.login(t, "bob")
	kept, gone := s.newSession(t, alice), s.newSession(t, bob)
	for _, v := range []struct {
		u       *user
		session string
	}{{alice, kept}, {bob, gone}} {
		if code, _ := s.openIDE(t, v.u, v.session, "/"); code != http.StatusOK {
			t.Fatalf("IDE of %s: %d", v.u.name, code)
		}
	}
	before, _ := s.containerOf(kept)
	s.gw.Kill()
	// While it is down, bob's session goes (as a replica or an operator
	// would remove it) without its container.
	db := testenv.OpenDB(t, s.database)
	if _, err := db.Exec("DELETE FROM sessions WHERE id = ?", gone); err != nil {
		t.Fatal(err)
	}
	s.gw.Restart()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, ok := s.containerOf(gone); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the container of the session removed while the gateway was down is an orphan")
		}
		time.Sleep(500 * time.Millisecond)
	}
	after, ok := s.containerOf(kept)
	if !ok || after.ID != before.ID || after.State != "running" {
		t.Fatalf("alice's workspace after the restart: %+v, want %s adopted", after, before.ID)
	}
	if code, _ := s.openIDE(t, alice, kept, "/"); code != http.StatusOK {
		t.Fatalf("alice's IDE after the restart: %d", code)
	}
}

// TestIDEOverTheCapIsAnError: an IDE past the user's cap is refused through
// claude_error — 429 too_many_workspaces as a page, with Retry-After and
// Refresh so that the browser tries again by itself — and no container,
// running or not, exists for it.
func TestIDEOverTheCapIsAnError(t *testing.T) {
	s := startStack(t, map[string]string{"MAX_WORKSPACES_PER_USER": "1"})
	alice := s.login(t, "alice")
	first, second := s.newSession(t, alice), s.newSession(t, alice)
	if code, _ := s.openIDE(t, alice, first, "/"); code != http.StatusOK {
		t.Fatalf("alice's first IDE: %d", code)
	}
	resp, body := alice.browser.Get(t, s.ide(second, "/"), "text/html")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("alice's second IDE past her cap of 1: %d %s", resp.StatusCode, body)
	}
	code := apierror.TooManyWorkspaces
	if want := template.HTMLEscapeString(code.Err(1).Message()); !strings.Contains(body, want) || !strings.Contains(body, "Error 429") {
		t.Errorf("the page lacks %q:\n%s", want, body)
	}
	retry := resp.Header.Get("Retry-After")
	if n, err := strconv.Atoi(retry); err != nil || n < 1 || resp.Header.Get("Refresh") != retry {
		t.Errorf("Retry-After %q, Refresh %q: want the same number of seconds", retry, resp.Header.Get("Refresh"))
	}
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "text/html; charset=utf-8" || cc != "no-store" {
		t.Errorf("Content-Type %q, Cache-Control %q", ct, cc)
	}
	if c, ok := s.containerOf(second); ok {
		t.Errorf("the session refused past the cap has a container: %+v", c)
	}
}
