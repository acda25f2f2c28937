package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // registers the "mysql" driver
)

// MariaDB is a private MariaDB server of one test, for tests that must stop
// and restart the database (the shared one of scripts/test-env.sh is never
// stopped). Its data lives in the test's temp dir; it is stopped when the
// test ends.
type MariaDB struct {
	// Port is the TCP port it listens on, on 127.0.0.1.
	Port int
	// Setting is the `database` setting of its database "claude".
	Setting string

	t       testing.TB
	datadir string
	sockDir string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// StartMariaDB initialises a fresh data directory with mariadb-install-db,
// starts mariadbd on a free loopback port, and creates the database "claude"
// and a user for it.
func StartMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	for _, bin := range []string{"mariadb-install-db", "mariadbd"} {
		if _, err := exec.LookPath(bin); err != nil {
			if _, err2 := os.Stat("/usr/sbin/" + bin); err2 != nil {
				Missing(t, "MariaDB server ("+bin+")", err)
			}
		}
	}
	dir := t.TempDir()
	// The socket path must stay short (108 bytes), so it gets its own dir.
	sockDir, err := os.MkdirTemp("", "mdb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	m := &MariaDB{t: t, datadir: filepath.Join(dir, "data"), sockDir: sockDir, logPath: filepath.Join(dir, "mariadb.log")}
	args := []string{"--no-defaults", "--datadir=" + m.datadir, "--auth-root-authentication-method=normal", "--skip-test-db"}
	args = append(args, m.userArgs()...)
	if out, err := exec.Command(binPath("mariadb-install-db"), args...).CombinedOutput(); err != nil {
		Missing(t, "MariaDB server (mariadb-install-db)", fmt.Errorf("%v: %s", err, lastLines(out, 10)))
	}
	m.Port = FreePort(t)
	m.Start()
	t.Cleanup(m.Stop)

	root, err := sql.Open("mysql", "root@unix("+m.socket()+")/")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, q := range []string{
		"CREATE DATABASE claude CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
		"CREATE USER 'claude'@'127.0.0.1' IDENTIFIED BY 'claude'",
		"GRANT ALL PRIVILEGES ON claude.* TO 'claude'@'127.0.0.1'",
	} {
		if _, err := root.Exec(q); err != nil {
			t.Fatalf("private MariaDB: %s: %v", q, err)
		}
	}
	m.Setting = fmt.Sprintf("mysql://claude:claude@tcp(127.0.0.1:%d)/claude", m.Port)
	return m
}

// userArgs runs the server as root when the tests do (mariadbd refuses
// otherwise); an unprivileged user runs it as itself.
func (m *MariaDB) userArgs() []string {
	if os.Geteuid() != 0 {
		return nil
	}
	if u, err := user.Current(); err == nil {
		return []string{"--user=" + u.Username}
	}
	return []string{"--user=root"}
}

func (m *MariaDB) socket() string { return filepath.Join(m.sockDir, "sock") }

// Start starts the server (again, after Stop) on the same port and data, and
// waits until it accepts connections.
func (m *MariaDB) Start() {
	t := m.t
	t.Helper()
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--no-defaults", "--datadir=" + m.datadir, "--bind-address=127.0.0.1",
		"--port=" + strconv.Itoa(m.Port), "--socket=" + m.socket(), "--pid-file=" + filepath.Join(m.sockDir, "pid"),
		"--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=32M",
		"--innodb-flush-log-at-trx-commit=2", "--max-connections=300"}
	args = append(args, m.userArgs()...)
	cmd := exec.Command(binPath("mariadbd"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		Missing(t, "MariaDB server (mariadbd)", err)
	}
	m.cmd = cmd
	m.exited = make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(m.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-m.exited:
			b, _ := os.ReadFile(m.logPath)
			t.Fatalf("private MariaDB exited at start:\n%s", lastLines(b, 20))
		default:
		}
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(m.Port), time.Second); err == nil {
			c.Close()
			if db, err := sql.Open("mysql", "root@unix("+m.socket()+")/"); err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				err = db.PingContext(ctx)
				cancel()
				db.Close()
				if err == nil {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(m.logPath)
	t.Fatalf("private MariaDB did not come up on port %d:\n%s", m.Port, lastLines(b, 20))
}

// Stop shuts the server down (SIGTERM, then SIGKILL after 30 s) and waits
// until it has exited and its port is closed.
func (m *MariaDB) Stop() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	select {
	case <-m.exited:
		return
	default:
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(30 * time.Second):
		syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.exited
	}
}

// Log returns what the server logged.
func (m *MariaDB) Log() string {
	b, _ := os.ReadFile(m.logPath)
	return string(b)
}

func binPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return "/usr/sbin/" + name
}

var (
	portsMu sync.Mutex
	// portsGiven holds the ports FreePort handed out in this process: the
	// kernel may offer a just-closed port again, and two listeners (of one
	// gateway, or a database and a gateway) must never be given the same one.
	portsGiven = map[int]bool{}
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and that
// this process has not handed out before.
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !portsGiven[port] {
			portsGiven[port] = true
			return port
		}
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
