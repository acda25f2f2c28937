package clauderatelimit_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/internal/gatewaytest"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// backend is a store a behaviour test runs on, with the gateway's database
// and environment.
type backend struct {
	name, store, database string
	env                   map[string]string
}

// backends are the stores every behaviour test runs on: the memory store,
// the SQL store on a fresh MariaDB database (synced, the default), and the
// Redis store on a private Redis server.
func backends(t *testing.T) []backend {
	return []backend{
		{"memory", "memory", testenv.SQLiteDatabase(t), nil},
		{"mariadb", "sql", testenv.MySQLDatabase(t), nil},
		{"redis", "redis", testenv.SQLiteDatabase(t), map[string]string{"REDIS_URL": testenv.StartRedis(t).URL}},
	}
}

func TestBudgetIsExactAndRefusalsAreNotProxied(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			cfg := caddyfile(limiter(zone("api", "5/min", b.store, "")), "", "")
			g, up := start(t, cfg, b.database, b.env)
			for i := int64(1); i <= 5; i++ {
				checkAllowed(t, get(t, g, "/api/items", nil), 5, 5-i)
			}
			for i := 0; i < 3; i++ {
				a := get(t, g, "/api/items", nil)
				checkRefused(t, a, 5)
				if ra := headerInt(t, a.Header, "Retry-After"); ra > 61 {
					t.Fatalf("Retry-After = %d for a one-minute window", ra)
				}
			}
			if n := up.Hits.Load(); n != 5 {
				t.Fatalf("the upstream saw %d requests, want exactly the 5 allowed", n)
			}
			// Outside /api the refusal is claude_error's page, still not proxied.
			a := do(t, g.Client(), http.MethodPost, g.URL("localhost", "/auth/login"), nil)
			if a.Status != http.StatusTooManyRequests || !strings.HasPrefix(a.Header.Get("Content-Type"), "text/html") ||
				!strings.Contains(a.Body, "Too many requests") || a.Header.Get("Retry-After") == "" {
				t.Fatalf("non-API refusal: %d %q %v", a.Status, a.Body, a.Header)
			}
			// Probes come before the limiter and are never refused.
			for i := 0; i < 3; i++ {
				if a := get(t, g, "/api/live", nil); a.Status != http.StatusOK {
					t.Fatalf("probe refused: %d %s", a.Status, a.Body)
				}
			}
			if got := metric(t, g, "claude_gateway_rate_limit_refused_total", "api"); got != "4" {
				t.Fatalf("refused counter for zone api = %q, want 4", got)
			}
			if n := up.Hits.Load(); n != 5 {
				t.Fatalf("the upstream saw %d requests after the refusals, want 5", n)
			}
		})
	}
}

func TestWindowResets(t *testing.T) {
	cfg := caddyfile(limiter(zone("api", "3/2s", "memory", "")), "", "")
	g, _ := start(t, cfg, testenv.SQLiteDatabase(t), nil)
	// A loaded machine may stall longer than the window between two
	// requests; such a round proves nothing and is run again.
	for attempt := 0; ; attempt++ {
		began := time.Now()
		var answers []answer
		for i := 0; i < 4; i++ {
			answers = append(answers, get(t, g, "/api/x", map[string]string{"X-Attempt": fmt.Sprint(attempt)}))
		}
		if time.Since(began) > 1500*time.Millisecond {
			if attempt == 3 {
				t.Fatal("four requests never fitted in the 2s window")
			}
			time.Sleep(2100 * time.Millisecond)
			continue
		}
		for i := 0; i < 3; i++ {
			checkAllowed(t, answers[i], 3, int64(2-i))
		}
		checkRefused(t, answers[3], 3)
		wait := time.Duration(headerInt(t, answers[3].Header, "Retry-After")) * time.Second
		if wait > 3*time.Second {
			t.Fatalf("Retry-After %s for a 2s window", wait)
		}
		time.Sleep(wait)
		checkAllowed(t, get(t, g, "/api/x", nil), 3, 2)
		return
	}
}

func TestConcurrentRequestsGetExactlyTheLimit(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			cfg := caddyfile(limiter(zone("burst", "10/min", b.store, "")), "", "")
			g, up := start(t, cfg, b.database, b.env)
			counts := burst(t, []*http.Client{g.Client()}, []string{g.URL("localhost", "/api/burst")}, 100, nil)
			if counts[200] != 10 || counts[429] != 90 {
				t.Fatalf("100 concurrent requests against 10/min: %v, want 10×200 and 90×429", counts)
			}
			if n := up.Hits.Load(); n != 10 {
				t.Fatalf("the upstream saw %d requests, want 10", n)
			}
		})
	}
}

func TestTwoGatewaysShareOneMariaDBCountSynchronously(t *testing.T) {
	database := testenv.MySQLDatabase(t)
	cfg := caddyfile(limiter(zone("shared", "10/min", "sql", "				sync_interval 0")), "", "")
	g1, up1 := start(t, cfg, database, nil)
	g2, up2 := start(t, cfg, database, nil)
	// Alternating: the second gateway sees the first one's hits.
	checkAllowed(t, get(t, g1, "/api/a", nil), 10, 9)
	checkAllowed(t, get(t, g2, "/api/a", nil), 10, 8)
	checkAllowed(t, get(t, g1, "/api/a", nil), 10, 7)
	// Then both at once.
	counts := burst(t, []*http.Client{g1.Client(), g2.Client()},
		[]string{g1.URL("localhost", "/api/a"), g2.URL("localhost", "/api/a")}, 40, nil)
	if counts[200] != 7 || counts[429] != 33 {
		t.Fatalf("40 concurrent requests over two gateways with 7 left: %v, want 7×200", counts)
	}
	if n := up1.Hits.Load() + up2.Hits.Load(); n != 10 {
		t.Fatalf("the upstreams saw %d requests together, want 10", n)
	}
	checkRefused(t, get(t, g2, "/api/a", nil), 10)
}

// TestTwoGatewaysShareARefusalWithinOneSyncInterval spends a key's budget on
// one gateway syncing every 250ms (the default) and asks the other, which
// has counted that key before, until it refuses too.
func TestTwoGatewaysShareARefusalWithinOneSyncInterval(t *testing.T) {
	database := testenv.MySQLDatabase(t)
	cfg := caddyfile(limiter(zone("shared", "10/min", "sql", "")), "", "")
	g1, up1 := start(t, cfg, database, nil)
	g2, up2 := start(t, cfg, database, nil)
	checkAllowed(t, get(t, g2, "/api/a", nil), 10, 9)
	time.Sleep(time.Second) // g2's hit is in the database
	checkAllowed(t, get(t, g1, "/api/a", nil), 10, 9)
	time.Sleep(time.Second) // g1 read back g2's hit with its own
	for i := int64(1); i <= 8; i++ {
		checkAllowed(t, get(t, g1, "/api/a", nil), 10, 8-i)
	}
	checkRefused(t, get(t, g1, "/api/a", nil), 10)
	spent := time.Now()
	allowedOnG2 := 0
	for {
		a := get(t, g2, "/api/a", nil)
		if a.Status == http.StatusTooManyRequests {
			break
		}
		if a.Status != http.StatusOK {
			t.Fatalf("g2: %d %s", a.Status, a.Body)
		}
		allowedOnG2++
		if time.Since(spent) > 5*time.Second {
			t.Fatalf("g2 still allowed the key %s after g1 spent its budget, want a refusal within one sync interval (250ms)", time.Since(spent))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("g2 refused %s after g1 spent the budget; %d requests allowed meanwhile", time.Since(spent).Round(time.Millisecond), allowedOnG2)
	if n := up1.Hits.Load() + up2.Hits.Load(); n != int64(10+allowedOnG2) {
		t.Fatalf("the upstreams saw %d requests, want the 10 of the budget and the %d g2 allowed before it synced", n, allowedOnG2)
	}
	checkRefused(t, get(t, g1, "/api/a", nil), 10)
}

func TestMemoryCountsSurviveReload(t *testing.T) {
	cfg := caddyfile(limiter(zone("api", "5/min", "memory", "")), "", "")
	g, _ := start(t, cfg, testenv.SQLiteDatabase(t), nil)
	for i := int64(1); i <= 3; i++ {
		checkAllowed(t, get(t, g, "/api/r", nil), 5, 5-i)
	}
	// A changed config: another zone in front of "api". Zone "api" keeps its
	// name and rate, so it keeps its counters.
	other := zone("other", "1/min", "memory", "				match {\n					path /api/other/*\n				}")
	if err := g.Load(caddyfile(limiter(other, zone("api", "5/min", "memory", "")), "", "")); err != nil {
		t.Fatal(err)
	}
	// The new config runs: its zone "other" refuses a second request.
	get(t, g, "/api/other/1", nil)
	if a := get(t, g, "/api/other/1", nil); a.Status != http.StatusTooManyRequests {
		t.Fatalf("the new config is not running: %d %q", a.Status, a.Body)
	}
	// The first of those two was counted by "api" too (4 of 5 spent); the
	// second was refused by "other" before "api" saw it.
	checkAllowed(t, get(t, g, "/api/r", nil), 5, 0)
	checkRefused(t, get(t, g, "/api/r", nil), 5)
	// Reloading again with a new rate starts that zone afresh.
	if err := g.Load(caddyfile(limiter(zone("api", "6/min", "memory", "")), "", "")); err != nil {
		t.Fatal(err)
	}
	checkAllowed(t, get(t, g, "/api/r", nil), 6, 5)
}

func TestSQLCountsSurviveRestart(t *testing.T) {
	// Synced, with an interval no test reaches: the hits reach the database
	// when the gateway stops.
	database := testenv.SQLiteDatabase(t)
	g, _ := start(t, caddyfile(limiter(zone("api", "5/min", "sql", "				sync_interval 1h")), "", ""), database, nil)
	for i := int64(1); i <= 3; i++ {
		checkAllowed(t, get(t, g, "/api/s", nil), 5, 5-i)
	}
	g.Stop()
	var hits int64
	if err := testenv.OpenDB(t, database).QueryRow("SELECT SUM(hits) FROM rate_limit_counters").Scan(&hits); err != nil || hits != 3 {
		t.Fatalf("the database holds %d hits after a graceful stop (%v), want the 3 counted", hits, err)
	}

	// Synchronous: every hit is in the database before it is answered.
	database = testenv.SQLiteDatabase(t)
	g, _ = start(t, caddyfile(limiter(zone("api", "5/min", "sql", "				sync_interval 0")), "", ""), database, nil)
	for i := int64(1); i <= 3; i++ {
		checkAllowed(t, get(t, g, "/api/s", nil), 5, 5-i)
	}
	g.Stop()
	g.Restart()
	checkAllowed(t, get(t, g, "/api/s", nil), 5, 1)
	checkAllowed(t, get(t, g, "/api/s", nil), 5, 0)
	checkRefused(t, get(t, g, "/api/s", nil), 5)
}

func TestKeyFallsBackAndMatchersSelect(t *testing.T) {
	z := zone("user", "2/min", "memory", `				key {http.request.header.X-User} {client_ip}
				match {
					path /api/*
				}
				exempt {
					path /api/free/*
				}`)
	g, _ := start(t, caddyfile(limiter(z), "", ""), testenv.SQLiteDatabase(t), nil)
	alice := map[string]string{"X-User": "alice"}
	bob := map[string]string{"X-User": "bob"}
	checkAllowed(t, get(t, g, "/api/k", alice), 2, 1)
	checkAllowed(t, get(t, g, "/api/k", alice), 2, 0)
	checkRefused(t, get(t, g, "/api/k", alice), 2)
	// Bob, and the anonymous client keyed on its IP, have budgets of their own.
	checkAllowed(t, get(t, g, "/api/k", bob), 2, 1)
	checkAllowed(t, get(t, g, "/api/k", nil), 2, 1)
	// Outside the zone's match, and in its exemption, nothing is counted.
	for _, p := range []string{"/elsewhere", "/api/free/x"} {
		a := get(t, g, p, alice)
		if a.Status != http.StatusOK || a.Header.Get("X-RateLimit-Limit") != "" {
			t.Fatalf("%s: %d, X-RateLimit-Limit %q; want it untouched by the zone", p, a.Status, a.Header.Get("X-RateLimit-Limit"))
		}
	}
}

func TestForwardedForOnlyFromTrustedProxies(t *testing.T) {
	trustedPort := gatewaytest.FreePort(t)
	global := fmt.Sprintf(`	servers :%d {
		trusted_proxies static 127.0.0.1/8
		trusted_proxies_strict
	}`, trustedPort)
	// The same zone on both sites; the trusted one is a separate server whose
	// only peer (this test, on loopback) is a trusted proxy.
	site := fmt.Sprintf("https://localhost:%d {\n\timport limited\n}\n", trustedPort)
	cfg := caddyfile(limiter(zone("api", "3/min", "memory", "")), global, site)
	g, _ := start(t, cfg, testenv.SQLiteDatabase(t), nil)

	// Untrusted peer: every forged X-Forwarded-For counts against 127.0.0.1.
	for i := 0; i < 3; i++ {
		checkAllowed(t, get(t, g, "/api/f", map[string]string{"X-Forwarded-For": fmt.Sprintf("198.51.100.%d", i+1)}), 3, int64(2-i))
	}
	checkRefused(t, get(t, g, "/api/f", map[string]string{"X-Forwarded-For": "203.0.113.99"}), 3)
	checkRefused(t, get(t, g, "/api/f", map[string]string{"X-Forwarded-For": "203.0.113.98", "X-Real-IP": "203.0.113.97"}), 3)

	// Trusted proxy: the client address it forwards is the key.
	trusted := g.Client()
	url := fmt.Sprintf("https://localhost:%d/api/f", trustedPort)
	viaProxy := func(xff string) answer {
		return do(t, trusted, http.MethodGet, url, map[string]string{"X-Forwarded-For": xff})
	}
	for i := int64(1); i <= 3; i++ {
		checkAllowed(t, viaProxy("192.0.2.10"), 3, 3-i)
	}
	checkRefused(t, viaProxy("192.0.2.10"), 3)
	// A client that forges the header in front of the proxy, which appends
	// the real address, is still itself.
	checkRefused(t, viaProxy("10.1.2.3, 192.0.2.10"), 3)
	checkRefused(t, viaProxy("192.0.2.77, 192.0.2.10, 127.0.0.5"), 3)
	// Another client behind the proxy has its own budget.
	checkAllowed(t, viaProxy("192.0.2.11"), 3, 2)
}

func TestStoreFailureWithPrivateMariaDB(t *testing.T) {
	for _, mode := range []struct{ name, syncInterval string }{{"synchronous", "0"}, {"synced", "200ms"}} {
		t.Run(mode.name, func(t *testing.T) { testStoreFailure(t, mode.syncInterval) })
	}
}

// testStoreFailure stops and restarts a private MariaDB under a fail_open
// and a fail_closed zone. A synced store notices the outage at its next
// sync, so the requests in between are still decided in memory.
func testStoreFailure(t *testing.T, syncInterval string) {
	m := testenv.StartMariaDB(t)
	open := zone("open", "100/min", "sql", "				sync_interval "+syncInterval+"\n				on_failure fail_open\n				match {\n					path /api/open/*\n				}")
	closed := zone("closed", "100/min", "sql", "				sync_interval "+syncInterval+"\n				on_failure fail_closed\n				match {\n					path /api/closed/*\n				}")
	g, up := start(t, caddyfile(limiterWithTimeout("3s", open, closed), "", ""), m.Setting, nil)

	checkAllowed(t, get(t, g, "/api/open/1", nil), 100, 99)
	checkAllowed(t, get(t, g, "/api/closed/1", nil), 100, 99)
	if a := get(t, g, "/api/health", nil); a.Status != http.StatusOK || !strings.Contains(a.Body, `"rate_limit_store":{"status":"healthy"`) {
		t.Fatalf("health before the outage: %d %s", a.Status, a.Body)
	}

	m.Stop()
	counted := 0 // hits of the open zone decided in memory before the outage was noticed
	if syncInterval != "0" {
		for deadline := time.Now().Add(15 * time.Second); ; {
			a := get(t, g, "/api/open/wait", nil)
			if a.Header.Get("X-RateLimit-Limit") == "" {
				break
			}
			counted++
			if time.Now().After(deadline) {
				t.Fatal("the synced store did not notice the outage in 15s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	hitsBefore := up.Hits.Load()
	a := get(t, g, "/api/open/2", nil)
	if a.Status != http.StatusOK || a.Upstream != "backend" || a.Header.Get("X-RateLimit-Limit") != "" {
		t.Fatalf("fail_open zone with the store down: %d %q (X-RateLimit-Limit %q), want 200 from the upstream without limit headers",
			a.Status, a.Body, a.Header.Get("X-RateLimit-Limit"))
	}
	a = get(t, g, "/api/closed/2", nil)
	if a.Status != http.StatusServiceUnavailable || a.ErrCode != "rate_limit_unavailable" || a.Header.Get("Retry-After") == "" {
		t.Fatalf("fail_closed zone with the store down: %d %q", a.Status, a.Body)
	}
	if n := up.Hits.Load() - hitsBefore; n != 1 {
		t.Fatalf("the upstream saw %d requests during the outage, want only the fail_open one", n)
	}
	a = get(t, g, "/api/health", nil)
	if !strings.Contains(a.Body, `"status":"degraded"`) || !strings.Contains(a.Body, `"rate_limit_store":{"status":"unavailable"`) {
		t.Fatalf("health during the outage: %d %s", a.Status, a.Body)
	}
	if log := g.Log(); !strings.Contains(log, "rate limit store failing") {
		t.Fatalf("the outage was not logged:\n%s", g.LogTail(20))
	}
	if got := metric(t, g, "claude_gateway_rate_limit_refused_total", "closed"); got != "1" {
		t.Fatalf("refused counter for the closed zone = %q, want 1", got)
	}

	m.Start()
	deadline := time.Now().Add(30 * time.Second)
	for {
		a = get(t, g, "/api/closed/3", nil)
		if a.Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fail_closed zone did not recover after MariaDB came back: %d %s", a.Status, a.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	checkAllowed(t, a, 100, 98)
	// Synced: the hits decided before the outage was noticed reach the
	// database once it is back.
	checkAllowed(t, get(t, g, "/api/open/3", nil), 100, int64(98-counted))
	if a := get(t, g, "/api/health", nil); a.Status != http.StatusOK || !strings.Contains(a.Body, `"status":"healthy"`) ||
		strings.Contains(a.Body, "unavailable") {
		t.Fatalf("health after recovery: %d %s", a.Status, a.Body)
	}
	if log := g.Log(); !strings.Contains(log, "rate limit store recovered") {
		t.Fatal("the recovery was not logged")
	}
}

func TestTwoGatewaysShareOneRedisCount(t *testing.T) {
	// The test Redis is shared by every test run: the zone's name is this run's own.
	name := "shared_" + testenv.RandomHex(6)
	env := map[string]string{"REDIS_URL": testenv.RedisServer(t)}
	cfg := caddyfile(limiter(zone(name, "10/min", "redis", "")), "", "")
	g1, up1 := start(t, cfg, testenv.SQLiteDatabase(t), env)
	g2, up2 := start(t, cfg, testenv.SQLiteDatabase(t), env)
	checkAllowed(t, get(t, g1, "/api/a", nil), 10, 9)
	checkAllowed(t, get(t, g2, "/api/a", nil), 10, 8)
	counts := burst(t, []*http.Client{g1.Client(), g2.Client()},
		[]string{g1.URL("localhost", "/api/a"), g2.URL("localhost", "/api/a")}, 40, nil)
	if counts[200] != 8 || counts[429] != 32 {
		t.Fatalf("40 concurrent requests over two gateways with 8 left: %v, want 8×200", counts)
	}
	if n := up1.Hits.Load() + up2.Hits.Load(); n != 10 {
		t.Fatalf("the upstreams saw %d requests together, want 10", n)
	}
}

// Two gateways whose Redis zone syncs every 100ms: each decides in its own
// memory, so a burst over both may pass the limit by what each counts
// between two syncs, but never more, and after a sync both refuse.
func TestTwoGatewaysSyncWithOneRedis(t *testing.T) {
	name := "synced_" + testenv.RandomHex(6)
	env := map[string]string{"REDIS_URL": testenv.RedisServer(t)}
	cfg := caddyfile(limiter(zone(name, "10/min", "redis", "				sync_interval 100ms")), "", "")
	g1, up1 := start(t, cfg, testenv.SQLiteDatabase(t), env)
	g2, up2 := start(t, cfg, testenv.SQLiteDatabase(t), env)
	checkAllowed(t, get(t, g1, "/api/a", nil), 10, 9)
	counts := burst(t, []*http.Client{g1.Client(), g2.Client()},
		[]string{g1.URL("localhost", "/api/a"), g2.URL("localhost", "/api/a")}, 40, nil)
	// g1 knows of its own hit, g2 of none: at most 9 + 10 more pass.
	if counts[200] < 9 || counts[200] > 19 || counts[200]+counts[429] != 40 {
		t.Fatalf("40 concurrent requests over two synced gateways with 9 left: %v, want 9 to 19 × 200, the rest 429", counts)
	}
	time.Sleep(300 * time.Millisecond) // a few intervals: both synced
	for _, g := range []*gatewaytest.Gateway{g1, g2} {
		if a := get(t, g, "/api/a", nil); a.Status != http.StatusTooManyRequests {
			t.Fatalf("after the syncs, a spent budget answered %d on %s", a.Status, g.URL("localhost", "/"))
		}
	}
	if n := up1.Hits.Load() + up2.Hits.Load(); n != int64(1+counts[200]) {
		t.Fatalf("the upstreams saw %d requests together, want the %d allowed", n, 1+counts[200])
	}
}

func TestRedisStoreFailure(t *testing.T) {
	r := testenv.StartRedis(t)
	open := zone("open", "100/min", "redis", "				on_failure fail_open\n				match {\n					path /api/open/*\n				}")
	closed := zone("closed", "100/min", "redis", "				on_failure fail_closed\n				match {\n					path /api/closed/*\n				}")
	g, up := start(t, caddyfile(limiterWithTimeout("3s", open, closed), "", ""), testenv.SQLiteDatabase(t),
		map[string]string{"REDIS_URL": r.URL})

	checkAllowed(t, get(t, g, "/api/open/1", nil), 100, 99)
	checkAllowed(t, get(t, g, "/api/closed/1", nil), 100, 99)
	if a := get(t, g, "/api/health", nil); a.Status != http.StatusOK || !strings.Contains(a.Body, `"rate_limit_redis":{"status":"healthy"`) {
		t.Fatalf("health before the outage: %d %s", a.Status, a.Body)
	}
	r.Stop()
	hitsBefore := up.Hits.Load()
	if a := get(t, g, "/api/open/2", nil); a.Status != http.StatusOK || a.Header.Get("X-RateLimit-Limit") != "" {
		t.Fatalf("fail_open zone with Redis down: %d %q, want 200 without limit headers", a.Status, a.Body)
	}
	if a := get(t, g, "/api/closed/2", nil); a.Status != http.StatusServiceUnavailable || a.ErrCode != "rate_limit_unavailable" {
		t.Fatalf("fail_closed zone with Redis down: %d %q", a.Status, a.Body)
	}
	if n := up.Hits.Load() - hitsBefore; n != 1 {
		t.Fatalf("the upstream saw %d requests during the outage, want only the fail_open one", n)
	}
	if a := get(t, g, "/api/health", nil); !strings.Contains(a.Body, `"rate_limit_redis":{"status":"unavailable"`) {
		t.Fatalf("health during the outage: %d %s", a.Status, a.Body)
	}
	if !strings.Contains(g.Log(), "rate limit store failing") {
		t.Fatalf("the outage was not logged:\n%s", g.LogTail(20))
	}

	// Redis keeps nothing on disk here: it comes back empty, and counts afresh.
	r.Start()
	deadline := time.Now().Add(30 * time.Second)
	for {
		a := get(t, g, "/api/closed/3", nil)
		if a.Status == http.StatusOK {
			checkAllowed(t, a, 100, 99)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fail_closed zone did not recover after Redis came back: %d %s", a.Status, a.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if a := get(t, g, "/api/health", nil); a.Status != http.StatusOK || strings.Contains(a.Body, "unavailable") {
		t.Fatalf("health after recovery: %d %s", a.Status, a.Body)
	}
	if !strings.Contains(g.Log(), "rate limit store recovered") {
		t.Fatal("the recovery was not logged")
	}
}
