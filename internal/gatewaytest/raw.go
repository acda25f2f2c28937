package gatewaytest

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Raw sends one HTTP/1.1 request to host over a new TLS connection with its
// request target written exactly as given: unlike net/http's client, nothing
// cleans or re-escapes it ("/x/../y", "//y", "/a;b" reach the gateway as
// written). The Host header is host with the HTTPS port; header adds the
// others, in order of the map (a "Connection: close" unless header sets
// Connection). It returns the response and its body (none for 101).
func (g *Gateway) Raw(t testing.TB, host, method, target string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp",
		fmt.Sprintf("127.0.0.1:%d", g.HTTPSPort),
		&tls.Config{ServerName: host, RootCAs: g.RootCAs(), NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatalf("raw %s %s: %v", method, target, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s:%d\r\n", method, target, host, g.HTTPSPort)
	for k, vs := range header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	if header.Get("Connection") == "" {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatalf("raw %s %s: %v", method, target, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("raw %s %s: reading the response: %v", method, target, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp, nil
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("raw %s %s: reading the body: %v", method, target, err)
	}
	return resp, body
}
