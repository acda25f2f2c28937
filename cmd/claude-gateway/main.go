// Command claude-gateway is Caddy with the standard modules and the
// claude-gateway modules and subcommands.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/claude-gateway/claude-gateway"
)

func main() {
	caddycmd.Main()
}
