package gatewaytest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"golang.org/x/sys/unix"
)

// LoadCaddyfile runs a Caddyfile config in this process (for benchmarks that
// must see Caddy's CPU time beside the client's) and stops it when the test ends.
func LoadCaddyfile(tb testing.TB, caddyfile string) {
	tb.Helper()
	js, warn, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		tb.Fatalf("adapting the Caddyfile: %v %v", err, warn)
	}
	if err := caddy.Load(js, true); err != nil {
		tb.Fatalf("loading the config: %v", err)
	}
	tb.Cleanup(func() { caddy.Stop() })
}

// CPUTime is the CPU time all threads of this process have used, from the
// kernel's per-process clock (getrusage counts in scheduler ticks, too coarse
// for chunks of a few milliseconds).
func CPUTime(tb testing.TB) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

// CompareRoutes runs b.N requests of each of two routes, baseline first, in
// alternating chunks (alternating which goes first too), so that a change in
// the machine's load hits both alike. It reports each route's wall-clock rate
// as "<name>-req/s", the rate one core sustains from CPU time as
// "<name>-req/s/core", the share of that rate the measured route costs as
// "<names[1]>-cost-%", and each route's heap allocations per request (the
// whole process's: client, Caddy and upstream) as "<name>-allocs/req" and
// "<name>-B/req". Allocation counts do not depend on the machine's load, so
// they are the steadiest figure on a busy machine.
func CompareRoutes(b *testing.B, names [2]string, request [2]func()) {
	const chunk = 50
	var wall, cpu [2]time.Duration
	var allocs, bytes [2]uint64
	var ms runtime.MemStats
	b.ResetTimer()
	for done, round := 0, 0; done < b.N; round++ {
		n := min(chunk, b.N-done)
		order := [2]int{0, 1}
		if round%2 == 1 {
			order = [2]int{1, 0}
		}
		for _, i := range order {
			runtime.ReadMemStats(&ms)
			m0, b0 := ms.Mallocs, ms.TotalAlloc
			c0, w0 := CPUTime(b), time.Now()
			for range n {
				request[i]()
			}
			wall[i] += time.Since(w0)
			cpu[i] += CPUTime(b) - c0
			runtime.ReadMemStats(&ms)
			allocs[i] += ms.Mallocs - m0
			bytes[i] += ms.TotalAlloc - b0
		}
		done += n
	}
	b.StopTimer()
	perReq := func(d time.Duration) float64 { return float64(d) / float64(b.N) }
	for i, name := range names {
		b.ReportMetric(1e9/perReq(wall[i]), name+"-req/s")
		b.ReportMetric(1e9/perReq(cpu[i]), name+"-req/s/core")
		b.ReportMetric(float64(allocs[i])/float64(b.N), name+"-allocs/req")
		b.ReportMetric(float64(bytes[i])/float64(b.N), name+"-B/req")
	}
	b.ReportMetric(100*(1-perReq(cpu[0])/perReq(cpu[1])), names[1]+"-cost-%")
}

// BenchUpstream starts a loopback upstream that answers every request with a
// short text body, for benchmarks comparing routes in front of it, and
// returns its host:port; it stops when the benchmark ends.
func BenchUpstream(tb testing.TB) string {
	tb.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	}))
	tb.Cleanup(up.Close)
	return up.Listener.Addr().String()
}
