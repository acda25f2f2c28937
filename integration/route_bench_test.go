package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/claude-gateway/claude-gateway"
	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
)

// appOrigin is the app origin Caddyfile.dev gives claude_origin by default.
const appOrigin = "https://localhost:8443"

// appRoute is the app site's route block of Caddyfile.dev, as written: the
// lines from its "route {" to the brace that closes it.
func appRoute(b *testing.B) string {
	b.Helper()
	src, err := os.ReadFile(filepath.Join(gatewaytest.RepoRoot(b), "Caddyfile.dev"))
	if err != nil {
		b.Fatal(err)
	}
	var out []string
	inSite, depth := false, 0
	for _, line := range strings.Split(string(src), "\n") {
		t := strings.TrimSpace(line)
		switch {
		case !inSite:
			inSite = strings.HasPrefix(t, "https://localhost:") && strings.HasSuffix(t, "{")
		case depth == 0 && t == "route {":
			depth = 1
			out = append(out, line)
		case depth > 0:
			out = append(out, line)
			if !strings.HasPrefix(t, "#") {
				depth += strings.Count(t, "{") - strings.Count(t, "}")
			}
			if depth == 0 {
				return strings.Join(out, "\n")
			}
		}
	}
	b.Fatal("Caddyfile.dev: no route block in the app site")
	return ""
}

// startRouteBench runs Caddy in this process with two plain-HTTP sites in
// front of one loopback upstream (frontend and backend both): a bare
// reverse_proxy, and Caddyfile.dev's app route without the edge snippet (the
// access log and the response headers are measured elsewhere), so the
// difference between them is what our handlers cost a request they pass on.
// The API rate limit is set high enough never to refuse.
func startRouteBench(b *testing.B) (bareURL, appURL string) {
	b.Helper()
	up := gatewaytest.BenchUpstream(b)
	dir := filepath.ToSlash(b.TempDir())
	b.Setenv("SECRET_KEY", gatewaytest.TestSecret)
	b.Setenv("FRONTEND_UPSTREAM", up)
	b.Setenv("BACKEND_UPSTREAM", up)
	b.Setenv("RATE_LIMIT_PER_MINUTE", "1000000000")
	barePort, appPort := gatewaytest.FreePort(b), gatewaytest.FreePort(b)
	cfg := fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %[1]s/caddy
	log {
		output discard
	}
	claude {
		database sqlite:%[1]s/gateway.db
		workspace %[1]s/workspace
	}
}
http://127.0.0.1:%[2]d {
	reverse_proxy %[4]s
}
http://127.0.0.1:%[3]d {
%[5]s
}
`, dir, barePort, appPort, up, appRoute(b))
	gatewaytest.LoadCaddyfile(b, cfg)
	return fmt.Sprintf("http://127.0.0.1:%d", barePort), fmt.Sprintf("http://127.0.0.1:%d", appPort)
}

// BenchmarkAppRoute sends a signed-in request (Bearer token, no cookie)
// through the bare site and the app route in alternating chunks
// (gatewaytest.CompareRoutes): the frontend's "/" and a backend path, each
// without an Origin header and with the app's own. app-allocs/req minus
// bare-allocs/req is what the route's handlers allocate; app-cost-% is the
// share of the rate they cost, from CPU time.
func BenchmarkAppRoute(b *testing.B) {
	bareURL, appURL := startRouteBench(b)
	token := gatewaytest.AccessToken(b, gatewaytest.TestSecret, "bench-user", "bench", "user", time.Hour)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	get := func(base, path, origin string) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s%s: %d", base, path, resp.StatusCode)
		}
	}
	for _, tc := range []struct{ name, path, origin string }{
		{"frontend", "/", ""},
		{"backend", "/api/something", ""},
		{"frontend_origin", "/", appOrigin},
		{"backend_origin", "/api/something", appOrigin},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range 20 { // warm both connection pools and the token cache
				get(bareURL, tc.path, tc.origin)
				get(appURL, tc.path, tc.origin)
			}
			gatewaytest.CompareRoutes(b, [2]string{"bare", "app"}, [2]func(){
				func() { get(bareURL, tc.path, tc.origin) },
				func() { get(appURL, tc.path, tc.origin) },
			})
		})
	}
}
