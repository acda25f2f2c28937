package executor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// tlsDaemon is the machine's Docker engine behind a TLS listener that
// demands a client certificate, as a DinD daemon on tcp://dind:2376 does.
type tlsDaemon struct {
	addr string
	dir  string // ca.pem, cert.pem, key.pem of a valid client; other-ca.pem
}

func startTLSDaemon(t *testing.T) *tlsDaemon {
	t.Helper()
	const sock = "/var/run/docker.sock"
	if _, err := os.Stat(sock); err != nil {
		testenv.Missing(t, "Docker engine socket "+sock, err)
	}
	dir := t.TempDir()
	ca, caKey := newCert(t, nil, nil, "test CA", true)
	otherCA, _ := newCert(t, nil, nil, "other CA", true)
	srv, srvKey := newCert(t, ca, caKey, "dind", false)
	cli, cliKey := newCert(t, ca, caKey, "gateway", false)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	writePEM(t, filepath.Join(dir, "other-ca.pem"), "CERTIFICATE", otherCA.Raw)
	writePEM(t, filepath.Join(dir, "cert.pem"), "CERTIFICATE", cli.Raw)
	keyDER, _ := x509.MarshalECPrivateKey(cliKey)
	writePEM(t, filepath.Join(dir, "key.pem"), "EC PRIVATE KEY", keyDER)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{srv.Raw}, PrivateKey: srvKey}},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go proxy(c.(*tls.Conn), sock)
		}
	}()
	return &tlsDaemon{addr: ln.Addr().String(), dir: dir}
}

// proxy copies both ways between a TLS client and the daemon's socket,
// passing half-closes on (attach relies on them for stdin's end).
func proxy(c *tls.Conn, sock string) {
	defer c.Close()
	if err := c.Handshake(); err != nil {
		return
	}
	d, err := net.Dial("unix", sock)
	if err != nil {
		return
	}
	defer d.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(d, c)
		d.(*net.UnixConn).CloseWrite()
		close(done)
	}()
	io.Copy(c, d)
	c.CloseWrite()
	<-done
}

func newCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, name string, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		IsCA:         isCA, BasicConstraintsValid: true,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLSDaemon runs code through a daemon that speaks TLS with client
// certificates, configured explicitly and through DOCKER_HOST,
// DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, and refuses wrong credentials.
// Not parallel: it sets the environment.
func TestTLSDaemon(t *testing.T) {
	testenv.DockerImage(t, testImage())
	d := startTLSDaemon(t)
	host := "tcp://" + d.addr
	file := func(name string) string { return filepath.Join(d.dir, name) }

	t.Run("config", func(t *testing.T) {
		e := newTestExecutor(t, Config{Host: host, TLSCA: file("ca.pem"), TLSCert: file("cert.pem"), TLSKey: file("key.pem")})
		if err := e.IsAvailable(context.Background()); err != nil {
			t.Fatalf("IsAvailable over TLS: %v", err)
		}
		res, err := e.RunPython(context.Background(), "import sys; print(sys.stdin.read()[::-1])", Spec{Stdin: []byte("olleh")})
		if err != nil || res.Stdout != "hello\n" || res.ExitCode != 0 {
			t.Fatalf("run over TLS: %v %+v", err, res)
		}
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv("DOCKER_HOST", host)
		t.Setenv("DOCKER_CERT_PATH", d.dir)
		t.Setenv("DOCKER_TLS_VERIFY", "1")
		e := newTestExecutor(t, Config{})
		if err := e.IsAvailable(context.Background()); err != nil {
			t.Fatalf("IsAvailable from the environment: %v", err)
		}
		if res, err := e.RunBash(context.Background(), "echo env", Spec{}); err != nil || res.Stdout != "env\n" {
			t.Fatalf("run: %v %+v", err, res)
		}
	})
	refused := []struct {
		name string
		cfg  Config
	}{
		{"no client certificate", Config{Host: host, TLSCA: file("ca.pem")}},
		{"server not signed by the given CA", Config{Host: host, TLSCA: file("other-ca.pem"), TLSCert: file("cert.pem"), TLSKey: file("key.pem")}},
		{"plain HTTP to a TLS port", Config{Host: host}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.CleanupInterval = -1
			e, err := New(tt.cfg, nil)
			if err != nil {
				return // refused while configuring: fine
			}
			defer e.Close()
			if err := e.IsAvailable(context.Background()); err == nil {
				t.Error("the daemon answered")
			}
		})
	}
}
