package claudelog

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/claude-gateway/claude-gateway/accesslog"
	"github.com/claude-gateway/claude-gateway/caddymodules/internal/caddyfileopt"
)

func init() {
	caddy.RegisterModule(BufferedWriter{})
}

// Defaults of the buffered writer.
const (
	defaultBufferSize    = 64 << 10
	defaultFlushInterval = 100 * time.Millisecond
)

// BufferedWriter is the `claude_buffered` log output: it wraps another log
// output (stderr by default) and writes to it in batches, when its buffer
// fills, every FlushInterval and when the config is unloaded (a reload or a
// shutdown), instead of one write system call per log entry. It changes no
// byte of what is logged: the encoder (claudelog) has already redacted it.
// A crash (not a shutdown) loses at most one interval of entries.
type BufferedWriter struct {
	// WriterRaw is the output written to. Default: stderr.
	WriterRaw json.RawMessage `json:"output,omitempty" caddy:"namespace=caddy.logging.writers inline_key=output"`

	// Size is the buffer's size in bytes. Default: 64 KiB.
	Size int64 `json:"size,omitempty"`

	// FlushInterval is the longest an entry waits in the buffer.
	// Default: 100ms.
	FlushInterval caddy.Duration `json:"flush_interval,omitempty"`

	wrapped caddy.WriterOpener
}

// CaddyModule returns the Caddy module information.
func (BufferedWriter) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.writers.claude_buffered",
		New: func() caddy.Module { return new(BufferedWriter) },
	}
}

// Provision loads the wrapped output and sets the defaults.
func (bw *BufferedWriter) Provision(ctx caddy.Context) error {
	if bw.Size <= 0 {
		bw.Size = defaultBufferSize
	}
	if bw.FlushInterval <= 0 {
		bw.FlushInterval = caddy.Duration(defaultFlushInterval)
	}
	if bw.WriterRaw == nil {
		bw.wrapped = caddy.StderrWriter{}
		return nil
	}
	mod, err := ctx.LoadModule(bw, "WriterRaw")
	if err != nil {
		return fmt.Errorf("claude_buffered: loading the wrapped output: %w", err)
	}
	bw.wrapped = mod.(caddy.WriterOpener)
	return nil
}

// String describes the output for humans.
func (bw *BufferedWriter) String() string {
	return "buffered " + bw.wrapped.String()
}

// WriterKey identifies the writer: the wrapped output and the buffer's settings.
func (bw *BufferedWriter) WriterKey() string {
	return fmt.Sprintf("claude_buffered:%d:%s:%s", bw.Size, time.Duration(bw.FlushInterval), bw.wrapped.WriterKey())
}

// OpenWriter opens the wrapped output behind a buffer.
func (bw *BufferedWriter) OpenWriter() (io.WriteCloser, error) {
	w, err := bw.wrapped.OpenWriter()
	if err != nil {
		return nil, err
	}
	return accesslog.NewBufferedWriter(w, int(bw.Size), time.Duration(bw.FlushInterval)), nil
}

// UnmarshalCaddyfile sets up the writer. Syntax:
//
//	output claude_buffered {
//	    size           <size>        # default 64KiB
//	    flush_interval <duration>    # default 100ms
//	    output         <writer> ...  # default stderr; any log output
//	}
func (bw *BufferedWriter) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // writer name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "size":
			if err := caddyfileopt.Size(d, &bw.Size); err != nil {
				return err
			}
		case "flush_interval":
			if err := caddyfileopt.PositiveDuration(d, &bw.FlushInterval); err != nil {
				return err
			}
		case "output":
			if !d.NextArg() {
				return d.ArgErr()
			}
			name := d.Val()
			var wo caddy.WriterOpener
			switch name {
			// Caddy's standard streams have no Caddyfile unmarshaler.
			case "stdout":
				wo = caddy.StdoutWriter{}
			case "stderr":
				wo = caddy.StderrWriter{}
			case "discard":
				wo = caddy.DiscardWriter{}
			default:
				unm, err := caddyfile.UnmarshalModule(d, "caddy.logging.writers."+name)
				if err != nil {
					return err
				}
				var ok bool
				if wo, ok = unm.(caddy.WriterOpener); !ok {
					return d.Errf("module %s is not a log output", name)
				}
			}
			bw.WriterRaw = caddyconfig.JSONModuleObject(wo, "output", name, nil)
		default:
			return d.Errf("unknown claude_buffered option %q", d.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*BufferedWriter)(nil)
	_ caddy.WriterOpener    = (*BufferedWriter)(nil)
	_ caddyfile.Unmarshaler = (*BufferedWriter)(nil)
)
