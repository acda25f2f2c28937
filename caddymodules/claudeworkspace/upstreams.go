package claudeworkspace

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

func init() {
	caddy.RegisterModule(Upstreams{})
}

// Upstreams is the dynamic upstream source of the IDE host's reverse_proxy:
// the IDE socket of the session the `claude_workspace` handler admitted the
// request to. A request that did not pass that handler has no upstream.
type Upstreams struct{}

// CaddyModule returns the Caddy module information.
func (Upstreams) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.upstreams.claude_workspace",
		New: func() caddy.Module { return new(Upstreams) },
	}
}

// GetUpstreams returns the workspace's IDE socket as a unix upstream.
func (Upstreams) GetUpstreams(r *http.Request) ([]*reverseproxy.Upstream, error) {
	socket, _ := caddyhttp.GetVar(r.Context(), socketVar).(string)
	if socket == "" {
		return nil, errors.New("claude_workspace: no workspace was chosen for this request (claude_workspace must run before reverse_proxy)")
	}
	return []*reverseproxy.Upstream{{Dial: "unix/" + socket}}, nil
}

// Interface guards
var _ reverseproxy.UpstreamSource = (*Upstreams)(nil)
