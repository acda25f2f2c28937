package runner

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxRequest bounds one request to the run server: the code travels in
// Argv and the standard input in Stdin, both bounded by the executor well
// below it.
const maxRequest = 8 << 20

// Accepted is the byte the run server answers a request with just before
// it starts the run's helper; the helper's frames follow. A connection that
// ends before it ran nothing.
const Accepted byte = 0x06

// Request asks the run server for one run. It travels as a 4-byte
// big-endian length and the JSON; the answer is Accepted and the helper's
// frames (or a FrameError), and one byte more from the client (or the end of
// its connection) kills the run.
type Request struct {
	// RunID names the run (see ValidRunID); every process of the run
	// carries it in EnvRunID.
	RunID string `json:"run_id"`
	// Argv is the program and its arguments, looked up in PATH.
	Argv []string `json:"argv"`
	// Env holds KEY=VALUE entries that override the server's environment
	// for the run.
	Env []string `json:"env,omitempty"`
	// Dir is the run's working directory; empty is the server's.
	Dir string `json:"dir,omitempty"`
	// TimeoutMS is the wall-clock limit in milliseconds; 0 is none.
	TimeoutMS int64 `json:"timeout_ms"`
	// OutputLimit caps each of stdout and stderr in bytes; 0 is none.
	OutputLimit int64 `json:"output_limit"`
	// Stdin is the program's whole standard input.
	Stdin []byte `json:"stdin,omitempty"`
}

// Validate reports what makes a request unfit to run.
func (r Request) Validate() error {
	switch {
	case !ValidRunID(r.RunID):
		return fmt.Errorf("invalid run id %q", r.RunID)
	case len(r.Argv) == 0:
		return errors.New("no program to run")
	case r.TimeoutMS < 0 || r.OutputLimit < 0:
		return errors.New("negative timeout or output limit")
	}
	for _, kv := range r.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("environment entry %q is not KEY=VALUE", kv)
		}
	}
	return nil
}

// WriteRequest sends r on w.
func WriteRequest(w io.Writer, r Request) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if len(b) > maxRequest {
		return fmt.Errorf("request of %d bytes is larger than %d", len(b), maxRequest)
	}
	msg := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(msg, uint32(len(b)))
	copy(msg[4:], b)
	_, err = w.Write(msg)
	return err
}

// ReadRequest reads one request from r; a connection closed before it
// sent anything is io.EOF.
func ReadRequest(r io.Reader) (Request, error) {
	var req Request
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return req, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxRequest {
		return req, fmt.Errorf("request of %d bytes is larger than %d", n, maxRequest)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return req, fmt.Errorf("reading the request: %w", err)
	}
	if err := json.Unmarshal(b, &req); err != nil {
		return req, fmt.Errorf("decoding the request: %w", err)
	}
	return req, req.Validate()
}
