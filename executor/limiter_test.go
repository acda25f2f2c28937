package executor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/containerlimits"
)

// TestLimiter drives the slot logic without containers: global and per-user
// limits, the bounded queue, no head-of-line blocking, cancelled waiters.
func TestLimiter(t *testing.T) {
	type step struct {
		user    string
		want    string // "run", "wait", "busy"
		release int    // >0: release the slot of step number release-1 first
	}
	tests := []struct {
		name                  string
		total, perUser, queue int
		queuePerUser          int // 0: queue
		steps                 []step
	}{
		{"global limit then queue then busy", 2, 2, 1, 0, []step{
			{"a", "run", 0}, {"b", "run", 0}, {"c", "wait", 0}, {"d", "busy", 0},
		}},
		{"per-user limit queues that user only", 3, 1, 2, 0, []step{
			{"a", "run", 0}, {"a", "wait", 0}, {"b", "run", 0}, {"c", "run", 0}, {"d", "wait", 0}, {"e", "busy", 0},
		}},
		{"one user's waiting runs leave room for others", 1, 1, 3, 2, []step{
			{"a", "run", 0}, {"a", "wait", 0}, {"a", "wait", 0}, {"a", "busy", 0}, {"b", "wait", 0},
		}},
		{"no queue", 1, 1, -1, 0, []step{
			{"a", "run", 0}, {"b", "busy", 0},
		}},
		{"a freed slot goes to the first waiter that may run", 2, 1, 2, 0, []step{
			{"a", "run", 0}, {"b", "run", 0}, {"a", "wait", 0}, {"c", "wait", 0},
			// b's slot frees: a is still at its own limit, so c runs.
			{"", "", 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			qpu := tt.queuePerUser
			if qpu == 0 {
				qpu = max(tt.queue, 0)
			}
			l := newLimiter(tt.total, tt.perUser, tt.queue, qpu)
			releases := map[int]func(){}
			waiting := map[int]chan func(){}
			for i, s := range tt.steps {
				if s.release > 0 {
					releases[s.release-1]()
					continue
				}
				_, queued := l.stats()
				got := make(chan func(), 1)
				errc := make(chan error, 1)
				go func() {
					rel, err := l.acquire(context.Background(), s.user)
					if err != nil {
						errc <- err
						return
					}
					got <- rel
				}()
				rel, waits, err := outcome(l, queued, got, errc)
				switch {
				case waits:
					if s.want != "wait" {
						t.Fatalf("step %d (%s): waits, want %s", i, s.user, s.want)
					}
					waiting[i] = got
				case err == nil:
					if s.want != "run" {
						t.Fatalf("step %d (%s): ran, want %s", i, s.user, s.want)
					}
					releases[i] = rel
				default:
					var be *BusyError
					if s.want != "busy" || !errors.As(err, &be) {
						t.Fatalf("step %d (%s): %v, want %s", i, s.user, err, s.want)
					}
				}
			}
			if tt.name == "a freed slot goes to the first waiter that may run" {
				select {
				case <-waiting[3]: // c
				case <-time.After(time.Second):
					t.Fatal("c did not get the freed slot")
				}
				select {
				case <-waiting[2]:
					t.Fatal("a ran past its per-user limit")
				default:
				}
			}
		})
	}
}

func TestLimiterCancelledWaiterLeavesTheQueue(t *testing.T) {
	l := newLimiter(1, 1, 1, 1)
	rel, err := l.acquire(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := l.acquire(ctx, "b")
		errc <- err
	}()
	if _, waits, err := outcome(l, 0, nil, errc); !waits {
		t.Fatalf("b did not wait: %v", err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if _, q := l.stats(); q != 0 {
		t.Fatalf("queued %d after the cancel", q)
	}
	rel()
	rel() // twice is harmless
	if r, _ := l.stats(); r != 0 {
		t.Fatalf("running %d after release", r)
	}
	// The slot is free again for anyone.
	rel2, err := l.acquire(context.Background(), "c")
	if err != nil {
		t.Fatal(err)
	}
	rel2()
}

// outcome waits until an acquire started in a goroutine either returned
// (on got or errc) or joined the queue, which then holds more than queued
// callers: it never mistakes a slow goroutine for a waiting one.
func outcome(l *limiter, queued int, got <-chan func(), errc <-chan error) (rel func(), waits bool, err error) {
	for {
		select {
		case rel := <-got:
			return rel, false, nil
		case err := <-errc:
			return nil, false, err
		default:
		}
		if _, q := l.stats(); q > queued {
			return nil, true, nil
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{}, true},
		{"root user", Config{User: "0:0"}, false},
		{"root by name", Config{User: "root"}, false},
		{"root by name with a group", Config{User: "root:1000"}, false},
		{"uid 0 spelt 00", Config{User: "00:1000"}, false},
		{"no user, only a group (the image's user, often root)", Config{User: ":1000"}, false},
		{"named user", Config{User: "sandbox"}, true},
		{"uid only", Config{User: "1000"}, true},
		{"tiny memory", Config{Limits: containerlimits.Limits{Memory: 1 << 20}}, false},
		{"max below default timeout", Config{Timeout: time.Minute, MaxTimeout: time.Second * 30}, false},
		{"per_user above concurrency", Config{Concurrency: 2, PerUser: 3}, false},
		{"relative daemon workspace", Config{DaemonWorkspace: "workspaces"}, false},
		{"cert without key", Config{TLSCert: "c.pem"}, false},
		{"no queue", Config{Queue: -1}, true},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
