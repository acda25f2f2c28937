package deploy_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// The stand-in images scripts/standin-images.sh builds (no registry here), and
// the sandbox image scripts/sandbox-image.sh builds.
const (
	dindStandin  = "claude-dind:local"
	mysqlStandin = "claude-mysql:local"
	appStandin   = "claude-app:local"
	// The stack test's own tags of the sandbox and workspace images (built by
	// the same scripts, cached by their labels): other test runs on this engine
	// rebuild the :local tags while this test copies them into its daemon.
	sandboxImage  = "claude-sandbox:stack"
	workspaceImg  = "claude-workspace:stack"
	stackDomain   = "localhost"
	stackIDEHost  = "ide." + stackDomain
	stackAppHost  = stackDomain
	stackUser     = "alice"
	stackUserRole = "user"
)

// stackOverride is the test's third compose file. It swaps only images and what
// this machine's engine cannot grant: `privileged: true` needs CAP_SYS_RESOURCE,
// which this engine cannot give, so the daemon gets every other capability and
// the unconfined profiles privileged implies, the cgroup tree read-write, the vfs
// storage driver (no overlay on the engine's fuse-overlayfs) and no iptables.
// The app stand-ins take code-server's flags; each answers on its service's port.
// Each session's IDE runs in its own workspace container on the daemon.
const stackOverride = `services:
  dind:
    privileged: false
    cap_add: [ALL]
    cap_drop: [SYS_RESOURCE]
    security_opt: ["seccomp=unconfined", "apparmor=unconfined"]
    volumes:
      - /sys/fs/cgroup:/sys/fs/cgroup:rw
    command: ["--storage-driver", "vfs", "--iptables=false"]
  mysql:
    image: ` + mysqlStandin + `
  frontend:
    command: ["--bind-addr", "0.0.0.0:3000", "--name", "frontend"]
  backend:
    command: ["--bind-addr", "0.0.0.0:8000", "--name", "backend"]
`

// stack is one Compose project of the whole stack (docker-compose.yml,
// docker-compose.dind.yml and stackOverride), driven through the Makefile's
// targets where one exists, with every published port on 127.0.0.1.
type stack struct {
	// t is the running (sub)test, top the whole-stack test (for the clean-up).
	t         *testing.T
	top       *testing.T
	root      string
	dir       string
	project   string
	envFile   string
	files     []string
	secrets   string
	backups   string
	httpsPort int
	httpPort  int
	env       []string
}

// newStack writes the project's settings (env file, secrets through `make
// secrets`, the override) under a temporary directory and registers the
// removal of everything the project makes: containers, networks, volumes.
func newStack(t *testing.T, gatewayImage string) *stack {
	t.Helper()
	s := &stack{
		t:         t,
		top:       t,
		root:      repoRoot(t),
		dir:       t.TempDir(),
		project:   "cgwstack" + testenv.RandomHex(4),
		httpsPort: gatewaytest.FreePort(t),
		httpPort:  gatewaytest.FreePort(t),
	}
	s.secrets = filepath.Join(s.dir, "secrets")
	s.backups = filepath.Join(s.dir, "backups")
	s.env = append(os.Environ(), "COMPOSE_PROJECT_NAME="+s.project, "HOME="+s.dir)
	s.envFile = writeFile(t, s.dir, "env", strings.Join([]string{
		"COMPOSE_PROJECT_NAME=" + s.project,
		"DOMAIN=" + stackDomain,
		"GATEWAY_IMAGE=" + gatewayImage,
		"FRONTEND_IMAGE=" + appStandin,
		"BACKEND_IMAGE=" + appStandin,
		"DIND_IMAGE=" + dindStandin,
		"CLAUDE_SANDBOX_IMAGE=" + sandboxImage,
		"CLAUDE_WORKSPACE_IMAGE=" + workspaceImg,
		// ADDRESS:PORT binds one interface: every request of the test goes to loopback.
		"HTTP_PORT=127.0.0.1:" + strconv.Itoa(s.httpPort),
		"HTTPS_PORT=127.0.0.1:" + strconv.Itoa(s.httpsPort),
		"SECRETS_DIR=" + s.secrets,
		"BACKUP_DIR=" + s.backups,
		// The request loop of the reload check stays under the per-user limit.
		"RATE_LIMIT_PER_MINUTE=6000",
		"RATE_LIMIT_LOGIN=60/min",
		"",
	}, "\n"))
	s.files = []string{
		filepath.Join(s.root, "docker-compose.yml"),
		filepath.Join(s.root, "docker-compose.dind.yml"),
		writeFile(t, s.dir, "override.yml", stackOverride),
	}
	t.Cleanup(s.remove)
	s.make("secrets")
	return s
}

// remove takes the project down with its volumes and orphans, then removes
// whatever is left with the project's label (a container started by hand).
func (s *stack) remove() {
	s.t = s.top
	if s.t.Failed() {
		r := s.compose(time.Minute, "ps")
		s.t.Logf("compose ps:\n%s%s", r.stdout, r.stderr)
		r = s.compose(time.Minute, "logs", "--tail=30")
		s.t.Logf("compose logs:\n%s", r.stdout)
	}
	if r := s.compose(3*time.Minute, "down", "-v", "--remove-orphans", "-t", "5"); r.err != nil {
		s.t.Logf("compose down: %v %s", r.err, r.stderr)
	}
	label := "label=com.docker.compose.project=" + s.project
	for _, ls := range [][]string{{"container", "ls", "-aq"}, {"network", "ls", "-q"}, {"volume", "ls", "-q"}} {
		out := run(s.t, "", nil, time.Minute, append(append([]string{"docker"}, ls...), "--filter", label)...)
		ids := strings.Fields(out.stdout)
		if len(ids) == 0 {
			continue
		}
		rm := []string{"docker", ls[0], "rm"}
		if ls[0] != "network" {
			rm = append(rm, "-f")
		}
		if r := run(s.t, "", nil, 2*time.Minute, append(rm, ids...)...); r.err != nil {
			s.t.Logf("removing leftover %ss %v: %v %s", ls[0], ids, r.err, r.stderr)
		}
	}
}

// run runs f as a subtest, with the stack's helpers failing that subtest.
func (s *stack) run(name string, f func(t *testing.T)) bool {
	return s.top.Run(name, func(t *testing.T) {
		s.t = t
		defer func() { s.t = s.top }()
		f(t)
	})
}

// composeArgs is the Compose tool's command line for this project.
func (s *stack) composeArgs() []string {
	argv := append([]string{}, composeCommand(s.t)...)
	argv = append(argv, "--env-file", s.envFile, "-p", s.project)
	for _, f := range s.files {
		argv = append(argv, "-f", f)
	}
	return argv
}

// compose runs the Compose tool on the project.
func (s *stack) compose(timeout time.Duration, args ...string) cmdResult {
	return run(s.t, s.root, s.env, timeout, append(s.composeArgs(), args...)...)
}

// makeVars are the Makefile's settings that point its targets at this project.
func (s *stack) makeVars() []string {
	var files []string
	for _, f := range s.files {
		files = append(files, "-f", f)
	}
	return []string{
		"COMPOSE=" + strings.Join(composeCommand(s.t), " ") + " -p " + s.project,
		"COMPOSE_FILES=" + strings.Join(files, " "),
		// SECRETS_DIR and BACKUP_DIR come from the env file, as an operator's .env sets them.
		"ENV_FILE=" + s.envFile,
		"SANDBOX_IMAGE=" + sandboxImage,
		"WORKSPACE_IMAGE=" + workspaceImg,
	}
}

// make runs a Makefile target on the project and fails the test when it fails.
func (s *stack) make(target string, vars ...string) string {
	s.t.Helper()
	argv := append([]string{"make", "--no-print-directory", "-C", s.root, target}, s.makeVars()...)
	r := run(s.t, s.root, s.env, 5*time.Minute, append(argv, vars...)...)
	if r.err != nil {
		s.t.Fatalf("make %s: %v\n%s%s", target, r.err, r.stdout, r.stderr)
	}
	return r.stdout + r.stderr
}

// container is the id of a service's container.
func (s *stack) container(service string) string {
	s.t.Helper()
	r := s.compose(time.Minute, "ps", "-q", service)
	id := strings.TrimSpace(r.stdout)
	if r.err != nil || id == "" {
		s.t.Fatalf("no container for %s: %v %s", service, r.err, r.stderr)
	}
	return id
}

// containers are the ids of every container of the project, running or not.
func (s *stack) containers() []string {
	s.t.Helper()
	return strings.Fields(docker(s.t, "ps", "-aq", "--filter", "label=com.docker.compose.project="+s.project))
}

// waitHealthy waits until every container of the project that has a health
// check reports healthy (and every other one runs).
func (s *stack) waitHealthy(timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var waiting []string
		for _, id := range s.containers() {
			state := docker(s.t, "inspect", "-f", "{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}", id)
			f := strings.Fields(state)
			if f[1] != "running" || (f[2] != "healthy" && f[2] != "none") {
				waiting = append(waiting, state)
			}
		}
		if len(waiting) == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("not healthy after %s: %v", timeout, waiting)
		}
		time.Sleep(time.Second)
	}
}

// client is an HTTP client that sends every request to the gateway's published
// HTTPS port on 127.0.0.1, whatever the URL's host, with a cookie jar and
// without following redirects.
func (s *stack) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.httpsPort))
	return &http.Client{
		Jar:     jar,
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
			},
			// The certificates come from the gateway's internal CA, kept in MySQL.
			// HTTP/1.1, so the same client upgrades to WebSocket.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// apiResponse is one answer of the gateway.
type apiResponse struct {
	status int
	header http.Header
	body   []byte
}

// String shows the answer in failure messages.
func (r apiResponse) String() string {
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body))
}

// decode reads the JSON body into v and fails the test when it is not JSON.
func (r apiResponse) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer %s is not JSON: %v", r, err)
	}
}

// do sends one request to https://host/path with a bearer token (when not
// empty) and returns the answer, or the transport error.
func (s *stack) do(c *http.Client, method, host, path, token string, body []byte, header ...string) (apiResponse, error) {
	req, err := http.NewRequest(method, "https://"+host+path, bytes.NewReader(body))
	if err != nil {
		return apiResponse{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil && method != http.MethodPut {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return apiResponse{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return apiResponse{status: resp.StatusCode, header: resp.Header, body: b}, err
}

// api is do on the app host that fails the test on a transport error.
func (s *stack) api(c *http.Client, method, path, token string, body []byte, header ...string) apiResponse {
	s.t.Helper()
	r, err := s.do(c, method, stackAppHost, path, token, body, header...)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// waitAPI polls GET path on the app host until it answers want.
func (s *stack) waitAPI(path string, want int, timeout time.Duration) apiResponse {
	s.t.Helper()
	c := s.client()
	deadline := time.Now().Add(timeout)
	for {
		r, err := s.do(c, http.MethodGet, stackAppHost, path, "", nil)
		if err == nil && r.status == want {
			return r
		}
		if time.Now().After(deadline) {
			logs := s.compose(time.Minute, "logs", "--tail=40", "gateway")
			s.t.Fatalf("GET %s: no %d within %s (last: %v %v)\n%s", path, want, timeout, r, err, logs.stdout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// login signs a user in through the API and returns the access token.
func (s *stack) login(c *http.Client, user, password string) string {
	s.t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	// From the app's own page, as a browser sends it (the client may hold cookies).
	r := s.api(c, http.MethodPost, "/api/auth/login", "", body, "Origin", "https://"+stackAppHost)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if r.status != http.StatusOK {
		s.t.Fatalf("login %s: %s", user, r)
	}
	r.decode(s.t, &tok)
	if tok.AccessToken == "" {
		s.t.Fatalf("login %s: no token in %s", user, r)
	}
	return tok.AccessToken
}

// addUser creates a user with the gateway container's own command line, the
// password on stdin, as an operator does.
func (s *stack) addUser(user, role, password string) {
	s.t.Helper()
	argv := append(s.composeArgs(), "exec", "-T", "gateway", "/usr/bin/claude-gateway", "users", "add", user, "--role", role)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = s.root, s.env
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("users add %s: %v\n%s", user, err, out)
	}
}

// execResult is the answer of POST /api/sessions/{id}/exec.
type execResult struct {
	ExitCode int    `json:"exit_code"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	TimedOut bool   `json:"timed_out"`
}

// exec runs python code in a session through the gateway.
func (s *stack) exec(c *http.Client, token, sessionID, code string) execResult {
	s.t.Helper()
	body, _ := json.Marshal(map[string]any{"language": "python", "code": code, "timeout_seconds": 60})
	r := s.api(c, http.MethodPost, "/api/sessions/"+sessionID+"/exec", token, body)
	var res execResult
	if r.status != http.StatusOK {
		s.t.Fatalf("exec: %s", r)
	}
	r.decode(s.t, &res)
	return res
}

// standinEcho is the app stand-in's JSON answer: the request as it arrived.
type standinEcho struct {
	Name    string      `json:"upstream"`
	Folder  string      `json:"folder"`
	Path    string      `json:"path"`
	Headers http.Header `json:"header"`
}

// ideVisit opens path on the IDE host as a browser signed in on the app host
// does: it follows the sign-on's redirects (both hosts, cookies in
// the client's jar), then asks the IDE page again for the stand-in's JSON.
func (s *stack) ideVisit(t *testing.T, browser *http.Client, path string) standinEcho {
	t.Helper()
	host, next := stackIDEHost, path
	for hop := 0; ; hop++ {
		r, err := s.do(browser, http.MethodGet, host, next, "", nil, "Accept", "text/html")
		if err != nil {
			t.Fatalf("GET https://%s%s: %v", host, next, err)
		}
		if r.status == http.StatusOK {
			break
		}
		loc := r.header.Get("Location")
		if r.status/100 != 3 || loc == "" || hop == 10 {
			t.Fatalf("sign-on at https://%s%s: %s (Location %q)", host, next, r, loc)
		}
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatal(err)
		}
		if u.Host != "" {
			host = u.Host
		}
		next = u.RequestURI()
	}
	if host != stackIDEHost {
		t.Fatalf("the sign-on ended on %s, not the IDE host", host)
	}
	r, err := s.do(browser, http.MethodGet, stackIDEHost, path, "", nil, "Accept", "application/json")
	if err != nil || r.status != http.StatusOK {
		t.Fatalf("IDE page as JSON: %v %v", r, err)
	}
	var echo standinEcho
	r.decode(t, &echo)
	return echo
}

// addresses are a service's container addresses on every network it joins.
func (s *stack) addresses(t *testing.T, service string) []string {
	t.Helper()
	var nets map[string]struct{ IPAddress string }
	if err := json.Unmarshal([]byte(docker(t, "inspect", "-f", "{{json .NetworkSettings.Networks}}", s.container(service))), &nets); err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, n := range nets {
		if n.IPAddress != "" {
			ips = append(ips, n.IPAddress)
		}
	}
	if len(ips) == 0 {
		t.Fatalf("%s has no address", service)
	}
	return ips
}

// probe runs netpeer's TCP probe in a container on one of the project's networks.
func (s *stack) probe(t *testing.T, peerImage, network string, targets ...string) probeResult {
	t.Helper()
	out := docker(t, append([]string{"run", "--rm", "--network", s.project + "_" + network, peerImage, "probe"}, targets...)...)
	var r probeResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("probe output %q: %v", out, err)
	}
	return r
}

// buildPeerImage builds netpeer (deploy/testdata/netpeer) FROM scratch under tag.
func buildPeerImage(t *testing.T, tag string) string {
	t.Helper()
	ctx := filepath.Join(t.TempDir(), "peer")
	goBuildStatic(t, "./deploy/testdata/netpeer", filepath.Join(ctx, "netpeer"))
	writeFile(t, ctx, "Dockerfile", "FROM scratch\nCOPY netpeer /netpeer\nUSER 1000:1000\nENTRYPOINT [\"/netpeer\"]\n")
	buildImage(t, tag, ctx)
	return tag
}
