package clauderatelimit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// BenchmarkHandlerMemoryZone is the whole handler's cost per request with a
// memory-store zone keyed on a header (1000 users), in process: the key's
// placeholder, the hit, the headers. Compare it with the gateway's CPU per
// proxied request (BenchmarkMemoryZoneThroughput's plain_cpu_us/req).
func BenchmarkHandlerMemoryZone(b *testing.B) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	h := &Handler{Zones: []*Zone{{Name: "bench_handler", Rate: "1000000000/h", Key: []string{"{http.request.header.X-User}"}}}}
	if err := h.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	defer h.Cleanup()
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	reqs := make([]*http.Request, 1000)
	for i := range reqs {
		r := httptest.NewRequest(http.MethodGet, "/api/x", nil)
		r.Header.Set("X-User", "user-"+strconv.Itoa(i))
		repl := caddy.NewReplacer()
		r = caddyhttp.PrepareRequest(r, repl, nil, nil)
		reqs[i] = r
	}
	w := httptest.NewRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(w.Header())
		if err := h.ServeHTTP(w, reqs[i%len(reqs)], next); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if w.Header().Get("X-RateLimit-Limit") != "1000000000" {
		b.Fatalf("headers: %v", w.Header())
	}
}
