package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ulule/limiter/v3"
)

// SharedStore is a store whose counters replicas share, and which can count
// the hits of many keys at once. SQLStore is one.
type SharedStore interface {
	limiter.Store
	// IncrementAll adds each Count's hits and fills in its Total and Expires.
	IncrementAll(ctx context.Context, counts []Count) error
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
}

// SyncedStore is a limiter.Store that decides each hit in this process and
// syncs with a shared store every interval, so no request waits for the
// shared store. A sync sends, per key that was hit since the last one, one
// increment with the number of hits, and reads back the key's shared total:
// the shared store's load grows with the number of active keys, not with the
// number of requests.
//
// A key's hits are decided against the shared total of its last sync plus
// the hits this process counted since. What other replicas counted since
// their last sync is unseen, so over a window the replicas together let
// through at most the limit plus the hits each replica receives between the
// start of one sync and the end of the next: about replicas × interval ×
// request rate. A key whose budget is spent is refused by every replica
// after its next sync, so within one interval (plus the time a sync takes).
// A single replica counts exactly.
//
// While the last sync failed, every hit fails with its error (the zone's
// failure policy then applies) and is not counted; the unsent hits are sent
// again by the next sync, which also probes a store that has nothing to send.
type SyncedStore struct {
	shared   SharedStore
	interval time.Duration
	timeout  time.Duration
	// now is the clock; tests may replace it.
	now func() time.Time

	mu       sync.Mutex
	counters map[string]*localCounter
	syncErr  error
	syncs    int64
	sent     int64

	started bool
	stop    chan struct{}
	done    chan struct{}
}

// localCounter is one key's state in a SyncedStore.
type localCounter struct {
	rate limiter.Rate
	// shared is the key's shared total as of the last sync.
	shared int64
	// sending is the hits of the sync under way.
	sending int64
	// pending is the hits counted since the last sync began.
	pending int64
	// reset is when the key's window ends.
	reset time.Time
}

// NewSyncedStore returns a store that syncs with shared every interval, each
// sync bounded by timeout. Call Start to sync every interval and Close to stop.
func NewSyncedStore(shared SharedStore, interval, timeout time.Duration) *SyncedStore {
	return &SyncedStore{
		shared:   shared,
		interval: interval,
		timeout:  timeout,
		now:      time.Now,
		counters: make(map[string]*localCounter),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// Get counts one hit for key and returns the resulting state.
func (s *SyncedStore) Get(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return s.Increment(ctx, key, 1, rate)
}

// Increment counts count hits for key and returns the resulting state.
func (s *SyncedStore) Increment(_ context.Context, key string, count int64, rate limiter.Rate) (limiter.Context, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.syncErr != nil {
		return limiter.Context{}, fmt.Errorf("rate limit store: the last sync failed: %w", s.syncErr)
	}
	c := s.counter(key, rate)
	c.pending += count
	return stateOf(c.rate, c.shared+c.sending+c.pending, c.reset.UnixMilli()), nil
}

// Peek returns the state of key without counting a hit.
func (s *SyncedStore) Peek(_ context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.syncErr != nil {
		return limiter.Context{}, fmt.Errorf("rate limit store: the last sync failed: %w", s.syncErr)
	}
	c := s.counter(key, rate)
	return stateOf(c.rate, c.shared+c.sending+c.pending, c.reset.UnixMilli()), nil
}

// Reset forgets the hits of key, here and in the shared store.
func (s *SyncedStore) Reset(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	s.mu.Lock()
	delete(s.counters, key)
	s.mu.Unlock()
	return s.shared.Reset(ctx, key, rate)
}

// counter returns the counter of key, starting a new window when its last
// one ended. Hits of an ended window that were not sent yet are dropped: the
// shared store would count them in the next window. s.mu must be held.
func (s *SyncedStore) counter(key string, rate limiter.Rate) *localCounter {
	now := s.now()
	c := s.counters[key]
	if c == nil {
		c = &localCounter{rate: rate, reset: now.Add(rate.Period)}
		s.counters[key] = c
	} else if !now.Before(c.reset) {
		c.shared, c.pending, c.reset = 0, 0, now.Add(rate.Period)
	}
	return c
}

// Sync sends the hits counted since the last sync and reads back the shared
// totals of their keys. Counters whose window ended and that have nothing to
// send are forgotten. Start calls it every interval; Close and tests call it
// directly. Syncs must not run concurrently.
func (s *SyncedStore) Sync(ctx context.Context) error {
	s.mu.Lock()
	now := s.now()
	var counts []Count
	var sent []*localCounter
	for key, c := range s.counters {
		if !now.Before(c.reset) {
			c.pending = 0
			delete(s.counters, key)
			continue
		}
		if c.pending == 0 {
			continue
		}
		counts = append(counts, Count{Key: key, Hits: c.pending, Rate: c.rate})
		sent = append(sent, c)
		c.sending, c.pending = c.pending, 0
	}
	failing := s.syncErr != nil
	s.mu.Unlock()

	var err error
	switch {
	case len(counts) > 0:
		err = s.shared.IncrementAll(ctx, counts)
	case failing:
		err = s.shared.Ping(ctx)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncErr = err
	if err == nil && len(counts) > 0 {
		s.syncs++
		s.sent += int64(len(counts))
	}
	for i, c := range sent {
		if err != nil {
			// Sent again by the next sync, unless the window ends first.
			c.pending += c.sending
		} else {
			c.shared, c.reset = counts[i].Total, counts[i].Expires
		}
		c.sending = 0
	}
	return err
}

// Start syncs every interval, in its own goroutine, until Close is called.
func (s *SyncedStore) Start() {
	s.started = true
	go s.run()
}

func (s *SyncedStore) run() {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
			_ = s.Sync(ctx) // kept in syncErr and reported by the next hits
			cancel()
		}
	}
}

// Close stops the syncing Start began and sends the hits not sent yet.
func (s *SyncedStore) Close() error {
	if s.started {
		close(s.stop)
		<-s.done
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	return s.Sync(ctx)
}

// Sent reports how many syncs sent hits so far, and how many key increments
// (statements) they sent together.
func (s *SyncedStore) Sent() (syncs, increments int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncs, s.sent
}

// Keys is the number of keys the store holds counters for.
func (s *SyncedStore) Keys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.counters)
}

// Interface guards
var (
	_ limiter.Store = (*SyncedStore)(nil)
	_ SharedStore   = (*SQLStore)(nil)
)
