// Package handoff plugs package handoff into Caddy: the "handoff" network,
// whose listeners share one socket per address across configurations, and
// the caddy.listeners.handoff listener wrapper, which gives each new
// connection to the newest configuration once its first request bytes have
// arrived. Together they make `caddy reload` lose no new connection.
package handoff

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/claude-gateway/claude-gateway/handoff"
)

// Network is the network name of shared listeners: listen addresses of the
// form "handoff/host:port" (Caddyfile: `default_bind handoff/` or
// `bind handoff/<host>`) are TCP sockets shared by every configuration that
// uses them. HTTP/3 on such an address uses UDP, as for "tcp".
const Network = "handoff"

// sockets holds the process's shared sockets; it outlives configurations.
var sockets handoff.Sockets

func init() {
	caddy.RegisterNetwork(Network, listenShared)
	caddyhttp.RegisterNetworkHTTP3(Network, "udp")
}

// listenShared is the caddy.ListenerFunc of the handoff network. The socket is
// bound once, through Caddy's own TCP listener (so SO_REUSEPORT, keep-alive
// settings and raising CAP_NET_BIND_SERVICE for ports below 1024 behave as
// for "tcp"), and every later configuration gets a listener on that socket.
func listenShared(ctx context.Context, _, host, portRange string, portOffset uint, cfg net.ListenConfig) (any, error) {
	startStr, _, _ := strings.Cut(portRange, "-")
	start, err := strconv.ParseUint(startStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("handoff network: invalid port %q: %w", portRange, err)
	}
	port := uint(start) + portOffset
	if port > 65535 {
		return nil, fmt.Errorf("handoff network: port %d out of range", port)
	}
	tcp := caddy.NetworkAddress{Network: "tcp", Host: host, StartPort: port, EndPort: port}
	key := tcp.String()
	return sockets.Listen(key, func() (net.Listener, error) {
		lnAny, err := tcp.Listen(ctx, 0, cfg)
		if err != nil {
			return nil, err
		}
		ln, ok := lnAny.(net.Listener)
		if !ok {
			return nil, fmt.Errorf("handoff network: %s is not a stream listener (%T)", key, lnAny)
		}
		return ln, nil
	})
}
