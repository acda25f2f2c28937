package executor

import (
	"sort"
	"sync"
	"time"
)

// RunInfo describes a run without its code, input or output: what an
// operator may see of it and what the audit trail records.
type RunInfo struct {
	// RunID identifies the run.
	RunID string `json:"run_id"`
	// SessionID and UserID are the run's session and owner.
	SessionID string `json:"session_id"`
	UserID    string `json:"user_id"`
	// Language is the run's language.
	Language string `json:"language"`
	// Started is when the run got its slot.
	Started time.Time `json:"started"`
}

// runTable tracks the runs holding a slot, and tells an observer of each
// finished one.
type runTable struct {
	mu       sync.Mutex
	running  map[string]RunInfo
	observer func(RunInfo, Result, error)
}

// SetObserver sets the function called after every run that got a slot,
// with the run, its result (whose output it must not keep) and its error.
// It is called on the run's goroutine and must not block; nil removes it.
func (e *Executor) SetObserver(f func(RunInfo, Result, error)) {
	e.runs.mu.Lock()
	e.runs.observer = f
	e.runs.mu.Unlock()
}

// Runs returns the runs holding a slot now, oldest first.
func (e *Executor) Runs() []RunInfo {
	e.runs.mu.Lock()
	out := make([]RunInfo, 0, len(e.runs.running))
	for _, r := range e.runs.running {
		out = append(out, r)
	}
	e.runs.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

// begin registers a run; the returned function ends it and tells the observer.
func (t *runTable) begin(info RunInfo) func(Result, error) {
	t.mu.Lock()
	if t.running == nil {
		t.running = map[string]RunInfo{}
	}
	t.running[info.RunID] = info
	t.mu.Unlock()
	return func(res Result, err error) {
		t.mu.Lock()
		delete(t.running, info.RunID)
		obs := t.observer
		t.mu.Unlock()
		if obs != nil {
			obs(info, res, err)
		}
	}
}

// UserLoad is one user's share of the executor.
type UserLoad struct {
	// UserID is the user.
	UserID string `json:"user_id"`
	// Running is how many runs of the user hold a slot.
	Running int `json:"running"`
	// Queued is how many wait for one.
	Queued int `json:"queued"`
}

// Load returns each user's running and queued runs, busiest first.
func (e *Executor) Load() []UserLoad {
	l := e.limits
	l.mu.Lock()
	by := map[string]*UserLoad{}
	get := func(u string) *UserLoad {
		if by[u] == nil {
			by[u] = &UserLoad{UserID: u}
		}
		return by[u]
	}
	for u, n := range l.byUser {
		get(u).Running = n
	}
	for _, w := range l.waiters {
		get(w.user).Queued++
	}
	l.mu.Unlock()
	out := make([]UserLoad, 0, len(by))
	for _, u := range by {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Running+out[i].Queued, out[j].Running+out[j].Queued
		if a != b {
			return a > b
		}
		return out[i].UserID < out[j].UserID
	})
	return out
}
