package executor

import (
	"bytes"
	"errors"
	"io"
)

// errOutputLimit stops the demultiplexer once a stream passed its cap.
var errOutputLimit = errors.New("output limit reached")

// cappedStream keeps the first limit bytes of one output stream and passes
// each chunk on to an optional live sink. Past the limit it keeps the part
// that fits, marks itself truncated and fails the write, which ends the copy
// and makes the run kill its container.
type cappedStream struct {
	buf       bytes.Buffer
	limit     int64
	sink      io.Writer
	truncated bool
}

func (c *cappedStream) Write(p []byte) (int, error) {
	room := c.limit - int64(c.buf.Len())
	over := int64(len(p)) > room
	if over {
		p = p[:max(room, 0)]
	}
	c.buf.Write(p)
	if c.sink != nil && len(p) > 0 {
		// A failing sink (a client gone away) is noticed through the
		// request's context; the run's own record stays complete.
		c.sink.Write(p)
	}
	if over {
		c.truncated = true
		return len(p), errOutputLimit
	}
	return len(p), nil
}
