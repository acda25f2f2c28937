package origin

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors of the CSRF and WebSocket checks.
var (
	// ErrCrossSiteRequest is a cookie-authenticated, state-changing request
	// whose Origin is not allowed, or that proves no origin at all.
	ErrCrossSiteRequest = errors.New("origin: cookie-authenticated request from an origin that is not allowed")
	// ErrWebSocketOrigin is a WebSocket upgrade whose Origin is not allowed.
	ErrWebSocketOrigin = errors.New("origin: websocket upgrade from an origin that is not allowed")
)

// Default CORS lists, used when a Policy leaves them empty.
var (
	// DefaultAllowMethods are the methods a preflight may ask for.
	DefaultAllowMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}
	// DefaultAllowHeaders are the request headers a preflight may ask for.
	DefaultAllowHeaders = []string{"Authorization", "Content-Type", "Accept", "Last-Event-ID", "X-Requested-With"}
	// DefaultExposeHeaders are the response headers scripts of an allowed
	// origin may read besides the CORS-safelisted ones.
	DefaultExposeHeaders = []string{"Retry-After", "WWW-Authenticate", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}
)

// DefaultMaxAge is how long a browser may cache a preflight answer.
const DefaultMaxAge = 10 * time.Minute

// Policy applies one List to CORS, CSRF and WebSocket upgrades. A request's
// own origin (the scheme and Host it was sent to) is same-origin and always
// allowed, besides the List. A Policy in use must not be changed.
type Policy struct {
	// List holds the allowed origins.
	List *List
	// AuthCookies are the names of the cookies that authenticate a request.
	// A state-changing request carrying one of them is subject to the CSRF check.
	AuthCookies []string
	// AllowMethods, AllowHeaders and ExposeHeaders are the CORS lists; empty
	// means the package defaults.
	AllowMethods, AllowHeaders, ExposeHeaders []string
	// MaxAge is the preflight cache lifetime; zero means DefaultMaxAge.
	MaxAge time.Duration

	exposeOnce sync.Once
	expose     string
}

// allowed reports whether origin is the request's own origin or in the list.
func (p *Policy) allowed(r *http.Request, origin string) bool {
	if origin == "" {
		return false
	}
	return p.List.Allows(origin) || SameOrigin(r, origin)
}

// SameOrigin reports whether origin, as sent in an Origin header, is the
// origin r was sent to (see RequestOrigin). Malformed origins and "null" are
// never the same.
func SameOrigin(r *http.Request, origin string) bool {
	self, err := Canonical(RequestOrigin(r))
	if err != nil {
		return false
	}
	o, err := Canonical(origin)
	return err == nil && o == self
}

// CrossSiteFetch reports whether the browser says r comes from another site:
// a Sec-Fetch-Site header other than "same-origin", "same-site" or "none"
// (a navigation the user started). Browsers that send no Origin on a form
// POST still send Sec-Fetch-Site; a request without it says nothing and is
// not reported.
func CrossSiteFetch(r *http.Request) bool {
	vals := r.Header.Values("Sec-Fetch-Site")
	if len(vals) == 0 {
		return false
	}
	if len(vals) > 1 {
		return true
	}
	switch vals[0] {
	case "same-origin", "same-site", "none":
		return false
	}
	return true
}

// RequestOrigin is the origin the request was sent to: https when it came over
// TLS, then the Host header.
func RequestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// requestOrigin returns the single Origin header of r, or "" when there is
// none. Several Origin headers make "null", which nothing allows.
func requestOrigin(r *http.Request) string {
	vals := r.Header.Values("Origin")
	switch len(vals) {
	case 0:
		return ""
	case 1:
		return vals[0]
	default:
		return "null"
	}
}

// IsPreflight reports whether r is a CORS preflight request.
func IsPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// Preflight answers a CORS preflight. For an allowed origin it sets the CORS
// headers, credentials included, and reports true; for any other origin it
// sets none and reports false. The caller writes the status.
func (p *Policy) Preflight(h http.Header, r *http.Request) bool {
	addVary(h, "Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers")
	origin := requestOrigin(r)
	if !p.allowed(r, origin) {
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Set("Access-Control-Allow-Methods", strings.Join(orDefault(p.AllowMethods, DefaultAllowMethods), ", "))
	h.Set("Access-Control-Allow-Headers", strings.Join(orDefault(p.AllowHeaders, DefaultAllowHeaders), ", "))
	maxAge := p.MaxAge
	if maxAge == 0 {
		maxAge = DefaultMaxAge
	}
	h.Set("Access-Control-Max-Age", strconv.Itoa(int(maxAge/time.Second)))
	return true
}

// CORS sets the headers of an actual (non-preflight) response: the echoed
// origin, credentials and exposed headers for an allowed origin, only
// "Vary: Origin" for any other. It first removes CORS headers already in h, so
// an upstream cannot widen the policy. A caller that sets them more than once
// per request uses CORSHeaders.
func (p *Policy) CORS(h http.Header, r *http.Request) {
	c := p.CORSHeaders(r)
	c.Set(h)
}

// CORSHeaders decides the CORS headers of the response to r (see CORS), for
// the caller to set with Set as often as it needs to.
func (p *Policy) CORSHeaders(r *http.Request) CORSHeaders {
	origin := requestOrigin(r)
	if !p.allowed(r, origin) {
		return CORSHeaders{}
	}
	return CORSHeaders{allowed: true, origin: origin, expose: p.exposeHeaders()}
}

// CORSHeaders are the CORS headers of one actual response, decided once by
// Policy.CORSHeaders. The header values Set adds are slices of an array the
// CORSHeaders holds, so a caller that keeps it in an allocation it makes
// anyway sets them without allocating, however often.
type CORSHeaders struct {
	allowed        bool
	origin, expose string
	// values backs Access-Control-Allow-Origin, -Allow-Credentials,
	// -Expose-Headers and an added Vary, in that order.
	values [4]string
}

// Set removes the CORS headers in h, adds Origin to its Vary header unless
// it names it already, and, for an allowed origin, sets
// Access-Control-Allow-Origin, -Allow-Credentials and -Expose-Headers.
func (c *CORSHeaders) Set(h http.Header) {
	for _, name := range corsResponseHeaders {
		delete(h, name) // canonical names: Del would canonicalise them again
	}
	switch vary := h["Vary"]; {
	case len(vary) == 0:
		// Nothing else holds this element: Vary did not name Origin when
		// it was last set.
		c.values[3] = "Origin"
		h["Vary"] = c.values[3:4:4]
	case !hasVary(vary, "Origin"):
		h["Vary"] = append(vary, "Origin")
	}
	if !c.allowed {
		return
	}
	// The header map held these elements only under the names deleted above.
	c.values[0], c.values[1], c.values[2] = c.origin, "true", c.expose
	h["Access-Control-Allow-Origin"] = c.values[0:1:1]
	h["Access-Control-Allow-Credentials"] = c.values[1:2:2]
	h["Access-Control-Expose-Headers"] = c.values[2:3:3]
}

// exposeHeaders is the value of Access-Control-Expose-Headers, joined once.
func (p *Policy) exposeHeaders() string {
	p.exposeOnce.Do(func() {
		p.expose = strings.Join(orDefault(p.ExposeHeaders, DefaultExposeHeaders), ", ")
	})
	return p.expose
}

// corsResponseHeaders are the CORS response headers, in canonical form.
var corsResponseHeaders = []string{
	"Access-Control-Allow-Origin",
	"Access-Control-Allow-Credentials",
	"Access-Control-Allow-Methods",
	"Access-Control-Allow-Headers",
	"Access-Control-Expose-Headers",
	"Access-Control-Max-Age",
}

// CheckCSRF refuses a cross-site, cookie-authenticated, state-changing request.
// Safe methods, requests carrying a Bearer token (a browser cannot attach an
// Authorization header cross-origin without a preflight this policy answered)
// and requests without an auth cookie pass. The rest must carry an allowed
// Origin or, when the browser sent no Origin, Sec-Fetch-Site: same-origin.
func (p *Policy) CheckCSRF(r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return nil
	}
	if HasBearer(r) || !p.hasAuthCookie(r) {
		return nil
	}
	if origin := requestOrigin(r); origin != "" {
		if p.allowed(r, origin) {
			return nil
		}
		return ErrCrossSiteRequest
	}
	if r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		return nil
	}
	return ErrCrossSiteRequest
}

// CheckWebSocket refuses a WebSocket upgrade whose Origin is not allowed.
// Browsers always send Origin with a WebSocket handshake, so an upgrade
// without one passes only with a Bearer token (a non-browser client).
// Requests that are not upgrades pass.
func (p *Policy) CheckWebSocket(r *http.Request) error {
	if !IsWebSocket(r) {
		return nil
	}
	origin := requestOrigin(r)
	if origin == "" {
		if HasBearer(r) {
			return nil
		}
		return ErrWebSocketOrigin
	}
	if p.allowed(r, origin) {
		return nil
	}
	return ErrWebSocketOrigin
}

func (p *Policy) hasAuthCookie(r *http.Request) bool {
	for _, name := range p.AuthCookies {
		if _, err := r.Cookie(name); err == nil {
			return true
		}
	}
	return false
}

// HasBearer reports whether r carries an Authorization header with the Bearer scheme.
func HasBearer(r *http.Request) bool {
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return strings.EqualFold(scheme, "Bearer")
}

// IsWebSocket reports whether r asks for a WebSocket: an HTTP/1.1 Upgrade, or
// an extended CONNECT over HTTP/2 or HTTP/3.
func IsWebSocket(r *http.Request) bool {
	if r.Method == http.MethodConnect && (r.Header.Get(":protocol") == "websocket" || r.Proto == "websocket") {
		return true
	}
	for _, v := range r.Header.Values("Upgrade") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "websocket") {
				return true
			}
		}
	}
	return false
}

func orDefault(v, def []string) []string {
	if len(v) == 0 {
		return def
	}
	return v
}

// addVary adds names to the Vary header unless already there.
func addVary(h http.Header, names ...string) {
	for _, n := range names {
		if !hasVary(h["Vary"], n) {
			h.Add("Vary", n)
		}
	}
}

// hasVary reports whether the Vary values name name (compared without
// regard to case), without allocating.
func hasVary(values []string, name string) bool {
	for _, v := range values {
		for rest := v; rest != ""; {
			var tok string
			tok, rest, _ = strings.Cut(rest, ",")
			if strings.EqualFold(strings.TrimSpace(tok), name) {
				return true
			}
		}
	}
	return false
}
