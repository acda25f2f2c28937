package claudeexec

import (
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// clientIP is the client address Caddy determined for r.
func clientIP(r *http.Request) string {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	return ip
}
