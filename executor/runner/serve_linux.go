package runner

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ServeOptions configure the run server.
type ServeOptions struct {
	// Socket is the unix socket the server listens on; a file already there
	// is replaced.
	Socket string
	// Helper is the executable started as `Helper exec --id RUN … -- ARGV`
	// for each run; empty is this very executable (/proc/self/exe).
	Helper string
	// Log receives a line per failure; nil discards them.
	Log io.Writer
}

// requestWait bounds how long a new connection may take to send its
// request.
const requestWait = 10 * time.Second

// killWait is how long a helper asked to stop gets before it is killed
// outright, with every process that carries its run's id.
const killWait = 10 * time.Second

// Serve listens on o.Socket and serves run requests until the listener
// fails. Each connection is one run: the server reads a Request, starts the
// helper (`exec`, see Run) with the connection as its standard output, so
// the client reads the helper's frames as they are written, and waits. A
// byte from the client, or the end of its connection, is a kill request:
// the helper gets SIGTERM, kills the run's whole tree and reports. The
// server keeps the OOM score it started with; the helper gives each
// program the highest.
func Serve(o ServeOptions) error {
	if o.Helper == "" {
		o.Helper = "/proc/self/exe"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if fi, err := os.Lstat(o.Socket); err == nil && !fi.IsDir() {
		os.Remove(o.Socket)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: o.Socket, Net: "unix"})
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.Socket, err)
	}
	defer l.Close()
	// The gateway may run as another user of the workspace user's group.
	if err := os.Chmod(o.Socket, 0o660); err != nil {
		return fmt.Errorf("opening %s to the group: %w", o.Socket, err)
	}
	for {
		conn, err := l.AcceptUnix()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return fmt.Errorf("accepting on %s: %w", o.Socket, err)
		}
		go serveConn(o, conn)
	}
}

// serveConn runs the one request of conn.
func serveConn(o ServeOptions, conn *net.UnixConn) {
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(requestWait))
	req, err := ReadRequest(conn)
	if err != nil {
		if !errors.Is(err, io.EOF) { // a bare connect is a liveness check
			NewFrameWriter(conn).Write(FrameError, []byte("claude-run serve: "+err.Error()))
		}
		return
	}
	conn.SetReadDeadline(time.Time{})
	// Nothing runs unless the client got this: one that did not may run
	// the program another way.
	if _, err := conn.Write([]byte{Accepted}); err != nil {
		return
	}
	// The helper writes its frames straight to the connection. Handing it
	// over leaves the connection in blocking mode (read deadlines no longer
	// apply): the watcher below is woken by CloseRead instead.
	out, err := conn.File()
	if err != nil {
		NewFrameWriter(conn).Write(FrameError, []byte("claude-run serve: "+err.Error()))
		return
	}
	args := []string{"claude-run", "exec", "--id", req.RunID,
		"--timeout-ms", strconv.FormatInt(req.TimeoutMS, 10),
		"--output-limit", strconv.FormatInt(req.OutputLimit, 10), "--"}
	cmd := &exec.Cmd{Path: o.Helper, Args: append(args, req.Argv...), Dir: req.Dir,
		Env: mergeEnv(os.Environ(), req.Env), Stdin: bytes.NewReader(req.Stdin), Stdout: out}
	helperErr := &boundedBuffer{limit: 16 << 10}
	cmd.Stderr = helperErr
	err = cmd.Start()
	out.Close()
	if err != nil {
		NewFrameWriter(conn).Write(FrameError, []byte("claude-run serve: starting the helper: "+err.Error()))
		return
	}

	// Whatever the client sends now, or its going away, stops the run.
	ended := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		var b [1]byte
		conn.Read(b[:])
		select {
		case <-ended:
			return
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-ended:
		case <-time.After(killWait):
			cmd.Process.Kill()
			KillTagged(req.RunID)
		}
	}()
	cmd.Wait()
	close(ended)
	conn.CloseRead()
	<-watched

	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled():
		// The helper was killed (by the run, which has its uid): nothing
		// it started may stay. Its frames may stop mid-way; no more follow.
		KillTagged(req.RunID)
		fmt.Fprintf(o.Log, "claude-run serve: run %s: the helper was killed by %v\n", req.RunID, ws.Signal())
	case !cmd.ProcessState.Success() && helperErr.Len() > 0:
		// A helper that could not run reports on its standard error; the
		// client stops reading at a result, so after one this is unread.
		NewFrameWriter(conn).Write(FrameError, helperErr.Bytes())
	}
}

// mergeEnv is base with the entries of over replacing those of the same
// key.
func mergeEnv(base, over []string) []string {
	keys := map[string]bool{}
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		keys[k] = true
	}
	out := make([]string, 0, len(base)+len(over))
	for _, kv := range base {
		if k, _, _ := strings.Cut(kv, "="); !keys[k] {
			out = append(out, kv)
		}
	}
	return append(out, over...)
}

// boundedBuffer keeps the first limit bytes written to it.
type boundedBuffer struct {
	mu    sync.Mutex
	limit int
	buf   bytes.Buffer
}

// Write keeps what fits and reports all of p written.
func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.limit - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Len is the number of bytes kept.
func (b *boundedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// Bytes returns what was kept.
func (b *boundedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
