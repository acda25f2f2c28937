// Package claudegateway is the module root: importing it plugs every
// claude-gateway Caddy module and subcommand into a Caddy build, which is what
// xcaddy does with `--with github.com/claude-gateway/claude-gateway`.
package claudegateway

import _ "github.com/claude-gateway/claude-gateway/plugin"
