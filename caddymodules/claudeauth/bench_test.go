package claudeauth_test

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/claude-gateway/claude-gateway/caddymodules/claude"
	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
)

// startBenchCaddy runs Caddy in this process with two plain-HTTP sites in
// front of one loopback upstream, identical but for claude_auth, so the
// difference between them is the token check alone (TLS would dilute it).
func startBenchCaddy(b *testing.B) (plainURL, authURL string) {
	b.Helper()
	up := gatewaytest.BenchUpstream(b)
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
`, filepath.ToSlash(dir), plainPort, authPort, up)
	gatewaytest.LoadCaddyfile(b, cfg)
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
// through the route without claude_auth and the route with it, in
// alternating chunks (and alternating which route goes first), so that a
// change of machine load hits both alike. Besides wall-clock requests/s it
// measures the process's CPU time per request (client, Caddy and upstream all
// run in this process), which other processes' load disturbs far less (see
// gatewaytest.CompareRoutes). auth-cost-% is the share of the rate the token
// check costs, from CPU time.
func BenchmarkAuthOverhead(b *testing.B) {
	plainURL, authURL := startBenchCaddy(b)
	token := gatewaytest.AccessToken(b, gatewaytest.TestSecret, "bench-user", "bench", "user", time.Hour)
	c := benchClient()
	for range 50 { // warm both connection pools and the caches
		get(b, c, plainURL, token)
		get(b, c, authURL, token)
	}
	gatewaytest.CompareRoutes(b, [2]string{"plain", "auth"}, [2]func(){
		func() { get(b, c, plainURL, token) },
		func() { get(b, c, authURL, token) },
	})
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
