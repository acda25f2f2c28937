package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

type probeAnswer struct {
	code int
	body map[string]any
}

func (s *stack) probe(t *testing.T, path string) probeAnswer {
	t.Helper()
	resp, err := s.gw.Client().Get(s.gw.URL("localhost", path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: body is not JSON: %v", path, err)
	}
	return probeAnswer{resp.StatusCode, body}
}

// TestProbesFollowTheDatabase locks the gateway's MariaDB account and kills its
// connections: /api/ready and /api/health turn 503 while /api/live stays 200,
// and all recover when the account is unlocked. No token is needed for probes.
func TestProbesFollowTheDatabase(t *testing.T) {
	setting := testenv.MySQLDatabase(t)
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(setting, "mysql://"))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx := context.Background()
	user := "probe_" + testenv.RandomHex(4)
	for _, q := range []string{
		"CREATE USER '" + user + "'@'127.0.0.1' IDENTIFIED BY 'probe-pw'",
		"GRANT ALL PRIVILEGES ON " + cfg.DBName + ".* TO '" + user + "'@'127.0.0.1'",
	} {
		if _, err := admin.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { admin.Exec("DROP USER IF EXISTS '" + user + "'@'127.0.0.1'") })

	gwCfg := cfg.Clone()
	gwCfg.User, gwCfg.Passwd = user, "probe-pw"
	s := startStack(t, map[string]string{"CLAUDE_DATABASE": "mysql://" + gwCfg.FormatDSN()})

	if a := s.probe(t, "/api/ready"); a.code != 200 || a.body["status"] != "ready" {
		t.Fatalf("ready before the outage: %+v", a)
	}
	if a := s.probe(t, "/api/health"); a.code != 200 || a.body["status"] != "healthy" {
		t.Fatalf("health before the outage: %+v", a)
	}

	if _, err := admin.ExecContext(ctx, "ALTER USER '"+user+"'@'127.0.0.1' ACCOUNT LOCK"); err != nil {
		t.Fatal(err)
	}
	rows, err := admin.QueryContext(ctx, "SELECT id FROM information_schema.processlist WHERE user = ?", user)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		admin.ExecContext(ctx, "KILL ?", id)
	}

	waitFor(t, 20*time.Second, "readiness to fail", func() bool { return s.probe(t, "/api/ready").code == 503 })
	a := s.probe(t, "/api/health")
	services, _ := a.body["services"].(map[string]any)
	db, _ := services["database"].(map[string]any)
	if a.code != 503 || a.body["status"] != "degraded" || db["status"] != "unavailable" {
		t.Fatalf("health during the outage: %+v", a)
	}
	if _, leaked := db["error"]; leaked {
		t.Fatalf("the public health summary carries the error text: %+v", db)
	}
	if a := s.probe(t, "/api/live"); a.code != 200 {
		t.Fatalf("live during the outage: %+v", a)
	}

	if _, err := admin.ExecContext(ctx, "ALTER USER '"+user+"'@'127.0.0.1' ACCOUNT UNLOCK"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "readiness to recover", func() bool { return s.probe(t, "/api/ready").code == 200 })
	if a := s.probe(t, "/api/health"); a.code != 200 || a.body["status"] != "healthy" {
		t.Fatalf("health after the outage: %+v", a)
	}
	resp, err := s.gw.Client().Post(s.gw.URL("localhost", "/api/health"), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /api/health: %d, want 405", resp.StatusCode)
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
