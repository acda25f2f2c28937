package handoff

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestDroppedRequestIsReplayedToTheNewestListener plays what net/http does to
// a connection whose request it read just as Shutdown began: it closes the
// connection without a word. An idempotent request is then served by the
// newest listener from the same bytes; any other is closed, as before.
func TestDroppedRequestIsReplayedToTheNewestListener(t *testing.T) {
	tests := []struct {
		name     string
		req      string
		replayed bool
	}{
		{"GET is replayed", "GET /x HTTP/1.1\r\nHost: a\r\n\r\n", true},
		{"DELETE is replayed", "DELETE /x HTTP/1.1\r\nHost: a\r\n\r\n", true},
		{"POST is not", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Sockets
			var g Groups
			open := func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
			rawOld, err := s.Listen("k", open)
			if err != nil {
				t.Fatal(err)
			}
			old := g.Wrap(rawOld, false, Options{})

			client, err := net.Dial("tcp", old.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			io.WriteString(client, tt.req)

			sc := acceptOne(old, 2*time.Second)
			if sc == nil {
				t.Fatal("old listener got nothing")
			}
			got, err := readRequest(sc)
			if err != nil || got != tt.req {
				t.Fatalf("old server read %q, %v", got, err)
			}

			// The reload: a newer listener opens, the old one closes, and the
			// old server drops the connection it had read but not answered.
			rawNew, err := s.Listen("k", open)
			if err != nil {
				t.Fatal(err)
			}
			newer := g.Wrap(rawNew, false, Options{})
			defer newer.Close()
			old.Close()
			if err := sc.Close(); err != nil && tt.replayed {
				t.Fatalf("Close of a handed-over connection: %v", err)
			}

			nc := acceptOne(newer, 500*time.Millisecond)
			if !tt.replayed {
				if nc != nil {
					nc.Close()
					t.Fatal("a non-idempotent request was handed to the new server")
				}
				client.SetReadDeadline(time.Now().Add(2 * time.Second))
				if n, _ := client.Read(make([]byte, 1)); n != 0 {
					t.Fatal("client got bytes from a dropped connection")
				}
				return
			}
			if nc == nil {
				t.Fatal("the new server did not get the dropped request")
			}
			defer nc.Close()
			again, err := readRequest(nc)
			if err != nil || again != tt.req {
				t.Fatalf("new server read %q, %v; want the same request", again, err)
			}
			io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			client.SetReadDeadline(time.Now().Add(2 * time.Second))
			status, err := bufio.NewReader(client).ReadString('\n')
			if err != nil || !strings.HasPrefix(status, "HTTP/1.1 200") {
				t.Fatalf("client got %q, %v", status, err)
			}
		})
	}
}

func TestAnsweredConnectionIsClosedNotReplayed(t *testing.T) {
	var s Sockets
	var g Groups
	open := func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
	rawOld, _ := s.Listen("k", open)
	old := g.Wrap(rawOld, false, Options{})
	client, err := net.Dial("tcp", old.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	io.WriteString(client, "GET / HTTP/1.1\r\n\r\n")
	sc := acceptOne(old, 2*time.Second)
	if sc == nil {
		t.Fatal("no connection")
	}
	readRequest(sc)
	io.WriteString(sc, "HTTP/1.1 204 No Content\r\n\r\n")
	rawNew, _ := s.Listen("k", open)
	newer := g.Wrap(rawNew, false, Options{})
	defer newer.Close()
	old.Close()
	sc.Close()
	if nc := acceptOne(newer, 300*time.Millisecond); nc != nil {
		nc.Close()
		t.Fatal("an answered connection was handed over")
	}
}

// readRequest reads one request head (no body) from c, byte by byte so that
// nothing past it is consumed.
func readRequest(c net.Conn) (string, error) {
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	var b strings.Builder
	one := make([]byte, 1)
	for !strings.HasSuffix(b.String(), "\r\n\r\n") {
		if _, err := c.Read(one); err != nil {
			return b.String(), err
		}
		b.Write(one)
	}
	return b.String(), nil
}
