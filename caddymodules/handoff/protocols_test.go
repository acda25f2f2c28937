package handoff_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
)

// protocolsConfig serves its TLS connection's details through Caddy's TLS
// placeholders, on the handoff network behind the handoff listener wrapper.
const protocolsConfig = `{
	admin {$CLAUDE_ADMIN}
	auto_https disable_redirects
	local_certs
	skip_install_trust
	storage file_system ./data/caddy
	default_bind handoff/
	servers {
		listener_wrappers {
			handoff {
				timeout 30s
			}
		}
	}
}

https://localhost:{$CLAUDE_HTTPS_PORT} {
	respond /api/live "live"
	respond "{http.request.proto} alpn={http.request.tls.proto} sni={http.request.tls.server_name} tls={http.request.tls.version}"
}

http://localhost:{$CLAUDE_HTTP_PORT} {
	respond "plain {http.request.proto}"
}
`

// TestProtocolsThroughHandoff checks that everything Caddy serves still works
// behind the handoff network and listener wrapper, before and after reloads:
// HTTP/1.1 and HTTP/2 with the TLS placeholders filled in, HTTP/3, plain HTTP,
// the answer to plain HTTP on the HTTPS port, and a port below 1024 when this
// process may bind one.
func TestProtocolsThroughHandoff(t *testing.T) {
	env := map[string]string{}
	if p, ok := privilegedPort(t); ok {
		env["CLAUDE_HTTP_PORT"] = strconv.Itoa(p)
	}
	g := gatewaytest.Start(t, gatewaytest.Options{Caddyfile: protocolsConfig, Env: env})

	check := func(t *testing.T) {
		h1 := freshClient(g, false)
		h2 := freshClient(g, true)
		tests := []struct {
			name   string
			client *http.Client
			url    string
			want   string
		}{
			{"HTTP/1.1 with TLS placeholders", h1, g.URL("localhost", "/"), "HTTP/1.1 alpn=http/1.1 sni=localhost tls=tls1.3"},
			{"HTTP/2 with TLS placeholders", h2, g.URL("localhost", "/"), "HTTP/2.0 alpn=h2 sni=localhost tls=tls1.3"},
			{"HTTP/3", h3Client(t, g), g.URL("localhost", "/"), "HTTP/3.0 alpn=h3 sni=localhost tls=tls1.3"},
			{fmt.Sprintf("plain HTTP on port %d", g.HTTPPort), h1, g.HTTPURL("localhost", "/"), "plain HTTP/1.1"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, err := tt.client.Get(tt.url)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK || string(b) != tt.want {
					t.Fatalf("%d %q, want 200 %q", resp.StatusCode, b, tt.want)
				}
			})
		}
		t.Run("plain HTTP on the HTTPS port", func(t *testing.T) {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", g.HTTPSPort), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
			b, _ := io.ReadAll(c)
			if !strings.HasPrefix(string(b), "HTTP/1.0 400 Bad Request") || !strings.Contains(string(b), "Client sent an HTTP request to an HTTPS server") {
				t.Fatalf("got %q, want net/http's 400 answer", b)
			}
		})
	}
	t.Run("after start", check)
	for i := 1; i <= 3; i++ {
		if err := g.Load(protocolsConfig + generationSite(fmt.Sprintf("gen-%d", i))); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	t.Run("after 3 reloads", check)
}

// h3Client speaks HTTP/3 only, trusting the gateway's CA and dialing loopback.
func h3Client(t *testing.T, g *gatewaytest.Gateway) *http.Client {
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: g.RootCAs()}}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

// privilegedPort returns a free TCP and UDP port below 1024 when this process
// may bind one (root, CAP_NET_BIND_SERVICE or a low
// net.ipv4.ip_unprivileged_port_start); otherwise the test says so and
// carries on with ordinary ports.
func privilegedPort(t *testing.T) (int, bool) {
	for p := 1023; p > 900; p-- {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if errors.Is(err, syscall.EACCES) {
			t.Log("this process may not bind ports below 1024: checking ordinary ports only")
			return 0, false
		}
		if err != nil {
			continue
		}
		ln.Close()
		return p, true
	}
	t.Log("no free port below 1024: checking ordinary ports only")
	return 0, false
}
