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

// api is one request to the session API. Its methods answer on success and
// return the error to answer otherwise.
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
func (a *api) collection() error {
	switch a.r.Method {
	case http.MethodPost:
		sess, err := a.h.store.Create(a.r.Context(), a.user.ID)
		if err != nil {
			return a.apiError(err)
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
				return apierror.Forbidden.Err()
			}
			list, err = a.h.store.ListAll(a.r.Context())
		}
		if err != nil {
			return a.apiError(err)
		}
		apierror.WriteJSON(a.w, http.StatusOK, map[string]any{"sessions": list})
	default:
		return a.methodNotAllowed("GET, HEAD, POST")
	}
	return nil
}

// session serves /api/sessions/{id}.
func (a *api) session(id string) error {
	switch a.r.Method {
	case http.MethodGet, http.MethodHead:
		sess, release, err := a.owned(id)
		if err != nil {
			return err
		}
		defer release()
		apierror.WriteJSON(a.w, http.StatusOK, sess.Session())
	case http.MethodDelete:
		if err := a.h.store.Delete(a.r.Context(), id, a.user.ID); err != nil {
			return a.apiError(err)
		}
		a.h.logger.Info("session deleted", zap.String("session", id), zap.String("user", a.user.ID))
		a.record(audit.SessionDeleted, id)
		a.w.WriteHeader(http.StatusNoContent)
	default:
		return a.methodNotAllowed("DELETE, GET, HEAD")
	}
	return nil
}

// history serves /api/sessions/{id}/history.
func (a *api) history(id string) error {
	sess, release, err := a.owned(id)
	if err != nil {
		return err
	}
	defer release()
	switch a.r.Method {
	case http.MethodGet, http.MethodHead:
		// Streamed from the file: the answer costs no memory however
		// long the history is.
		body, n, err := sess.OpenHistory()
		if err != nil {
			return a.apiError(err)
		}
		defer body.Close()
		const open, end = `{"entries":`, "}\n"
		h := a.w.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Length", strconv.FormatInt(int64(len(open))+n+int64(len(end)), 10))
		a.w.WriteHeader(http.StatusOK)
		if a.r.Method == http.MethodHead {
			return nil
		}
		// From here on the answer has started: a failure can only cut it.
		io.WriteString(a.w, open)
		if _, err := io.Copy(a.w, body); err != nil {
			a.h.logger.Info("sending a history", zap.String("session", id), zap.Error(err))
			return nil
		}
		io.WriteString(a.w, end)
	case http.MethodPost:
		limit := a.h.store.Config().MaxFileSize
		if a.r.ContentLength > limit {
			return a.apiError(sessions.ErrFileTooLarge)
		}
		body, err := io.ReadAll(io.LimitReader(a.r.Body, limit+1))
		if err != nil {
			return apierror.BadRequest.Wrap(err)
		}
		if int64(len(body)) > limit {
			return a.apiError(sessions.ErrFileTooLarge)
		}
		n, err := sess.AppendHistory(body)
		if err != nil {
			return a.apiError(err)
		}
		apierror.WriteJSON(a.w, http.StatusCreated, map[string]int{"entries": n})
	default:
		return a.methodNotAllowed("GET, HEAD, POST")
	}
	return nil
}

// owned opens the session for the user, its owner, and moves its
// last_active_at; anything else is the error to answer (404 for someone
// else's session, with nothing done). Call release once done.
func (a *api) owned(id string) (sess *sessions.Handle, release func(), err error) {
	sess, release, err = a.h.store.Open(a.r.Context(), id, a.user.ID)
	if err != nil {
		return nil, nil, a.apiError(err)
	}
	if err := sess.Touch(a.r.Context()); err != nil {
		a.h.logger.Warn("recording session activity", zap.String("session", id), zap.Error(err))
	}
	return sess, release, nil
}

// methodNotAllowed sets Allow and returns 405.
func (a *api) methodNotAllowed(allow string) error {
	a.w.Header().Set("Allow", allow)
	return apierror.MethodNotAllowed.Err()
}

// apiError maps an error of the session store to its code; one it does not
// know stays as it is (an internal error, logged by claude_error).
func (a *api) apiError(err error) error {
	cfg := a.h.store.Config()
	switch {
	case errors.Is(err, sessions.ErrNotFound):
		return apierror.SessionNotFound.Wrap(err)
	case errors.Is(err, sessions.ErrLimitReached):
		return apierror.SessionLimitReached.Wrap(err)
	case errors.Is(err, sessions.ErrInvalidPath):
		return apierror.InvalidPath.Wrap(err)
	case errors.Is(err, sessions.ErrFileNotFound):
		return apierror.FileNotFound.Wrap(err)
	case errors.Is(err, sessions.ErrIsDirectory):
		return apierror.IsADirectory.Wrap(err)
	case errors.Is(err, sessions.ErrNotDirectory):
		return apierror.NotADirectory.Wrap(err)
	case errors.Is(err, sessions.ErrFileTooLarge):
		return apierror.FileTooLarge.Wrap(err, cfg.MaxFileSize)
	case errors.Is(err, sessions.ErrQuotaExceeded):
		return apierror.QuotaExceeded.Wrap(err, cfg.Quota)
	case errors.Is(err, sessions.ErrHistoryTooLarge):
		return apierror.HistoryTooLarge.Wrap(err, cfg.MaxHistorySize)
	case errors.Is(err, sessions.ErrInvalidHistory):
		return apierror.InvalidHistoryEntry.Wrap(err)
	}
	return err
}
