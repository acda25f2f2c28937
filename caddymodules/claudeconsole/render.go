package claudeconsole

import (
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/claude-gateway/claude-gateway/caddymodules/internal/htmlpage"
)

//go:embed assets
var assets embed.FS

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"ago": func(t time.Time) string { return humanize.Time(t) },
	"bytes": func(n int64) string {
		if n < 0 {
			return "—"
		}
		return humanize.IBytes(uint64(n))
	},
}

// templates holds one template set per page: the layout and the page.
var templates = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range []string{"users", "sessions", "executor", "health", "limits", "audit"} {
		out[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(assets, "assets/layout.html", "assets/"+name+".html"))
	}
	return out
}()

// view is what the layout shows around a page.
type view struct {
	// Page names the page (and the nav entry marked current).
	Page string
	// Title is the page's heading.
	Title string
	// Prefix is the console's path.
	Prefix string
	// CSRF is the form token.
	CSRF string
	// User is the administrator signed in.
	User string
	// Notice is a success message, Error a failure to show.
	Notice, Error string
	// Data is the page's own content.
	Data any
}

// notices are the success messages an action redirects with (?ok=<code>);
// only these texts are ever shown, nothing from the URL itself.
var notices = map[string]string{
	"user_added":        "User created.",
	"password_reset":    "Password changed; the user's sessions were ended.",
	"user_disabled":     "User disabled; their sessions were ended.",
	"user_enabled":      "User enabled.",
	"user_deleted":      "User deleted; their sessions were ended.",
	"session_deleted":   "Session deleted.",
	"workspace_stopped": "Workspace stopped; the owner's next visit or run starts it again.",
	"ban_lifted":        "Ban lifted.",
}

// render writes a page with status.
func (q *request) render(status int, page, title string, data any, errMsg string) error {
	tpl := templates[page]
	v := view{Page: page, Title: title, Prefix: q.h.Prefix, CSRF: q.csrfToken(), User: q.user.Username,
		Notice: notices[q.r.URL.Query().Get("ok")], Error: errMsg, Data: data}
	hdr := q.w.Header()
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "same-origin")
	return htmlpage.Write(q.w, status, htmlpage.OwnStylesheetCSP, tpl.Lookup("layout"), v)
}

// done answers a successful action: back to page with its notice.
func (q *request) done(page, notice string) error {
	q.w.Header().Set("Cache-Control", "no-store")
	http.Redirect(q.w, q.r, fmt.Sprintf("%s/%s?ok=%s", q.h.Prefix, page, notice), http.StatusSeeOther)
	return nil
}

func (q *request) serveCSS() error {
	if q.r.Method != http.MethodGet && q.r.Method != http.MethodHead {
		return q.methodNotAllowed("GET, HEAD")
	}
	b, err := assets.ReadFile("assets/console.css")
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	q.w.Header().Set("Content-Type", "text/css; charset=utf-8")
	q.w.Header().Set("Cache-Control", "private, max-age=3600")
	q.w.WriteHeader(http.StatusOK)
	if q.r.Method == http.MethodGet {
		q.w.Write(b)
	}
	return nil
}
