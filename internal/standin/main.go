// Command standin is a small static HTTP and WebSocket server that takes
// code-server's command line and answers the way the gateway needs
// code-server (or the frontend, or the backend) to answer in tests, where no
// registry can be reached to pull the real images:
//
//	standin --bind-addr 127.0.0.1:8080 --auth none /workspace
//	standin --socket /home/coder/.ide.sock --socket-mode 0660 --auth none /workspace
//
// It answers
//   - GET /healthz with {"status":"alive"}, as code-server does;
//   - any request carrying "Upgrade: websocket" with a WebSocket that sends
//     every message back;
//   - any other request asking for JSON (Accept: application/json) with the
//     request as it arrived (method, host, path, query, headers) and the folder;
//   - anything else with an HTML page naming the folder and the request path,
//     whose script opens a WebSocket beside the page and shows the echo of a
//     message in #ws (so a browser test sees the socket work through a proxy).
//
// Build it with CGO_ENABLED=0: the workspace test image runs it as its IDE.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// options are the command-line settings, named as code-server names them.
type options struct {
	bindAddr   string
	socket     string
	socketMode string
	auth       string
	name       string
	folder     string
}

func main() {
	opts, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, opts); err != nil {
		log.Fatalf("standin: %v", err)
	}
}

// parseArgs reads code-server's flags that matter here and accepts (and
// ignores) the ones the gateway passes to the real code-server.
func parseArgs(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("standin", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.bindAddr, "bind-addr", "127.0.0.1:8080", "host:port to listen on")
	fs.StringVar(&o.socket, "socket", "", "unix socket to listen on instead of --bind-addr")
	fs.StringVar(&o.socketMode, "socket-mode", "", "octal mode of the unix socket")
	fs.StringVar(&o.auth, "auth", "none", "authentication: only none")
	fs.StringVar(&o.name, "name", "code-server", "name sent back in JSON answers")
	for _, ignored := range []string{"user-data-dir", "extensions-dir", "locale", "config"} {
		fs.String(ignored, "", "ignored")
	}
	for _, ignored := range []string{"disable-telemetry", "disable-update-check", "disable-workspace-trust", "disable-getting-started-override"} {
		fs.Bool(ignored, false, "ignored")
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.auth != "none" {
		return o, fmt.Errorf("--auth %q: only none is supported", o.auth)
	}
	switch fs.NArg() {
	case 0:
		o.folder, _ = os.Getwd()
	case 1:
		o.folder = fs.Arg(0)
	default:
		return o, fmt.Errorf("one folder at most, got %q", fs.Args())
	}
	return o, nil
}

// serve listens as opts say and serves until ctx ends.
func serve(ctx context.Context, opts options) error {
	ln, where, err := listen(opts)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler(opts), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("HTTP server listening on %s (folder %s)", where, opts.folder)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	if opts.socket != "" {
		os.Remove(opts.socket)
	}
	return nil
}

// listen opens the unix socket (replacing a stale one, then setting its
// mode) or the TCP address.
func listen(opts options) (net.Listener, string, error) {
	if opts.socket == "" {
		ln, err := net.Listen("tcp", opts.bindAddr)
		if err != nil {
			return nil, "", err
		}
		return ln, "http://" + ln.Addr().String(), nil
	}
	if err := os.Remove(opts.socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("removing the stale socket: %w", err)
	}
	ln, err := net.Listen("unix", opts.socket)
	if err != nil {
		return nil, "", err
	}
	if opts.socketMode != "" {
		mode, err := strconv.ParseUint(opts.socketMode, 8, 32)
		if err != nil {
			ln.Close()
			return nil, "", fmt.Errorf("--socket-mode %q is not an octal mode", opts.socketMode)
		}
		if err := os.Chmod(opts.socket, os.FileMode(mode)); err != nil {
			ln.Close()
			return nil, "", err
		}
	}
	return ln, opts.socket, nil
}

// echo is the JSON answer: the request as it arrived.
type echo struct {
	Upstream string      `json:"upstream"`
	Folder   string      `json:"folder"`
	Method   string      `json:"method"`
	Host     string      `json:"host"`
	Path     string      `json:"path"`
	RawQuery string      `json:"raw_query"`
	Header   http.Header `json:"header"`
}

func handler(opts options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
			echoSocket(w, r)
		case r.URL.Path == "/healthz":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"status":"alive","lastHeartbeat":0}`)
		case strings.Contains(r.Header.Get("Accept"), "application/json"):
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(echo{
				Upstream: opts.name, Folder: opts.folder, Method: r.Method, Host: r.Host,
				Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header,
			})
		default:
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			page.Execute(w, map[string]string{"Name": opts.name, "Folder": opts.folder, "Path": r.URL.Path})
		}
	})
}

// echoSocket accepts a WebSocket from any origin (the gateway checks
// origins) and sends every message back until the peer closes.
func echoSocket(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}

// page is the HTML answer. Its script resolves the socket's URL against the
// page's own location, as code-server's does, so it works under any prefix.
var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Name}} stand-in</title></head>
<body>
<h1>{{.Name}} stand-in</h1>
<p>folder: <code id="folder">{{.Folder}}</code></p>
<p>path: <code id="path">{{.Path}}</code></p>
<p>websocket: <code id="ws">connecting</code></p>
<script>
(function () {
  var out = document.getElementById("ws");
  var url = new URL("ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  var ws = new WebSocket(url.href);
  ws.onopen = function () { ws.send("ping"); };
  ws.onmessage = function (e) { out.textContent = "echo: " + e.data; };
  ws.onerror = function () { out.textContent = "error"; };
})();
</script>
</body></html>
`))
