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
func (h *Handler) execute(w http.ResponseWriter, r *http.Request, user identity.User, id string) {
	ctx := r.Context()
	var req execRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			apierror.Write(w, apierror.New(http.StatusRequestEntityTooLarge, "request_too_large",
				fmt.Sprintf("The request body is larger than %d bytes.", maxRequestBody)))
			return
		}
		apierror.Write(w, apierror.Wrap(err, http.StatusBadRequest, "invalid_request",
			`The body must be JSON: {"language": "python"|"bash", "code": "...", "timeout_seconds"?: n, "stdin"?: "..."}.`))
		return
	}
	if req.TimeoutSeconds < 0 || req.TimeoutSeconds > math.MaxInt32 || math.IsNaN(req.TimeoutSeconds) {
		apierror.Write(w, apierror.New(http.StatusBadRequest, "invalid_timeout", "timeout_seconds must be a positive number of seconds."))
		return
	}
	if _, err := h.sessions.Get(ctx, id, user.ID); err != nil {
		h.sessionError(w, r, err)
		return
	}
	if err := h.sessions.Touch(ctx, id); err != nil && !errors.Is(err, context.Canceled) {
		h.logger.Warn("touching the session before a run", zap.String("session", id), zap.Error(err))
	}
	// A session a run took past its quota gets no further run until files
	// are removed.
	if err := h.sessions.CheckQuota(id); err != nil {
		h.sessionError(w, r, err)
		return
	}
	// A run may outlast the session timeout: it is activity all along.
	defer h.sessions.KeepActive(ctx, id)()
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
	defer h.watchQuota(runCtx, cancel, id)()
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		h.stream(w, r.WithContext(runCtx), spec)
		return
	}
	res, err := h.exec.Run(runCtx, spec)
	if err != nil {
		if errors.Is(context.Cause(runCtx), errRunOverQuota) {
			err = errRunOverQuota
		}
		h.runError(w, r, err)
		return
	}
	apierror.WriteJSON(w, http.StatusOK, res)
}

// workspaceOf gives a run of the session the session's workspace container,
// started if needed, and keeps the workspace from idling while the run
// lasts.
func (h *Handler) workspaceOf(sessionID, userID string) executor.WorkspaceFunc {
	return func(ctx context.Context) (executor.WorkspaceContainer, func(), error) {
		ws, err := h.workspaces.Ensure(ctx, workspaces.Spec{SessionID: sessionID, UserID: userID})
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
		return executor.WorkspaceContainer{ID: ws.ContainerID, User: ws.User}, func() { close(ended) }, nil
	}
}

// stream runs spec and sends its output as Server-Sent Events: `stdout`
// and `stderr` (data: the chunk as a JSON string) as it arrives, then `exit`
// (data: the result without the output). Errors before the run starts are
// ordinary JSON errors; later ones are an `error` event with the envelope.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, spec executor.Spec) {
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
			h.runError(w, r, err)
			return
		}
		if r.Context().Err() != nil && !errors.Is(err, errRunOverQuota) {
			return // the client is gone
		}
		e := h.toAPIError(r, err)
		ev.send("error", map[string]any{"error": map[string]string{"code": e.Code, "message": e.Message}})
		return
	}
	ev.open()
	ev.send("exit", exitEvent{
		RunID: res.RunID, ExitCode: res.ExitCode, DurationMS: res.DurationMS,
		TimedOut: res.TimedOut, OOMKilled: res.OOMKilled, Truncated: res.Truncated,
	})
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

// runError answers a failed run.
func (h *Handler) runError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && !errors.Is(err, errRunOverQuota) {
		return // the client is gone; its run was killed
	}
	e := h.toAPIError(r, err)
	var busy *executor.BusyError
	var limit *workspaces.LimitError
	switch {
	case errors.As(err, &busy):
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(busy.RetryAfter.Seconds()))))
	case errors.As(err, &limit):
		w.Header().Set("Retry-After", strconv.Itoa(max(int(math.Ceil(limit.RetryAfter.Seconds())), 1)))
	case e.Status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "10")
	}
	apierror.Write(w, e)
}

func (h *Handler) toAPIError(r *http.Request, err error) *apierror.Error {
	var spec *executor.SpecError
	var busy *executor.BusyError
	var limit *workspaces.LimitError
	switch {
	case errors.Is(err, errRunOverQuota):
		return apierror.Wrap(err, http.StatusInsufficientStorage, "quota_exceeded",
			"The run was stopped: it wrote more than the session's storage quota. Remove files to run or upload again.")
	case errors.As(err, &spec):
		return apierror.Wrap(err, http.StatusBadRequest, spec.Code, upperFirst(spec.Message)+".")
	case errors.As(err, &busy):
		return apierror.Wrap(err, http.StatusTooManyRequests, "executor_busy",
			"Too many runs are in progress or waiting; try again later.")
	case errors.As(err, &limit):
		status := http.StatusServiceUnavailable
		if limit.PerUser {
			status = http.StatusTooManyRequests
		}
		return apierror.Wrap(err, status, "workspace_limit", upperFirst(limit.Error())+".")
	case errors.Is(err, workspaces.ErrImageMissing):
		h.logger.Error("workspace image missing", zap.Error(err))
		return apierror.Wrap(err, http.StatusServiceUnavailable, "executor_unavailable",
			"Code execution is unavailable: the workspace image is not installed on the daemon.")
	case errors.Is(err, executor.ErrHelperMissing):
		h.logger.Error("the workspace image lacks the run helper", zap.Error(err))
		return apierror.Wrap(err, http.StatusServiceUnavailable, "executor_unavailable",
			"Code execution is unavailable: the workspace image has no claude-run helper.")
	case errors.Is(err, workspaces.ErrUnavailable):
		h.logger.Warn("workspaces unavailable", zap.Error(err))
		return apierror.Wrap(err, http.StatusServiceUnavailable, "executor_unavailable",
			"Code execution is unavailable: the sandbox daemon cannot be reached.")
	case errors.Is(err, executor.ErrImageMissing):
		h.logger.Error("sandbox image missing", zap.Error(err))
		return apierror.Wrap(err, http.StatusServiceUnavailable, "executor_unavailable",
			"Code execution is unavailable: the sandbox image is not installed on the daemon.")
	case errors.Is(err, executor.ErrUnavailable):
		h.logger.Warn("executor unavailable", zap.Error(err))
		return apierror.Wrap(err, http.StatusServiceUnavailable, "executor_unavailable",
			"Code execution is unavailable: the sandbox daemon cannot be reached.")
	}
	h.logger.Error("executor", zap.String("path", r.URL.Path), zap.Error(err))
	return apierror.Wrap(err, http.StatusInternalServerError, "internal_error",
		"The gateway failed to run the code; the error has been logged.")
}

func (h *Handler) sessionError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, sessions.ErrNotFound) {
		apierror.Write(w, apierror.Wrap(err, http.StatusNotFound, "session_not_found", "No such session."))
		return
	}
	if errors.Is(err, sessions.ErrQuotaExceeded) {
		apierror.Write(w, apierror.Wrap(err, http.StatusInsufficientStorage, "quota_exceeded",
			"The session holds more than its storage quota; remove files before running code."))
		return
	}
	if r.Context().Err() != nil {
		return
	}
	h.logger.Error("exec: loading the session", zap.Error(err))
	apierror.Write(w, apierror.Wrap(err, http.StatusInternalServerError, "internal_error",
		"The gateway failed to handle the request; the error has been logged."))
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
