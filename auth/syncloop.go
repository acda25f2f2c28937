package auth

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// CleanupEvery is how often a SyncLoop deletes expired refresh tokens,
// revocations and login failures.
const CleanupEvery = 15 * time.Minute

// cleanupTimeout bounds one cleanup.
const cleanupTimeout = time.Minute

// staleAfter is how many sync intervals without a successful read of the
// revocation list make Check fail (at least staleFloor).
const (
	staleAfter = 30
	staleFloor = time.Minute
)

// SyncLoop keeps one process's auth state in step with the database shared
// by the replicas: every interval it reads new revocations into the
// snapshot (so a token revoked elsewhere is refused here within one
// interval), and every CleanupEvery it deletes expired refresh tokens,
// revocations and login failures and prunes the in-memory regulator. It runs
// from Start until Stop or until Start's context ends.
type SyncLoop struct {
	revocations *Revocations
	refresh     *RefreshTokens
	memReg      *MemoryRegulator
	sqlReg      *SQLRegulator
	logger      *zap.Logger

	interval atomic.Int64 // time.Duration
	// now is the clock of Check; tests may replace it.
	now func() time.Time

	cancel context.CancelFunc
	done   chan struct{}
}

// NewSyncLoop returns the loop of revocations, refresh, and the two
// regulators (either may be nil), reading revocations every interval
// (DefaultRevocationSync when 0) and logging failures to logger (nil: none).
func NewSyncLoop(revocations *Revocations, refresh *RefreshTokens, memReg *MemoryRegulator, sqlReg *SQLRegulator, interval time.Duration, logger *zap.Logger) *SyncLoop {
	if logger == nil {
		logger = zap.NewNop()
	}
	l := &SyncLoop{revocations: revocations, refresh: refresh, memReg: memReg, sqlReg: sqlReg, logger: logger, now: time.Now}
	l.SetInterval(interval)
	return l
}

// SetInterval changes how often revocations are read (DefaultRevocationSync
// when 0), from the next wait on; a reload with a new revocation_sync calls it.
func (l *SyncLoop) SetInterval(d time.Duration) {
	if d <= 0 {
		d = DefaultRevocationSync
	}
	l.interval.Store(int64(d))
}

// Interval is how often revocations are read.
func (l *SyncLoop) Interval() time.Duration { return time.Duration(l.interval.Load()) }

// Start runs the loop in the background until Stop is called or ctx ends.
// Its first cleanup is right after its first sync. Call it at most once.
func (l *SyncLoop) Start(ctx context.Context) {
	ctx, l.cancel = context.WithCancel(ctx)
	l.done = make(chan struct{})
	go l.run(ctx)
}

// Stop ends the loop and waits for a pass in progress to return. It does
// nothing when Start was not called.
func (l *SyncLoop) Stop() {
	if l.cancel == nil {
		return
	}
	l.cancel()
	<-l.done
}

func (l *SyncLoop) run(ctx context.Context) {
	defer close(l.done)
	nextCleanup := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.Interval()):
		}
		if err := l.revocations.Sync(ctx); err != nil && ctx.Err() == nil {
			l.logger.Error("reading the token revocation list; using the last copy", zap.Error(err),
				zap.Time("last_sync", l.revocations.LastSync()))
		}
		if now := time.Now(); now.After(nextCleanup) {
			nextCleanup = now.Add(CleanupEvery)
			if err := l.cleanup(ctx, now); err != nil && ctx.Err() == nil {
				l.logger.Warn("deleting expired auth rows", zap.Error(err))
			}
		}
	}
}

// cleanup deletes what expired before now.
func (l *SyncLoop) cleanup(ctx context.Context, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	var errs []error
	if l.memReg != nil {
		l.memReg.Prune(now)
	}
	if l.refresh != nil {
		_, err := l.refresh.DeleteExpired(ctx, now)
		errs = append(errs, err)
	}
	_, err := l.revocations.DeleteExpired(ctx, now)
	errs = append(errs, err)
	if l.sqlReg != nil {
		_, err := l.sqlReg.DeleteExpired(ctx, now)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Check fails while the revocation list has not been read for 30 intervals
// (at least a minute): the database is unreachable, and a token revoked
// meanwhile elsewhere is still honoured here. It is the gateway's
// "revocations" health check.
func (l *SyncLoop) Check(context.Context) error {
	bound := max(staleAfter*l.Interval(), staleFloor)
	last := l.revocations.LastSync()
	if age := l.now().Sub(last); last.IsZero() || age > bound {
		return fmt.Errorf("revocation list not read for %s", age.Round(time.Second))
	}
	return nil
}
