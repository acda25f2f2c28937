package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// appSiteHeaders is the line of the app site that imports its edge headers;
// withGeneration adds its header after it.
const appSiteHeaders = "\timport edge max-age=31536000 app_frame_headers\n"

// withGeneration returns the Caddyfile with a header that names the config
// generation on the app host, so every load is a real change. It fails the
// test when the Caddyfile has no such line to add it after.
func withGeneration(t *testing.T, caddyfile string, gen int) string {
	t.Helper()
	if !strings.Contains(caddyfile, appSiteHeaders) {
		t.Fatalf("the app site has no line %q to add the generation header after", appSiteHeaders)
	}
	return strings.Replace(caddyfile, appSiteHeaders,
		fmt.Sprintf("%s\theader X-Config-Generation %d\n", appSiteHeaders, gen), 1)
}

// TestReloadUnderLoad reloads the config through the admin API while clients
// send requests on fresh connections and a WebSocket stays open. The socket
// must survive and the database pool must be re-used; failed requests are
// counted and reported (driving them to zero is the reload hand-over's job).
func TestReloadUnderLoad(t *testing.T) {
	s := startStack(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	ws := s.dialWS(t, ctx, fmt.Sprintf("wss://localhost:%d/ws/agent", s.gw.HTTPSPort), s.appOrigin())
	defer ws.CloseNow()

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				tr := s.gw.Transport() // a fresh connection per request
				req, _ := http.NewRequest(http.MethodGet, s.gw.URL("localhost", "/api/live"), nil)
				resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
				if err == nil && resp.StatusCode == http.StatusOK {
					ok.Add(1)
				} else {
					failed.Add(1)
					if err == nil {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
					firstErr.CompareAndSwap(nil, err.Error())
				}
				if resp != nil {
					resp.Body.Close()
				}
				tr.CloseIdleConnections()
			}
		}()
	}

	const reloads = 5
	for gen := 1; gen <= reloads; gen++ {
		time.Sleep(400 * time.Millisecond)
		if err := s.gw.Load(withGeneration(t, s.gw.Config, gen)); err != nil {
			t.Fatalf("reload %d: %v", gen, err)
		}
		got, err := echoRoundTrip(ctx, ws, fmt.Sprintf("after reload %d", gen))
		if err != nil || got != fmt.Sprintf("backend:after reload %d", gen) {
			t.Fatalf("WebSocket after reload %d: %q, %v", gen, got, err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	resp, _ := s.get(t, s.gw.URL("localhost", "/"), nil)
	if g := resp.Header.Get("X-Config-Generation"); g != fmt.Sprint(reloads) {
		t.Fatalf("the last config is not active: generation %q", g)
	}
	if err := ws.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("closing the WebSocket: %v", err)
	}

	var opened, reused int
	for _, line := range strings.Split(s.gw.Log(), "\n") {
		if !strings.Contains(line, `"msg":"database ready"`) {
			continue
		}
		if strings.Contains(line, `"reused":true`) {
			reused++
		} else {
			opened++
		}
	}
	if opened != 1 || reused != reloads {
		t.Fatalf("database pool opened %d times and re-used %d times over %d reloads; want 1 and %d", opened, reused, reloads, reloads)
	}
	if ok.Load() == 0 {
		t.Fatal("no request succeeded during the reloads")
	}
	t.Logf("reload under load: %d reloads, %d requests ok, %d failed (first failure: %v)", reloads, ok.Load(), failed.Load(), firstErr.Load())
}
