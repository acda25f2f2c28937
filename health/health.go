// Package health runs the named checks behind /api/health and /api/ready and
// reports each dependency's state.
package health

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Check reports whether one dependency works; a nil error means healthy.
type Check func(ctx context.Context) error

// The states a dependency can report.
const (
	StatusHealthy  = "healthy"
	StatusDegraded = "degraded"
	StatusDown     = "unavailable"
)

// Service is the state of one dependency in a report.
type Service struct {
	// Status is "healthy" or "unavailable".
	Status string `json:"status"`
	// Critical services make the gateway not ready when they fail.
	Critical bool `json:"-"`
	// Error says what failed; empty when healthy. Operators read it in the log
	// and in the full report; the public summary leaves it out.
	Error string `json:"error,omitempty"`
	// LatencyMS is how long the check took, in milliseconds.
	LatencyMS int64 `json:"latency_ms"`
}

// Report is the outcome of running every check.
type Report struct {
	// Status is "healthy" when every service is, else "degraded".
	Status string `json:"status"`
	// Services holds each dependency's state by name ("database", "docker", …).
	Services map[string]Service `json:"services"`
}

// Ready reports whether every critical service is healthy.
func (r Report) Ready() bool {
	for _, s := range r.Services {
		if s.Critical && s.Status != StatusHealthy {
			return false
		}
	}
	return true
}

type entry struct {
	check    Check
	critical bool
}

// Registry holds the named checks. It is safe for concurrent use.
type Registry struct {
	mu     sync.RWMutex
	checks map[string]entry
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{checks: map[string]entry{}} }

// Register adds or replaces the check called name. A critical check that fails
// makes the gateway not ready; any failing check makes it degraded.
func (r *Registry) Register(name string, critical bool, c Check) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks[name] = entry{check: c, critical: critical}
}

// Unregister removes the check called name.
func (r *Registry) Unregister(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.checks, name)
}

// Names lists the registered checks, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.checks))
	for n := range r.checks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Run runs every check concurrently, each bounded by timeout, and reports.
func (r *Registry) Run(ctx context.Context, timeout time.Duration) Report {
	r.mu.RLock()
	checks := make(map[string]entry, len(r.checks))
	for n, e := range r.checks {
		checks[n] = e
	}
	r.mu.RUnlock()

	rep := Report{Status: StatusHealthy, Services: make(map[string]Service, len(checks))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, e := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			start := time.Now()
			err := e.check(cctx)
			s := Service{Status: StatusHealthy, Critical: e.critical, LatencyMS: time.Since(start).Milliseconds()}
			if err != nil {
				s.Status, s.Error = StatusDown, err.Error()
			}
			mu.Lock()
			rep.Services[name] = s
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, s := range rep.Services {
		if s.Status != StatusHealthy {
			rep.Status = StatusDegraded
		}
	}
	return rep
}
