package handoff_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// reloadPause is the pause between the end of one reload and the start of the next.
const reloadPause = 300 * time.Millisecond

// TestReloadLosesNothing runs the real gateway on Caddyfile.dev and reloads it
// 20 times, 0.3 s apart, through the admin API's /load while clients open a fresh
// connection per request over HTTPS (HTTP/1.1 and HTTP/2) and plain HTTP.
// With the handoff modules (as configured) no request may fail, an open
// WebSocket must keep working and the process must hold no more file
// descriptors afterwards. The same run against the stock configuration (the
// handoff lines removed) is reported, not asserted, so the difference stays
// visible in the test log (10 reloads suffice to show it); so are the runs
// with only one of the two pieces.
func TestReloadLosesNothing(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(gatewaytest.RepoRoot(t), "Caddyfile.dev"))
	if err != nil {
		t.Fatal(err)
	}
	ours := string(b)
	stock := withoutHandoff(ours)
	if stock == ours || !strings.Contains(ours, "default_bind handoff/") {
		t.Fatal("Caddyfile.dev does not enable handoff (default_bind handoff/ and listener_wrappers { handoff })")
	}
	if strings.Contains(stock, "handoff/") || regexp.MustCompile(`(?m)^\s*handoff\s*$`).MatchString(stock) {
		t.Fatalf("could not strip handoff from Caddyfile.dev:\n%s", stock)
	}

	for _, v := range []struct {
		name    string
		config  string
		reloads int
		strict  bool
	}{
		{"stock", stock, 10, false},
		// Each half alone, to show what each of the two mechanisms costs.
		{"network only", withoutWrapper(ours), 6, false},
		{"wrapper only", withoutNetwork(ours), 6, false},
		{"handoff", ours, 20, true},
	} {
		t.Run(v.name, func(t *testing.T) {
			r := runReloads(t, v.config, v.reloads)
			t.Logf("%s: fresh connections: %s", v.name, r.fresh.summary())
			t.Logf("%s: keep-alive HTTP/1.1 without retries: %d ok, %d closed before any response, %d broken responses",
				v.name, r.keepAliveOK, r.keepAliveClosed, r.keepAliveBroken)
			t.Logf("%s: keep-alive HTTP/1.1 with Go's retry of idempotent requests: %s", v.name, r.retrying.summary())
			t.Logf("%s: keep-alive HTTP/2: %s", v.name, r.h2KeepAlive.summary())
			t.Logf("%s: file descriptors %d before, %d after %d reloads; /load took %s on average",
				v.name, r.fdBefore, r.fdAfter, v.reloads, r.loadTime/time.Duration(v.reloads))
			if !v.strict {
				return
			}
			if r.fresh.failed.Load() != 0 {
				t.Errorf("%d fresh-connection requests failed during reloads; want 0", r.fresh.failed.Load())
			}
			if r.retrying.failed.Load() != 0 {
				t.Errorf("%d requests failed on a keep-alive client that retries idempotent requests; want 0", r.retrying.failed.Load())
			}
			if r.h2KeepAlive.failed.Load() != 0 {
				t.Errorf("%d requests failed on a keep-alive HTTP/2 client; want 0", r.h2KeepAlive.failed.Load())
			}
			if r.keepAliveBroken != 0 {
				t.Errorf("%d keep-alive responses were cut short; a reload may only close idle connections", r.keepAliveBroken)
			}
			if r.fdAfter > r.fdBefore {
				t.Errorf("file descriptors grew from %d to %d over %d reloads", r.fdBefore, r.fdAfter, v.reloads)
			}
		})
	}
}

// withoutHandoff removes the handoff network and listener wrapper from a Caddyfile.
func withoutHandoff(cfg string) string { return withoutWrapper(withoutNetwork(cfg)) }

// withoutNetwork removes `default_bind handoff/`: every config binds its own sockets.
func withoutNetwork(cfg string) string {
	return regexp.MustCompile(`(?m)^\s*default_bind handoff/\s*\n`).ReplaceAllString(cfg, "")
}

// withoutWrapper removes the handoff listener wrapper (and what is left empty).
func withoutWrapper(cfg string) string {
	cfg = regexp.MustCompile(`(?m)^\s*handoff\s*\n`).ReplaceAllString(cfg, "")
	cfg = regexp.MustCompile(`listener_wrappers\s*\{\s*\}\s*`).ReplaceAllString(cfg, "")
	return regexp.MustCompile(`servers\s*\{\s*\}\s*`).ReplaceAllString(cfg, "")
}

// counts tallies a client's requests.
type counts struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	samples    []string
}

func (c *counts) add(err error) {
	if err == nil {
		c.ok.Add(1)
		return
	}
	c.failed.Add(1)
	c.mu.Lock()
	if len(c.samples) < 5 {
		c.samples = append(c.samples, err.Error())
	}
	c.mu.Unlock()
}

func (c *counts) summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("%d ok, %d failed %q", c.ok.Load(), c.failed.Load(), c.samples)
}

type reloadResult struct {
	fresh, retrying, h2KeepAlive                  counts
	keepAliveOK, keepAliveClosed, keepAliveBroken int64
	fdBefore, fdAfter                             int
	loadTime                                      time.Duration // spent in /load
}

func runReloads(t *testing.T, config string, reloads int) *reloadResult {
	backend := gatewaytest.NewUpstream(t, "backend")
	frontend := gatewaytest.NewUpstream(t, "frontend")
	ide := gatewaytest.NewUpstream(t, "code-server")
	g := gatewaytest.Start(t, gatewaytest.Options{Caddyfile: config, Env: map[string]string{
		"BACKEND_UPSTREAM":     backend.Addr(),
		"FRONTEND_UPSTREAM":    frontend.Addr(),
		"CODE_SERVER_UPSTREAM": ide.Addr(),
		"SECRET_KEY":           gatewaytest.TestSecret,
		"CLAUDE_DATABASE":      testenv.SQLiteDatabase(t),
	}})
	r := &reloadResult{}

	// A WebSocket through the gateway to the backend, open across every reload.
	ws := dialWebSocket(t, g)
	defer ws.CloseNow()
	echo(t, ws, "before")

	r.fdBefore = settledFDs(t, g, 0)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	run := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					f()
					// Paced, so that the clients leave the CPU to the gateway.
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	h1 := freshClient(g, false)
	h2 := freshClient(g, true)
	live := g.URL("localhost", "/api/live")
	redirect := g.HTTPURL("localhost", "/api/live")
	for i := 0; i < 2; i++ {
		run(func() { r.fresh.add(get(h1, live, http.StatusOK, "HTTP/1.1")) })
		run(func() { r.fresh.add(get(h2, live, http.StatusOK, "HTTP/2.0")) })
		run(func() { r.fresh.add(get(h1, redirect, http.StatusPermanentRedirect, "HTTP/1.1")) })
	}
	// Keep-alive: Go's transport, which retries an idempotent request once
	// when a reused connection closes before any response.
	retrying := g.Client()
	retrying.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	run(func() { r.retrying.add(get(retrying, live, http.StatusOK, "HTTP/1.1")) })
	// Keep-alive HTTP/2: a reload ends the old connections with GOAWAY.
	h2KeepAlive := g.Client()
	run(func() { r.h2KeepAlive.add(get(h2KeepAlive, live, http.StatusOK, "HTTP/2.0")) })
	// Keep-alive without any retry, to measure what a naive client sees.
	var kaOK, kaClosed, kaBroken atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		keepAliveLoop(g, stop, &kaOK, &kaClosed, &kaBroken)
	}()

	time.Sleep(300 * time.Millisecond)
	for i := 0; i < reloads; i++ {
		time.Sleep(reloadPause)
		gen := fmt.Sprintf("gen-%d", i+1)
		began := time.Now()
		err := g.Load(config + generationSite(gen))
		r.loadTime += time.Since(began)
		if err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("reload %d: %v", i+1, err)
		}
		// The new config is the one answering.
		resp, err := g.Client().Get(g.HTTPURL(gen+".localhost", "/"))
		if err != nil {
			r.fresh.add(err)
		} else {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != gen {
				t.Errorf("after reload %d the gateway answers %q, want %q", i+1, body, gen)
			}
		}
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	r.keepAliveOK, r.keepAliveClosed, r.keepAliveBroken = kaOK.Load(), kaClosed.Load(), kaBroken.Load()

	echo(t, ws, fmt.Sprintf("after %d reloads", reloads))
	for _, c := range []*http.Client{h1, h2, retrying, h2KeepAlive} {
		c.CloseIdleConnections()
	}
	r.fdAfter = settledFDs(t, g, r.fdBefore)
	return r
}

// generationSite is a site block that makes each reload a real config change
// and tells which config answers.
func generationSite(gen string) string {
	return fmt.Sprintf("\nhttp://%s.localhost:{$CLAUDE_HTTP_PORT:8088} {\n\trespond %q\n}\n", gen, gen)
}

// freshClient opens a new connection for every request, over HTTP/2 or HTTP/1.1.
func freshClient(g *gatewaytest.Gateway, h2 bool) *http.Client {
	c := g.Client()
	c.Timeout = 15 * time.Second
	tr := c.Transport.(*http.Transport)
	tr.DisableKeepAlives = true
	if !h2 {
		tr.ForceAttemptHTTP2 = false
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	return c
}

// get fetches url and checks the status and, for HTTPS, the protocol.
func get(c *http.Client, url string, status int, proto string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	if resp.StatusCode != status {
		return fmt.Errorf("status %d, want %d", resp.StatusCode, status)
	}
	if strings.HasPrefix(url, "https:") && resp.Proto != proto {
		return fmt.Errorf("protocol %s, want %s", resp.Proto, proto)
	}
	return nil
}

// keepAliveLoop sends requests one after another on one HTTP/1.1 connection,
// reconnecting when it closes, and never retries: a request whose connection
// closes before any response byte counts as closed, one whose response is cut
// short as broken.
func keepAliveLoop(g *gatewaytest.Gateway, stop <-chan struct{}, ok, closed, broken *atomic.Int64) {
	cfg := &tls.Config{RootCAs: g.RootCAs(), ServerName: "localhost", NextProtos: []string{"http/1.1"}}
	addr := fmt.Sprintf("127.0.0.1:%d", g.HTTPSPort)
	var conn net.Conn
	var br *bufio.Reader
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for {
		select {
		case <-stop:
			return
		default:
		}
		time.Sleep(5 * time.Millisecond)
		if conn == nil {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
			if err != nil {
				closed.Add(1)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			conn, br = c, bufio.NewReader(c)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, err := io.WriteString(conn, "GET /api/live HTTP/1.1\r\nHost: localhost\r\n\r\n")
		if err == nil {
			_, err = br.Peek(1)
			if err != nil {
				closed.Add(1)
				conn.Close()
				conn = nil
				continue
			}
			var resp *http.Response
			resp, err = http.ReadResponse(br, nil)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode == http.StatusOK {
					ok.Add(1)
					if resp.Close {
						conn.Close()
						conn = nil
					}
					continue
				}
			}
			broken.Add(1)
		} else {
			closed.Add(1)
		}
		conn.Close()
		conn = nil
	}
}

// dialWebSocket opens a WebSocket to the backend through the app host.
func dialWebSocket(t *testing.T, g *gatewaytest.Gateway) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	token := gatewaytest.AccessToken(t, gatewaytest.TestSecret, "1", "admin", "admin", time.Hour)
	h := http.Header{
		"Authorization": {"Bearer " + token},
		"Origin":        {fmt.Sprintf("https://localhost:%d", g.HTTPSPort)},
	}
	c, _, err := websocket.Dial(ctx, g.URL("localhost", "/ws/echo"), &websocket.DialOptions{HTTPClient: g.Client(), HTTPHeader: h})
	if err != nil {
		t.Fatalf("websocket through the gateway: %v", err)
	}
	return c
}

// echo sends msg on the WebSocket and expects the backend's echo.
func echo(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("websocket write %q: %v", msg, err)
	}
	_, got, err := c.Read(ctx)
	if err != nil || string(got) != "backend:"+msg {
		t.Fatalf("websocket echo of %q: %q, %v", msg, got, err)
	}
}

// settledFDs counts the gateway's open file descriptors once the count stops
// falling (closing connections takes a moment); with a positive limit it
// returns as soon as the count is at or below it.
func settledFDs(t *testing.T, g *gatewaytest.Gateway, limit int) int {
	t.Helper()
	count := func() int {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", g.Pid()))
		if err != nil {
			if _, serr := os.Stat("/proc/self/fd"); serr != nil {
				testenv.Missing(t, "/proc (to count the gateway's file descriptors)", serr)
			}
			// /proc is there but the gateway's entry is not: it died.
			t.Fatalf("counting the gateway's file descriptors: %v", err)
		}
		return len(ents)
	}
	n := count()
	for deadline := time.Now().Add(8 * time.Second); time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
		m := count()
		if limit > 0 && m <= limit {
			return m
		}
		if limit == 0 && m == n {
			return m
		}
		n = m
	}
	return n
}
