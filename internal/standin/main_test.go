package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestSocket serves on a unix socket with the asked mode and answers the
// health check, JSON, the page and a WebSocket echo through it.
func TestSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "ide.sock")
	opts, err := parseArgs([]string{"--socket", sock, "--socket-mode", "0660", "--auth", "none",
		"--disable-telemetry", "--user-data-dir", "/x", "/workspace"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(sock); !os.IsNotExist(err) {
			t.Errorf("the socket is left after shutdown: %v", err)
		}
	})
	var fi os.FileInfo
	for deadline := time.Now().Add(5 * time.Second); ; {
		if fi, err = os.Stat(sock); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v, want a socket with 0660", fi.Mode())
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}

	get := func(path, accept string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://ide"+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return string(body)
	}
	if body := get("/healthz", ""); !strings.Contains(body, `"alive"`) {
		t.Errorf("/healthz: %s", body)
	}
	var e echo
	if err := json.Unmarshal([]byte(get("/some/path?q=1", "application/json")), &e); err != nil {
		t.Fatal(err)
	}
	if e.Path != "/some/path" || e.RawQuery != "q=1" || e.Folder != "/workspace" || e.Upstream != "code-server" {
		t.Errorf("echo %+v", e)
	}
	if page := get("/a/b", "text/html"); !strings.Contains(page, "/workspace") || !strings.Contains(page, "/a/b") {
		t.Errorf("the page names neither the folder nor the path: %s", page)
	}

	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	c, _, err := websocket.Dial(wctx, "ws://ide/any/path", &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(wctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(wctx); err != nil || string(msg) != "hello" {
		t.Fatalf("echo %q, %v", msg, err)
	}
}

// TestArgs refuses what the stand-in cannot honour.
func TestArgs(t *testing.T) {
	for _, args := range [][]string{
		{"--auth", "password"},
		{"a", "b"},
		{"--no-such-flag"},
	} {
		if _, err := parseArgs(args); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	o, err := parseArgs([]string{"--bind-addr", "127.0.0.1:0", "--name", "frontend"})
	if err != nil || o.bindAddr != "127.0.0.1:0" || o.name != "frontend" || o.folder == "" {
		t.Errorf("%+v %v", o, err)
	}
}
