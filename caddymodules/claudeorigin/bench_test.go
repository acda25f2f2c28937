package claudeorigin_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/claude-gateway/claude-gateway/caddymodules/claudeorigin"
	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
)

// startBenchCaddy runs Caddy in this process with two plain-HTTP sites in
// front of one loopback upstream, identical but for claude_origin.
func startBenchCaddy(b *testing.B) (plainURL, originURL string) {
	b.Helper()
	up := gatewaytest.BenchUpstream(b)
	plainPort, originPort := gatewaytest.FreePort(b), gatewaytest.FreePort(b)
	cfg := fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %[1]s/caddy
	log {
		output discard
	}
}
http://127.0.0.1:%[2]d {
	route {
		reverse_proxy %[4]s
	}
}
http://127.0.0.1:%[3]d {
	route {
		claude_origin https://app.example.test {
			allowed_origins https://admin.example.test,https://partner.example.test
		}
		reverse_proxy %[4]s
	}
}
`, b.TempDir(), plainPort, originPort, up)
	gatewaytest.LoadCaddyfile(b, cfg)
	return fmt.Sprintf("http://127.0.0.1:%d/api/things", plainPort), fmt.Sprintf("http://127.0.0.1:%d/api/things", originPort)
}

// post sends what claude_origin checks most: a cookie-authenticated POST
// from a listed origin (CSRF check, CORS headers, the response wrapper).
func post(b *testing.B, c *http.Client, url string) {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{}`))
	req.Header.Set("Origin", "https://partner.example.test")
	req.Header.Set("Cookie", authCookie+"=x; theme=dark")
	req.Header.Set("Content-Type", "application/json")
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

// BenchmarkOriginOverhead sends the same request through the route without
// claude_origin and the route with it, in alternating chunks, and reports
// both rates and the share of CPU time per request the origin checks cost
// (origin-cost-%; client, Caddy and upstream all run in this process; see
// gatewaytest.CompareRoutes).
func BenchmarkOriginOverhead(b *testing.B) {
	plainURL, originURL := startBenchCaddy(b)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	for range 50 {
		post(b, c, plainURL)
		post(b, c, originURL)
	}
	gatewaytest.CompareRoutes(b, [2]string{"plain", "origin"}, [2]func(){
		func() { post(b, c, plainURL) },
		func() { post(b, c, originURL) },
	})
}
