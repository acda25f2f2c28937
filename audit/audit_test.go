package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/claude-gateway/claude-gateway/audit"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// newLogger returns a JSON logger writing into buf.
func newLogger(buf *bytes.Buffer) *zap.Logger {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(buf), zap.DebugLevel))
}

func flush(t *testing.T, w *audit.Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestWriterQuery records events through a Writer on both dialects and reads
// them back with each filter and across pages.
func TestWriterQuery(t *testing.T) {
	ctx := context.Background()
	for dialect, setting := range testenv.Databases(t) {
		t.Run(dialect, func(t *testing.T) {
			db := testenv.OpenDB(t, setting)
			var log bytes.Buffer
			w := audit.NewWriter(db, newLogger(&log), audit.Config{})
			defer w.Close()
			base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
			for i := range 7 {
				w.Record(audit.Event{Time: base.Add(time.Duration(i) * time.Minute), Kind: audit.SignIn, Actor: "alice", ClientIP: "192.0.2.1"})
			}
			w.Record(audit.Event{Time: base.Add(10 * time.Minute), Kind: audit.SignInFailed, Actor: "bob", Outcome: "invalid_credentials", ClientIP: "192.0.2.9"})
			w.Record(audit.Event{Time: base.Add(11 * time.Minute), Kind: audit.UserDisabled, Actor: "admin", Subject: "bob"})
			w.Record(audit.Event{Time: base.Add(12 * time.Minute), Kind: audit.Run, Actor: "alice", Subject: "session-x",
				Details: map[string]string{"language": "python", "exit_code": "0", "duration_ms": "12"}})
			flush(t, w)
			if w.Written() != 10 || w.Dropped() != 0 || w.Failed() != 0 {
				t.Fatalf("written %d dropped %d failed %d, want 10 0 0", w.Written(), w.Dropped(), w.Failed())
			}

			all, err := audit.Query(ctx, db, audit.Filter{})
			if err != nil || len(all.Events) != 10 || all.Next != 0 {
				t.Fatalf("all: %d events, next %d, %v", len(all.Events), all.Next, err)
			}
			if all.Events[0].Kind != audit.Run || all.Events[0].Details["exit_code"] != "0" || all.Events[0].Details["language"] != "python" {
				t.Fatalf("newest event %+v", all.Events[0])
			}
			bob, err := audit.Query(ctx, db, audit.Filter{User: "bob"})
			if err != nil || len(bob.Events) != 2 {
				t.Fatalf("bob (actor or subject): %d events, %v", len(bob.Events), err)
			}
			failed, err := audit.Query(ctx, db, audit.Filter{Kind: audit.SignInFailed})
			if err != nil || len(failed.Events) != 1 || failed.Events[0].Outcome != "invalid_credentials" || failed.Events[0].ClientIP != "192.0.2.9" {
				t.Fatalf("failed sign-ins: %+v, %v", failed.Events, err)
			}
			window, err := audit.Query(ctx, db, audit.Filter{Since: base.Add(2 * time.Minute), Until: base.Add(5 * time.Minute)})
			if err != nil || len(window.Events) != 3 {
				t.Fatalf("window: %d events, %v; want 3", len(window.Events), err)
			}
			// Pages of 3 over the 7 sign-ins: 3, 3, 1, newest first, no overlap.
			var seen []int64
			var before int64
			for page := 0; ; page++ {
				p, err := audit.Query(ctx, db, audit.Filter{Kind: audit.SignIn, Limit: 3, Before: before})
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range p.Events {
					if len(seen) > 0 && e.ID >= seen[len(seen)-1] {
						t.Fatalf("page %d: id %d not below %d", page, e.ID, seen[len(seen)-1])
					}
					seen = append(seen, e.ID)
				}
				if p.Next == 0 {
					break
				}
				before = p.Next
			}
			if len(seen) != 7 {
				t.Fatalf("paging saw %d sign-ins, want 7", len(seen))
			}
			if n := strings.Count(log.String(), `"msg":"audit"`); n != 10 {
				t.Fatalf("the log has %d audit entries, want 10:\n%s", n, log.String())
			}
		})
	}
}

// TestRetention: events older than the retention go at the writer's start
// (and hourly); newer ones stay.
func TestRetention(t *testing.T) {
	ctx := context.Background()
	db := testenv.OpenDB(t, testenv.SQLiteDatabase(t))
	old := audit.Event{Time: time.Now().Add(-48 * time.Hour), Kind: audit.Logout, Actor: "old"}
	recent := audit.Event{Time: time.Now().Add(-time.Hour), Kind: audit.Logout, Actor: "recent"}
	if err := audit.Insert(ctx, db, old, recent); err != nil {
		t.Fatal(err)
	}
	w := audit.NewWriter(db, nil, audit.Config{Retention: 24 * time.Hour})
	flush(t, w)
	w.Close()
	p, err := audit.Query(ctx, db, audit.Filter{})
	if err != nil || len(p.Events) != 1 || p.Events[0].Actor != "recent" {
		t.Fatalf("after the purge: %+v, %v", p.Events, err)
	}
}

// TestNoSecretInEvent: detail keys that could carry a secret are redacted
// before the database and the log see them, and fields are cut to size.
func TestNoSecretInEvent(t *testing.T) {
	ctx := context.Background()
	const secret = "s3cr3t-VALUE-never-stored"
	db := testenv.OpenDB(t, testenv.SQLiteDatabase(t))
	var log bytes.Buffer
	w := audit.NewWriter(db, newLogger(&log), audit.Config{})
	w.Record(audit.Event{Kind: audit.SignInFailed, Actor: "mallory\nforged line", Outcome: strings.Repeat("x", 1000),
		Details: map[string]string{"password": secret, "Access_Token": secret, "cookie": secret, "secret_key": secret,
			"code": secret, "stdout": secret, "authorization": secret, "language": "bash", "exit_code": "1"}})
	flush(t, w)
	w.Close()
	var dump strings.Builder
	rows, err := db.QueryContext(ctx, "SELECT kind, actor, actor_id, subject, client_ip, outcome, details FROM audit_events")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var cols [7]string
		if err := rows.Scan(&cols[0], &cols[1], &cols[2], &cols[3], &cols[4], &cols[5], &cols[6]); err != nil {
			t.Fatal(err)
		}
		dump.WriteString(strings.Join(cols[:], "|"))
	}
	rows.Close()
	for where, text := range map[string]string{"table": dump.String(), "log": log.String()} {
		if strings.Contains(text, secret) {
			t.Errorf("the %s holds the secret: %s", where, text)
		}
		if !strings.Contains(text, "bash") {
			t.Errorf("the %s lost a harmless detail: %s", where, text)
		}
	}
	p, err := audit.Query(ctx, db, audit.Filter{})
	if err != nil || len(p.Events) != 1 {
		t.Fatal(p, err)
	}
	e := p.Events[0]
	if strings.ContainsAny(e.Actor, "\n\r") || len([]rune(e.Outcome)) != 191 || e.Details["exit_code"] != "1" || e.Details["password"] != "[redacted]" {
		t.Fatalf("stored event %+v", e)
	}
	b, _ := json.Marshal(e)
	if strings.Contains(string(b), secret) {
		t.Fatal(string(b))
	}
}

// TestRecordNeverBlocks: with the database gone, Record still returns at
// once; the events are counted as failed (and logged), never waited for.
func TestRecordNeverBlocks(t *testing.T) {
	db := testenv.OpenDB(t, testenv.SQLiteDatabase(t))
	var log bytes.Buffer
	w := audit.NewWriter(db, newLogger(&log), audit.Config{Buffer: 8})
	db.Close()
	start := time.Now()
	for range 10_000 {
		w.Record(audit.Event{Kind: audit.Run, Actor: "alice"})
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("10000 records took %s", d)
	}
	flush(t, w)
	w.Close()
	if w.Written() != 0 || w.Failed() == 0 || w.Dropped() == 0 || w.Failed()+w.Dropped() != 10_000 {
		t.Fatalf("written %d failed %d dropped %d; want 0 written and 10000 failed or dropped", w.Written(), w.Failed(), w.Dropped())
	}
	if !strings.Contains(log.String(), "they are in this log only") {
		t.Fatalf("no error logged:\n%s", log.String())
	}
}

// TestNilWriter: a nil writer records nothing and does not panic.
func TestNilWriter(t *testing.T) {
	var w *audit.Writer
	w.Record(audit.Event{Kind: audit.Logout})
	if err := w.Flush(context.Background()); err != nil || w.Close() != nil || w.Retention() != 0 {
		t.Fatal("nil writer")
	}
}

// BenchmarkRecord measures Record against a plain channel send with a
// default case (the floor any non-blocking hand-off pays).
func BenchmarkRecord(b *testing.B) {
	db := testenv.OpenDB(b, testenv.SQLiteDatabase(b))
	w := audit.NewWriter(db, nil, audit.Config{Buffer: 1 << 16})
	defer w.Close()
	e := audit.Event{Kind: audit.Run, Actor: "alice", Subject: "session-x", Details: map[string]string{"language": "python"}}
	b.Run("record", func(b *testing.B) {
		for b.Loop() {
			w.Record(e)
		}
	})
	b.Run("baseline_chan", func(b *testing.B) {
		ch := make(chan audit.Event, 1<<16)
		go func() {
			for range ch {
			}
		}()
		for b.Loop() {
			select {
			case ch <- e:
			default:
			}
		}
		close(ch)
	})
}
