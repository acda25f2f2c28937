// Package htmlpage writes the HTML pages the gateway's modules serve
// themselves — the sign-in form, the console, the IDE's "starting" page and
// claude_error's error page — all with the same headers: text/html in UTF-8,
// never stored, under the page's Content-Security-Policy.
package htmlpage

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
)

// OwnStylesheetCSP is the Content-Security-Policy of a page styled by
// stylesheets of its own origin (the sign-in page, the console): nothing
// else, no script at all, never framed.
const OwnStylesheetCSP = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'"

// Write answers with tmpl executed on data as a page of status under csp, the
// page's Content-Security-Policy. The page is rendered before anything is
// written: a template that fails leaves w untouched and returns the error,
// for claude_error to answer.
func Write(w http.ResponseWriter, status int, csp string, tmpl *template.Template, data any) error {
	var body bytes.Buffer
	if err := tmpl.Execute(&body, data); err != nil {
		return fmt.Errorf("rendering the %s page: %w", tmpl.Name(), err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", csp)
	h.Del("Content-Length")
	w.WriteHeader(status)
	w.Write(body.Bytes()) // an error here is the client gone
	return nil
}

// Notice is a short page: a title, a sentence, an optional line of small
// print and an optional reload.
type Notice struct {
	// Title heads the page and names it.
	Title string
	// Message is the sentence under the title.
	Message string
	// Small is a line of small print under the message; empty for none.
	Small string
	// Refresh, when positive, makes the browser load the same address again
	// after that many seconds.
	Refresh int
}

// noticeStyle is the notice's only style, allowed by its hash.
const noticeStyle = `body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:15vh auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}p{color:#555}`

var notice = template.Must(template.New("notice").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
{{if gt .Refresh 0}}<meta http-equiv="refresh" content="{{.Refresh}}">
{{end}}<title>{{.Title}}</title>
<style>` + noticeStyle + `</style>
</head><body><h1>{{.Title}}</h1><p>{{.Message}}</p>{{if .Small}}<p><small>{{.Small}}</small></p>{{end}}</body></html>
`))

// noticeCSP allows the notice nothing but its own style, and no framing; a
// site whose pages are framed replaces it (the IDE host's ide_frame_headers).
var noticeCSP = "default-src 'none'; style-src " + styleSource(noticeStyle) + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// WriteNotice answers with n as a page of status.
func WriteNotice(w http.ResponseWriter, status int, n Notice) error {
	return Write(w, status, noticeCSP, notice, n)
}

// styleSource is the Content-Security-Policy source that allows exactly the
// inline style css: its SHA-256 hash.
func styleSource(css string) string {
	sum := sha256.Sum256([]byte(css))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}
