package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// RedisServer is the Redis server prepared by scripts/test-env.sh, as a URL,
// e.g. "redis://127.0.0.1:6379/0". Tests sharing it keep their keys apart
// with names of their own.
func RedisServer(t testing.TB) string {
	t.Helper()
	s := os.Getenv("CLAUDE_TEST_REDIS")
	if s == "" {
		Missing(t, "Redis", fmt.Errorf("CLAUDE_TEST_REDIS is not set"))
	}
	return s
}

// Redis is a private redis-server of one test, for tests that stop and
// restart it. It keeps nothing on disk and is stopped when the test ends.
type Redis struct {
	// URL is the server's address, e.g. "redis://127.0.0.1:40123/0".
	URL string

	t      testing.TB
	port   int
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartRedis starts redis-server (Debian's package) on a free loopback port.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		Missing(t, "Redis server (redis-server)", err)
	}
	r := &Redis{t: t, port: FreePort(t), dir: t.TempDir()}
	r.URL = fmt.Sprintf("redis://127.0.0.1:%d/0", r.port)
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Start starts the server (again, after Stop) on the same port and waits
// until it accepts connections.
func (r *Redis) Start() {
	t := r.t
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(r.dir, "redis.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(r.port),
		"--save", "", "--appendonly", "no", "--dir", r.dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		Missing(t, "Redis server (redis-server)", err)
	}
	r.cmd, r.exited = cmd, make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(r.exited) }()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-r.exited:
			b, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			t.Fatalf("private Redis exited at start:\n%s", lastLines(b, 20))
		default:
		}
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(r.port), time.Second); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("private Redis did not come up on port %d", r.port)
}

// Stop stops the server and waits until it has exited.
func (r *Redis) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.exited:
		return
	default:
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.exited
	}
}
