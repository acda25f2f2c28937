package handoff

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// BenchmarkKeepAliveRequest measures one HTTP/1.1 request over a kept-alive
// TLS connection to a real net/http server, on crypto/tls's listener as is
// ("stock") and behind a Groups listener ("handoff"): the steady-state cost of
// the wrapper outside reloads. Compare with -count 6 and the medians.
func BenchmarkKeepAliveRequest(b *testing.B) {
	for _, mode := range []string{"stock", "handoff"} {
		b.Run(mode, func(b *testing.B) { benchmarkServer(b, mode == "handoff", false) })
	}
}

// BenchmarkNewConnectionRequest is BenchmarkKeepAliveRequest with a new TCP
// and TLS connection per request, which the wrapper readies and hands over.
func BenchmarkNewConnectionRequest(b *testing.B) {
	for _, mode := range []string{"stock", "handoff"} {
		b.Run(mode, func(b *testing.B) { benchmarkServer(b, mode == "handoff", true) })
	}
}

func benchmarkServer(b *testing.B, wrap, fresh bool) {
	cfg := testTLSConfig(b)
	cfg.NextProtos = []string{"http/1.1"}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var ln net.Listener = tls.NewListener(raw, cfg)
	if wrap {
		var g Groups
		ln = g.Wrap(ln, true, Options{})
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}},
		DisableKeepAlives: fresh,
		TLSNextProto:      map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := "https://" + raw.Addr().String() + "/"
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU(b)
	for i := 0; i < b.N; i++ {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.StopTimer()
	// CPU time (client and server, this process) suffers far less than wall
	// time from other load on a shared machine.
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
}

// processCPU is the user plus system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkConnReadWrite measures what the wrapper adds to each Read and
// Write of a served connection, on a connection that costs nothing itself.
func BenchmarkConnReadWrite(b *testing.B) {
	for _, mode := range []string{"raw", "handoff"} {
		b.Run(mode, func(b *testing.B) {
			var c net.Conn = freeConn{}
			if mode == "handoff" {
				c = newConn(freeConn{}, []byte("GET / HTTP/1.1\r\n\r\n"), true, nil, "k").ready(nil)
			}
			buf := make([]byte, 512)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.Read(buf)
				c.Write(buf)
			}
		})
	}
}

// freeConn reads and writes instantly.
type freeConn struct{ net.Conn }

func (freeConn) Read(p []byte) (int, error)  { return len(p), nil }
func (freeConn) Write(p []byte) (int, error) { return len(p), nil }
