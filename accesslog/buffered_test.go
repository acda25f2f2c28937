package accesslog

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingWriter keeps each Write call's bytes apart.
type recordingWriter struct {
	mu     sync.Mutex
	writes []string
	closed bool
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func (w *recordingWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return nil
}

func (w *recordingWriter) snapshot() ([]string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...), w.closed
}

func TestBufferedWriterBatchesAndFlushesOnClose(t *testing.T) {
	rec := &recordingWriter{}
	b := NewBufferedWriter(rec, 1<<10, time.Hour)
	for i := 0; i < 5; i++ {
		if _, err := b.Write([]byte("entry\n")); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := rec.snapshot(); len(got) != 0 {
		t.Fatalf("written before the buffer filled or was flushed: %q", got)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	got, closed := rec.snapshot()
	if len(got) != 1 || got[0] != strings.Repeat("entry\n", 5) || !closed {
		t.Fatalf("after Close: writes %q, closed %v; want the five entries in one write, closed", got, closed)
	}
	if _, err := b.Write([]byte("late\n")); err == nil {
		t.Fatal("a write after Close succeeded")
	}
	if err := b.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
}

func TestBufferedWriterFlushesEveryInterval(t *testing.T) {
	rec := &recordingWriter{}
	b := NewBufferedWriter(rec, 1<<10, 20*time.Millisecond)
	defer b.Close()
	b.Write([]byte("entry\n"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, _ := rec.snapshot(); len(got) == 1 && got[0] == "entry\n" {
			return
		}
		if time.Now().After(deadline) {
			got, _ := rec.snapshot()
			t.Fatalf("no flush within 5s of an interval of 20ms: %q", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An entry that does not fit in what is left of the buffer goes out whole in
// the next write, not split across two.
func TestBufferedWriterKeepsEntriesWhole(t *testing.T) {
	rec := &recordingWriter{}
	b := NewBufferedWriter(rec, 16, time.Hour)
	entries := []string{"0123456789\n", "abcdefghij\n", "ABCDEFGHIJ\n", strings.Repeat("x", 40) + "\n"}
	for _, e := range entries {
		if _, err := b.Write([]byte(e)); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	got, _ := rec.snapshot()
	for _, w := range got {
		if !strings.HasSuffix(w, "\n") {
			t.Fatalf("a write ends inside an entry: %q (all: %q)", w, got)
		}
	}
	if all := strings.Join(got, ""); all != strings.Join(entries, "") {
		t.Fatalf("written %q, want %q", all, strings.Join(entries, ""))
	}
}

func TestBufferedWriterConcurrentEntriesStayWhole(t *testing.T) {
	var out bytes.Buffer
	rec := &lockedBuffer{b: &out}
	b := NewBufferedWriter(rec, 256, time.Millisecond)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				b.Write([]byte(strings.Repeat("y", 30) + "\n"))
			}
		}()
	}
	wg.Wait()
	b.Close()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 8*200 {
		t.Fatalf("%d lines, want %d", len(lines), 8*200)
	}
	for _, l := range lines {
		if l != strings.Repeat("y", 30) {
			t.Fatalf("a mangled line: %q", l)
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Close() error { return nil }
