package claudesessions

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/apierror"
	"github.com/claude-gateway/claude-gateway/audit"
	"github.com/claude-gateway/claude-gateway/identity"
	"github.com/claude-gateway/claude-gateway/sessions"
)

// api is one request to the session API.
type api struct {
	h    *Handler
	w    http.ResponseWriter
	r    *http.Request
	user identity.User
}

// record adds an event about session id, done by the request's user, to the audit trail.
func (a *api) record(kind audit.Kind, id string) {
	ip, _ := caddyhttp.GetVar(a.r.Context(), caddyhttp.ClientIPVarKey).(string)
	a.h.audit.Record(audit.Event{Kind: kind, Actor: a.user.Username, ActorID: a.user.ID, Subject: id, ClientIP: ip})
}

// collection serves /api/sessions.
func (a *api) collection() {
	switch a.r.Method {
	case http.MethodPost:
		sess, err := a.h.store.Create(a.r.Context(), a.user.ID)
		if err != nil {
			a.fail(err)
			return
		}
		a.h.logger.Info("session created", zap.String("session", sess.ID), zap.String("user", a.user.ID))
		a.record(audit.SessionCreated, sess.ID)
		a.w.Header().Set("Location", prefix+"/"+sess.ID)
		apierror.WriteJSON(a.w, http.StatusCreated, sess)
	case http.MethodGet, http.MethodHead:
		var list []sessions.Session
		var err error
		switch a.r.URL.Query().Get("all") {
		case "", "false", "0":
			list, err = a.h.store.List(a.r.Context(), a.user.ID)
		default:
			if !a.user.IsAdmin() {
				apierror.Write(a.w, apierror.New(http.StatusForbidden, "forbidden", "Only an admin may list every user's sessions."))
				return
			}
			list, err = a.h.store.ListAll(a.r.Context())
		}
		if err != nil {
			a.fail(err)
			return
		}
		apierror.WriteJSON(a.w, http.StatusOK, map[string]any{"sessions": list})
	default:
		a.methodNotAllowed("GET, HEAD, POST")
	}
}

// session serves /api/sessions/{id}.
func (a *api) session(id string) {
	switch a.r.Method {
	case http.MethodGet, http.MethodHead:
		sess, ok := a.owned(id)
		if !ok {
			return
		}
		apierror.WriteJSON(a.w, http.StatusOK, sess)
	case http.MethodDelete:
		if err := a.h.store.Delete(a.r.Context(), id, a.user.ID); err != nil {
			a.fail(err)
			return
		}
		a.h.logger.Info("session deleted", zap.String("session", id), zap.String("user", a.user.ID))
		a.record(audit.SessionDeleted, id)
		a.w.WriteHeader(http.StatusNoContent)
	default:
		a.methodNotAllowed("DELETE, GET, HEAD")
	}
}

// history serves /api/sessions/{id}/history.
func (a *api) history(id string) {
	if _, ok := a.owned(id); !ok {
		return
	}
	switch a.r.Method {
	case http.MethodGet, http.MethodHead:
		// Streamed from the file: the answer costs no memory however
		// long the history is.
		body, n, err := a.h.store.OpenHistory(id)
		if err != nil {
			a.fail(err)
			return
		}
		defer body.Close()
		const open, end = `{"entries":`, "}\n"
		h := a.w.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Length", strconv.FormatInt(int64(len(open))+n+int64(len(end)), 10))
		a.w.WriteHeader(http.StatusOK)
		if a.r.Method == http.MethodHead {
			return
		}
		io.WriteString(a.w, open)
		if _, err := io.Copy(a.w, body); err != nil {
			a.h.logger.Info("sending a history", zap.String("session", id), zap.Error(err))
			return
		}
		io.WriteString(a.w, end)
	case http.MethodPost:
		limit := a.h.store.Config().MaxFileSize
		if a.r.ContentLength > limit {
			a.fail(sessions.ErrFileTooLarge)
			return
		}
		body, err := io.ReadAll(io.LimitReader(a.r.Body, limit+1))
		if err != nil {
			apierror.Write(a.w, apierror.Wrap(err, http.StatusBadRequest, "bad_request", "The request body could not be read."))
			return
		}
		if int64(len(body)) > limit {
			a.fail(sessions.ErrFileTooLarge)
			return
		}
		n, err := a.h.store.AppendHistory(id, body)
		if err != nil {
			a.fail(err)
			return
		}
		apierror.WriteJSON(a.w, http.StatusCreated, map[string]int{"entries": n})
	default:
		a.methodNotAllowed("GET, HEAD, POST")
	}
}

// owned returns the session if the user owns it, moving its last_active_at;
// otherwise it answers 404 and returns false.
func (a *api) owned(id string) (sessions.Session, bool) {
	sess, err := a.h.store.Get(a.r.Context(), id, a.user.ID)
	if err != nil {
		a.fail(err)
		return sess, false
	}
	if err := a.h.store.Touch(a.r.Context(), id); err != nil {
		a.h.logger.Warn("recording session activity", zap.String("session", id), zap.Error(err))
	}
	return sess, true
}

func (a *api) methodNotAllowed(allow string) {
	a.w.Header().Set("Allow", allow)
	apierror.Write(a.w, apierror.New(http.StatusMethodNotAllowed, "method_not_allowed", "Allowed methods: "+allow+"."))
}

// fail answers err in the envelope with the status its kind calls for.
func (a *api) fail(err error) {
	apierror.Write(a.w, a.toAPIError(err))
}

func (a *api) toAPIError(err error) *apierror.Error {
	cfg := a.h.store.Config()
	switch {
	case errors.Is(err, sessions.ErrNotFound):
		return apierror.Wrap(err, http.StatusNotFound, "session_not_found", "No such session.")
	case errors.Is(err, sessions.ErrLimitReached):
		return apierror.Wrap(err, http.StatusConflict, "session_limit_reached", "The session limit is reached; delete a session first.")
	case errors.Is(err, sessions.ErrInvalidPath):
		return apierror.Wrap(err, http.StatusBadRequest, "invalid_path", "The path is not allowed: it must stay inside the session's files, without '..', absolute paths, encoded separators, NUL bytes or links that lead outside.")
	case errors.Is(err, sessions.ErrFileNotFound):
		return apierror.Wrap(err, http.StatusNotFound, "file_not_found", "No such file or directory.")
	case errors.Is(err, sessions.ErrIsDirectory):
		return apierror.Wrap(err, http.StatusBadRequest, "is_a_directory", "The path names a directory; end it with '/' to list, create or delete a directory.")
	case errors.Is(err, sessions.ErrNotDirectory):
		return apierror.Wrap(err, http.StatusBadRequest, "not_a_directory", "The path does not name a directory.")
	case errors.Is(err, sessions.ErrFileTooLarge):
		return apierror.Wrap(err, http.StatusRequestEntityTooLarge, "file_too_large", "The body is larger than the limit of "+strconv.FormatInt(cfg.MaxFileSize, 10)+" bytes.")
	case errors.Is(err, sessions.ErrQuotaExceeded):
		return apierror.Wrap(err, http.StatusInsufficientStorage, "quota_exceeded", "The session's storage quota of "+strconv.FormatInt(cfg.Quota, 10)+" bytes (files and history) would be exceeded, or is: remove files first.")
	case errors.Is(err, sessions.ErrHistoryTooLarge):
		return apierror.Wrap(err, http.StatusRequestEntityTooLarge, "history_too_large", "The session's history would exceed its limit of "+strconv.FormatInt(cfg.MaxHistorySize, 10)+" bytes.")
	case errors.Is(err, sessions.ErrInvalidHistory):
		return apierror.Wrap(err, http.StatusBadRequest, "invalid_history_entry", "A history entry must be one JSON value.")
	}
	a.h.logger.Error("session API", zap.String("path", a.r.URL.Path), zap.String("method", a.r.Method), zap.Error(err))
	return apierror.Wrap(err, http.StatusInternalServerError, "internal_error", "The gateway failed to handle the request; the error has been logged.")
}
