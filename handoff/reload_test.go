package handoff

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHTTPServerSwapsLoseNoRequest runs real net/http servers over TLS on one
// shared socket and replaces the running server 40 times, starting the new one
// and then shutting the old one down as a config reload does, while clients
// open a fresh connection per request. No request may fail.
func TestHTTPServerSwapsLoseNoRequest(t *testing.T) {
	var s Sockets
	var g Groups
	cfg := testTLSConfig(t)
	cfg.NextProtos = []string{"http/1.1"}
	first, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := first.Addr().String()
	open := func() (net.Listener, error) { return first, nil }
	start := func(gen int) *http.Server {
		raw, err := s.Listen("k", open)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "ok")
			}),
			ErrorLog: nil,
		}
		go srv.Serve(g.Wrap(tls.NewListener(raw, cfg), true, Options{}))
		return srv
	}
	cur := start(0)

	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		},
	}
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get("https://" + addr + "/")
				if err == nil {
					b, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					if rerr != nil || string(b) != "ok" {
						err = rerr
						if err == nil {
							err = io.ErrUnexpectedEOF
						}
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	var shutdowns sync.WaitGroup
	for gen := 1; gen <= 40; gen++ {
		time.Sleep(15 * time.Millisecond)
		next := start(gen)
		old := cur
		shutdowns.Add(1)
		go func() {
			defer shutdowns.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			old.Shutdown(ctx)
		}()
		cur = next
	}
	close(stop)
	wg.Wait()
	shutdowns.Wait()
	cur.Close()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("%d requests failed (first: %v), %d succeeded across 40 server swaps", failed.Load(), firstErr.Load(), ok.Load())
	}
	if n := s.Open(); n != 0 {
		t.Fatalf("%d shared sockets still open after the last server closed", n)
	}
	t.Logf("%d requests over fresh TLS connections, none failed, across 40 server swaps", ok.Load())
}
