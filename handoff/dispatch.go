package handoff

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTimeout is how long a new connection may take, by default, to finish
// its TLS handshake and send its first request bytes.
const DefaultTimeout = time.Minute

// Options tune the listeners of a Groups.
type Options struct {
	// Timeout bounds the TLS handshake plus the wait for the first request
	// bytes of a new connection; zero means DefaultTimeout.
	Timeout time.Duration
	// Debug, when set, is told why a connection was closed before any server
	// saw it (failed handshake, silent client).
	Debug func(msg string, remote net.Addr, err error)
}

// Groups holds, per listening address, the listeners of every running
// configuration. A connection accepted by any of them is made ready (TLS
// handshake done, first bytes read) and then given to the newest open
// listener of the same kind (TLS or plain) for its address. The zero value is
// ready to use.
type Groups struct {
	mu     sync.Mutex
	groups map[string]*group
}

// group is the listeners for one address, oldest first.
type group struct {
	members []*Listener
	changed chan struct{} // closed and replaced whenever members change
}

// Listener wraps one server's listener for one address. Its Accept returns
// only connections that are ready to be read.
type Listener struct {
	inner  net.Listener
	groups *Groups
	key    string
	opts   Options
	tls    atomic.Bool // whether this listener's connections are TLS

	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once // stop
	innerOnce sync.Once // closing inner

	errMu sync.Mutex
	err   error // a permanent Accept error of inner, returned by Accept
}

// Wrap returns a Listener over inner that joins the group of inner's address.
// tlsHint says whether inner yields TLS connections (the first connection
// corrects a wrong hint).
func (g *Groups) Wrap(inner net.Listener, tlsHint bool, opts Options) *Listener {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	l := &Listener{
		inner:  inner,
		groups: g,
		key:    inner.Addr().Network() + "/" + inner.Addr().String(),
		opts:   opts,
		conns:  make(chan net.Conn),
		done:   make(chan struct{}),
	}
	l.tls.Store(tlsHint)
	g.mu.Lock()
	if g.groups == nil {
		g.groups = make(map[string]*group)
	}
	gr := g.groups[l.key]
	if gr == nil {
		gr = &group{changed: make(chan struct{})}
		g.groups[l.key] = gr
	}
	gr.members = append(gr.members, l)
	gr.signal()
	g.mu.Unlock()
	go l.pump()
	return l
}

// Members reports how many listeners are open for the address key
// ("tcp/127.0.0.1:8443").
func (g *Groups) Members(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if gr := g.groups[key]; gr != nil {
		return len(gr.members)
	}
	return 0
}

// Accept returns the next ready connection given to this listener.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		l.errMu.Lock()
		err := l.err
		l.errMu.Unlock()
		if err == nil {
			err = &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: net.ErrClosed}
		}
		return nil, err
	}
}

// Addr is the wrapped listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Close leaves the group and closes the wrapped listener. Connections this
// listener accepted that are not ready yet go to a newer listener when ready.
func (l *Listener) Close() error {
	l.stop()
	var err error
	l.innerOnce.Do(func() { err = l.inner.Close() })
	return err
}

// stop leaves the group and ends Accept.
func (l *Listener) stop() {
	l.closeOnce.Do(func() {
		l.leave()
		close(l.done)
	})
}

// closed reports whether Close was called.
func (l *Listener) closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

func (l *Listener) leave() {
	l.groups.mu.Lock()
	defer l.groups.mu.Unlock()
	gr := l.groups.groups[l.key]
	if gr == nil {
		return
	}
	for i, m := range gr.members {
		if m == l {
			gr.members = append(gr.members[:i], gr.members[i+1:]...)
			break
		}
	}
	gr.signal()
	if len(gr.members) == 0 {
		delete(l.groups.groups, l.key)
	}
}

func (gr *group) signal() {
	close(gr.changed)
	gr.changed = make(chan struct{})
}

// newest is the newest open listener for key whose kind matches tls, and a
// channel closed when the group changes.
func (g *Groups) newest(key string, tls bool) (*Listener, <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	gr := g.groups[key]
	if gr == nil {
		return nil, nil
	}
	for i := len(gr.members) - 1; i >= 0; i-- {
		if m := gr.members[i]; m.tls.Load() == tls {
			return m, gr.changed
		}
	}
	return nil, gr.changed
}

// deliver gives a ready connection to the newest open listener of its kind,
// or closes it when none is left (the address is no longer served).
func (g *Groups) deliver(key string, c *Conn) {
	for {
		l, changed := g.newest(key, c.tls)
		if l == nil {
			c.closeUnderlying()
			return
		}
		select {
		case l.conns <- c.ready(l):
			return
		case <-l.done:
		case <-changed:
		}
	}
}

// pump accepts from the wrapped listener and readies each connection on its
// own goroutine, until the listener is closed.
func (l *Listener) pump() {
	var backoff time.Duration
	for {
		c, err := l.inner.Accept()
		if err != nil {
			if l.closed() {
				return
			}
			if !errors.Is(err, net.ErrClosed) {
				// Out of file descriptors, a bad PROXY header and the like:
				// pause and go on, as net/http does.
				backoff = nextBackoff(backoff)
				time.Sleep(backoff)
				continue
			}
			// The wrapped listener is gone for good: let Accept report it.
			l.errMu.Lock()
			l.err = err
			l.errMu.Unlock()
			l.stop()
			return
		}
		backoff = 0
		go l.prepare(c)
	}
}

// handshaker is a TLS connection (crypto/tls.Conn or a wrapper of one).
type handshaker interface {
	HandshakeContext(context.Context) error
}

// prepare finishes the TLS handshake, waits for the first bytes, then
// delivers the connection to the newest listener of its kind.
func (l *Listener) prepare(c net.Conn) {
	deadline := time.Now().Add(l.opts.Timeout)
	_ = c.SetDeadline(deadline)
	hs, isTLS := c.(handshaker)
	if isTLS != l.tls.Load() {
		l.tls.Store(isTLS) // the hint was wrong; the connections tell the truth
	}
	if isTLS {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := hs.HandshakeContext(ctx)
		cancel()
		if err != nil {
			answerPlainHTTP(err)
			l.debug("tls handshake failed", c, err)
			c.Close()
			return
		}
	}
	buf := make([]byte, firstReadSize)
	n, err := c.Read(buf)
	if n == 0 {
		l.debug("connection closed before its first request", c, err)
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	l.groups.deliver(l.key, newConn(c, buf[:n:n], isTLS, l.groups, l.key))
}

// firstReadSize is the most the first read takes off a new connection; the
// rest of the request stays in the connection for the server to read.
const firstReadSize = 1024

func (l *Listener) debug(msg string, c net.Conn, err error) {
	if l.opts.Debug != nil {
		l.opts.Debug(msg, c.RemoteAddr(), err)
	}
}
