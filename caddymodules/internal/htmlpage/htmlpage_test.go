package htmlpage

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestWrite: every page gets the same headers, and a template that fails
// leaves the response untouched, for claude_error to answer.
func TestWrite(t *testing.T) {
	page := template.Must(template.New("p").Parse(`<p>{{.}}</p>`))
	w := httptest.NewRecorder()
	w.Header().Set("Content-Length", "99") // a stale length must not survive
	if err := Write(w, http.StatusForbidden, OwnStylesheetCSP, page, "hi"); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-store",
		"Content-Security-Policy": OwnStylesheetCSP,
		"Content-Length":          "",
	} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if w.Code != http.StatusForbidden || w.Body.String() != "<p>hi</p>" {
		t.Errorf("%d %q", w.Code, w.Body.String())
	}

	failing := template.Must(template.New("failing").Parse(`<p>{{.Missing}}</p>`))
	w = httptest.NewRecorder()
	if err := Write(w, http.StatusOK, OwnStylesheetCSP, failing, struct{}{}); err == nil || !strings.Contains(err.Error(), "failing page") {
		t.Fatalf("a failing template: %v", err)
	}
	if w.Body.Len() != 0 || w.Header().Get("Content-Type") != "" {
		t.Fatalf("a failing template wrote %q with %v", w.Body.String(), w.Header())
	}
}

// TestNotice: the notice escapes what it shows (an attacker's text is not
// markup), allows exactly its own inline style by hash and nothing else, and
// reloads itself only when asked to.
func TestNotice(t *testing.T) {
	w := httptest.NewRecorder()
	err := WriteNotice(w, http.StatusServiceUnavailable, Notice{
		Title: "Starting", Message: `<script>alert(1)</script>"'`, Small: "Error 503", Refresh: 2})
	if err != nil {
		t.Fatal(err)
	}
	body := w.Body.String()
	if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("the message is not escaped: %s", body)
	}
	if !strings.Contains(body, `<meta http-equiv="refresh" content="2">`) || !strings.Contains(body, "<small>Error 503</small>") {
		t.Errorf("no reload or small print: %s", body)
	}
	style := regexp.MustCompile(`<style>(.*)</style>`).FindStringSubmatch(body)
	if style == nil {
		t.Fatalf("no style: %s", body)
	}
	sum := sha256.Sum256([]byte(style[1]))
	csp := w.Header().Get("Content-Security-Policy")
	want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "';"
	if !strings.HasPrefix(csp, "default-src 'none'; ") || !strings.Contains(csp, want) || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q lacks %q", csp, want)
	}

	w = httptest.NewRecorder()
	if err := WriteNotice(w, http.StatusNotFound, Notice{Title: "Not Found", Message: "No."}); err != nil {
		t.Fatal(err)
	}
	if body := w.Body.String(); strings.Contains(body, "refresh") || strings.Contains(body, "<small>") {
		t.Errorf("a notice without Refresh or Small: %s", body)
	}
}
