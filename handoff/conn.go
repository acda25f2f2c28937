package handoff

import (
	"bytes"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// maxRecord is how many request bytes a connection keeps, until its first
// response byte, to replay them to a newer server (see Conn.Close).
const maxRecord = 64 << 10

// shutdownWait is how long a connection that its server closed unanswered
// waits for that server's listener to close (see Conn.Close) before it is
// closed for good: the server was not shutting down after all.
const shutdownWait = 100 * time.Millisecond

// Conn is a ready connection: the bytes read to see that it was ready are
// returned first, then the connection's own.
//
// Until the server writes its first byte, Conn remembers what the server
// read. If the server's listener is closed, or closes within shutdownWait (it
// is shutting down), and the server closed the connection without having
// written anything, the request
// it dropped is idempotent and fits maxRecord, Close gives the connection,
// with those bytes to replay, to the newest listener instead of closing it.
type Conn struct {
	net.Conn
	tls    bool
	groups *Groups
	key    string
	owner  *Listener // the listener whose server received the connection

	mu        sync.Mutex // guards the fields below until the first write
	pending   []byte     // bytes to return before reading from net.Conn
	record    []byte     // bytes returned so far, while recording
	recording bool
	reads     int  // Reads in progress on net.Conn
	closed    bool // Close was called
	fast      atomic.Bool
	wrote     atomic.Bool
	isClosed  atomic.Bool
}

// tlsConn is a Conn over TLS; it reports the TLS connection state, so the
// server can fill in Request.TLS and the TLS placeholders.
type tlsConn struct{ *Conn }

// ConnectionState is the state of the underlying TLS connection.
func (c tlsConn) ConnectionState() tls.ConnectionState {
	if cs, ok := c.Conn.Conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
		return cs.ConnectionState()
	}
	return tls.ConnectionState{}
}

func newConn(c net.Conn, first []byte, isTLS bool, g *Groups, key string) *Conn {
	return &Conn{Conn: c, tls: isTLS, groups: g, key: key, pending: first, recording: true}
}

// ready records which listener gets c and returns what to give its server.
func (c *Conn) ready(owner *Listener) net.Conn {
	c.owner = owner
	if c.tls {
		return tlsConn{c}
	}
	return c
}

// Read returns the pending bytes first, then reads from the connection.
func (c *Conn) Read(p []byte) (int, error) {
	if c.fast.Load() {
		return c.Conn.Read(p)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	if c.wrote.Load() {
		c.recording, c.record = false, nil
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		c.keepLocked(p[:n])
		c.mu.Unlock()
		return n, nil
	}
	if !c.recording {
		c.fast.Store(true)
		c.mu.Unlock()
		return c.Conn.Read(p)
	}
	c.reads++
	c.mu.Unlock()

	n, err := c.Conn.Read(p)

	c.mu.Lock()
	c.reads--
	c.keepLocked(p[:n])
	c.mu.Unlock()
	return n, err
}

// keepLocked appends b to the record, giving up past maxRecord.
func (c *Conn) keepLocked(b []byte) {
	if !c.recording || len(b) == 0 {
		return
	}
	if len(c.record)+len(b) > maxRecord {
		c.recording, c.record = false, nil
		return
	}
	c.record = append(c.record, b...)
}

// Write writes to the connection; after it nothing is replayed.
func (c *Conn) Write(p []byte) (int, error) {
	if !c.wrote.Load() {
		if c.isClosed.Load() {
			return 0, net.ErrClosed
		}
		c.wrote.Store(true)
	}
	return c.Conn.Write(p)
}

// CloseWrite shuts down the writing side when the connection supports it.
func (c *Conn) CloseWrite() error {
	c.wrote.Store(true)
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes the connection, or hands it to a newer listener when its
// server is shutting down and dropped the first request unanswered.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	c.isClosed.Store(true)
	replay, ok := c.replayLocked()
	c.mu.Unlock()
	if ok && !c.owner.closed() {
		// http.Server.Shutdown marks the server as shutting down a moment
		// before it closes its listeners; a connection its server dropped in
		// that moment waits for them to close before it is handed over.
		select {
		case <-c.owner.done:
		case <-time.After(shutdownWait):
			ok = false
		}
	}
	if !ok {
		return c.Conn.Close()
	}
	_ = c.Conn.SetDeadline(time.Time{})
	go c.groups.deliver(c.key, newConn(c.Conn, replay, c.tls, c.groups, c.key))
	return nil
}

// replayLocked returns the bytes to replay to a newer server, if the
// connection qualifies for a hand-over (see Conn).
func (c *Conn) replayLocked() ([]byte, bool) {
	if c.owner == nil || c.wrote.Load() || c.reads != 0 || !c.recording {
		return nil, false
	}
	replay := make([]byte, 0, len(c.record)+len(c.pending))
	replay = append(append(replay, c.record...), c.pending...)
	if !idempotentRequest(replay) {
		return nil, false
	}
	return replay, true
}

func (c *Conn) closeUnderlying() { c.Conn.Close() }

// idempotentRequest reports whether b starts an HTTP/1.x request whose method
// may be repeated without changing its effect (RFC 9110, section 9.2.2).
func idempotentRequest(b []byte) bool {
	method, _, ok := bytes.Cut(b, []byte(" "))
	if !ok {
		return false
	}
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}
