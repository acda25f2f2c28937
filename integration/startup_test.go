package integration

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
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

// TestBadDatabaseSettingStopsStartup: the process exits and says which setting is wrong.
func TestBadDatabaseSettingStopsStartup(t *testing.T) {
	closed := gatewaytest.FreePort(t)
	tests := []struct {
		setting string
		want    []string
	}{
		{"postgres://u:pw@db/claude", []string{"database", "unknown scheme"}},
		{"sqlite:", []string{"database", "needs a file path"}},
		{"mysql://u:pw@tcp(db:3306)/", []string{"database", "names no database"}},
		{fmt.Sprintf("mysql://u:pw@tcp(127.0.0.1:%d)/claude", closed), []string{"database", "not reachable", "connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.setting, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(gatewaytest.Binary(t), "run", "--config", filepath.Join(gatewaytest.RepoRoot(t), "Caddyfile.dev"))
			cmd.Dir = dir
			cmd.Env = append(os.Environ(),
				"CLAUDE_DATABASE="+tt.setting,
				"CLAUDE_HTTPS_PORT="+strconv.Itoa(gatewaytest.FreePort(t)),
				"CLAUDE_HTTP_PORT="+strconv.Itoa(gatewaytest.FreePort(t)),
				"CLAUDE_ADMIN=127.0.0.1:"+strconv.Itoa(gatewaytest.FreePort(t)),
				"SECRET_KEY="+gatewaytest.TestSecret,
				"XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
			done := make(chan struct{})
			var out []byte
			var err error
			go func() { out, err = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				t.Fatal("the gateway kept running with a broken database setting")
			}
			if err == nil {
				t.Fatalf("exit 0 with a broken setting:\n%s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Fatalf("output does not say %q:\n%s", w, out)
				}
			}
			if strings.Contains(string(out), ":pw@") {
				t.Fatalf("the password is printed:\n%s", out)
			}
		})
	}
}

// TestAdminOnLoopbackOnly: the dev admin API listens on loopback only, and the
// production Caddyfile puts it on a unix socket.
func TestAdminOnLoopbackOnly(t *testing.T) {
	s := startStack(t, map[string]string{"CLAUDE_ADMIN": "localhost:" + strconv.Itoa(gatewaytest.FreePort(t))})
	_, portStr, _ := net.SplitHostPort(s.gw.AdminAddr)
	port, _ := strconv.Atoi(portStr)
	addrs := listeningAddrs(t, s.gw.Pid(), port)
	if len(addrs) == 0 {
		t.Fatalf("no listening socket found for the admin port %d", port)
	}
	for _, a := range addrs {
		if !a.IsLoopback() {
			t.Fatalf("admin API listens on %s", a)
		}
	}

	cmd := exec.Command(gatewaytest.Binary(t), "adapt", "--config", filepath.Join(gatewaytest.RepoRoot(t), "Caddyfile"))
	cmd.Env = append(os.Environ(), "DOMAIN=example.com", "CLAUDE_DATABASE="+testenv.SQLiteDatabase(t), "SECRET_KEY="+gatewaytest.TestSecret)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("adapting the production Caddyfile: %v", err)
	}
	var cfg struct {
		Admin struct {
			Listen string `json:"listen"`
		} `json:"admin"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cfg.Admin.Listen, "unix/") {
		t.Fatalf("production admin listens on %q, want a unix socket", cfg.Admin.Listen)
	}
}

// listeningAddrs returns the local addresses of the TCP sockets in LISTEN
// state on port that belong to process pid, from /proc.
func listeningAddrs(t *testing.T, pid, port int) []net.IP {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var out []net.IP
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] { // 0A = LISTEN
				continue
			}
			hexIP, hexPort, _ := strings.Cut(fields[1], ":")
			if p, _ := strconv.ParseInt(hexPort, 16, 32); int(p) != port {
				continue
			}
			out = append(out, procIP(hexIP))
		}
		f.Close()
	}
	return out
}

// procIP decodes an address of /proc/net/tcp{,6}: 32-bit words in host (little-endian) order.
func procIP(h string) net.IP {
	b, _ := hex.DecodeString(h)
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return net.IP(b)
}

// TestListModules: the binary carries every module of the gateway.
func TestListModules(t *testing.T) {
	out, err := exec.Command(gatewaytest.Binary(t), "list-modules").Output()
	if err != nil {
		t.Fatalf("list-modules: %v", err)
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		have[strings.TrimSpace(line)] = true
	}
	for _, id := range []string{
		"claude",
		"http.handlers.claude_auth",
		"http.handlers.claude_auth_api",
		"http.handlers.claude_rate_limit",
		"http.handlers.claude_sessions",
		"http.handlers.claude_exec",
		"http.handlers.claude_health",
		"http.handlers.claude_error",
		"caddy.storage.mysql",
		"http.reverse_proxy.upstreams.srv", // a standard module: the build is a full Caddy
	} {
		if !have[id] {
			t.Errorf("list-modules lacks %s", id)
		}
	}
}
