package handoff

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// listenLoopback opens a fresh loopback socket, counting the calls.
func listenLoopback(t *testing.T, opened *atomic.Int32) func() (net.Listener, error) {
	t.Helper()
	return func() (net.Listener, error) {
		opened.Add(1)
		return net.Listen("tcp", "127.0.0.1:0")
	}
}

// acceptOne returns the next connection l accepts within d, or nil.
func acceptOne(l net.Listener, d time.Duration) net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- c
	}()
	select {
	case c := <-ch:
		return c
	case <-time.After(d):
		return nil
	}
}

func TestSocketsShareOneSocketPerKey(t *testing.T) {
	var s Sockets
	var opened atomic.Int32
	a, err := s.Listen("k", listenLoopback(t, &opened))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Listen("k", listenLoopback(t, &opened))
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Listen("other", listenLoopback(t, &opened))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if got := opened.Load(); got != 2 {
		t.Fatalf("opened %d sockets for 2 keys, want 2", got)
	}
	if a.Addr().String() != b.Addr().String() {
		t.Fatalf("listeners of one key on different addresses: %s, %s", a.Addr(), b.Addr())
	}
	addr := a.Addr().String()

	// Closing the older listener leaves the socket open for the newer one.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial after the older listener closed: %v", err)
	}
	c.Close()
	if got := acceptOne(b, 2*time.Second); got == nil {
		t.Fatal("the remaining listener did not get the connection")
	} else {
		got.Close()
	}

	// Closing the last one closes the socket.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n := s.Open(); n != 1 {
		t.Fatalf("%d sockets open after closing every listener of k, want 1 (other)", n)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("socket still accepts after its last listener closed")
	}
}

func TestSocketsGiveConnectionsToTheNewestListener(t *testing.T) {
	var s Sockets
	var opened atomic.Int32
	older, err := s.Listen("k", listenLoopback(t, &opened))
	if err != nil {
		t.Fatal(err)
	}
	defer older.Close()
	newer, err := s.Listen("k", listenLoopback(t, &opened))
	if err != nil {
		t.Fatal(err)
	}

	olderGot := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := older.Accept()
			if err != nil {
				return
			}
			olderGot <- c
		}
	}()
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", newer.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := acceptOne(newer, 2*time.Second); got == nil {
			t.Fatalf("connection %d did not reach the newest listener", i)
		} else {
			got.Close()
		}
	}
	select {
	case c := <-olderGot:
		c.Close()
		t.Fatal("the older listener got a connection while a newer one was open")
	case <-time.After(50 * time.Millisecond):
	}

	// Once the newest closes, the older one is the newest again.
	newer.Close()
	c, err := net.Dial("tcp", older.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case got := <-olderGot:
		got.Close()
	case <-time.After(2 * time.Second):
		t.Fatal("the older listener got nothing after the newer one closed")
	}
}

// TestSocketsOverlapLosesNothing replaces the listener of a busy socket many
// times, as reloads do, while clients keep connecting: every connection must
// be served by one of the listeners.
func TestSocketsOverlapLosesNothing(t *testing.T) {
	var s Sockets
	var opened atomic.Int32
	serve := func(l net.Listener) {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte("ok"))
			}()
		}
	}
	cur, err := s.Listen("k", listenLoopback(t, &opened))
	if err != nil {
		t.Fatal(err)
	}
	go serve(cur)
	addr := cur.Addr().String()

	stop := make(chan struct{})
	var served, failed atomic.Int64
	done := make(chan struct{})
	for w := 0; w < 4; w++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", addr, 2*time.Second)
				if err != nil {
					failed.Add(1)
					continue
				}
				c.SetDeadline(time.Now().Add(5 * time.Second))
				b, err := io.ReadAll(c)
				c.Close()
				if err != nil || string(b) != "ok" {
					failed.Add(1)
					continue
				}
				served.Add(1)
			}
		}()
	}
	for i := 0; i < 30; i++ {
		time.Sleep(10 * time.Millisecond)
		next, err := s.Listen("k", listenLoopback(t, &opened))
		if err != nil {
			t.Fatal(err)
		}
		go serve(next)
		cur.Close()
		cur = next
	}
	close(stop)
	for w := 0; w < 4; w++ {
		<-done
	}
	cur.Close()
	if opened.Load() != 1 {
		t.Fatalf("opened %d sockets, want 1", opened.Load())
	}
	if failed.Load() != 0 || served.Load() == 0 {
		t.Fatalf("served %d, failed %d connections across 30 listener swaps; want none failed", served.Load(), failed.Load())
	}
	t.Logf("served %d connections across 30 listener swaps", served.Load())
}
