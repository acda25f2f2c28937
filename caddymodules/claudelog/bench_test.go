package claudelog_test

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/claude-gateway/claude-gateway/caddymodules/claudelog"
	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
)

// logFormats are the access log formats compared against no log: Caddy's
// JSON encoder, the filter snippet both Caddyfiles used before claudelog,
// and claudelog.
var logFormats = []struct{ name, format string }{
	{"json", "format json"},
	{"filter", `format filter {
			wrap json
			request>uri query {
				delete access_token
				delete token
				delete ticket
				delete password
			}
			request>headers>Referer delete
			resp_headers>Location regexp ticket=[^&]+ ticket=REDACTED
		}`},
	{"claudelog", "format claudelog"},
}

// BenchmarkAccessLogOverhead runs Caddy in this process with two plain-HTTP
// sites in front of one loopback upstream, identical but for the access log
// (written to a file), and sends the same API request with a bearer token
// and cookies through each in alternating chunks (gatewaytest.CompareRoutes).
// <format>-cost-% is the share of the request rate, in CPU time, that the
// log costs.
func BenchmarkAccessLogOverhead(b *testing.B) {
	up := gatewaytest.BenchUpstream(b)
	for _, lf := range logFormats {
		b.Run(lf.name, func(b *testing.B) {
			dir := b.TempDir()
			plainPort, loggedPort := gatewaytest.FreePort(b), gatewaytest.FreePort(b)
			gatewaytest.LoadCaddyfile(b, fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %[1]s/caddy
	log {
		output discard
	}
}
http://127.0.0.1:%[2]d {
	reverse_proxy %[4]s
}
http://127.0.0.1:%[3]d {
	log {
		output file %[5]s
		%[6]s
	}
	reverse_proxy %[4]s
}
`, dir, plainPort, loggedPort, up, filepath.Join(dir, "access.log"), lf.format))
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
			get := func(port int) {
				req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/api/sessions/session-1/files/src/main.py?download=1", port), nil)
				req.Header.Set("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LTEifQ.c2lnbmF0dXJl")
				req.Header.Set("Cookie", "__Host-claude_access=x; theme=dark")
				req.Header.Set("Accept", "application/json")
				req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) bench")
				resp, err := c.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			for range 50 {
				get(plainPort)
				get(loggedPort)
			}
			gatewaytest.CompareRoutes(b, [2]string{"nolog", lf.name}, [2]func(){
				func() { get(plainPort) },
				func() { get(loggedPort) },
			})
		})
	}
}
