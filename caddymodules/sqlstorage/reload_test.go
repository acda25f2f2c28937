package sqlstorage_test

import (
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// reloadCaddyfile keeps its certificates in the claude app's MariaDB
// database; HOSTS is the list of site names, so a reload can add one.
const reloadCaddyfile = `{
	admin {$CLAUDE_ADMIN}
	auto_https disable_redirects
	skip_install_trust
	storage mysql {
		lease 5s
	}
	log {
		format json
	}
	claude {
		database {$CLAUDE_DATABASE}
	}
}

HOSTS {
	tls internal
	route {
		claude_health
	}
}
`

// TestReloadKeepsThePool: config reloads hand the database pool from the old
// storage to the new one. The old config's cleanup must not close the pool
// the new config (and the claude app) use: after each reload the gateway is
// ready, and it issues, stores and serves a certificate for a site the
// reload added.
func TestReloadKeepsThePool(t *testing.T) {
	db := testenv.MySQLDatabase(t)
	port := strconv.Itoa(gatewaytest.FreePort(t))
	config := func(hosts ...string) string {
		addrs := make([]string, len(hosts))
		for i, h := range hosts {
			addrs[i] = "https://" + h + ":" + port
		}
		return strings.Replace(reloadCaddyfile, "HOSTS", strings.Join(addrs, ", "), 1)
	}
	g := gatewaytest.Start(t, gatewaytest.Options{
		Caddyfile: config("localhost"),
		Env:       map[string]string{"CLAUDE_DATABASE": db, "CLAUDE_HTTPS_PORT": port},
	})
	conn := testenv.OpenDB(t, db)

	hosts := []string{"localhost"}
	for i := range 3 {
		name := "r" + strconv.Itoa(i) + ".localhost"
		hosts = append(hosts, name)
		if err := g.Load(config(hosts...)); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		resp, err := g.Client().Get(g.URL("localhost", "/api/ready"))
		if err != nil {
			t.Fatalf("after reload %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("after reload %d: /api/ready = %d; the database pool was lost", i, resp.StatusCode)
		}
		waitFor(t, 30*time.Second, "a certificate for "+name, func() bool {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", "127.0.0.1:"+port,
				&tls.Config{ServerName: name, InsecureSkipVerify: true})
			if err != nil {
				return false
			}
			defer c.Close()
			leaf := c.ConnectionState().PeerCertificates[0]
			return leaf.VerifyHostname(name) == nil
		})
		var stored int
		key := "certificates/local/" + name + "/" + name + ".crt"
		if err := conn.QueryRow("SELECT COUNT(*) FROM cert_storage WHERE storage_key = ?", key).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored != 1 {
			t.Fatalf("after reload %d: %s is not in the database", i, key)
		}
	}
	// The storage shares the claude app's pool at start-up and after each
	// of the three reloads.
	if n := strings.Count(g.Log(), `"shared_pool":true`); n != 4 {
		t.Fatalf("the storage re-used an open pool %d times, want 4", n)
	}
	if strings.Contains(g.Log(), "database is closed") {
		t.Fatal("a query ran on a closed pool")
	}
}
