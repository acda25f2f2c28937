package ratelimit

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
)

// DefaultSweepInterval is how often a Sweeper deletes expired counters
// unless told otherwise.
const DefaultSweepInterval = time.Minute

// sweepTimeout bounds one sweep.
const sweepTimeout = 30 * time.Second

// Sweeper deletes a SQL store's expired counters every interval, from Start
// until Stop or until Start's context ends. Expired rows are already ignored
// by hits; sweeping only keeps the table small. One Sweeper per database
// is enough: every replica's sweep deletes the same rows.
type Sweeper struct {
	store    *SQLStore
	interval time.Duration
	logger   *zap.Logger

	cancel context.CancelFunc
	done   chan struct{}
}

// NewSweeper returns a sweeper of store running every interval
// (DefaultSweepInterval when 0), logging failed sweeps to logger (nil: none).
func NewSweeper(store *SQLStore, interval time.Duration, logger *zap.Logger) *Sweeper {
	if interval <= 0 {
		interval = DefaultSweepInterval
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Sweeper{store: store, interval: interval, logger: logger}
}

// Start begins sweeping in the background until Stop is called or ctx
// ends. It must be called at most once.
func (s *Sweeper) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	go s.run(ctx)
}

// Stop ends the sweeping and waits for a sweep in progress to return. It
// does nothing when Start was not called.
func (s *Sweeper) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
}

func (s *Sweeper) run(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			sctx, cancel := context.WithTimeout(ctx, sweepTimeout)
			n, err := s.store.Sweep(sctx, now)
			cancel()
			if err != nil && !errors.Is(err, context.Canceled) {
				s.logger.Warn("deleting expired rate limit counters", zap.Error(err))
			} else if n > 0 {
				s.logger.Debug("deleted expired rate limit counters", zap.Int64("rows", n))
			}
		}
	}
}
