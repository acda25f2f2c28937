package handoff

import (
	"errors"
	"net"
	"reflect"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/handoff"
)

func init() {
	caddy.RegisterModule(ListenerWrapper{})
}

// errNegativeTimeout rejects a negative timeout.
var errNegativeTimeout = errors.New("handoff: timeout must not be negative")

// groups holds every running configuration's wrapped listeners, per address;
// it outlives configurations, which is the point.
var groups handoff.Groups

// ListenerWrapper gives each new connection to the newest running
// configuration, and only once the connection is ready: its TLS handshake is
// done and its first request bytes have arrived. A server that is shutting
// down for a reload therefore never receives a connection it would close
// unanswered. Place it after the `tls` placeholder (the default position):
//
//	servers {
//		listener_wrappers {
//			handoff
//		}
//	}
//
// Listen on the "handoff" network as well (`default_bind handoff/`) so that
// configurations also share their sockets.
type ListenerWrapper struct {
	// Timeout bounds the TLS handshake plus the wait for the first request
	// bytes of a new connection. Default: 1m, the read-header timeout of
	// Caddy's servers.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (ListenerWrapper) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.listeners.handoff",
		New: func() caddy.Module { return new(ListenerWrapper) },
	}
}

// Provision sets up the wrapper's logger.
func (w *ListenerWrapper) Provision(ctx caddy.Context) error {
	w.logger = ctx.Logger()
	return nil
}

// Validate rejects a negative timeout.
func (w *ListenerWrapper) Validate() error {
	if w.Timeout < 0 {
		return errNegativeTimeout
	}
	return nil
}

// WrapListener joins ln to the group of its address.
func (w *ListenerWrapper) WrapListener(ln net.Listener) net.Listener {
	logger := w.logger
	return groups.Wrap(ln, isTLSListener(ln), handoff.Options{
		Timeout: time.Duration(w.Timeout),
		Debug: func(msg string, remote net.Addr, err error) {
			if logger != nil {
				logger.Debug(msg, zap.Stringer("remote_addr", remote), zap.Error(err))
			}
		},
	})
}

// isTLSListener reports whether ln is crypto/tls's listener, which is what the
// wrapper receives on an HTTPS port when it follows the tls placeholder. The
// first accepted connection corrects the guess for other arrangements.
func isTLSListener(ln net.Listener) bool {
	t := reflect.TypeOf(ln)
	return t.Kind() == reflect.Pointer && t.Elem().PkgPath() == "crypto/tls"
}

// Interface guards
var (
	_ caddy.Provisioner     = (*ListenerWrapper)(nil)
	_ caddy.Validator       = (*ListenerWrapper)(nil)
	_ caddy.ListenerWrapper = (*ListenerWrapper)(nil)
)
