package sessions_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strconv"
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
	f := openFiles(b, st, s)
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

// BenchmarkPutBigTree uploads 1 KiB under a quota into a session whose
// files/ hold 66,000 tiny files (planted directly, as a run would) and into
// an empty one, alternated in one run. The usage counter is measured once;
// an upload adjusts it instead of walking the tree, so the ratio of the
// times (big tree / empty) stays near 1.
//
//	go test -run '^$' -bench PutBigTree -benchtime 200x ./sessions/
func BenchmarkPutBigTree(b *testing.B) {
	db := testenv.OpenDB(b, testenv.SQLiteDatabase(b))
	ws := b.TempDir()
	st, err := sessions.New(db, ws, sessions.Config{Quota: 1 << 40}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	big, _ := st.Create(ctx, "alice")
	empty, _ := st.Create(ctx, "alice")
	for d := 0; d < 66; d++ {
		dir := filepath.Join(ws, "sessions", big.ID, "files", "d"+strconv.Itoa(d))
		os.Mkdir(dir, 0o755)
		for i := 0; i < 1000; i++ {
			os.WriteFile(filepath.Join(dir, strconv.Itoa(i)), []byte("x"), 0o644)
		}
	}
	bigFiles, emptyFiles := openFiles(b, st, big), openFiles(b, st, empty)
	data := make([]byte, 1024)
	walkStart := time.Now()
	if _, err := bigFiles.Usage(); err != nil { // what every upload cost before the counter
		b.Fatal(err)
	}
	walk := time.Since(walkStart)
	b.ResetTimer()
	var inBig, inEmpty time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, _, err := bigFiles.Put("up.bin", bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
		inBig += time.Since(start)
		start = time.Now()
		if _, _, err := emptyFiles.Put("up.bin", bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
		inEmpty += time.Since(start)
	}
	b.StopTimer()
	b.ReportMetric(float64(inBig.Microseconds())/float64(b.N), "µs/put-66k-files")
	b.ReportMetric(float64(inEmpty.Microseconds())/float64(b.N), "µs/put-empty")
	b.ReportMetric(float64(walk.Microseconds()), "µs/walk-66k-files")
	b.ReportMetric(inBig.Seconds()/inEmpty.Seconds(), "ratio")
}
