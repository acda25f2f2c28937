package certstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/claude-gateway/claude-gateway/certstore"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// benchStorages returns certmagic's own FileStorage, the baseline to compare
// with in the same run, and the SQL storage on each dialect.
func benchStorages(b *testing.B) []struct {
	name string
	s    certmagic.Storage
} {
	b.Helper()
	out := []struct {
		name string
		s    certmagic.Storage
	}{{"file_baseline", &certmagic.FileStorage{Path: b.TempDir()}}}
	for _, dialect := range []string{"sqlite", "mysql"} {
		setting := testenv.SQLiteDatabase(b)
		if dialect == "mysql" {
			setting = testenv.MySQLDatabase(b)
		}
		s, err := certstore.New(testenv.OpenDB(b, setting), certstore.Options{Lease: 10 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, struct {
			name string
			s    certmagic.Storage
		}{dialect, s})
	}
	return out
}

// BenchmarkStoreLoad writes and reads back a certificate chain, as a
// certificate renewal and a replica's cache refresh do.
func BenchmarkStoreLoad(b *testing.B) {
	chain := pemChain(b, 3)
	for _, st := range benchStorages(b) {
		b.Run(st.name, func(b *testing.B) {
			ctx := context.Background()
			b.SetBytes(int64(len(chain)))
			i := 0
			for b.Loop() {
				key := "certificates/ca/site" + strconv.Itoa(i%64) + "/site.crt"
				if err := st.s.Store(ctx, key, chain); err != nil {
					b.Fatal(err)
				}
				if _, err := st.s.Load(ctx, key); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkLockUnlock takes and releases a free lock, the overhead each
// certificate operation pays for coordination.
func BenchmarkLockUnlock(b *testing.B) {
	for _, st := range benchStorages(b) {
		b.Run(st.name, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				if err := st.s.Lock(ctx, "issue_cert_app.test"); err != nil {
					b.Fatal(err)
				}
				if err := st.s.Unlock(ctx, "issue_cert_app.test"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
