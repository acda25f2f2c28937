package handoff

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Sockets shares one listening socket per address among any number of
// overlapping listeners (one per configuration). The socket is opened by the
// first listener for an address and closed when the last one closes, so a
// reload never closes a socket that still has connections queued. Each
// accepted connection goes to the newest open listener. The zero value is
// ready to use.
type Sockets struct {
	mu      sync.Mutex
	sockets map[string]*socket
}

// socket is one shared listening socket and the virtual listeners on it.
type socket struct {
	owner *Sockets
	key   string
	ln    net.Listener
	done  chan struct{}

	mu      sync.Mutex
	members []*SharedListener // open listeners, oldest first
	changed chan struct{}     // closed and replaced whenever members change
}

// SharedListener is one configuration's view of a shared socket. Closing it
// stops its Accept without closing the socket while other listeners use it.
type SharedListener struct {
	sock      *socket
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

// Listen returns a new listener on the socket shared under key, calling open
// to create the socket when no listener for key is open.
func (s *Sockets) Listen(key string, open func() (net.Listener, error)) (*SharedListener, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sock := s.sockets[key]
	if sock == nil {
		ln, err := open()
		if err != nil {
			return nil, err
		}
		sock = &socket{owner: s, key: key, ln: ln, done: make(chan struct{}), changed: make(chan struct{})}
		if s.sockets == nil {
			s.sockets = make(map[string]*socket)
		}
		s.sockets[key] = sock
		go sock.acceptLoop()
	}
	l := &SharedListener{sock: sock, conns: make(chan net.Conn), done: make(chan struct{})}
	sock.mu.Lock()
	sock.members = append(sock.members, l)
	sock.signalLocked()
	sock.mu.Unlock()
	return l, nil
}

// Open reports how many shared sockets are open.
func (s *Sockets) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sockets)
}

// Accept waits for the next connection the shared socket gives this listener.
func (l *SharedListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: net.ErrClosed}
	}
}

// Addr is the shared socket's address.
func (l *SharedListener) Addr() net.Addr { return l.sock.ln.Addr() }

// Close stops this listener; the socket itself is closed with the last one.
func (l *SharedListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.sock.leave(l)
	})
	return err
}

// leave removes l and closes the socket when no listener is left.
func (s *socket) leave(l *SharedListener) error {
	s.owner.mu.Lock()
	defer s.owner.mu.Unlock()
	s.mu.Lock()
	for i, m := range s.members {
		if m == l {
			s.members = append(s.members[:i], s.members[i+1:]...)
			break
		}
	}
	s.signalLocked()
	last := len(s.members) == 0
	s.mu.Unlock()
	if !last {
		return nil
	}
	delete(s.owner.sockets, s.key)
	close(s.done)
	return s.ln.Close()
}

// signalLocked wakes deliveries waiting on an older member.
func (s *socket) signalLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// newest is the most recently opened listener and the channel that is closed
// when that changes.
func (s *socket) newest() (*SharedListener, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.members) == 0 {
		return nil, s.changed
	}
	return s.members[len(s.members)-1], s.changed
}

// acceptLoop accepts until the socket is closed and hands every connection
// to the newest listener.
func (s *socket) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, as net/http does.
			backoff = nextBackoff(backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.deliver(c)
	}
}

// deliver gives c to the newest listener, following newer ones as they open.
func (s *socket) deliver(c net.Conn) {
	for {
		l, changed := s.newest()
		if l == nil {
			c.Close()
			return
		}
		select {
		case l.conns <- c:
			return
		case <-l.done:
		case <-changed:
		case <-s.done:
			c.Close()
			return
		}
	}
}

// nextBackoff doubles d from 5 ms up to 1 s.
func nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Millisecond
	}
	if d *= 2; d > time.Second {
		d = time.Second
	}
	return d
}
