// Package gatewaytest runs the real claude-gateway binary for integration
// tests: on the repository's Caddyfile.dev or a Caddyfile of the test's own,
// on free loopback ports, with a client that trusts its internal CA and
// resolves every host name to loopback.
package gatewaytest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary returns the path of the gateway binary: $CLAUDE_GATEWAY_BIN when set
// (the Makefile builds it once), else one built from this checkout per test process.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CLAUDE_GATEWAY_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "claude-gateway-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "claude-gateway")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/claude-gateway")
		cmd.Dir = RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building the gateway: %v", buildErr)
	}
	return buildPath
}

// RepoRoot returns the directory of the repository's go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// SnippetsFile is the file of snippets both repository Caddyfiles import,
// relative to themselves (or, for a config posted to the admin API's /load,
// to the process's working directory).
const SnippetsFile = "snippets.caddyfile"

// WriteCaddyfile writes body as dir/Caddyfile, with the repository's
// SnippetsFile beside it so that a copy of either repository Caddyfile
// adapts there, and returns the Caddyfile's path.
func WriteCaddyfile(t testing.TB, dir, body string) string {
	t.Helper()
	snippets, err := os.ReadFile(filepath.Join(RepoRoot(t), SnippetsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, SnippetsFile), snippets, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and that
// this process has not handed out before (testenv.FreePort).
func FreePort(t testing.TB) int { return testenv.FreePort(t) }

// Gateway is one running gateway process.
type Gateway struct {
	// Dir is the process's working directory; ./data and ./workspace live there.
	Dir string
	// Config is the Caddyfile it was started with.
	Config string
	// Env is the environment given to the process on top of the test's own.
	Env map[string]string
	// HTTPSPort, HTTPPort and AdminAddr are the listeners of Caddyfile.dev.
	HTTPSPort, HTTPPort int
	// AdminAddr is the admin API's host:port.
	AdminAddr string

	t       testing.TB
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
}

// Options adjust Start.
type Options struct {
	// Caddyfile is the config to run; empty means the repository's Caddyfile.dev.
	Caddyfile string
	// Env is added to the process environment (e.g. upstreams, CLAUDE_DATABASE).
	Env map[string]string
	// Dir is the working directory; empty means a fresh temp dir.
	Dir string
}

// Start runs a gateway and waits until its HTTPS port answers on the app host
// (and on ide.localhost when the config serves it, so both certificates exist).
// CLAUDE_HTTPS_PORT, CLAUDE_HTTP_PORT and CLAUDE_ADMIN are set to free loopback
// ports unless opts.Env sets them. The process is stopped when the test ends.
func Start(t testing.TB, opts Options) *Gateway {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	env := map[string]string{
		// Keep Caddy's autosave and default storage inside the test's directory.
		"XDG_CONFIG_HOME":   filepath.Join(opts.Dir, "xdg-config"),
		"XDG_DATA_HOME":     filepath.Join(opts.Dir, "xdg-data"),
		"CLAUDE_HTTPS_PORT": strconv.Itoa(FreePort(t)),
		"CLAUDE_HTTP_PORT":  strconv.Itoa(FreePort(t)),
		"CLAUDE_ADMIN":      "127.0.0.1:" + strconv.Itoa(FreePort(t)),
	}
	for k, v := range opts.Env {
		env[k] = v
	}
	cfg := opts.Caddyfile
	if cfg == "" {
		b, err := os.ReadFile(filepath.Join(RepoRoot(t), "Caddyfile.dev"))
		if err != nil {
			t.Fatal(err)
		}
		cfg = string(b)
	}
	g := &Gateway{Dir: opts.Dir, Config: cfg, Env: env, t: t}
	g.HTTPSPort, _ = strconv.Atoi(env["CLAUDE_HTTPS_PORT"])
	g.HTTPPort, _ = strconv.Atoi(env["CLAUDE_HTTP_PORT"])
	g.AdminAddr = env["CLAUDE_ADMIN"]
	g.start()
	t.Cleanup(func() {
		g.Stop()
		if t.Failed() {
			t.Logf("gateway log (%s), last lines:\n%s", g.logPath, g.LogTail(60))
		}
	})
	return g
}

func (g *Gateway) start() {
	t := g.t
	t.Helper()
	cfgPath := WriteCaddyfile(t, g.Dir, g.Config)
	g.logPath = filepath.Join(g.Dir, fmt.Sprintf("gateway-%d.log", time.Now().UnixNano()))
	logf, err := os.Create(g.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Binary(t), "run", "--config", cfgPath, "--adapter", "caddyfile")
	cmd.Dir = g.Dir
	cmd.Env = os.Environ()
	for k, v := range g.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the gateway: %v", err)
	}
	g.cmd = cmd
	g.exited = make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(g.exited) }()
	if err := g.waitReady(60 * time.Second); err != nil {
		g.Kill()
		t.Fatalf("gateway did not come up: %v\nlog:\n%s", err, g.LogTail(40))
	}
}

func (g *Gateway) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := g.Client()
	c.Timeout = 2 * time.Second
	for time.Now().Before(deadline) {
		select {
		case <-g.exited:
			return fmt.Errorf("process exited: %v", g.cmd.ProcessState)
		default:
		}
		if g.answers(c, "localhost", "/api/live") && (!strings.Contains(g.Config, "ide.localhost") || g.answers(c, "ide.localhost", "/")) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no answer on https port %d within %s", g.HTTPSPort, timeout)
}

// answers reports whether host completes a TLS handshake and answers path
// with any status: its certificate has been issued.
func (g *Gateway) answers(c *http.Client, host, path string) bool {
	resp, err := c.Get(g.URL(host, path))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

// Restart starts the process again after Kill or Stop, with the same config and data.
func (g *Gateway) Restart() {
	g.t.Helper()
	g.start()
}

// Stop ends the process gracefully (SIGTERM), killing it after 10 s.
func (g *Gateway) Stop() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(10 * time.Second):
		g.Kill()
	}
}

// Kill ends the process with SIGKILL, as a crash would.
func (g *Gateway) Kill() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
	<-g.exited
}

// Pid is the process id of the running gateway.
func (g *Gateway) Pid() int { return g.cmd.Process.Pid }

// LogTail returns the last n lines the process logged.
func (g *Gateway) LogTail(n int) string {
	b, _ := os.ReadFile(g.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Log returns everything the process logged so far.
func (g *Gateway) Log() string {
	b, _ := os.ReadFile(g.logPath)
	return string(b)
}

// URL is https://<host>:<HTTPSPort><path>.
func (g *Gateway) URL(host, path string) string {
	return fmt.Sprintf("https://%s:%d%s", host, g.HTTPSPort, path)
}

// HTTPURL is http://<host>:<HTTPPort><path>.
func (g *Gateway) HTTPURL(host, path string) string {
	return fmt.Sprintf("http://%s:%d%s", host, g.HTTPPort, path)
}

// RootCAs returns the pool holding the gateway's internal CA root, once it exists.
func (g *Gateway) RootCAs() *x509.CertPool {
	pool := x509.NewCertPool()
	root := filepath.Join(g.Dir, "data", "caddy", "pki", "authorities", "local", "root.crt")
	if b, err := os.ReadFile(root); err == nil {
		pool.AppendCertsFromPEM(b)
	}
	return pool
}

// LoopbackDialer dials every address's port on 127.0.0.1, so any host name
// (ide.localhost, app.example.test) reaches the local gateway.
func LoopbackDialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
	}
}

// Transport returns a fresh transport that trusts the gateway's CA (falling
// back to skipping verification while the CA does not exist yet) and dials loopback.
func (g *Gateway) Transport() *http.Transport {
	pool := g.RootCAs()
	tlsCfg := &tls.Config{RootCAs: pool}
	if len(pool.Subjects()) == 0 { //nolint:staticcheck // only to see whether the root was read
		tlsCfg.InsecureSkipVerify = true
	}
	return &http.Transport{
		DialContext:       LoopbackDialer(),
		TLSClientConfig:   tlsCfg,
		ForceAttemptHTTP2: true,
	}
}

// Client returns an HTTP client for the gateway that does not follow redirects.
func (g *Gateway) Client() *http.Client {
	return &http.Client{
		Transport: g.Transport(),
		Timeout:   30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Load replaces the running config through the admin API's /load with a Caddyfile.
func (g *Gateway) Load(caddyfile string) error {
	req, err := http.NewRequest(http.MethodPost, "http://"+g.AdminAddr+"/load", strings.NewReader(caddyfile))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("admin /load: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin /load: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return nil
}
