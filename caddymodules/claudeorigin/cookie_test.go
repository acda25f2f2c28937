package claudeorigin_test

import "github.com/claude-gateway/claude-gateway/caddymodules/claudeauth"

// authCookie is the name of the access cookie.
const authCookie = claudeauth.AccessCookie
