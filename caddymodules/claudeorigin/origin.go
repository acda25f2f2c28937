// Package claudeorigin is the `claude_origin` handler: it applies the gateway's
// one origin allow-list to CORS preflights (answered here, before any token
// check), to the CORS headers of every response, to cookie-authenticated,
// state-changing requests (CSRF) and to WebSocket upgrades (cross-site
// WebSocket hijacking).
package claudeorigin

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/apierror"
	"github.com/claude-gateway/claude-gateway/caddymodules/claudeerror"
	"github.com/claude-gateway/claude-gateway/origin"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler checks the origin of browser requests against one allow-list:
// the app origin plus AllowedOrigins. A request's own origin (the host it was
// sent to) is always allowed.
//
//   - A CORS preflight is answered here: 204 with credentials allowed and the
//     origin echoed for a listed origin; 403 without any CORS header otherwise.
//     It never reaches the token check or an upstream.
//   - Every other response gets `Vary: Origin`, and, for a listed origin,
//     Access-Control-Allow-Origin/-Credentials/-Expose-Headers. CORS headers an
//     upstream sent are replaced, so the gateway alone decides.
//   - A POST/PUT/PATCH/DELETE that carries one of AuthCookies and no Bearer
//     token must carry a listed Origin, or Sec-Fetch-Site: same-origin when it
//     has no Origin; else 403 `cross_site_request`.
//   - A WebSocket upgrade whose Origin is not listed gets 403
//     `websocket_origin_not_allowed` before any upstream sees it.
type Handler struct {
	// AppOrigin is the origin of the app host, scheme://host[:port]; it is
	// always allowed. Placeholders are expanded.
	AppOrigin string `json:"app_origin,omitempty"`

	// AllowedOrigins are further allowed origins, exactly scheme://host[:port];
	// each entry may be a comma-separated list, as the ALLOWED_ORIGINS
	// environment variable is. Placeholders are expanded. Wildcards and "null"
	// are refused.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`

	// AuthCookies are the names of the cookies that authenticate a browser:
	// a state-changing request carrying one is subject to the CSRF check.
	// Default: the gateway's access, refresh and IDE cookies.
	AuthCookies []string `json:"auth_cookies,omitempty"`

	// AllowMethods are the methods a preflight may allow.
	// Default: GET, HEAD, POST, PUT, PATCH, DELETE.
	AllowMethods []string `json:"allow_methods,omitempty"`

	// AllowHeaders are the request headers a preflight may allow.
	// Default: Authorization, Content-Type, Accept, Last-Event-ID, X-Requested-With.
	AllowHeaders []string `json:"allow_headers,omitempty"`

	// ExposeHeaders are the response headers scripts of a listed origin may
	// read. Default: Retry-After, WWW-Authenticate and the X-RateLimit-* headers.
	ExposeHeaders []string `json:"expose_headers,omitempty"`

	// MaxAge is how long a browser may cache a preflight answer. Default: 10m.
	MaxAge caddy.Duration `json:"max_age,omitempty"`

	policy *origin.Policy
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.claude_origin",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision builds the allow-list.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	repl := caddy.NewReplacer()
	allowed := make([]string, 0, len(h.AllowedOrigins))
	for _, o := range h.AllowedOrigins {
		allowed = append(allowed, repl.ReplaceAll(o, ""))
	}
	list, err := origin.NewList(repl.ReplaceAll(h.AppOrigin, ""), allowed...)
	if err != nil {
		return fmt.Errorf("claude_origin: %w", err)
	}
	cookies := h.AuthCookies
	if len(cookies) == 0 {
		cookies = DefaultAuthCookies
	}
	h.policy = &origin.Policy{
		List:          list,
		AuthCookies:   cookies,
		AllowMethods:  h.AllowMethods,
		AllowHeaders:  h.AllowHeaders,
		ExposeHeaders: h.ExposeHeaders,
		MaxAge:        time.Duration(h.MaxAge),
	}
	h.logger.Info("origin allow-list", zap.Strings("origins", list.Origins()))
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if origin.IsPreflight(r) {
		if !h.policy.Preflight(w.Header(), r) {
			return h.refuse(r, apierror.OriginNotAllowed.Err())
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err := h.policy.CheckWebSocket(r); err != nil {
		h.policy.CORS(w.Header(), r)
		return h.refuse(r, apierror.WebSocketOriginNotAllowed.Wrap(err))
	}
	if err := h.policy.CheckCSRF(r); err != nil {
		h.policy.CORS(w.Header(), r)
		return h.refuse(r, apierror.CrossSiteRequest.Wrap(err))
	}
	// Set the CORS headers now, so answers of handlers before the upstream
	// (a 401, a 429) carry them, and again when the response starts, so an
	// upstream's own CORS headers never survive.
	cw := &corsWriter{cors: h.policy.CORSHeaders(r)}
	cw.cors.Set(w.Header())
	cw.ResponseWriterWrapper.ResponseWriter = w
	return next.ServeHTTP(cw, r)
}

// refuse logs a refused request and returns its error.
func (h *Handler) refuse(r *http.Request, e *apierror.Error) error {
	if c := h.logger.Check(zap.InfoLevel, "request refused by origin policy"); c != nil {
		c.Write(zap.String("code", e.Code()), zap.String("method", r.Method), zap.String("uri", r.URL.Path),
			zap.Strings("origin", r.Header.Values("Origin")), zap.String("sec_fetch_site", r.Header.Get("Sec-Fetch-Site")))
	}
	return claudeerror.Error(e)
}

// corsWriter sets the request's CORS headers again when the response starts.
// One allocation per request: the wrapper is embedded, not pointed to, and
// the header values live in cors.
type corsWriter struct {
	caddyhttp.ResponseWriterWrapper
	cors        origin.CORSHeaders
	wroteHeader bool
}

func (cw *corsWriter) WriteHeader(status int) {
	if !cw.wroteHeader && (status >= 200 || status == http.StatusSwitchingProtocols) {
		cw.wroteHeader = true
		cw.cors.Set(cw.Header())
	}
	cw.ResponseWriterWrapper.WriteHeader(status)
}

func (cw *corsWriter) Write(b []byte) (int, error) {
	if !cw.wroteHeader {
		cw.WriteHeader(http.StatusOK)
	}
	return cw.ResponseWriterWrapper.Write(b)
}

func (cw *corsWriter) ReadFrom(r io.Reader) (int64, error) {
	if !cw.wroteHeader {
		cw.WriteHeader(http.StatusOK)
	}
	return cw.ResponseWriterWrapper.ReadFrom(r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
