package handoff

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// testTLSConfig is a server config with a fresh self-signed certificate for localhost.
func testTLSConfig(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		NextProtos:   []string{"h2", "http/1.1"},
	}
}

func loopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func TestListenerWaitsForTheFirstBytes(t *testing.T) {
	var g Groups
	l := g.Wrap(loopback(t), false, Options{})
	defer l.Close()

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		sc, err := l.Accept()
		if err == nil {
			accepted <- sc
		}
	}()
	select {
	case sc := <-accepted:
		sc.Close()
		t.Fatal("Accept returned a connection that had sent nothing")
	case <-time.After(100 * time.Millisecond):
	}
	const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	select {
	case sc := <-accepted:
		defer sc.Close()
		got := make([]byte, len(req))
		if _, err := io.ReadFull(sc, got); err != nil || string(got) != req {
			t.Fatalf("server read %q, %v; want %q", got, err, req)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Accept did not return after the first bytes arrived")
	}
}

func TestListenerClosesSilentConnectionsAfterTimeout(t *testing.T) {
	var g Groups
	l := g.Wrap(loopback(t), false, Options{Timeout: 100 * time.Millisecond})
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("silent client: read %v, want EOF once the timeout passed", err)
	}
}

func TestListenerTLS(t *testing.T) {
	cfg := testTLSConfig(t)
	tests := []struct {
		name   string
		client func(t *testing.T, addr string) string // returns what the client read
		want   string
		server bool // whether a connection must reach the server
	}{
		{
			name: "handshake done before the server sees the connection",
			client: func(t *testing.T, addr string) string {
				c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				io.WriteString(c, "GET / HTTP/1.1\r\n\r\n")
				line, _ := bufio.NewReader(c).ReadString('\n')
				return line
			},
			want:   "pong\n",
			server: true,
		},
		{
			name: "plain HTTP to the TLS port gets the usual answer",
			client: func(t *testing.T, addr string) string {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
				c.SetReadDeadline(time.Now().Add(3 * time.Second))
				b, _ := io.ReadAll(c)
				return string(b)
			},
			want: plainHTTPAnswer,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g Groups
			l := g.Wrap(tls.NewListener(loopback(t), cfg), true, Options{})
			defer l.Close()
			served := make(chan tls.ConnectionState, 1)
			go func() {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				cs, ok := c.(interface{ ConnectionState() tls.ConnectionState })
				if !ok {
					t.Error("a TLS connection does not report its ConnectionState")
					return
				}
				served <- cs.ConnectionState()
				br := bufio.NewReader(c)
				br.ReadString('\n')
				io.WriteString(c, "pong\n")
			}()
			if got := tt.client(t, l.Addr().String()); got != tt.want {
				t.Fatalf("client read %q, want %q", got, tt.want)
			}
			select {
			case cs := <-served:
				if !tt.server {
					t.Fatal("the server got a connection that failed its handshake")
				}
				if !cs.HandshakeComplete || cs.ServerName != "localhost" || cs.NegotiatedProtocol != "http/1.1" {
					t.Fatalf("connection state: complete=%v sni=%q alpn=%q", cs.HandshakeComplete, cs.ServerName, cs.NegotiatedProtocol)
				}
			case <-time.After(100 * time.Millisecond):
				if tt.server {
					t.Fatal("the server got no connection")
				}
			}
		})
	}
}

// TestReadyConnectionGoesToTheNewestListener is the reload case: a connection
// accepted by the old configuration's listener, whose first bytes arrive after
// the new configuration started and the old one closed, is served by the new one.
func TestReadyConnectionGoesToTheNewestListener(t *testing.T) {
	var s Sockets
	var g Groups
	open := func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
	rawOld, err := s.Listen("k", open)
	if err != nil {
		t.Fatal(err)
	}
	old := g.Wrap(rawOld, false, Options{})

	c, err := net.Dial("tcp", old.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(50 * time.Millisecond) // the old listener has accepted it by now

	rawNew, err := s.Listen("k", open)
	if err != nil {
		t.Fatal(err)
	}
	newer := g.Wrap(rawNew, false, Options{})
	defer newer.Close()
	old.Close()
	if _, err := old.Accept(); err == nil {
		t.Fatal("closed listener accepted")
	}

	io.WriteString(c, "GET / HTTP/1.1\r\n\r\n")
	got := acceptOne(newer, 2*time.Second)
	if got == nil {
		t.Fatal("the newest listener did not get the connection")
	}
	got.Close()
}

func TestTLSConnectionsGoOnlyToTLSListeners(t *testing.T) {
	var g Groups
	cfg := testTLSConfig(t)
	raw := loopback(t)
	tlsL := g.Wrap(tls.NewListener(raw, cfg), true, Options{})
	defer tlsL.Close()
	// A newer plain listener for the same address (a config that moved the
	// port from HTTPS to HTTP) must not receive decrypted TLS connections.
	plain := g.Wrap(&fixedAddrListener{Listener: loopback(t), addr: raw.Addr()}, false, Options{})
	defer plain.Close()

	go func() {
		c, err := tls.Dial("tcp", raw.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			io.WriteString(c, "GET / HTTP/1.1\r\n\r\n")
			time.Sleep(time.Second)
			c.Close()
		}
	}()
	got := acceptOne(tlsL, 2*time.Second)
	if got == nil {
		t.Fatal("the TLS listener did not get its TLS connection")
	}
	got.Close()
	if n := g.Members("tcp/" + raw.Addr().String()); n != 2 {
		t.Fatalf("group has %d members, want 2", n)
	}
}

// fixedAddrListener reports another address, to put two sockets in one group.
type fixedAddrListener struct {
	net.Listener
	addr net.Addr
}

func (l *fixedAddrListener) Addr() net.Addr { return l.addr }

func TestLooksLikeHTTP(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"GET /", true}, {"POST ", true}, {"HEAD ", true}, {"OPTIO", true},
		{"\x16\x03\x01\x02\x00", false}, {"PRI *", false}, {"get /", false},
	}
	for _, tt := range tests {
		var h [5]byte
		copy(h[:], tt.in)
		if got := looksLikeHTTP(h); got != tt.want {
			t.Errorf("looksLikeHTTP(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestIdempotentRequest(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"GET / HTTP/1.1\r\n", true},
		{"HEAD /x HTTP/1.1\r\n", true},
		{"PUT /f HTTP/1.1\r\n", true},
		{"DELETE /f HTTP/1.1\r\n", true},
		{"POST /api HTTP/1.1\r\n", false},
		{"PATCH /f HTTP/1.1\r\n", false},
		{"PRI * HTTP/2.0\r\n", false},
		{"GET", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := idempotentRequest([]byte(tt.in)); got != tt.want {
			t.Errorf("idempotentRequest(%q) = %v, want %v", strings.TrimSpace(tt.in), got, tt.want)
		}
	}
}
