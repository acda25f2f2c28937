// Package commands adds the gateway's own subcommands to Caddy's command line:
// `migrate` and `healthcheck` here, `users` beside them.
package commands

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/claude-gateway/claude-gateway/database"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "migrate",
		Usage: "[--database <setting>]",
		Short: "Applies the database migrations and prints the schema version",
		Long: `
Applies the schema migrations embedded in this binary to the database and prints
the resulting version. The gateway does the same at start-up; this command lets
an operator do it ahead of a rollout. The database comes from --database or the
CLAUDE_DATABASE environment variable, the setting the Caddyfiles read.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().String("database", "", "database setting: sqlite:<path> or mysql://user:pass@tcp(host:3306)/db (default $CLAUDE_DATABASE)")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdMigrate)
		},
	})
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "healthcheck",
		Usage: "[--url <url> | --path <path>] [--timeout <duration>]",
		Short: "Exits 0 when the local gateway answers its readiness probe",
		Long: `
Requests the gateway's probe and exits 0 on a 2xx answer, 1 otherwise, for
container HEALTHCHECKs in images without curl. The connection always goes to
127.0.0.1 on the URL's port, with the URL's host as the TLS server name, so the
check sees the local process through its real certificate name; the certificate
itself is not verified.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().String("url", "", "probe URL (default https://$DOMAIN[:$CLAUDE_HTTPS_PORT]<path>, or https://localhost:8443<path>)")
			cmd.Flags().String("path", "/api/live", "probe path when --url is not given, e.g. /api/ready for a readiness probe")
			cmd.Flags().Duration("timeout", 5*time.Second, "how long to wait for the answer")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdHealthcheck)
		},
	})
}

// DatabaseSetting returns the --database flag's value, else $CLAUDE_DATABASE,
// with global placeholders expanded as the `claude` app does (a password in
// {file./run/secrets/…}).
func DatabaseSetting(fl caddycmd.Flags) (string, error) {
	if s := fl.String("database"); s != "" {
		return caddy.NewReplacer().ReplaceKnown(s, ""), nil
	}
	if s := os.Getenv("CLAUDE_DATABASE"); s != "" {
		return caddy.NewReplacer().ReplaceKnown(s, ""), nil
	}
	return "", fmt.Errorf("no database: pass --database or set CLAUDE_DATABASE (sqlite:<path> or mysql://user:pass@tcp(host:3306)/db)")
}

func cmdMigrate(fl caddycmd.Flags) (int, error) {
	setting, err := DatabaseSetting(fl)
	if err != nil {
		return exitFailedStartup, err
	}
	ctx := context.Background()
	db, err := database.Open(ctx, setting)
	if err != nil {
		return exitFailedStartup, err
	}
	defer db.Close()
	v, err := db.Version(ctx)
	if err != nil {
		return exitFailedStartup, err
	}
	fmt.Printf("%s: schema version %d\n", db.Redacted, v)
	return 0, nil
}

func cmdHealthcheck(fl caddycmd.Flags) (int, error) {
	raw := fl.String("url")
	if raw == "" {
		p := fl.String("path")
		if !strings.HasPrefix(p, "/") {
			return 1, fmt.Errorf("healthcheck: --path %q must start with /", p)
		}
		raw = "https://localhost:8443" + p
		if d := os.Getenv("DOMAIN"); d != "" {
			// The production Caddyfile listens on CLAUDE_HTTPS_PORT, default 443.
			host := d
			if port := os.Getenv("CLAUDE_HTTPS_PORT"); port != "" && port != "443" {
				host = net.JoinHostPort(d, port)
			}
			raw = "https://" + host + p
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return 1, fmt.Errorf("healthcheck: invalid --url %q", raw)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	dialer := &net.Dialer{Timeout: fl.Duration("timeout")}
	client := &http.Client{
		Timeout: fl.Duration("timeout"),
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
			},
			// Loopback to our own process: the name is sent for SNI; the
			// certificate may come from a CA the image does not carry.
			TLSClientConfig: &tls.Config{ServerName: u.Hostname(), InsecureSkipVerify: true}, //nolint:gosec
		},
	}
	resp, err := client.Get(u.String())
	if err != nil {
		return 1, fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return 1, fmt.Errorf("healthcheck: %s answered %s", u, resp.Status)
	}
	return 0, nil
}

// exitFailedStartup mirrors caddy's exit code for a failed start-up.
const exitFailedStartup = 1
