package clauderatelimit_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
)

// caddyfile is a gateway config for the tests: the app host on
// CLAUDE_HTTPS_PORT serves the probes, then the given claude_rate_limit
// block, then proxies everything to UPSTREAM. extraGlobal and extraSites are
// inserted verbatim.
func caddyfile(limit, extraGlobal, extraSites string) string {
	return fmt.Sprintf(`{
	admin {$CLAUDE_ADMIN}
	local_certs
	skip_install_trust
	storage file_system ./data/caddy
	metrics
	claude {
		database {$CLAUDE_DATABASE}
	}
%s
}

(limited) {
	route {
		claude_health
%s
		reverse_proxy {$UPSTREAM}
	}
	handle_errors {
		claude_error
	}
}

https://localhost:{$CLAUDE_HTTPS_PORT} {
	import limited
}
%s`, extraGlobal, limit, extraSites)
}

// zone is one zone block of a claude_rate_limit directive.
func zone(name, rate, store, extra string) string {
	return fmt.Sprintf(`			zone %s {
				rate %s
				store %s
%s
			}
`, name, rate, store, extra)
}

// limiter wraps zones into a claude_rate_limit directive. Its store timeout
// is generous, so that a hit slowed down by a loaded machine is counted
// rather than let through as a store failure.
func limiter(zones ...string) string {
	return limiterWithTimeout("10s", zones...)
}

// limiterWithTimeout is limiter with the given store_timeout. Its Redis
// zones use the server of REDIS_URL.
func limiterWithTimeout(timeout string, zones ...string) string {
	return "\t\tclaude_rate_limit {\n\t\t\tstore_timeout " + timeout + "\n\t\t\tredis_url {$REDIS_URL:redis://127.0.0.1:1/0}\n" +
		strings.Join(zones, "") + "\t\t}"
}

// start runs a gateway on cfg with database, proxying to a fresh upstream.
func start(t *testing.T, cfg, database string, env map[string]string) (*gatewaytest.Gateway, *gatewaytest.Upstream) {
	t.Helper()
	up := gatewaytest.NewUpstream(t, "backend")
	e := map[string]string{"UPSTREAM": up.Addr(), "CLAUDE_DATABASE": database}
	for k, v := range env {
		e[k] = v
	}
	return gatewaytest.Start(t, gatewaytest.Options{Caddyfile: cfg, Env: e}), up
}

// answer is what the tests read from a response.
type answer struct {
	Status     int
	Header     http.Header
	Body       string
	ErrCode    string
	Upstream   string
	ClientSent http.Header
}

func do(t testing.TB, c *http.Client, method, url string, hdr map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
	var env struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
		Upstream string `json:"upstream"`
	}
	if json.Unmarshal(b, &env) == nil {
		a.ErrCode, a.Upstream = env.Error.Code, env.Upstream
	}
	return a
}

func get(t testing.TB, g *gatewaytest.Gateway, path string, hdr map[string]string) answer {
	t.Helper()
	return do(t, g.Client(), http.MethodGet, g.URL("localhost", path), hdr)
}

// headerInt reads an integer header, failing the test when it is missing.
func headerInt(t testing.TB, h http.Header, name string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(h.Get(name), 10, 64)
	if err != nil {
		t.Fatalf("header %s = %q: %v", name, h.Get(name), err)
	}
	return v
}

// checkAllowed asserts a proxied answer with the limit headers.
func checkAllowed(t testing.TB, a answer, limit, remaining int64) {
	t.Helper()
	if a.Status != http.StatusOK || a.Upstream != "backend" {
		t.Fatalf("want 200 from the upstream, got %d %q", a.Status, a.Body)
	}
	if got := headerInt(t, a.Header, "X-RateLimit-Limit"); got != limit {
		t.Fatalf("X-RateLimit-Limit = %d, want %d", got, limit)
	}
	if got := headerInt(t, a.Header, "X-RateLimit-Remaining"); got != remaining {
		t.Fatalf("X-RateLimit-Remaining = %d, want %d", got, remaining)
	}
	reset := headerInt(t, a.Header, "X-RateLimit-Reset")
	if now := time.Now().Unix(); reset < now-1 || reset > now+3600 {
		t.Fatalf("X-RateLimit-Reset = %d, not a time in the coming window (now %d)", reset, now)
	}
}

// checkRefused asserts a 429 with the envelope and headers, not proxied.
func checkRefused(t testing.TB, a answer, limit int64) {
	t.Helper()
	if a.Status != http.StatusTooManyRequests || a.ErrCode != "rate_limited" || a.Upstream != "" {
		t.Fatalf("want 429 rate_limited from the gateway, got %d %q", a.Status, a.Body)
	}
	if ct := a.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q", ct)
	}
	if got := headerInt(t, a.Header, "X-RateLimit-Limit"); got != limit {
		t.Fatalf("X-RateLimit-Limit = %d, want %d", got, limit)
	}
	if got := headerInt(t, a.Header, "X-RateLimit-Remaining"); got != 0 {
		t.Fatalf("X-RateLimit-Remaining = %d on a refusal", got)
	}
	if ra := headerInt(t, a.Header, "Retry-After"); ra < 1 || ra > 3601 {
		t.Fatalf("Retry-After = %d", ra)
	}
}

// burst sends n concurrent GETs and counts the answers by status.
func burst(t *testing.T, clients []*http.Client, urls []string, n int, hdr map[string]string) map[int]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	ready := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ready
			req, _ := http.NewRequest(http.MethodGet, urls[i%len(urls)], nil)
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			status := 0
			resp, err := clients[i%len(clients)].Do(req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
			} else {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				status = resp.StatusCode
			}
			mu.Lock()
			counts[status]++
			mu.Unlock()
		}()
	}
	close(ready)
	wg.Wait()
	return counts
}

// metric returns the value of the refused-requests counter of zone, read
// from the admin API's /metrics.
func metric(t testing.TB, g *gatewaytest.Gateway, name, zone string) string {
	t.Helper()
	resp, err := http.Get("http://" + g.AdminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	prefix := name + `{zone="` + zone + `"} `
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimPrefix(line, prefix)
		}
	}
	return ""
}
