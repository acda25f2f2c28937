package claudeexec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/apierror"
	"github.com/claude-gateway/claude-gateway/executor"
	"github.com/claude-gateway/claude-gateway/identity"
	"github.com/claude-gateway/claude-gateway/sessions"
	"github.com/claude-gateway/claude-gateway/workspaces"
)

// maxRequestBody bounds an exec request: the code and stdin limits, JSON
// escaping included.
const maxRequestBody = 8 << 20

// execRequest is the body of POST /api/sessions/{id}/exec.
type execRequest struct {
	Language       string  `json:"language"`
	Code           string  `json:"code"`
	TimeoutSeconds float64 `json:"timeout_seconds,omitempty"`
	Stdin          string  `json:"stdin,omitempty"`
}

// exitEvent is the data of the SSE `exit` event: the result without the
// output, which the stdout and stderr events carried.
type exitEvent struct {
	RunID      string `json:"run_id"`
	ExitCode   int    `json:"exit_code"`
	DurationMS int64  `json:"duration_ms"`
	TimedOut   bool   `json:"timed_out"`
	OOMKilled  bool   `json:"oom_killed"`
	Truncated  bool   `json:"truncated"`
}

// execute runs code in the session's workspace and answers with the result,
// or streams it when the client accepts text/event-stream.
func (h *Handler) execute(w http.ResponseWriter, r *http.Request, user identity.User, id string) error {
	ctx := r.Context()
	var req execRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return apierror.RequestTooLarge.Wrap(err, maxRequestBody)
		}
		return apierror.InvalidRequest.Wrap(err)
	}
	if req.TimeoutSeconds < 0 || req.TimeoutSeconds > math.MaxInt32 || math.IsNaN(req.TimeoutSeconds) {
		return h.invalidTimeout(nil)
	}
	sess, release, err := h.sessions.Open(ctx, id, user.ID)
	if err != nil {
		return h.sessionError(err)
	}
	defer release()
	if err := sess.Touch(ctx); err != nil && !errors.Is(err, context.Canceled) {
		h.logger.Warn("touching the session before a run", zap.String("session", id), zap.Error(err))
	}
	// A session a run took past its quota gets no further run until files
	// are removed.
	if err := sess.CheckQuota(); err != nil {
		return h.sessionError(err)
	}
	// A run may outlast the session timeout: it is activity all along.
	defer sess.KeepActive(ctx)()
	spec := executor.Spec{
		Language:  req.Language,
		Code:      req.Code,
		Stdin:     []byte(req.Stdin),
		Timeout:   time.Duration(req.TimeoutSeconds * float64(time.Second)),
		SessionID: id,
		UserID:    user.ID,
		Workspace: h.workspaceOf(id, user.ID),
	}
	// A run that writes the session past its quota is stopped.
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer h.watchQuota(runCtx, cancel, sess)()
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		return h.stream(w, r.WithContext(runCtx), spec)
	}
	res, err := h.exec.Run(runCtx, spec)
	if err != nil {
		if errors.Is(context.Cause(runCtx), errRunOverQuota) {
			err = errRunOverQuota
		}
		return h.runError(w, r, err)
	}
	apierror.WriteJSON(w, http.StatusOK, res)
	return nil
}

// workspaceOf gives a run of the session the session's workspace container,
// started if needed, and its run server when it answers, and keeps the workspace from idling while the run
// lasts.
func (h *Handler) workspaceOf(sessionID, userID string) executor.WorkspaceFunc {
	return func(ctx context.Context) (executor.WorkspaceContainer, func(), error) {
		ws, err := h.workspaces.EnsureRun(ctx, workspaces.Spec{SessionID: sessionID, UserID: userID})
		if err != nil {
			return executor.WorkspaceContainer{}, nil, err
		}
		ended := make(chan struct{})
		go func() {
			tick := time.NewTicker(time.Minute)
			defer tick.Stop()
			for {
				select {
				case <-tick.C:
					h.workspaces.Touch(sessionID)
				case <-ended:
					h.workspaces.Touch(sessionID)
					return
				}
			}
		}()
		return executor.WorkspaceContainer{ID: ws.ContainerID, User: ws.User, RunSocket: ws.RunSocket,
			RunServerLost: func() { h.workspaces.RunServerLost(sessionID, ws.ContainerID) },
		}, func() { close(ended) }, nil
	}
}

// stream runs spec and sends its output as Server-Sent Events: `stdout`
// and `stderr` (data: the chunk as a JSON string) as it arrives, then `exit`
// (data: the result without the output). Errors before the run starts are
// ordinary errors, returned; once the stream has started, an error can only
// be an `error` event with the envelope.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, spec executor.Spec) error {
	ev := &eventWriter{w: w, rc: http.NewResponseController(w)}
	spec.Started = ev.open
	spec.Stdout = ev.sink("stdout")
	spec.Stderr = ev.sink("stderr")
	res, err := h.exec.Run(r.Context(), spec)
	if err != nil && errors.Is(context.Cause(r.Context()), errRunOverQuota) {
		err = errRunOverQuota
	}
	if err != nil {
		if !ev.opened() {
			return h.runError(w, r, err)
		}
		if r.Context().Err() != nil && !errors.Is(err, errRunOverQuota) {
			return nil // the client is gone
		}
		e := h.toAPIError(err)
		ev.send("error", map[string]any{"error": map[string]string{"code": e.Code(), "message": e.Message()}})
		return nil
	}
	ev.open()
	ev.send("exit", exitEvent{
		RunID: res.RunID, ExitCode: res.ExitCode, DurationMS: res.DurationMS,
		TimedOut: res.TimedOut, OOMKilled: res.OOMKilled, Truncated: res.Truncated,
	})
	return nil
}

// eventWriter writes Server-Sent Events, flushing each one.
type eventWriter struct {
	mu     sync.Mutex
	w      http.ResponseWriter
	rc     *http.ResponseController
	isOpen bool
}

// open sends the event-stream headers (once).
func (e *eventWriter) open() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.isOpen {
		return
	}
	e.isOpen = true
	hd := e.w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	e.w.WriteHeader(http.StatusOK)
	io.WriteString(e.w, ": run started\n\n")
	e.rc.Flush()
}

func (e *eventWriter) opened() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.isOpen
}

// sink is the live writer of one output stream.
func (e *eventWriter) sink(event string) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		e.send(event, string(p))
		return len(p), nil
	})
}

func (e *eventWriter) send(event string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", event, data)
	e.rc.Flush()
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// runError returns the error of a failed run, with Retry-After set on w when
// trying again later may succeed; nil when the client is gone (its run was
// killed).
func (h *Handler) runError(w http.ResponseWriter, r *http.Request, err error) error {
	if r.Context().Err() != nil && !errors.Is(err, errRunOverQuota) {
		return nil
	}
	e := h.toAPIError(err)
	var busy *executor.BusyError
	var limit *workspaces.LimitError
	switch {
	case errors.As(err, &busy):
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(busy.RetryAfter.Seconds()))))
	case errors.As(err, &limit):
		w.Header().Set("Retry-After", strconv.Itoa(max(int(math.Ceil(limit.RetryAfter.Seconds())), 1)))
	case e.Status() == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "10")
	}
	return e
}

// toAPIError maps an error of a run to its code; one it does not know is an
// internal error.
func (h *Handler) toAPIError(err error) *apierror.Error {
	var spec *executor.SpecError
	var busy *executor.BusyError
	var limit *workspaces.LimitError
	switch {
	case errors.Is(err, errRunOverQuota):
		return apierror.QuotaExceeded.Wrap(err, h.sessions.Config().Quota)
	case errors.As(err, &spec):
		return h.specError(spec)
	case errors.As(err, &busy):
		return apierror.ExecutorBusy.Wrap(err)
	case errors.As(err, &limit) && limit.PerUser:
		return apierror.TooManyWorkspaces.Wrap(err, limit.Limit)
	case errors.As(err, &limit):
		return apierror.WorkspaceLimit.Wrap(err)
	case errors.Is(err, workspaces.ErrImageMissing), errors.Is(err, executor.ErrHelperMissing), errors.Is(err, executor.ErrImageMissing):
		h.logger.Error("the workspace or sandbox image is missing or lacks the run helper", zap.Error(err))
		return apierror.ExecutorUnavailable.Wrap(err)
	case errors.Is(err, workspaces.ErrUnavailable), errors.Is(err, executor.ErrUnavailable):
		h.logger.Warn("executor unavailable", zap.Error(err))
		return apierror.ExecutorUnavailable.Wrap(err)
	}
	h.logger.Error("executor", zap.Error(err))
	return apierror.Internal.Wrap(err)
}

// specError maps a request the executor refused to its code.
func (h *Handler) specError(spec *executor.SpecError) *apierror.Error {
	switch spec.Code {
	case apierror.InvalidLanguage.Name:
		return apierror.InvalidLanguage.Wrap(spec)
	case apierror.InvalidCode.Name:
		return apierror.InvalidCode.Wrap(spec)
	case apierror.CodeTooLarge.Name:
		return apierror.CodeTooLarge.Wrap(spec, executor.MaxCodeSize)
	case apierror.StdinTooLarge.Name:
		return apierror.StdinTooLarge.Wrap(spec, executor.MaxStdinSize)
	case apierror.InvalidTimeout.Name:
		return h.invalidTimeout(spec)
	case apierror.InvalidTag.Name:
		return apierror.InvalidTag.Wrap(spec)
	}
	return apierror.Internal.Wrap(spec)
}

// invalidTimeout is the error of a timeout_seconds out of range.
func (h *Handler) invalidTimeout(cause error) *apierror.Error {
	return apierror.InvalidTimeout.Wrap(cause, int(h.exec.Config().MaxTimeout.Seconds()))
}

// sessionError maps an error of loading the run's session to its code.
func (h *Handler) sessionError(err error) error {
	switch {
	case errors.Is(err, sessions.ErrNotFound):
		return apierror.SessionNotFound.Wrap(err)
	case errors.Is(err, sessions.ErrQuotaExceeded):
		return apierror.QuotaExceeded.Wrap(err, h.sessions.Config().Quota)
	}
	return err
}
