package claude

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/claude-gateway/claude-gateway/caddymodules/internal/caddyfileopt"
)

func init() {
	RegisterOption("auth", parseAuthOption)
}

// AuthConfig configures the gateway's authentication, shared by every
// handler of the config (claude_auth, claude_auth_api and the origin and IDE
// handlers). The signing key never appears in the config: it comes from the
// SECRET_KEY or SECRET_KEY_FILE environment variable, or a key file.
type AuthConfig struct {
	// SecretKeyFile is a file holding the HS256 signing key, used when neither
	// SECRET_KEY nor SECRET_KEY_FILE is set.
	SecretKeyFile string `json:"secret_key_file,omitempty"`

	// GenerateSecretFile is a file that receives a random signing key (mode
	// 0600) when no key is configured at all and the file does not exist yet.
	// For local development only: production sets SECRET_KEY.
	GenerateSecretFile string `json:"generate_secret_file,omitempty"`

	// VerifyKeyFiles hold former signing keys still accepted for
	// verification (key rotation). SECRET_KEY_PREVIOUS, when set, is one more.
	VerifyKeyFiles []string `json:"verify_key_files,omitempty"`

	// Issuer is the "iss" claim written and required. Default: "claude-gateway".
	Issuer string `json:"issuer,omitempty"`

	// Audience is the "aud" claim written and required. Default: "claude-gateway".
	Audience string `json:"audience,omitempty"`

	// AccessTTL is the lifetime of access tokens (at most 24h). Default: 15m.
	AccessTTL caddy.Duration `json:"access_ttl,omitempty"`

	// RefreshTTL is the lifetime of a refresh token; each rotation issues a
	// fresh one. Default: 168h (7 days).
	RefreshTTL caddy.Duration `json:"refresh_ttl,omitempty"`

	// Leeway is the clock skew tolerated on exp, nbf and iat (at most 5m).
	// Default: 30s.
	Leeway caddy.Duration `json:"leeway,omitempty"`

	// MaxTokenSize bounds an access token's length in bytes. Default: 4096.
	MaxTokenSize int `json:"max_token_size,omitempty"`

	// RevocationSync is how often each replica reads new revocations from the
	// database: the longest a token revoked elsewhere stays usable here.
	// Default: 2s.
	RevocationSync caddy.Duration `json:"revocation_sync,omitempty"`

	// Regulation is where login failures are counted: "sql" (the default),
	// in the database, so a ban holds on every replica; or "memory", per process.
	Regulation string `json:"regulation,omitempty"`

	// MaxRetries failed logins of one username, or from one client address,
	// within FindTime ban it for BanTime. Defaults: 5, 2m, 5m.
	MaxRetries int `json:"max_retries,omitempty"`

	// FindTime is the window in which failed logins are counted.
	FindTime caddy.Duration `json:"find_time,omitempty"`

	// BanTime is how long a ban lasts.
	BanTime caddy.Duration `json:"ban_time,omitempty"`

	// BcryptCost is the cost of new password hashes. Default: 10.
	BcryptCost int `json:"bcrypt_cost,omitempty"`
}

// parseAuthOption reads the `auth` block of the `claude` option. Syntax:
//
//	auth {
//	    secret_key_file      <path>
//	    generate_secret_file <path>
//	    verify_key_file      <path>
//	    issuer               <iss>
//	    audience             <aud>
//	    access_ttl           <duration>
//	    refresh_ttl          <duration>
//	    leeway               <duration>
//	    max_token_size       <bytes>
//	    revocation_sync      <duration>
//	    regulation           sql|memory
//	    max_retries          <n>
//	    find_time            <duration>
//	    ban_time             <duration>
//	    bcrypt_cost          <n>
//	}
func parseAuthOption(d *caddyfile.Dispenser, app *App) error {
	if app.AuthConfig == nil {
		app.AuthConfig = new(AuthConfig)
	}
	c := app.AuthConfig
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		var err error
		switch name {
		case "secret_key_file":
			if !d.AllArgs(&c.SecretKeyFile) {
				err = d.ArgErr()
			}
		case "generate_secret_file":
			if !d.AllArgs(&c.GenerateSecretFile) {
				err = d.ArgErr()
			}
		case "verify_key_file":
			var f string
			if !d.AllArgs(&f) {
				return d.ArgErr()
			}
			c.VerifyKeyFiles = append(c.VerifyKeyFiles, f)
		case "issuer":
			if !d.AllArgs(&c.Issuer) {
				err = d.ArgErr()
			}
		case "audience":
			if !d.AllArgs(&c.Audience) {
				err = d.ArgErr()
			}
		case "access_ttl":
			err = caddyfileopt.PositiveDuration(d, &c.AccessTTL)
		case "refresh_ttl":
			err = caddyfileopt.PositiveDuration(d, &c.RefreshTTL)
		case "leeway":
			err = caddyfileopt.PositiveDuration(d, &c.Leeway)
		case "revocation_sync":
			err = caddyfileopt.PositiveDuration(d, &c.RevocationSync)
		case "regulation":
			if !d.AllArgs(&c.Regulation) {
				return d.ArgErr()
			}
			if c.Regulation != "sql" && c.Regulation != "memory" {
				return d.Errf("regulation: want sql or memory, got %q", c.Regulation)
			}
		case "find_time":
			err = caddyfileopt.PositiveDuration(d, &c.FindTime)
		case "ban_time":
			err = caddyfileopt.PositiveDuration(d, &c.BanTime)
		case "max_token_size":
			var n int64
			if err = caddyfileopt.Size(d, &n); err == nil && (n == 0 || n > 1<<30) {
				return d.Errf("max_token_size: want a positive size up to 1GiB, got %d", n)
			}
			c.MaxTokenSize = int(n)
		case "max_retries":
			err = caddyfileopt.PositiveCount(d, &c.MaxRetries)
		case "bcrypt_cost":
			err = caddyfileopt.PositiveCount(d, &c.BcryptCost)
		default:
			return d.Errf("unknown auth option %q", name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
