// Package claudegateway is the module root: importing it, for its side
// effects, plugs every claude-gateway Caddy module and subcommand into a Caddy
// build. cmd/claude-gateway imports it, and so does xcaddy with
// `--with github.com/claude-gateway/claude-gateway` (xcaddy.json).
package claudegateway

import (
	_ "github.com/claude-gateway/claude-gateway/caddymodules/claude"
	_ "github.com/claude-gateway/claude-gateway/caddymodules/claudeauth"
	_ "github.com/claude-gateway/claude-gateway/caddymodules/claudeconsole"
	_ "github.com/claude-gateway/claude-gateway/caddymodules/claudeerror"
	_ "github.com/claude-gateway/claude-gateway/caddymodules/claudeexec"
	_ "github.com/claude-gateway/claude-gateway/caddymodules/claudehealth"
	_ "github.com/claude-gateway/claude-gateway/caddymodules/claudeide"
	_ "github.com/claude-gateway/claude-gateway/caddymodules/claudelog"
	_ "github.com/claude-gateway/claude-gateway/caddymodules/claudelogin"
	_ "github.com/claude-gateway/claude-gateway/caddymodules/claudeorigin"
	_ "github.com/claude-gateway/claude-gateway/caddymodules/claudepath"
	_ "github.com/claude-gateway/claude-gateway/caddymodules/clauderatelimit"
	_ "github.com/claude-gateway/claude-gateway/caddymodules/claudesessions"
	_ "github.com/claude-gateway/claude-gateway/caddymodules/claudeworkspace"
	_ "github.com/claude-gateway/claude-gateway/caddymodules/handoff"
	_ "github.com/claude-gateway/claude-gateway/caddymodules/sqlstorage"
	_ "github.com/claude-gateway/claude-gateway/commands"
)
