// Package claudelogin is the `claude_login_page` handler: the gateway's small,
// server-rendered sign-in page for browsers. It needs no script (the page's
// Content-Security-Policy forbids all), posts to itself, sets the session
// cookies and sends the browser back to `next`, a same-origin path only.
package claudelogin

import (
	"embed"
	"html/template"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/apierror"
	"github.com/claude-gateway/claude-gateway/audit"
	"github.com/claude-gateway/claude-gateway/auth"
	"github.com/claude-gateway/claude-gateway/caddymodules/claude"
	"github.com/claude-gateway/claude-gateway/caddymodules/claudeauth"
	"github.com/claude-gateway/claude-gateway/caddymodules/claudeerror"
	"github.com/claude-gateway/claude-gateway/caddymodules/internal/htmlpage"
	"github.com/claude-gateway/claude-gateway/origin"
)

func init() {
	caddy.RegisterModule(Handler{})
}

//go:embed assets
var assets embed.FS

var loginPage = template.Must(template.ParseFS(assets, "assets/login.html"))

// maxFormBody bounds the sign-in form's body.
const maxFormBody = 16 << 10

// Handler serves the sign-in page and its stylesheet. Other paths pass to the
// next handler.
//
//   - GET <path>?next=<path>: the form; a browser already signed in goes
//     straight to next.
//   - POST <path> (form: username, password, next): signs in through the same
//     service as POST /api/auth/login (brute-force regulation included), sets
//     the access and refresh cookies and answers 303 to next. Wrong
//     credentials re-render the form with 401; a ban with 429 + Retry-After.
//     A POST whose Origin is not this host's, or whose Sec-Fetch-Site says
//     cross-site, is refused with 403 (login CSRF).
//   - GET <static_path>/login.css: the stylesheet, public.
//
// `next` is accepted only as a same-origin path; anything else (//host,
// https://host, /\host, their encodings) becomes "/".
type Handler struct {
	// Path is the sign-in page. Default: /auth/login.
	Path string `json:"path,omitempty"`

	// StaticPath is the prefix of the page's assets. Default: /auth/static.
	StaticPath string `json:"static_path,omitempty"`

	auth   *auth.Service
	audit  *audit.Writer
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.claude_login_page",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults and takes the `claude` app's auth service and
// audit trail.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.Path == "" {
		h.Path = "/auth/login"
	}
	if h.StaticPath == "" {
		h.StaticPath = "/auth/static"
	}
	h.StaticPath = strings.TrimSuffix(h.StaticPath, "/")
	app, err := claude.FromContext(ctx)
	if err != nil {
		return err
	}
	h.audit = app.Audit()
	h.auth, err = app.Auth()
	return err
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	switch {
	case r.URL.Path == h.Path:
	case strings.HasPrefix(r.URL.Path, h.StaticPath) && r.URL.Path[len(h.StaticPath):] == "/login.css":
		return h.serveCSS(w, r)
	default:
		return next.ServeHTTP(w, r)
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		target := claudeauth.SafeNext(r.URL.Query().Get("next"))
		if _, _, err := claudeauth.UserFromRequest(h.auth, r); err == nil {
			if strings.HasPrefix(target, h.Path) {
				target = "/" // never back to this page: that would loop
			}
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, target, http.StatusFound)
			return nil
		}
		return h.render(w, http.StatusOK, form{Next: target})
	case http.MethodPost:
		return h.login(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		return claudeerror.Error(apierror.MethodNotAllowed.Err())
	}
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) error {
	// Login CSRF: the form carries no auth cookie yet, so claude_origin's
	// check does not cover it. A foreign Origin, or a browser saying in
	// Sec-Fetch-Site that the form came from another site (it may send no
	// Origin), is refused.
	if o := r.Header.Get("Origin"); (o != "" && !origin.SameOrigin(r, o)) || origin.CrossSiteFetch(r) {
		return h.render(w, http.StatusForbidden, form{Next: "/", Error: "Sign in from this site's own sign-in page."})
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		return h.render(w, http.StatusBadRequest, form{Next: "/", Error: "The form could not be read; try again."})
	}
	f := form{
		Next:     claudeauth.SafeNext(r.PostForm.Get("next")),
		Username: r.PostForm.Get("username"),
	}
	password := r.PostForm.Get("password")
	if f.Username == "" || password == "" {
		f.Error = "Enter your username and password."
		return h.render(w, http.StatusBadRequest, f)
	}
	sess, err := h.auth.LoginWithDevice(r.Context(), f.Username, password, claudeauth.ClientIP(r), claudeauth.DeviceToken(r))
	claudeauth.RecordLogin(h.audit, r, f.Username, "form", &sess, err)
	if err != nil {
		ae, ok := claudeauth.LoginError(w, err).(*apierror.Error)
		if !ok {
			return caddyhttp.Error(http.StatusInternalServerError, err)
		}
		f.Error = ae.Message()
		return h.render(w, ae.Status(), f)
	}
	h.logger.Info("login", zap.String("user_id", sess.Access.Subject), zap.String("username", sess.Access.Username), zap.String("via", "form"))
	claudeauth.SetSessionCookies(w, sess)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, f.Next, http.StatusSeeOther)
	return nil
}

// form is what the page template shows.
type form struct {
	Action, Static        string
	Next, Username, Error string
}

// render answers with the sign-in page showing f.
func (h *Handler) render(w http.ResponseWriter, status int, f form) error {
	f.Action = h.Path
	f.Static = h.StaticPath
	w.Header().Set("X-Frame-Options", "DENY")
	return htmlpage.Write(w, status, htmlpage.OwnStylesheetCSP, loginPage, f)
}

func (h *Handler) serveCSS(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed, nil)
	}
	b, err := assets.ReadFile("assets/login.css")
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(b)
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
