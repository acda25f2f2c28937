package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// Build limits.
const (
	// DefaultBuildContextLimit bounds an image build's tar context.
	DefaultBuildContextLimit = 64 << 20
	// DefaultBuildTimeout bounds an image build's time.
	DefaultBuildTimeout = 10 * time.Minute
	// buildLogLimit is how much of the build's output a result keeps (the end).
	buildLogLimit = 64 << 10
)

// ErrContextTooLarge is returned when a build context passes its limit.
var ErrContextTooLarge = errors.New("build context too large")

// tagPattern accepts plain local image references: name[:tag].
var tagPattern = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$`)

// BuildOptions describes an image build.
type BuildOptions struct {
	// Tag names the image, e.g. "claude-sandbox:data-science".
	Tag string
	// Dockerfile is the path of the Dockerfile inside the context
	// (default "Dockerfile").
	Dockerfile string
	// ContextLimit bounds the tar context in bytes; 0 is
	// DefaultBuildContextLimit.
	ContextLimit int64
	// Timeout bounds the build; 0 is DefaultBuildTimeout.
	Timeout time.Duration
}

// BuildResult is the outcome of a successful build.
type BuildResult struct {
	// ImageID is the built image's id.
	ImageID string `json:"image_id"`
	// Tag is the name it was given.
	Tag string `json:"tag"`
	// Log is the end of the build's output.
	Log string `json:"log"`
}

// BuildError is a build the daemon ran and that failed (a bad Dockerfile, a
// failing step); Log is the end of its output.
type BuildError struct {
	// Message is the daemon's error.
	Message string
	// Log is the end of the build's output.
	Log string
}

// Error returns the daemon's message, prefixed as a build failure.
func (e *BuildError) Error() string { return "image build failed: " + e.Message }

// BuildImage builds an image from a tar build context. The build runs
// without network (nothing can be pulled: the base image must be on the
// daemon), removes its intermediate containers, and is labelled as ours.
func (e *Executor) BuildImage(ctx context.Context, tarContext io.Reader, opts BuildOptions) (BuildResult, error) {
	if !tagPattern.MatchString(opts.Tag) {
		return BuildResult{}, &SpecError{"invalid_tag", fmt.Sprintf("tag %q is not a valid image name[:tag]", opts.Tag)}
	}
	if opts.ContextLimit <= 0 {
		opts.ContextLimit = DefaultBuildContextLimit
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultBuildTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	body := &limitedReader{r: tarContext, left: opts.ContextLimit}
	resp, err := e.docker.ImageBuild(ctx, body, client.ImageBuildOptions{
		Tags:        []string{opts.Tag},
		Dockerfile:  opts.Dockerfile,
		Remove:      true,
		ForceRemove: true,
		NetworkMode: "none",
		Memory:      e.cfg.Memory * 4,
		MemorySwap:  e.cfg.Memory * 4,
		Labels:      map[string]string{LabelManaged: "image"},
	})
	if body.over {
		if err == nil {
			resp.Body.Close()
		}
		return BuildResult{}, fmt.Errorf("%w: over %d bytes", ErrContextTooLarge, opts.ContextLimit)
	}
	if err != nil {
		if ctx.Err() != nil {
			return BuildResult{}, fmt.Errorf("image build: %w", ctx.Err())
		}
		return BuildResult{}, fmt.Errorf("image build: %w", unavailable(err))
	}
	defer resp.Body.Close()

	res := BuildResult{Tag: opts.Tag}
	var log tailBuffer
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
			Aux struct {
				ID string `json:"ID"`
			} `json:"aux"`
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			if ctx.Err() != nil {
				return BuildResult{}, fmt.Errorf("image build: %w", ctx.Err())
			}
			return BuildResult{}, fmt.Errorf("reading the build output: %w", err)
		}
		log.WriteString(msg.Stream)
		if msg.Aux.ID != "" {
			res.ImageID = msg.Aux.ID
		}
		if msg.Error != "" {
			m := msg.ErrorDetail.Message
			if m == "" {
				m = msg.Error
			}
			return BuildResult{}, &BuildError{Message: strings.TrimSpace(m), Log: log.String()}
		}
	}
	if body.over {
		return BuildResult{}, fmt.Errorf("%w: over %d bytes", ErrContextTooLarge, opts.ContextLimit)
	}
	res.Log = log.String()
	if res.ImageID == "" {
		insp, err := e.docker.ImageInspect(ctx, opts.Tag)
		if err != nil {
			return BuildResult{}, fmt.Errorf("inspecting the built image: %w", unavailable(err))
		}
		res.ImageID = insp.ID
	}
	return res, nil
}

// limitedReader fails once more than left bytes were read.
type limitedReader struct {
	r    io.Reader
	left int64
	over bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		l.over = true
		return 0, ErrContextTooLarge
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		l.over = true
		return 0, ErrContextTooLarge
	}
	return n, err
}

// tailBuffer keeps the last buildLogLimit bytes written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) WriteString(s string) {
	t.b = append(t.b, s...)
	if over := len(t.b) - buildLogLimit; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
}

func (t *tailBuffer) String() string { return string(t.b) }
