package claudesessions

import (
	"errors"
	"mime"
	"net/http"
	"os"
	"path"
	"time"

	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/apierror"
	"github.com/claude-gateway/claude-gateway/sessions"
)

// files serves /api/sessions/{id}/files/{escaped}.
func (a *api) files(id, escaped string) error {
	sess, release, err := a.owned(id)
	if err != nil {
		return err
	}
	defer release()
	rel, dir, err := sessions.ParsePath(escaped)
	if err != nil {
		return a.apiError(err)
	}
	f, err := sess.Files()
	if err != nil {
		return a.apiError(err)
	}
	switch a.r.Method {
	case http.MethodGet, http.MethodHead:
		if dir {
			return a.list(f, rel)
		}
		return a.download(f, rel)
	case http.MethodPut:
		if dir {
			if err := f.Mkdir(rel); err != nil {
				return a.apiError(err)
			}
			apierror.WriteJSON(a.w, http.StatusCreated, map[string]string{"path": displayPath(rel, true), "type": "dir"})
			return nil
		}
		// The body must arrive within the upload timeout; a read past it
		// fails, and Put keeps nothing of it.
		deadline := time.Now().Add(time.Duration(a.h.UploadTimeout))
		if err := http.NewResponseController(a.w).SetReadDeadline(deadline); err != nil {
			a.h.logger.Warn("upload timeout not enforceable on this connection", zap.Error(err))
		}
		created, n, err := f.Put(rel, a.r.Body, a.r.ContentLength)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				a.h.logger.Info("upload cut off at the upload timeout", zap.String("session", id), zap.Duration("upload_timeout", time.Duration(a.h.UploadTimeout)))
				return apierror.UploadTimeout.Wrap(err, time.Duration(a.h.UploadTimeout))
			}
			if a.r.Context().Err() != nil {
				a.h.logger.Info("upload abandoned by the client", zap.String("session", id), zap.Error(err))
			}
			return a.apiError(err)
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		apierror.WriteJSON(a.w, status, map[string]any{"path": rel, "type": "file", "size": n})
	case http.MethodDelete:
		if err := f.Delete(rel, dir); err != nil {
			return a.apiError(err)
		}
		a.w.WriteHeader(http.StatusNoContent)
	default:
		return a.methodNotAllowed("DELETE, GET, HEAD, PUT")
	}
	return nil
}

func (a *api) list(f *sessions.Files, rel string) error {
	entries, err := f.List(rel)
	if err != nil {
		return a.apiError(err)
	}
	apierror.WriteJSON(a.w, http.StatusOK, map[string]any{"path": displayPath(rel, true), "entries": entries})
	return nil
}

// download sends a file's bytes. They are the user's (or their sandbox's),
// served from the app's origin: never as anything a browser would render or
// run there.
func (a *api) download(f *sessions.Files, rel string) error {
	file, info, err := f.Open(rel)
	if err != nil {
		return a.apiError(err)
	}
	defer file.Close()
	h := a.w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(rel)}))
	h.Set("Cache-Control", "no-store")
	http.ServeContent(a.w, a.r, "", info.ModTime(), file)
	return nil
}

func displayPath(rel string, dir bool) string {
	if rel == "." {
		return "/"
	}
	if dir {
		return rel + "/"
	}
	return rel
}
