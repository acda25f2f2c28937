package claudeorigin

import "github.com/claude-gateway/claude-gateway/caddymodules/claudeauth"

// DefaultAuthCookies are the gateway's own authentication cookies (the access
// cookie, on the app host and on the IDE host, and the refresh cookie).
var DefaultAuthCookies = claudeauth.CookieNames
