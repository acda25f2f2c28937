package claudeexec

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/apierror"
	"github.com/claude-gateway/claude-gateway/audit"
	"github.com/claude-gateway/claude-gateway/executor"
	"github.com/claude-gateway/claude-gateway/identity"
)

// statusResponse is the body of GET /api/executor.
type statusResponse struct {
	Available bool `json:"available"`
	executor.Stats
}

// status answers GET /api/executor: whether the daemon answers, and the load.
func (h *Handler) status(w http.ResponseWriter, r *http.Request, _ identity.User) error {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	err := h.exec.IsAvailable(ctx)
	apierror.WriteJSON(w, http.StatusOK, statusResponse{Available: err == nil, Stats: h.exec.Stats()})
	return nil
}

// cleanup answers POST /api/executor/cleanup: an orphan sweep now.
func (h *Handler) cleanup(w http.ResponseWriter, r *http.Request, u identity.User) error {
	n, err := h.exec.Cleanup(r.Context())
	if err != nil {
		return h.runError(w, r, err)
	}
	h.logger.Info("executor cleanup", zap.String("admin", u.Username), zap.Int("removed", n))
	h.audit.Record(audit.Event{Kind: audit.AdminAction, Actor: u.Username, ActorID: u.ID, ClientIP: clientIP(r),
		Outcome: "executor_cleanup", Details: map[string]string{"removed": strconv.Itoa(n)}})
	apierror.WriteJSON(w, http.StatusOK, map[string]int{"removed": n})
	return nil
}

// buildImage answers POST /api/executor/images?tag=<name:tag>[&dockerfile=<path>]
// with a tar build context as the body.
func (h *Handler) buildImage(w http.ResponseWriter, r *http.Request, u identity.User) error {
	opts := h.build
	opts.Tag = r.URL.Query().Get("tag")
	opts.Dockerfile = r.URL.Query().Get("dockerfile")
	if r.ContentLength > opts.ContextLimit {
		return apierror.BuildContextTooLarge.Err(opts.ContextLimit)
	}
	body := http.MaxBytesReader(w, r.Body, opts.ContextLimit)
	res, err := h.exec.BuildImage(r.Context(), body, opts)
	build := audit.Event{Kind: audit.ImageBuild, Actor: u.Username, ActorID: u.ID, ClientIP: clientIP(r), Subject: opts.Tag, Outcome: "built"}
	if err != nil {
		build.Outcome = "failed"
	} else {
		build.Details = map[string]string{"image_id": res.ImageID}
	}
	h.audit.Record(build)
	var maxBytes *http.MaxBytesError
	var buildErr *executor.BuildError
	switch {
	case err == nil:
		h.logger.Info("image built", zap.String("admin", u.Username), zap.String("tag", res.Tag), zap.String("id", res.ImageID))
		apierror.WriteJSON(w, http.StatusCreated, res)
		return nil
	case errors.Is(err, executor.ErrContextTooLarge) || errors.As(err, &maxBytes):
		return apierror.BuildContextTooLarge.Wrap(err, opts.ContextLimit)
	case errors.As(err, &buildErr):
		return apierror.BuildFailed.Wrap(err, buildErr.Message)
	case errors.Is(err, context.DeadlineExceeded):
		return apierror.BuildTimeout.Wrap(err)
	}
	return h.runError(w, r, err)
}
