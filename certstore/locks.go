package certstore

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/database"
)

// ErrLockLost is returned by Unlock when the lease of the lock ran out (its
// renewal failed for longer than the lease) and another owner took it over:
// the critical section was not exclusive to the end.
var ErrLockLost = errors.New("lock lease lost to another owner")

// processNonce tells apart processes that share an instance id (the same data
// directory), and restarts of one process.
var processNonce = randomHex(6)

// heldLock is a lock this Storage holds, with its background renewal.
type heldLock struct {
	name  string
	hash  string
	token string
	fence int64
	stop  context.CancelFunc
	done  chan struct{}
}

// Lock takes the lock name, blocking until it is free (released, or its
// holder's lease ran out) or ctx ends. While held, the lease is renewed in
// the background; release it with Unlock.
func (s *Storage) Lock(ctx context.Context, name string) error {
	wait := 25 * time.Millisecond
	for {
		ok, err := s.TryLock(ctx, name)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		// Equal jitter: half the wait fixed, half random, so contenders
		// that collided once spread out.
		d := wait/2 + rand.N(wait/2+1)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("certstore: waiting for lock %q: %w", name, context.Cause(ctx))
		case <-t.C:
		}
		wait = min(wait*2, s.poll)
	}
}

// TryLock takes the lock name if it is free right now, with one conditional
// write: insert the lock row, or take over a row whose lease has expired.
func (s *Storage) TryLock(ctx context.Context, name string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("certstore: lock %q: %w", name, err)
	}
	h := &heldLock{name: name, hash: hashKey(name), token: randomHex(16)}
	_, err := s.db.ExecContext(ctx, s.acquireSQL(), h.hash, name, s.owner, h.token, s.lease.Milliseconds())
	if err != nil {
		if transient(err) {
			return false, nil
		}
		// The statement may have run before the error (a cancelled
		// context, a lost connection): give back what we may hold.
		s.releaseQuietly(h)
		return false, fmt.Errorf("certstore: lock %q: %w", name, err)
	}
	// Learn the outcome: the row carries our token only if the write took.
	// This read does not depend on the driver's affected-rows semantics.
	var token string
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = s.db.QueryRowContext(bg, "SELECT token, fence FROM cert_locks WHERE name_hash = ?", h.hash).Scan(&token, &h.fence)
	if err != nil {
		s.releaseQuietly(h)
		return false, fmt.Errorf("certstore: lock %q: reading the lock row: %w", name, err)
	}
	if token != h.token {
		return false, nil
	}
	renewCtx, stop := context.WithCancel(context.Background())
	h.stop, h.done = stop, make(chan struct{})
	s.mu.Lock()
	if prev := s.held[name]; prev != nil {
		// A lease this Storage lost without Unlock: its renewal has
		// ended, and no Unlock will ever find it now.
		prev.stop()
		s.active--
	}
	s.held[name] = h
	s.active++
	s.mu.Unlock()
	go s.keepAlive(renewCtx, h)
	return true, nil
}

// Unlock releases the lock name if this Storage holds it. It fails when this
// Storage does not hold the lock (nothing is changed: only the owner can
// release), and with ErrLockLost when the lease was taken over meanwhile.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h := s.held[name]
	// Forget the lock before releasing it, so a Lock of this Storage that
	// wins the row right after the release is not forgotten instead.
	delete(s.held, name)
	s.mu.Unlock()
	if h == nil {
		return fmt.Errorf("certstore: unlock %q: not held by this storage (%s)", name, s.owner)
	}
	h.stop()
	<-h.done
	defer s.doneWith()
	res, err := s.db.ExecContext(ctx,
		"UPDATE cert_locks SET expires_at = 0, owner = '', token = '' WHERE name_hash = ? AND token = ?",
		h.hash, h.token)
	if err != nil {
		return fmt.Errorf("certstore: unlock %q: %w (the lease expires on its own)", name, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("certstore: unlock %q: %w", name, ErrLockLost)
	}
	return nil
}

// doneWith counts one lock as fully released, waking Drained waiters when
// it was the last.
func (s *Storage) doneWith() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.active == 0 {
		for _, ch := range s.drained {
			close(ch)
		}
		s.drained = nil
	}
}

// Drained returns a channel that is closed once this Storage holds no lock
// and no release is in flight: the moment its database pool may be closed
// without breaking an Unlock still to come.
func (s *Storage) Drained() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	if s.active == 0 {
		close(ch)
	} else {
		s.drained = append(s.drained, ch)
	}
	return ch
}

// Fence returns the fencing token of the lock name while this Storage holds
// it: a number that grows with every acquisition of that name, so a resource
// guarded by the lock can refuse writes from an older holder.
func (s *Storage) Fence(name string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.held[name]
	if h == nil {
		return 0, false
	}
	return h.fence, true
}

// keepAlive renews h's lease every third of the lease until Unlock stops it
// or the lease is lost. A failed renewal is retried sooner; a lease that
// expires meanwhile is lost, never silently revived.
func (s *Storage) keepAlive(ctx context.Context, h *heldLock) {
	defer close(h.done)
	interval := s.lease / 3
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, interval)
		held, err := s.renew(rctx, h)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.logger.Warn("renewing lock lease", zap.String("lock", h.name), zap.Error(err))
			t.Reset(interval / 4)
		case !held:
			s.logger.Error("lock lease lost: it expired before it could be renewed",
				zap.String("lock", h.name), zap.Int64("fence", h.fence))
			return
		default:
			t.Reset(interval)
		}
	}
}

// renew extends h's lease if h still holds it and the lease has not expired.
func (s *Storage) renew(ctx context.Context, h *heldLock) (bool, error) {
	_, err := s.db.ExecContext(ctx,
		"UPDATE cert_locks SET expires_at = "+s.now+" + ? WHERE name_hash = ? AND token = ? AND expires_at > "+s.now,
		s.lease.Milliseconds(), h.hash, h.token)
	if err != nil {
		return false, err
	}
	var held bool
	err = s.db.QueryRowContext(ctx,
		"SELECT COUNT(*) > 0 FROM cert_locks WHERE name_hash = ? AND token = ? AND expires_at > "+s.now,
		h.hash, h.token).Scan(&held)
	return held, err
}

// releaseQuietly gives back a lock row that may carry h's token, after an
// acquisition whose outcome is unknown. Failures only delay the takeover
// until the lease expires.
func (s *Storage) releaseQuietly(h *heldLock) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.db.ExecContext(ctx,
		"UPDATE cert_locks SET expires_at = 0, owner = '', token = '' WHERE name_hash = ? AND token = ?",
		h.hash, h.token); err != nil {
		s.logger.Warn("giving back a lock after a failed acquisition", zap.String("lock", h.name), zap.Error(err))
	}
}

// acquireSQL is the single conditional write that takes a lock: it inserts
// the row, or takes over the existing row only when its lease has expired.
// Arguments: name_hash, name, owner, token, lease in milliseconds.
func (s *Storage) acquireSQL() string {
	now := s.now
	if s.db.Dialect == database.MySQL {
		// Assignments run left to right and see earlier ones, so
		// expires_at, which every condition reads, is assigned last.
		expired := "expires_at <= " + now
		return `INSERT INTO cert_locks (name_hash, name, owner, token, fence, acquired_at, expires_at)
			VALUES (?, ?, ?, ?, 1, ` + now + `, ` + now + ` + ?)
			ON DUPLICATE KEY UPDATE
				owner = IF(` + expired + `, VALUES(owner), owner),
				token = IF(` + expired + `, VALUES(token), token),
				fence = IF(` + expired + `, fence + 1, fence),
				acquired_at = IF(` + expired + `, VALUES(acquired_at), acquired_at),
				expires_at = IF(` + expired + `, VALUES(expires_at), expires_at)`
	}
	return `INSERT INTO cert_locks (name_hash, name, owner, token, fence, acquired_at, expires_at)
		VALUES (?, ?, ?, ?, 1, ` + now + `, ` + now + ` + ?)
		ON CONFLICT (name_hash) DO UPDATE SET
			owner = excluded.owner, token = excluded.token, fence = cert_locks.fence + 1,
			acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
		WHERE cert_locks.expires_at <= ` + now
}

// transient reports errors after which a lock attempt simply counts as not
// acquired: write conflicts between contenders.
func transient(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1213 || me.Number == 1205 // deadlock, lock wait timeout
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		c := coded.Code() & 0xff
		return c == 5 || c == 6 // SQLITE_BUSY, SQLITE_LOCKED
	}
	return false
}

func defaultOwner() string {
	host, _ := os.Hostname()
	return host + "/pid-" + strconv.Itoa(os.Getpid())
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := cryptorand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}
