package claudeauth_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/claude-gateway/claude-gateway/caddymodules/claude"
	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
)

// startBenchCaddy runs Caddy in this process with two plain-HTTP sites in
// front of one loopback upstream, identical but for claude_auth, so the
// difference between them is the token check alone (TLS would dilute it).
func startBenchCaddy(b *testing.B) (plainURL, authURL string) {
	b.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	}))
	b.Cleanup(up.Close)
	dir := b.TempDir()
	b.Setenv("SECRET_KEY", gatewaytest.TestSecret)
	b.Setenv("CLAUDE_ADMIN_PASSWORD", "bench-admin-password")
	plainPort, authPort := gatewaytest.FreePort(b), gatewaytest.FreePort(b)
	cfg := fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %[1]s/caddy
	log {
		output discard
	}
	claude {
		database sqlite:%[1]s/gateway.db
	}
}
http://127.0.0.1:%[2]d {
	route {
		claude_auth_api
		reverse_proxy %[4]s
	}
}
http://127.0.0.1:%[3]d {
	route {
		claude_auth_api
		claude_auth
		reverse_proxy %[4]s
	}
}
`, filepath.ToSlash(dir), plainPort, authPort, up.Listener.Addr())
	adapter := caddyconfig.GetAdapter("caddyfile")
	js, warn, err := adapter.Adapt([]byte(cfg), nil)
	if err != nil {
		b.Fatalf("adapting: %v %v", err, warn)
	}
	if err := caddy.Load(js, true); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { caddy.Stop() })
	return fmt.Sprintf("http://127.0.0.1:%d/bench", plainPort), fmt.Sprintf("http://127.0.0.1:%d/bench", authPort)
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}, Timeout: 10 * time.Second}
}

func get(b *testing.B, c *http.Client, url, token string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Errorf("%s: %d", url, resp.StatusCode)
	}
}

// BenchmarkAuthOverhead sends the same request (with a valid Bearer token)
// through the route without claude_auth and the route with it, alternating
// request by request so that a change of machine load hits both alike, and
// alternating which goes first. It
// reports each route's requests/s (at the benchmark's parallelism) and the
// share of the rate the token check costs: auth-cost-%.
func BenchmarkAuthOverhead(b *testing.B) {
	plainURL, authURL := startBenchCaddy(b)
	token := gatewaytest.AccessToken(b, gatewaytest.TestSecret, "bench-user", "bench", "user", time.Hour)
	c := benchClient()
	get(b, c, plainURL, token)
	get(b, c, authURL, token)
	var plainNs, authNs atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var p, a time.Duration
		authFirst := false
		for pb.Next() {
			// Alternate which route goes first, so neither always finds the
			// connection pool or the scheduler in the other's wake.
			first, second := plainURL, authURL
			if authFirst {
				first, second = authURL, plainURL
			}
			t0 := time.Now()
			get(b, c, first, token)
			t1 := time.Now()
			get(b, c, second, token)
			t2 := time.Now()
			if authFirst {
				a, p = a+t1.Sub(t0), p+t2.Sub(t1)
			} else {
				p, a = p+t1.Sub(t0), a+t2.Sub(t1)
			}
			authFirst = !authFirst
		}
		plainNs.Add(int64(p))
		authNs.Add(int64(a))
	})
	b.StopTimer()
	// In a closed loop with the same concurrency, the rate is inversely
	// proportional to the latency.
	par := float64(b.N) / b.Elapsed().Seconds() // both requests of a pair per "op"
	plainLat := float64(plainNs.Load()) / float64(b.N)
	authLat := float64(authNs.Load()) / float64(b.N)
	total := plainLat + authLat
	b.ReportMetric(par*total/plainLat, "plain-req/s")
	b.ReportMetric(par*total/authLat, "auth-req/s")
	b.ReportMetric(100*(1-plainLat/authLat), "auth-cost-%")
}

// BenchmarkRoute measures each route alone, for absolute requests/s.
func BenchmarkRoute(b *testing.B) {
	plainURL, authURL := startBenchCaddy(b)
	token := gatewaytest.AccessToken(b, gatewaytest.TestSecret, "bench-user", "bench", "user", time.Hour)
	for _, r := range []struct{ name, url string }{{"plain", plainURL}, {"claude_auth", authURL}} {
		b.Run(r.name, func(b *testing.B) {
			c := benchClient()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					get(b, c, r.url, token)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}
