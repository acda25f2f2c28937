package certstore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/certstore"
	"github.com/claude-gateway/claude-gateway/database"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// replicas returns n Storages over one database, as n gateway replicas
// sharing it would have: each with its own pool and owner.
func replicas(t *testing.T, setting string, n int, lease time.Duration) []*certstore.Storage {
	t.Helper()
	out := make([]*certstore.Storage, n)
	for i := range out {
		s, err := certstore.New(testenv.OpenDB(t, setting), certstore.Options{
			Owner: fmt.Sprintf("replica-%d", i), Lease: lease, PollInterval: 100 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = s
	}
	return out
}

func forEachSetting(t *testing.T, f func(t *testing.T, setting string)) {
	for dialect, setting := range testenv.Databases(t) {
		t.Run(dialect, func(t *testing.T) { f(t, setting) })
	}
}

func TestTryLockOwnership(t *testing.T) {
	forEachSetting(t, func(t *testing.T, setting string) {
		ctx := context.Background()
		r := replicas(t, setting, 2, 5*time.Second)
		a, b := r[0], r[1]

		ok, err := a.TryLock(ctx, "issue_cert_app.test")
		if err != nil || !ok {
			t.Fatalf("TryLock of a free lock = %v, %v", ok, err)
		}
		first, held := a.Fence("issue_cert_app.test")
		if !held {
			t.Fatal("Fence: the holder does not know its lock")
		}
		ok, err = b.TryLock(ctx, "issue_cert_app.test")
		if err != nil || ok {
			t.Fatalf("TryLock of a held lock by another replica = %v, %v", ok, err)
		}
		// The holder itself cannot take it twice either: it is a mutex.
		ok, err = a.TryLock(ctx, "issue_cert_app.test")
		if err != nil || ok {
			t.Fatalf("second TryLock by the holder = %v, %v", ok, err)
		}
		// Only the owner releases.
		if err := b.Unlock(ctx, "issue_cert_app.test"); err == nil {
			t.Fatal("a replica released a lock it does not hold")
		}
		if ok, _ := b.TryLock(ctx, "issue_cert_app.test"); ok {
			t.Fatal("the lock was free after a non-owner's Unlock")
		}
		if err := a.Unlock(ctx, "issue_cert_app.test"); err != nil {
			t.Fatalf("owner's Unlock: %v", err)
		}
		if err := a.Unlock(ctx, "issue_cert_app.test"); err == nil {
			t.Fatal("a second Unlock succeeded")
		}
		ok, err = b.TryLock(ctx, "issue_cert_app.test")
		if err != nil || !ok {
			t.Fatalf("TryLock after release = %v, %v", ok, err)
		}
		second, _ := b.Fence("issue_cert_app.test")
		if second <= first {
			t.Fatalf("fencing token went from %d to %d, want it to grow", first, second)
		}
		if err := b.Unlock(ctx, "issue_cert_app.test"); err != nil {
			t.Fatal(err)
		}

		// Names of any length, and names that differ only past any index prefix.
		long := make([]string, 2)
		for i := range long {
			long[i] = fmt.Sprintf("%0600d", i)
		}
		for _, name := range long {
			if ok, err := a.TryLock(ctx, name); err != nil || !ok {
				t.Fatalf("TryLock(long name) = %v, %v", ok, err)
			}
		}
		for _, name := range long {
			if err := a.Unlock(ctx, name); err != nil {
				t.Fatalf("Unlock(long name): %v", err)
			}
		}
	})
}

func TestLockWaitsForRelease(t *testing.T) {
	forEachSetting(t, func(t *testing.T, setting string) {
		ctx := context.Background()
		r := replicas(t, setting, 2, 5*time.Second)
		if err := r[0].Lock(ctx, "wait"); err != nil {
			t.Fatal(err)
		}
		// Blocked until its context ends.
		short, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
		err := r[1].Lock(short, "wait")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Lock of a held lock with a short context = %v, want DeadlineExceeded", err)
		}
		// Blocked until the holder releases.
		acquired := make(chan error, 1)
		var released atomic.Bool
		go func() {
			err := r[1].Lock(ctx, "wait")
			if err == nil && !released.Load() {
				err = errors.New("acquired before the holder released")
			}
			acquired <- err
		}()
		time.Sleep(300 * time.Millisecond)
		released.Store(true)
		if err := r[0].Unlock(ctx, "wait"); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-acquired:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the waiter did not get the released lock")
		}
		if err := r[1].Unlock(ctx, "wait"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestMutualExclusion: many goroutines of several replicas increment a
// counter kept in the database with a deliberately racy read-sleep-write,
// guarded only by the lock. A second holder shows as an overlap, and as a
// lost update in the final count.
func TestMutualExclusion(t *testing.T) {
	forEachSetting(t, func(t *testing.T, setting string) {
		const workers, rounds = 12, 5
		ctx := context.Background()
		r := replicas(t, setting, 4, 3*time.Second)
		var holders, overlaps atomic.Int32
		var wg sync.WaitGroup
		errs := make(chan error, workers*rounds)
		for w := range workers {
			s := r[w%len(r)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range rounds {
					if err := s.Lock(ctx, "counter"); err != nil {
						errs <- err
						return
					}
					if holders.Add(1) != 1 {
						overlaps.Add(1)
					}
					err := incrementSlowly(ctx, s, "counter-value")
					holders.Add(-1)
					if err != nil {
						errs <- err
					}
					if err := s.Unlock(ctx, "counter"); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := overlaps.Load(); n != 0 {
			t.Fatalf("%d times two goroutines held the lock at once", n)
		}
		if got := readCounter(t, r[0], "counter-value"); got != workers*rounds {
			t.Fatalf("counter = %d after %d locked increments: updates were lost", got, workers*rounds)
		}
	})
}

// incrementSlowly adds one to the integer at key with a read, a pause and a
// write: correct only under mutual exclusion.
func incrementSlowly(ctx context.Context, s *certstore.Storage, key string) error {
	n := 0
	if b, err := s.Load(ctx, key); err == nil {
		n, _ = strconv.Atoi(string(b))
	}
	time.Sleep(5 * time.Millisecond)
	return s.Store(ctx, key, []byte(strconv.Itoa(n+1)))
}

func readCounter(t *testing.T, s *certstore.Storage, key string) int {
	t.Helper()
	b, err := s.Load(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLockOutlivesLease holds a lock for several leases: background renewal
// keeps it, so no other replica gets it until Unlock.
func TestLockOutlivesLease(t *testing.T) {
	forEachSetting(t, func(t *testing.T, setting string) {
		ctx := context.Background()
		const lease = time.Second
		r := replicas(t, setting, 2, lease)
		if err := r[0].Lock(ctx, "long"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(4 * lease)
		attempts := 0
		for time.Now().Before(deadline) {
			ok, err := r[1].TryLock(ctx, "long")
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				t.Fatalf("another replica took the lock %s before the end of a hold of %s with a %s lease", time.Until(deadline), 4*lease, lease)
			}
			attempts++
			time.Sleep(50 * time.Millisecond)
		}
		if attempts < 10 {
			t.Fatalf("only %d attempts to steal the lock", attempts)
		}
		if err := r[0].Unlock(ctx, "long"); err != nil {
			t.Fatalf("Unlock after a long hold: %v", err)
		}
		if ok, err := r[1].TryLock(ctx, "long"); err != nil || !ok {
			t.Fatalf("TryLock after the long hold = %v, %v", ok, err)
		}
		r[1].Unlock(ctx, "long")
	})
}

// TestLostLease: when a holder's lease ran out (here: forced in the table)
// and another replica took over, the old holder's Unlock reports the loss
// and leaves the new holder's lock alone.
func TestLostLease(t *testing.T) {
	forEachSetting(t, func(t *testing.T, setting string) {
		ctx := context.Background()
		r := replicas(t, setting, 2, 5*time.Second)
		if err := r[0].Lock(ctx, "lost"); err != nil {
			t.Fatal(err)
		}
		db := testenv.OpenDB(t, setting)
		if _, err := db.ExecContext(ctx, "UPDATE cert_locks SET expires_at = 1"); err != nil {
			t.Fatal(err)
		}
		if ok, err := r[1].TryLock(ctx, "lost"); err != nil || !ok {
			t.Fatalf("TryLock of an expired lease = %v, %v", ok, err)
		}
		if err := r[0].Unlock(ctx, "lost"); !errors.Is(err, certstore.ErrLockLost) {
			t.Fatalf("Unlock of a lost lease = %v, want ErrLockLost", err)
		}
		if ok, _ := r[0].TryLock(ctx, "lost"); ok {
			t.Fatal("the old holder's Unlock released the new holder's lock")
		}
		if err := r[1].Unlock(ctx, "lost"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDatabaseClock: leases are measured on the database's clock, in the
// schema's unit (Unix milliseconds), so replicas with skewed clocks agree.
func TestDatabaseClock(t *testing.T) {
	forEachSetting(t, func(t *testing.T, setting string) {
		ctx := context.Background()
		const lease = 4 * time.Second
		r := replicas(t, setting, 1, lease)
		before := database.NowMillis()
		if err := r[0].Lock(ctx, "clock"); err != nil {
			t.Fatal(err)
		}
		after := database.NowMillis()
		defer r[0].Unlock(ctx, "clock")
		var acquired, expires int64
		db := testenv.OpenDB(t, setting)
		if err := db.QueryRowContext(ctx, "SELECT acquired_at, expires_at FROM cert_locks").Scan(&acquired, &expires); err != nil {
			t.Fatal(err)
		}
		// The test database runs on this machine: its clock is ours, give or take.
		if acquired < before-2000 || acquired > after+2000 {
			t.Fatalf("acquired_at = %d, want within [%d, %d]", acquired, before, after)
		}
		if expires-acquired != lease.Milliseconds() {
			t.Fatalf("expires_at - acquired_at = %d ms, want the lease, %d ms", expires-acquired, lease.Milliseconds())
		}
	})
}

// TestDrained: the storage tells when no lock is held or being released, so
// the pool under it may close without failing a pending Unlock.
func TestDrained(t *testing.T) {
	forEachSetting(t, func(t *testing.T, setting string) {
		ctx := context.Background()
		s := replicas(t, setting, 1, 5*time.Second)[0]
		isClosed := func(ch <-chan struct{}) bool {
			select {
			case <-ch:
				return true
			default:
				return false
			}
		}
		if !isClosed(s.Drained()) {
			t.Fatal("Drained is open with no lock held")
		}
		for _, name := range []string{"a", "b"} {
			if err := s.Lock(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		drained := s.Drained()
		if isClosed(drained) {
			t.Fatal("Drained is closed while locks are held")
		}
		if err := s.Unlock(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if isClosed(drained) {
			t.Fatal("Drained closed while a lock is still held")
		}
		if err := s.Unlock(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		if !isClosed(drained) {
			t.Fatal("Drained stayed open after the last Unlock")
		}
	})
}
