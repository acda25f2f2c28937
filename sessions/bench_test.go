package sessions_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/internal/testenv"
	"github.com/claude-gateway/claude-gateway/sessions"
)

// BenchmarkPut10MiB measures Files.Put of 10 MiB (temporary file, fsync,
// rename, directory fsync) against writing the same bytes to a file directly
// (write, fsync) in the same run, without the network in between.
//
//	go test -run '^$' -bench Put10MiB -benchtime 30x ./sessions/
func BenchmarkPut10MiB(b *testing.B) {
	const size = 10 << 20
	data := make([]byte, size)
	rand.Read(data)
	db := testenv.OpenDB(b, testenv.SQLiteDatabase(b))
	ws := b.TempDir()
	st, err := sessions.New(db, ws, sessions.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s, _ := st.Create(context.Background(), "alice")
	f, _ := st.OpenFiles(s.ID)
	defer f.Close()
	direct := filepath.Join(ws, "direct.bin")
	b.SetBytes(size)
	b.ResetTimer()
	var put, straight time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, _, err := f.Put("big.bin", bytes.NewReader(data), size); err != nil {
			b.Fatal(err)
		}
		put += time.Since(start)
		start = time.Now()
		out, _ := os.Create(direct)
		out.Write(data)
		out.Sync()
		out.Close()
		straight += time.Since(start)
	}
	b.StopTimer()
	b.ReportMetric(straight.Seconds()/put.Seconds(), "ratio")
}
