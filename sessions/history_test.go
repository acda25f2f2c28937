package sessions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/claude-gateway/claude-gateway/internal/testenv"
	"github.com/claude-gateway/claude-gateway/sessions"
)

// TestHistoryAppendDoesNotReadTheFile plants a 4 GiB history (sparse: a
// valid array of one string of NUL bytes is not needed, since nothing may
// read it) and appends to it: an append that read or parsed the file would
// need gigabytes and fail; this one allocates a few KiB.
func TestHistoryAppendDoesNotReadTheFile(t *testing.T) {
	ctx := context.Background()
	st, _, ws := newStore(t, testenv.SQLiteDatabase(t), sessions.Config{MaxHistorySize: 8 << 30})
	s, _ := st.Create(ctx, "alice")
	if _, err := open(t, st, s).AppendHistory([]byte(`"first"`)); err != nil {
		t.Fatal(err)
	}
	hist := filepath.Join(ws, "sessions", s.ID, ".claude", "history.json")
	const big = 4 << 30
	f, err := os.OpenFile(hist, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// `[` + 4 GiB of holes + `1]\n`, with the state record saying so.
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("["), 0)
	f.WriteAt([]byte("1]\n"), big-3)
	f.Close()
	os.WriteFile(filepath.Join(ws, "sessions", s.ID, ".claude", "history.state"),
		[]byte(fmt.Sprintf("%020d %020d\n", big, 1)), 0o644)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n, err := open(t, st, s).AppendHistory([]byte(`{"role": "user", "text": "<hi>"}`))
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("entries after the append = %d, want 2", n)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("an append to a 4 GiB history allocated %d bytes", alloc)
	}
	tail := make([]byte, 64)
	f, _ = os.Open(hist)
	info, _ := f.Stat()
	k, _ := f.ReadAt(tail, info.Size()-int64(len(tail)))
	f.Close()
	if want := `1,{"role":"user","text":"\u003chi\u003e"}]` + "\n"; !strings.HasSuffix(string(tail[:k]), want) {
		t.Errorf("the file ends in %q, want %q", tail[:k], want)
	}
}

// TestHistoryLimits: past max_history_size an append is ErrHistoryTooLarge,
// past the quota (files and history together) ErrQuotaExceeded; either
// writes nothing.
func TestHistoryLimits(t *testing.T) {
	ctx := context.Background()
	st, _, ws := newStore(t, testenv.SQLiteDatabase(t), sessions.Config{MaxHistorySize: 100, Quota: 1000})
	s, _ := st.Create(ctx, "alice")
	hist := filepath.Join(ws, "sessions", s.ID, ".claude", "history.json")
	entry := []byte(`"` + strings.Repeat("x", 40) + `"`) // 42 bytes
	for i := 0; i < 2; i++ {
		if _, err := open(t, st, s).AppendHistory(entry); err != nil {
			t.Fatalf("append %d: %v", i+1, err)
		}
	}
	before, _ := os.ReadFile(hist)
	if _, err := open(t, st, s).AppendHistory(entry); !errors.Is(err, sessions.ErrHistoryTooLarge) {
		t.Errorf("append past max_history_size = %v", err)
	}
	if after, _ := os.ReadFile(hist); !bytes.Equal(before, after) {
		t.Errorf("a refused append changed the history: %q → %q", before, after)
	}

	st.SetConfig(sessions.Config{MaxHistorySize: 1 << 20, Quota: 1000})
	f := openFiles(t, st, s)
	if _, _, err := f.Put("a", bytes.NewReader(make([]byte, 850)), 850); err != nil {
		t.Fatal(err)
	}
	// 850 + the history's 85 bytes of entries: 65 left, the entry needs 43.
	if _, err := open(t, st, s).AppendHistory(entry); err != nil {
		t.Fatalf("append within the quota: %v", err)
	}
	before, _ = os.ReadFile(hist)
	if _, err := open(t, st, s).AppendHistory(entry); !errors.Is(err, sessions.ErrQuotaExceeded) {
		t.Errorf("append past the quota = %v", err)
	}
	if after, _ := os.ReadFile(hist); !bytes.Equal(before, after) {
		t.Errorf("a refused append changed the history")
	}
	// The history counts against uploads too.
	if _, _, err := f.Put("b", bytes.NewReader(make([]byte, 30)), 30); !errors.Is(err, sessions.ErrQuotaExceeded) {
		t.Errorf("an upload into the room the history took = %v", err)
	}
	var arr []json.RawMessage
	raw, _ := open(t, st, s).ReadHistory()
	if err := json.Unmarshal(raw, &arr); err != nil || len(arr) != 3 {
		t.Errorf("history %s: %d entries, %v", raw, len(arr), err)
	}
}

// TestHistoryRecovery: an append cut short (bytes past the committed length)
// is invisible to readers and cut off by the next append; a history written
// before the state record existed (any JSON array) is taken over.
func TestHistoryRecovery(t *testing.T) {
	ctx := context.Background()
	st, _, ws := newStore(t, testenv.SQLiteDatabase(t), sessions.Config{})
	s, _ := st.Create(ctx, "alice")
	dir := filepath.Join(ws, "sessions", s.ID, ".claude")
	hist := filepath.Join(dir, "history.json")

	if raw, err := open(t, st, s).ReadHistory(); err != nil || string(raw) != "[]" {
		t.Fatalf("new history = %s, %v", raw, err)
	}
	open(t, st, s).AppendHistory([]byte(`1`))
	open(t, st, s).AppendHistory([]byte(`2`))
	// A crash in the middle of the third append.
	f, _ := os.OpenFile(hist, os.O_RDWR, 0)
	info, _ := f.Stat()
	f.WriteAt([]byte(`,{"tor`), info.Size()-2)
	f.Close()
	if raw, err := open(t, st, s).ReadHistory(); err != nil || string(raw) != "[1,2]" {
		t.Errorf("history after a torn append = %s, %v", raw, err)
	}
	if n, err := open(t, st, s).AppendHistory([]byte(`3`)); err != nil || n != 3 {
		t.Errorf("append after a torn one = %d, %v", n, err)
	}
	if b, _ := os.ReadFile(hist); string(b) != "[1,2,3]\n" {
		t.Errorf("file after recovery = %q", b)
	}

	// A history from before the state record, pretty-printed by an operator.
	os.Remove(filepath.Join(dir, "history.state"))
	os.WriteFile(hist, []byte("[\n  {\"a\": 1},\n  [2]\n]\n\n"), 0o644)
	if raw, err := open(t, st, s).ReadHistory(); err != nil || !json.Valid(raw) {
		t.Errorf("old history read = %s, %v", raw, err)
	}
	if n, err := open(t, st, s).AppendHistory([]byte(`"c"`)); err != nil || n != 3 {
		t.Errorf("append to an old history = %d, %v", n, err)
	}
	var arr []json.RawMessage
	raw, _ := open(t, st, s).ReadHistory()
	if err := json.Unmarshal(raw, &arr); err != nil || len(arr) != 3 || string(arr[2]) != `"c"` {
		t.Errorf("old history after an append = %s (%v)", raw, err)
	}
	if b, _ := os.ReadFile(hist); !strings.HasSuffix(string(b), "]\n") || !json.Valid(b) {
		t.Errorf("file = %q", b)
	}
	// Not an array: refused, not overwritten.
	os.Remove(filepath.Join(dir, "history.state"))
	os.WriteFile(hist, []byte(`{"not":"an array"}`), 0o644)
	if _, err := open(t, st, s).AppendHistory([]byte(`1`)); err == nil {
		t.Error("append to a history that is not an array succeeded")
	}
	if b, _ := os.ReadFile(hist); string(b) != `{"not":"an array"}` {
		t.Errorf("a history that is not an array was changed: %q", b)
	}
}

// BenchmarkHistoryAppend appends 1 KiB entries to a history that already
// holds 30 MiB and to an empty one, alternated in one run: the ratio of the
// bytes allocated per append (big / empty) stays near 1 because an append
// never reads the history.
//
//	go test -run '^$' -bench HistoryAppend -benchtime 200x ./sessions/
func BenchmarkHistoryAppend(b *testing.B) {
	db := testenv.OpenDB(b, testenv.SQLiteDatabase(b))
	st, err := sessions.New(db, b.TempDir(), sessions.Config{MaxHistorySize: 1 << 30}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	big, _ := st.Create(ctx, "alice")
	empty, _ := st.Create(ctx, "alice")
	bigH, emptyH := open(b, st, big), open(b, st, empty)
	entry := []byte(`"` + strings.Repeat("x", 1022) + `"`)
	chunk := []byte(`"` + strings.Repeat("y", 1<<20-2) + `"`)
	for i := 0; i < 30; i++ {
		if _, err := bigH.AppendHistory(chunk); err != nil {
			b.Fatal(err)
		}
	}
	var bigAlloc, emptyAlloc uint64
	var m0, m1 runtime.MemStats
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runtime.ReadMemStats(&m0)
		if _, err := bigH.AppendHistory(entry); err != nil {
			b.Fatal(err)
		}
		runtime.ReadMemStats(&m1)
		bigAlloc += m1.TotalAlloc - m0.TotalAlloc
		if _, err := emptyH.AppendHistory(entry); err != nil {
			b.Fatal(err)
		}
		runtime.ReadMemStats(&m0)
		emptyAlloc += m0.TotalAlloc - m1.TotalAlloc
	}
	b.StopTimer()
	b.ReportMetric(float64(bigAlloc)/float64(b.N), "B/append-30MiB")
	b.ReportMetric(float64(emptyAlloc)/float64(b.N), "B/append-empty")
	b.ReportMetric(float64(bigAlloc)/float64(emptyAlloc), "ratio")
}
