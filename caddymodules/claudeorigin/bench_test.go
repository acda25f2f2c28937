package claudeorigin_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/claude-gateway/claude-gateway/caddymodules/claudeorigin"
	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
)

// startBenchCaddy runs Caddy in this process with two plain-HTTP sites in
// front of one loopback upstream, identical but for claude_origin.
func startBenchCaddy(b *testing.B) (plainURL, originURL string) {
	b.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	}))
	b.Cleanup(up.Close)
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
`, b.TempDir(), plainPort, originPort, up.Listener.Addr())
	js, warn, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), nil)
	if err != nil {
		b.Fatalf("adapting: %v %v", err, warn)
	}
	if err := caddy.Load(js, true); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { caddy.Stop() })
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

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkOriginOverhead sends the same request through the route without
// claude_origin and the route with it, in alternating chunks, and reports
// both rates and the share of CPU time per request the origin checks cost
// (origin-cost-%; client, Caddy and upstream all run in this process).
func BenchmarkOriginOverhead(b *testing.B) {
	plainURL, originURL := startBenchCaddy(b)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	urls := [2]string{plainURL, originURL}
	for range 50 {
		post(b, c, plainURL)
		post(b, c, originURL)
	}
	const chunk = 50
	var wall, cpu [2]time.Duration
	b.ResetTimer()
	for done, round := 0, 0; done < b.N; round++ {
		n := min(chunk, b.N-done)
		order := [2]int{0, 1}
		if round%2 == 1 {
			order = [2]int{1, 0}
		}
		for _, i := range order {
			c0, w0 := cpuTime(b), time.Now()
			for range n {
				post(b, c, urls[i])
			}
			wall[i] += time.Since(w0)
			cpu[i] += cpuTime(b) - c0
		}
		done += n
	}
	b.StopTimer()
	perReq := func(d time.Duration) float64 { return float64(d) / float64(b.N) }
	b.ReportMetric(1e9/perReq(wall[0]), "plain-req/s")
	b.ReportMetric(1e9/perReq(wall[1]), "origin-req/s")
	b.ReportMetric(100*(1-perReq(cpu[0])/perReq(cpu[1])), "origin-cost-%")
}
