package claudeexec

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/sessions"
)

// errRunOverQuota is the cause of a run's cancellation when it wrote its
// session past the quota.
var errRunOverQuota = errors.New("the run wrote past the session's quota")

// minQuotaCheck is the shortest period between two measures of a running
// session's files; a large tree is measured less often (see watchQuota).
const minQuotaCheck = 250 * time.Millisecond

// watchQuota measures the session while a run lasts and cancels the run
// (cause errRunOverQuota) once the session holds more than the quota. The
// period is at least minQuotaCheck and at least four times the last
// measure's duration, so a tree of many files costs at most a quarter of a
// core. The returned stop ends the watch and measures once more, so the
// session's usage counter includes what the run wrote.
func (h *Handler) watchQuota(ctx context.Context, cancel context.CancelCauseFunc, sess *sessions.Handle) (stop func()) {
	id := sess.ID()
	quota := h.sessions.Config().Quota
	if quota <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		period := minQuotaCheck
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-time.After(period):
			}
			began := time.Now()
			used, err := sess.RefreshUsage()
			period = max(minQuotaCheck, 4*time.Since(began))
			if err != nil {
				if !errors.Is(err, sessions.ErrNotFound) {
					h.logger.Warn("measuring a running session", zap.String("session", id), zap.Error(err))
				}
				continue
			}
			if used > quota {
				h.logger.Info("run stopped: the session is over its quota", zap.String("session", id),
					zap.Int64("bytes", used), zap.Int64("quota", quota))
				cancel(errRunOverQuota)
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		if _, err := sess.RefreshUsage(); err != nil && !errors.Is(err, sessions.ErrNotFound) {
			h.logger.Warn("measuring a session after a run", zap.String("session", id), zap.Error(err))
		}
	}
}
