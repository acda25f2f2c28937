package claudeworkspace

import (
	"html/template"
	"net/http"
	"strconv"
)

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
{{if .Refresh}}<meta http-equiv="refresh" content="{{.Refresh}}">{{end}}<title>{{.Title}}</title></head>
<body><h1>{{.Title}}</h1><p>{{.Message}}</p></body></html>
`))

// writePage answers with a short HTML page; refresh > 0 makes the browser
// load the same address again after that many seconds.
func writePage(w http.ResponseWriter, status int, title, message string, refresh int) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'")
	w.WriteHeader(status)
	r := ""
	if refresh > 0 {
		r = strconv.Itoa(refresh)
	}
	page.Execute(w, struct{ Title, Message, Refresh string }{title, message, r})
}
