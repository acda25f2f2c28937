package gatewaytest

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"
)

// Upstream is a real HTTP and WebSocket server on loopback standing in for the
// frontend, the backend or code-server. Every plain request is answered with
// an Echo of what arrived; every WebSocket upgrade becomes an echo socket.
type Upstream struct {
	// Name is sent back in every Echo, so a test sees which upstream answered.
	Name string
	// Server is the running server.
	Server *httptest.Server
	// Hits counts the requests that reached this upstream.
	Hits atomic.Int64
	// Last holds the most recent Echo.
	Last atomic.Pointer[Echo]
	// Handler, when set, answers plain requests instead of the echo.
	Handler http.Handler
}

// Echo is what an Upstream answers: the request as the upstream saw it.
type Echo struct {
	Upstream string `json:"upstream"`
	Method   string `json:"method"`
	Host     string `json:"host"`
	Path     string `json:"path"`
	// EscapedPath is the path as it arrived, escapes and all.
	EscapedPath string      `json:"escaped_path"`
	RawQuery    string      `json:"raw_query"`
	Header      http.Header `json:"header"`
}

// NewUpstream starts an Upstream on 127.0.0.1; it stops when the test ends.
func NewUpstream(t testing.TB, name string) *Upstream {
	t.Helper()
	u := &Upstream{Name: name}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Server.Close)
	return u
}

// Addr is the upstream's host:port, as a reverse_proxy upstream.
func (u *Upstream) Addr() string { return u.Server.Listener.Addr().String() }

// Port is the upstream's port.
func (u *Upstream) Port() int { return u.Server.Listener.Addr().(*net.TCPAddr).Port }

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.Hits.Add(1)
	e := &Echo{Upstream: u.Name, Method: r.Method, Host: r.Host, Path: r.URL.Path, EscapedPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Header: r.Header.Clone()}
	u.Last.Store(e)
	if r.Header.Get("Upgrade") == "websocket" {
		u.echoSocket(w, r)
		return
	}
	if u.Handler != nil {
		u.Handler.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Upstream", u.Name)
	w.Header().Set("X-Frame-Options", "SAMEORIGIN")
	w.Header().Set("Server", "upstream-"+u.Name)
	json.NewEncoder(w).Encode(e)
}

// echoSocket accepts any origin (the gateway is the one that checks origins)
// and sends every message back prefixed with the upstream's name.
func (u *Upstream) echoSocket(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := context.Background()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, append([]byte(u.Name+":"), msg...)); err != nil {
			return
		}
	}
}
