// Package runner is the side of a run that lives inside a session's
// workspace container: the claude-run helper (cmd/claude-run) starts the
// program as a child subreaper, enforces the run's wall-clock limit and output
// cap, kills every process the program left behind when it ends, and reports
// the outcome; the executor reads that report. Output travels as frames on the
// helper's standard output, so nothing the program prints can pass for the
// report.
package runner

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sync"
)

// Frame kinds on the helper's standard output.
const (
	// FrameStdout carries a chunk of the program's standard output.
	FrameStdout byte = 1
	// FrameStderr carries a chunk of the program's standard error.
	FrameStderr byte = 2
	// FrameResult carries the Result as JSON; it is the last frame.
	FrameResult byte = 3
	// FrameError carries the run server's explanation of a helper that
	// ended without a result (its own standard error); it is the last
	// frame.
	FrameError byte = 4
)

// maxFrame bounds one frame's payload; the helper writes at most 32 KiB.
const maxFrame = 1 << 20

// EnvRunID is the environment variable that tags every process of a run with
// its id, so a kill request finds what a helper that died left behind.
const EnvRunID = "CLAUDE_RUN_ID"

// Result is the outcome of a run as the helper saw it.
type Result struct {
	// ExitCode is the program's exit status; 128+n when signal n ended it
	// (137 for SIGKILL).
	ExitCode int `json:"exit_code"`
	// TimedOut is set when the wall-clock limit killed the run.
	TimedOut bool `json:"timed_out"`
	// OOMKilled is set when the kernel's OOM killer killed a process of the
	// workspace during the run (the run's processes are its first choice).
	OOMKilled bool `json:"oom_killed"`
	// Truncated is set when an output stream passed the cap and the run was
	// killed.
	Truncated bool `json:"truncated"`
	// Killed is set when a kill request or a lost reader ended the run.
	Killed bool `json:"killed"`
	// Leftovers is how many processes were still there when the program
	// ended (daemons, background jobs) and were killed.
	Leftovers int `json:"leftovers"`
}

// runIDPattern is what a run id may look like: it names files and appears
// in process command lines.
var runIDPattern = regexp.MustCompile(`^[0-9a-zA-Z_-]{1,64}$`)

// ValidRunID reports whether id may name a run.
func ValidRunID(id string) bool { return runIDPattern.MatchString(id) }

// FrameWriter writes frames to an underlying writer; it is safe for
// concurrent use.
type FrameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewFrameWriter returns a FrameWriter on w.
func NewFrameWriter(w io.Writer) *FrameWriter { return &FrameWriter{w: w} }

// Write sends one frame of the given kind.
func (f *FrameWriter) Write(kind byte, payload []byte) error {
	var hdr [5]byte
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := f.w.Write(payload)
	return err
}

// WriteResult sends the result frame.
func (f *FrameWriter) WriteResult(r Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return f.Write(FrameResult, b)
}

// ErrNoResult means the frame stream ended without a result frame: the
// helper died or never started.
var ErrNoResult = errors.New("the run's helper sent no result")

// Demux reads frames from r until it ends, passing output to stdout and
// stderr, and returns the result frame. A writer that fails gets no more
// frames, but reading goes on to the result; the first such error is
// returned as writeErr. A broken stream is err; a stream that ends without a
// result is ErrNoResult.
func Demux(r io.Reader, stdout, stderr io.Writer) (res Result, writeErr, err error) {
	var hdr [5]byte
	buf := make([]byte, 32<<10)
	failed := map[byte]bool{}
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return res, writeErr, ErrNoResult
			}
			return res, writeErr, fmt.Errorf("reading a frame header: %w", err)
		}
		n := binary.BigEndian.Uint32(hdr[1:])
		if n > maxFrame {
			return res, writeErr, fmt.Errorf("frame of %d bytes is larger than %d", n, maxFrame)
		}
		if int(n) > cap(buf) {
			buf = make([]byte, n)
		}
		p := buf[:n]
		if _, err := io.ReadFull(r, p); err != nil {
			return res, writeErr, fmt.Errorf("reading a frame: %w", err)
		}
		var sink io.Writer
		switch hdr[0] {
		case FrameStdout:
			sink = stdout
		case FrameStderr:
			sink = stderr
		case FrameResult:
			if err := json.Unmarshal(p, &res); err != nil {
				return res, writeErr, fmt.Errorf("decoding the result: %w", err)
			}
			return res, writeErr, nil
		case FrameError:
			return res, writeErr, fmt.Errorf("%w: %s", ErrNoResult, bytes.TrimSpace(p))
		default:
			return res, writeErr, fmt.Errorf("unknown frame kind %d", hdr[0])
		}
		if failed[hdr[0]] || sink == nil {
			continue
		}
		if _, err := sink.Write(p); err != nil {
			failed[hdr[0]] = true
			if writeErr == nil {
				writeErr = err
			}
		}
	}
}
