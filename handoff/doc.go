// Package handoff makes configuration reloads lose no new connection.
//
// A reload runs the new configuration next to the old one for a moment and
// then shuts the old one down. Two things drop connections in that moment:
//
//   - Socket hand-over. When every configuration binds its own socket for the
//     same address (SO_REUSEPORT), the kernel spreads new connections over all
//     of them, and closing the old socket resets whatever still waits in its
//     accept queue. [Sockets] gives every configuration a virtual listener on
//     ONE shared socket per address instead, and hands each accepted
//     connection to the newest listener only.
//   - Accepted but unread. An HTTP server that is shutting down closes, without
//     an answer, a connection it accepted but whose first request it had not
//     read yet; a TLS handshake widens that window. [Groups] wraps each
//     server's listener: it completes the TLS handshake and waits for the first
//     request bytes itself, and only then gives the connection to the newest
//     open listener for that address, so a server only ever receives
//     connections it can read a request from at once.
//
// The package does not import Caddy; caddymodules/handoff wires it into Caddy
// as the "handoff" network and the caddy.listeners.handoff listener wrapper.
package handoff
