package executor

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// BusyError is returned by Run when every slot is taken and the wait queue
// is full. RetryAfter is a hint for the client.
type BusyError struct {
	// RetryAfter is when trying again is likely to find a slot.
	RetryAfter time.Duration
	// Reason says which limit was hit.
	Reason string
}

// Error says which limit was hit and when to try again.
func (e *BusyError) Error() string {
	return fmt.Sprintf("executor busy: %s; retry after %s", e.Reason, e.RetryAfter)
}

// limiter hands out run slots: at most total at once, at most perUser at
// once per user, at most queue callers waiting, and at most queuePerUser of
// them of one user, so one user's waiting runs never fill the queue for
// everyone. A waiter that cannot run because of its own user's limit does
// not hold up the others behind it.
type limiter struct {
	mu           sync.Mutex
	total        int
	perUser      int
	queue        int
	queuePerUser int
	running      int
	byUser       map[string]int
	waiting      map[string]int // waiters by user
	waiters      []*waiter
	avgRunNS     float64 // moving average of a run's duration, for RetryAfter
}

type waiter struct {
	user  string
	ready chan struct{} // closed when the slot is granted
}

func newLimiter(total, perUser, queue, queuePerUser int) *limiter {
	return &limiter{total: total, perUser: perUser, queue: queue, queuePerUser: queuePerUser,
		byUser: map[string]int{}, waiting: map[string]int{}}
}

// acquire waits for a slot for user and returns its release function.
func (l *limiter) acquire(ctx context.Context, user string) (func(), error) {
	l.mu.Lock()
	// Waiters that could run were granted when a slot freed up, so the
	// ones left are held by their own user's limit: no queue-jumping here.
	if l.canRun(user) {
		l.take(user)
		l.mu.Unlock()
		return l.releaser(user), nil
	}
	if len(l.waiters) >= l.queue {
		retry := l.retryAfter()
		l.mu.Unlock()
		return nil, &BusyError{RetryAfter: retry, Reason: "the run queue is full"}
	}
	if l.waiting[user] >= l.queuePerUser {
		retry := l.retryAfter()
		l.mu.Unlock()
		return nil, &BusyError{RetryAfter: retry, Reason: "the user's waiting runs reached their bound"}
	}
	w := &waiter{user: user, ready: make(chan struct{})}
	l.waiters = append(l.waiters, w)
	l.waiting[user]++
	l.mu.Unlock()

	select {
	case <-w.ready:
		return l.releaser(user), nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		select {
		case <-w.ready: // granted while giving up: hand the slot on
			l.give(user)
		default:
			l.remove(w)
		}
		return nil, ctx.Err()
	}
}

// observe feeds a finished run's duration into the RetryAfter estimate.
func (l *limiter) observe(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.avgRunNS == 0 {
		l.avgRunNS = float64(d)
	} else {
		l.avgRunNS = 0.8*l.avgRunNS + 0.2*float64(d)
	}
}

// stats returns the number of runs holding a slot and waiting for one.
func (l *limiter) stats() (running, queued int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.running, len(l.waiters)
}

func (l *limiter) releaser(user string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.give(user)
		})
	}
}

func (l *limiter) canRun(user string) bool {
	return l.running < l.total && l.byUser[user] < l.perUser
}

func (l *limiter) take(user string) {
	l.running++
	l.byUser[user]++
}

// give returns user's slot and grants the freed capacity to the first
// waiters that may run. Callers hold mu.
func (l *limiter) give(user string) {
	l.running--
	if l.byUser[user]--; l.byUser[user] <= 0 {
		delete(l.byUser, user)
	}
	for i := 0; i < len(l.waiters) && l.running < l.total; {
		w := l.waiters[i]
		if !l.canRun(w.user) {
			i++
			continue
		}
		l.take(w.user)
		l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
		l.unwait(w.user)
		close(w.ready)
	}
}

func (l *limiter) remove(w *waiter) {
	for i, x := range l.waiters {
		if x == w {
			l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
			l.unwait(w.user)
			return
		}
	}
}

// unwait counts one waiter of user fewer. Callers hold mu.
func (l *limiter) unwait(user string) {
	if l.waiting[user]--; l.waiting[user] <= 0 {
		delete(l.waiting, user)
	}
}

// retryAfter estimates when a slot frees up: about one average run, at
// least one second. Callers hold mu.
func (l *limiter) retryAfter() time.Duration {
	d := time.Duration(l.avgRunNS).Round(time.Second)
	return max(d, time.Second)
}
