package claudesessions_test

import (
	"bytes"
	"crypto/rand"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// BenchmarkSessionCreate measures POST /api/sessions through the running
// gateway (TLS, token check, cap transaction, workspace on disk) and reports
// the p50 and p99 latencies.
//
//	go test -run '^$' -bench SessionCreate -benchtime 300x ./caddymodules/claudesessions/
func BenchmarkSessionCreate(b *testing.B) {
	for _, db := range []struct {
		name    string
		setting func(testing.TB) string
	}{{"sqlite", testenv.SQLiteDatabase}, {"mysql", testenv.MySQLDatabase}} {
		b.Run(db.name, func(b *testing.B) {
			w := startGateway(b, db.setting(b), map[string]string{"MAX_SESSIONS": "1000000"})
			w.create(w.alice) // warm up: TLS session, pools
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				r := w.do("POST", "/api/sessions", w.alice, nil)
				lat = append(lat, time.Since(start))
				if r.status != http.StatusCreated {
					b.Fatalf("create: %d %s", r.status, r.body)
				}
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
		})
	}
}

// BenchmarkPut10MiB uploads a 10 MiB file through the gateway (TLS, token,
// temporary file, fsync, rename) over HTTP/2 and over HTTP/1.1 and, in the
// same loop, writes the same bytes straight to a file on the same disk
// (write, fsync). It reports both rates and their ratio; the target is a
// ratio of at least 0.5.
//
//	go test -run '^$' -bench Put10MiB -benchtime 40x ./caddymodules/claudesessions/
func BenchmarkPut10MiB(b *testing.B) {
	const size = 10 << 20
	data := make([]byte, size)
	rand.Read(data)
	w := startGateway(b, testenv.SQLiteDatabase(b), nil)
	s := w.create(w.alice)
	path := "/api/sessions/" + s.ID + "/files/big.bin"
	direct := filepath.Join(w.g.Dir, "direct.bin")
	h2 := w.c.Transport
	h1 := w.g.Transport()
	h1.ForceAttemptHTTP2 = false
	h1.TLSClientConfig.NextProtos = []string{"http/1.1"}
	h1.WriteBufferSize = 1 << 20 // the default 4 KiB would measure the client, not the gateway

	for _, tr := range []struct {
		name string
		rt   http.RoundTripper
	}{{"h2", h2}, {"http1", h1}} {
		b.Run(tr.name, func(b *testing.B) {
			w.c.Transport = tr.rt
			if r := w.do("PUT", path, w.alice, bytes.NewReader(data)); r.status/100 != 2 {
				b.Fatalf("warm-up PUT: %d %s", r.status, r.body)
			}
			b.SetBytes(size)
			b.ResetTimer()
			var viaGateway, straight time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				r := w.do("PUT", path, w.alice, bytes.NewReader(data))
				viaGateway += time.Since(start)
				if r.status != http.StatusOK {
					b.Fatalf("PUT: %d %s", r.status, r.body)
				}

				start = time.Now()
				f, err := os.Create(direct)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.Write(data); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				f.Close()
				straight += time.Since(start)
			}
			b.StopTimer()
			mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / (1 << 20) }
			b.ReportMetric(mbps(viaGateway), "gateway_MiB/s")
			b.ReportMetric(mbps(straight), "direct_MiB/s")
			b.ReportMetric(straight.Seconds()/viaGateway.Seconds(), "ratio")
		})
	}
}
