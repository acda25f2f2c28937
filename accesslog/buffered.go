package accesslog

import (
	"bufio"
	"errors"
	"io"
	"sync"
	"time"
)

// BufferedWriter gathers log entries in memory and writes them to the
// wrapped writer in batches: when the buffer fills, every FlushInterval,
// and on Close, so that a busy server makes one write system call per batch
// instead of one per entry. An entry is never split across two writes
// unless it is larger than the buffer. What a crash (not a shutdown) loses is
// at most one interval of entries.
type BufferedWriter struct {
	mu     sync.Mutex
	closer io.Closer
	buf    *bufio.Writer
	err    error
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// NewBufferedWriter buffers up to size bytes in front of w and flushes every
// interval. Close flushes, stops the flushing and closes w.
func NewBufferedWriter(w io.WriteCloser, size int, interval time.Duration) *BufferedWriter {
	b := &BufferedWriter{
		closer: w,
		buf:    bufio.NewWriterSize(w, size),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go b.flushEvery(interval)
	return b
}

// Write adds p to the buffer; a p that does not fit in what is left of the
// buffer first flushes what it holds, so entries stay whole.
func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	if len(p) > b.buf.Available() && b.buf.Buffered() > 0 {
		if err := b.buf.Flush(); err != nil {
			return 0, err
		}
	}
	return b.buf.Write(p)
}

// Flush writes what the buffer holds.
func (b *BufferedWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	return b.buf.Flush()
}

// Sync flushes; zap calls it after an entry above level Error (a panic, a
// fatal error), so those reach the wrapped writer before the process ends.
func (b *BufferedWriter) Sync() error { return b.Flush() }

// Close flushes, stops the periodic flush and closes the wrapped writer.
// Writes after Close fail.
func (b *BufferedWriter) Close() error {
	var err error
	b.once.Do(func() {
		close(b.stop)
		<-b.done
		b.mu.Lock()
		defer b.mu.Unlock()
		err = b.buf.Flush()
		b.err = errClosed
		err = errors.Join(err, b.closer.Close())
	})
	return err
}

// errClosed is returned by writes after Close.
var errClosed = errors.New("accesslog: buffered writer closed")

func (b *BufferedWriter) flushEvery(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.Flush() // an error is kept by bufio and returned to the next Write
		}
	}
}
