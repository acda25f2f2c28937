package workspaces

import (
	"sync"
	"testing"
	"time"
)

// recorder collects what a manager's observer hears.
type recorder struct {
	mu    sync.Mutex
	heard []Change
}

func (r *recorder) observe(c Change) {
	r.mu.Lock()
	r.heard = append(r.heard, c)
	r.mu.Unlock()
}

// take returns what was heard since the last take.
func (r *recorder) take() []Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.heard
	r.heard = nil
	return out
}

// TestObserverAndRunning: the observer hears each start and each stop with
// its reason (Stop, the idle sweep, Remove of a running workspace), nothing
// for a stop or removal of a container that does not run; Running reports
// the state of each session's container.
func TestObserverAndRunning(t *testing.T) {
	h := newHarness(t, Config{IdleTimeout: 2 * time.Second})
	ctx := ctxT(t)
	var rec recorder
	h.m.SetObserver(rec.observe)
	a, b := h.session("alice"), h.session("bob")
	check := func(step string, want ...Change) {
		t.Helper()
		got := rec.take()
		if len(got) != len(want) {
			t.Fatalf("%s: heard %+v, want %+v", step, got, want)
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.SessionID != w.SessionID || g.UserID != w.UserID || g.Running != w.Running || g.Reason != w.Reason || g.ContainerID == "" {
				t.Errorf("%s: heard %+v, want %+v", step, g, w)
			}
		}
	}
	wa, err := h.m.Ensure(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Ensure(ctx, a); err != nil {
		t.Fatal(err)
	}
	check("start", Change{SessionID: a.SessionID, UserID: "alice", Running: true})
	if _, err := h.m.Ensure(ctx, b); err != nil {
		t.Fatal(err)
	}
	check("start b", Change{SessionID: b.SessionID, UserID: "bob", Running: true})

	if err := h.m.Stop(ctx, a.SessionID); err != nil {
		t.Fatal(err)
	}
	check("stop", Change{SessionID: a.SessionID, UserID: "alice", Reason: ReasonStopped})
	running, err := h.m.Running(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(running) != 2 || running[a.SessionID] || !running[b.SessionID] {
		t.Errorf("Running after stopping a: %v", running)
	}
	if err := h.m.Stop(ctx, a.SessionID); err != nil {
		t.Fatal(err)
	}
	check("second stop")

	h.mu.Lock()
	h.sessions[b.SessionID] = time.Now().Add(-time.Hour)
	h.mu.Unlock()
	time.Sleep(2 * time.Second)
	if rep, err := h.m.Sweep(ctx); err != nil || rep.Stopped != 1 {
		t.Fatalf("sweep: %+v %v", rep, err)
	}
	check("idle sweep", Change{SessionID: b.SessionID, UserID: "bob", Reason: ReasonIdle})

	if w, err := h.m.Ensure(ctx, a); err != nil || w.ContainerID != wa.ContainerID {
		t.Fatalf("restart: %v", err)
	}
	check("restart", Change{SessionID: a.SessionID, UserID: "alice", Running: true})
	if err := h.m.Remove(ctx, a.SessionID); err != nil {
		t.Fatal(err)
	}
	if err := h.m.Remove(ctx, b.SessionID); err != nil {
		t.Fatal(err)
	}
	check("remove", Change{SessionID: a.SessionID, UserID: "alice", Reason: ReasonRemoved})
	if running, err := h.m.Running(ctx); err != nil || len(running) != 0 {
		t.Errorf("Running after removal: %v %v", running, err)
	}
}
