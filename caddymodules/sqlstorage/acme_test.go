package sqlstorage_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// caCaddyfile runs Caddy's own ACME server (the pki app's `acme_server`) on
// the gateway's HTTPS port, logging every request so orders can be counted.
const caCaddyfile = `{
	admin {$CLAUDE_ADMIN}
	auto_https disable_redirects
	skip_install_trust
	storage file_system ./data/caddy
	log {
		format json
	}
	claude {
		database sqlite:./data/gateway.db
	}
}

https://localhost:{$CLAUDE_HTTPS_PORT} {
	tls internal
	log
	route {
		claude_health
		acme_server
	}
}
`

// replicaCaddyfile is one gateway replica: certificates in the claude app's
// MariaDB database through ` + "`storage mysql`" + `, a site for ACME_IP whose
// certificate comes from the test CA by the http-01 challenge, and plain HTTP
// on ACME_IP:ACME_HTTP_PORT where the challenge lands (port 80 for the
// replica the CA reaches).
const replicaCaddyfile = `{
	admin {$CLAUDE_ADMIN}
	auto_https disable_redirects
	skip_install_trust
	http_port {$ACME_HTTP_PORT}
	storage mysql {
		lease 10s
		poll_interval 250ms
	}
	log {
		format json
	}
	claude {
		database {$CLAUDE_DATABASE}
	}
}

https://localhost:{$CLAUDE_HTTPS_PORT} {
	tls internal
	route {
		claude_health
	}
}

https://{$ACME_IP}:{$ACME_SITE_PORT} {
	bind {$ACME_IP}
	tls {
		issuer acme {
			dir {$ACME_DIR}
			trusted_roots {$ACME_ROOT}
			disable_tlsalpn_challenge
		}
	}
	respond "replica {$REPLICA}"
}

http://{$ACME_IP}:{$ACME_HTTP_PORT} {
	bind {$ACME_IP}
	respond 404
}
`

// TestACMEReplicasShareOneCertificate: two replicas on one MariaDB, both
// configured for the same name, against a real ACME CA on loopback. The
// CA is reached through a gate held shut until both replicas run, so the
// second one must wait on the first one's issuance lock. Exactly one order
// reaches the CA and both replicas serve the certificate it issued.
//
// The name is an IP address (RFC 8738) on a random 127/8 loopback address:
// Caddy's ACME server validates http-01 on port 80 of the identifier, and a
// private loopback address keeps that port free of anything else on the machine.
func TestACMEReplicasShareOneCertificate(t *testing.T) {
	ip := privateLoopback(t)
	db := testenv.MySQLDatabase(t)

	ca := gatewaytest.Start(t, gatewaytest.Options{Caddyfile: caCaddyfile})
	root := filepath.Join(ca.Dir, "data", "caddy", "pki", "authorities", "local", "root.crt")
	roots := x509.NewCertPool()
	if pemBytes, err := os.ReadFile(root); err != nil || !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("reading the CA root %s: %v", root, err)
	}
	gate := newGate(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(ca.HTTPSPort)))

	replica := func(name, httpPort string) (*gatewaytest.Gateway, string) {
		sitePort := strconv.Itoa(gatewaytest.FreePort(t))
		g := gatewaytest.Start(t, gatewaytest.Options{Caddyfile: replicaCaddyfile, Env: map[string]string{
			"CLAUDE_DATABASE": db,
			"REPLICA":         name,
			"ACME_IP":         ip,
			"ACME_HTTP_PORT":  httpPort,
			"ACME_SITE_PORT":  sitePort,
			"ACME_DIR":        "https://localhost:" + gate.port + "/acme/local/directory",
			"ACME_ROOT":       root,
		}})
		return g, net.JoinHostPort(ip, sitePort)
	}
	a, addrA := replica("a", "80")
	b, addrB := replica("b", strconv.Itoa(gatewaytest.FreePort(t)))

	// One replica holds the issuance lock for the name while its order waits
	// at the gate; the other has started and queued behind that lock.
	conn := testenv.OpenDB(t, db)
	lockName := "issue_cert_" + ip
	waitFor(t, 30*time.Second, "a replica to take the issuance lock", func() bool {
		var n int
		conn.QueryRow("SELECT COUNT(*) FROM cert_locks WHERE name = ? AND token <> ''", lockName).Scan(&n)
		return n == 1
	})
	time.Sleep(2 * time.Second) // let the other replica reach the lock
	gate.open()

	serials := map[string]string{}
	for name, addr := range map[string]string{"a": addrA, "b": addrB} {
		var leaf *x509.Certificate
		waitFor(t, 90*time.Second, "replica "+name+" to serve the ACME certificate", func() bool {
			leaf = servedLeaf(addr, roots)
			return leaf != nil
		})
		if len(leaf.IPAddresses) != 1 || leaf.IPAddresses[0].String() != ip {
			t.Fatalf("replica %s serves a certificate for %v, want %s", name, leaf.IPAddresses, ip)
		}
		serials[name] = leaf.SerialNumber.String()
	}
	if serials["a"] != serials["b"] {
		t.Fatalf("the replicas serve different certificates: serial %s and %s", serials["a"], serials["b"])
	}

	orders := strings.Count(ca.Log(), `"uri":"/acme/local/new-order"`)
	if orders != 1 {
		t.Fatalf("the CA received %d certificate orders, want exactly 1", orders)
	}
	obtained := 0
	for i, g := range []*gatewaytest.Gateway{a, b} {
		locked := 0
		for _, line := range strings.Split(g.Log(), "\n") {
			if !strings.Contains(line, `"identifier":"`+ip+`"`) {
				continue
			}
			if strings.Contains(line, `"msg":"certificate obtained successfully"`) {
				obtained++
			}
			if strings.Contains(line, `"msg":"lock acquired"`) {
				locked++
			}
		}
		if locked != 1 {
			t.Errorf("replica %d took the issuance lock %d times, want once", i, locked)
		}
	}
	if obtained != 1 {
		t.Fatalf("%d certificates for %s obtained across the replicas, want 1", obtained, ip)
	}
	var fence int64
	var token string
	if err := conn.QueryRow("SELECT fence, token FROM cert_locks WHERE name = ?", lockName).Scan(&fence, &token); err != nil {
		t.Fatal(err)
	}
	if fence != 2 || token != "" {
		t.Fatalf("issuance lock: fence %d, token %q; want both replicas through it (fence 2) and it released", fence, token)
	}
	t.Logf("one order at the CA; both replicas serve serial %s; the lock went through %d holders", serials["a"], fence)
}

// privateLoopback picks a random 127/8 address whose port 80 this test can
// bind (the CA validates http-01 on port 80 only), so nothing else on the
// machine answers there.
func privateLoopback(t *testing.T) string {
	t.Helper()
	var lastErr error
	for range 5 {
		ip := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), 1+rand.IntN(250), 2+rand.IntN(250))
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "80"))
		if err == nil {
			l.Close()
			return ip
		}
		lastErr = err
	}
	what := "binding port 80 on a loopback address (root or CAP_NET_BIND_SERVICE, for the ACME http-01 challenge)"
	if errors.Is(lastErr, syscall.EADDRINUSE) {
		what = "a free port 80 on a loopback address (another process listens on *:80; find it with `ss -ltnp 'sport = :80'`)"
	}
	testenv.Missing(t, what, lastErr)
	return ""
}

// servedLeaf returns the certificate served at addr if it verifies against
// roots, or nil. No SNI is sent: the name is an IP address.
func servedLeaf(addr string, roots *x509.CertPool) *x509.Certificate {
	d := &net.Dialer{Timeout: 2 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return nil
	}
	defer conn.Close()
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	host, _, _ := net.SplitHostPort(addr)
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host}); err != nil {
		return nil
	}
	return certs[0]
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// gate is a TCP relay to the CA that holds every connection until opened.
type gate struct {
	port   string
	once   sync.Once
	opened chan struct{}
}

func newGate(t *testing.T, target string) *gate {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{port: strconv.Itoa(l.Addr().(*net.TCPAddr).Port), opened: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				select {
				case <-g.opened:
				case <-ctx.Done():
					return
				}
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.opened) }) }
