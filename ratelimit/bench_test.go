package ratelimit

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"

	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// BenchmarkSQLStoreHit measures one counted hit, over 1000 keys, and reports
// the p50 and p99 of the hits' latency: on SQLite, on the shared MariaDB
// (durable commits, innodb_flush_log_at_trx_commit=1) and on a private one
// with innodb_flush_log_at_trx_commit=2 (no fsync per commit).
func BenchmarkSQLStoreHit(b *testing.B) {
	rate, _ := ParseRate("1000000000/h")
	settings := map[string]string{
		"sqlite":         testenv.SQLiteDatabase(b),
		"mariadb":        testenv.MySQLDatabase(b),
		"mariadb_flush2": testenv.StartMariaDB(b).Setting,
	}
	for name, setting := range settings {
		b.Run(name, func(b *testing.B) {
			s := NewSQLStore(testenv.OpenDB(b, setting))
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if _, err := s.Get(ctx, "bench|"+strconv.Itoa(i%1000), rate); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50_ms")
			b.ReportMetric(float64(lat[(len(lat)-1)*99/100])/1e6, "p99_ms")
		})
	}
}

// BenchmarkMemoryZoneHit is the CPU cost of one hit in a memory-store zone,
// ulule's memory store behind the zone, over 1000 keys from parallel callers.
func BenchmarkMemoryZoneHit(b *testing.B) {
	rate, _ := ParseRate("1000000000/h")
	z := &Zone{Name: "bench", Rate: rate, Store: memory.NewStore(), Policy: FailOpen}
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		i := 0
		for pb.Next() {
			if d := z.Hit(ctx, keys[i%len(keys)]); !d.Allowed {
				b.Fatal("refused")
			}
			i++
		}
	})
}

// BenchmarkSQLStoreSteady500 paces hits at a steady 500 per second (open
// loop: each hit starts on schedule, whatever the ones before it) for 4 s per
// iteration, and reports the p50 and p99 of the hits' latency from their
// scheduled start: the latency the store adds to a request at that rate,
// without HTTP or the gateway around it. Stores: the SQL store counting every
// hit (sync_interval 0) on the shared MariaDB (durable commits) and on a
// private one with innodb_flush_log_at_trx_commit=2; the synced SQL store
// (sync_interval 250ms) on the shared, durable MariaDB, over 1000 keys and
// over 10, reporting the statements and commits per second its syncs cost;
// and the Redis store on the test Redis. ulule's memory store runs first in
// the same harness as the baseline: on a loaded machine most of a p99 is
// scheduling, which the baseline shows.
func BenchmarkSQLStoreSteady500(b *testing.B) {
	rate, _ := ParseRate("1000000000/h")
	durable := testenv.MySQLDatabase(b)
	redisStore, err := NewRedisStore(testenv.RedisServer(b), "bench-"+testenv.RandomHex(6))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { redisStore.Close() })
	type variant struct {
		name  string
		store limiter.Store
		keys  int
	}
	variants := []variant{
		// The baseline: no I/O at all, so its latency is the harness's and the
		// machine's (scheduling); a store adds what it measures beyond this.
		{"memory", memory.NewStore(), 1000},
		{"mariadb", NewSQLStore(testenv.OpenDB(b, durable)), 1000},
		{"mariadb_flush2", NewSQLStore(testenv.OpenDB(b, testenv.StartMariaDB(b).Setting)), 1000},
	}
	for _, keys := range []int{1000, 10} {
		s := NewSyncedStore(NewSQLStore(testenv.OpenDB(b, durable)), 250*time.Millisecond, 10*time.Second)
		s.Start()
		b.Cleanup(func() { s.Close() })
		variants = append(variants, variant{"mariadb_synced_" + strconv.Itoa(keys) + "keys", s, keys})
	}
	variants = append(variants, variant{"redis", redisStore, 1000})
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			const perSecond, seconds = 500, 4
			n := perSecond * seconds
			var lat []time.Duration
			began := time.Now()
			synced, _ := v.store.(*SyncedStore)
			var syncs0, sent0 int64
			if synced != nil {
				syncs0, sent0 = synced.Sent()
			}
			for iter := 0; iter < b.N; iter++ {
				round := make([]time.Duration, n)
				var wg sync.WaitGroup
				var failed atomic.Int64
				start := time.Now()
				for i := 0; i < n; i++ {
					due := start.Add(time.Duration(i) * time.Second / perSecond)
					time.Sleep(time.Until(due))
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, err := v.store.Get(context.Background(), "steady|"+strconv.Itoa(i%v.keys), rate); err != nil {
							failed.Add(1)
						}
						round[i] = time.Since(due)
					}()
				}
				wg.Wait()
				if failed.Load() > 0 {
					b.Fatalf("%d hits failed", failed.Load())
				}
				lat = append(lat, round...)
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50_ms")
			b.ReportMetric(float64(lat[(len(lat)-1)*99/100])/1e6, "p99_ms")
			if synced != nil {
				syncs, sent := synced.Sent()
				secs := time.Since(began).Seconds()
				b.ReportMetric(float64(sent-sent0)/secs, "statements/s")
				b.ReportMetric(float64(syncs-syncs0)/secs, "commits/s")
			}
		})
	}
}
