package claude

import (
	"fmt"
	"sort"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("claude", parseGlobalOption)
}

// optionParsers holds the parsers of the `claude` block's sub-options by name.
// Each concern (sessions, executor, …) registers its own from its own file.
var optionParsers = map[string]func(d *caddyfile.Dispenser, app *App) error{
	"database": func(d *caddyfile.Dispenser, app *App) error {
		if !d.AllArgs(&app.Database) {
			return d.ArgErr()
		}
		return nil
	},
	"workspace": func(d *caddyfile.Dispenser, app *App) error {
		if !d.AllArgs(&app.Workspace) {
			return d.ArgErr()
		}
		return nil
	},
}

// RegisterOption adds the parser of a sub-option of the `claude` block. It
// panics on a duplicate name; call it from init.
func RegisterOption(name string, parse func(d *caddyfile.Dispenser, app *App) error) {
	if _, dup := optionParsers[name]; dup {
		panic("claude: option registered twice: " + name)
	}
	optionParsers[name] = parse
}

// parseGlobalOption sets up the app from the Caddyfile. Syntax:
//
//	claude {
//	    database  sqlite:<path> | mysql://user:pass@tcp(host:3306)/db
//	    workspace <dir>
//	    ...
//	}
func parseGlobalOption(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	d.Next() // consume option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for d.NextBlock(0) {
		name := d.Val()
		parse, ok := optionParsers[name]
		if !ok {
			return nil, d.Errf("unknown claude option %q (known: %s)", name, knownOptions())
		}
		if err := parse(d, app); err != nil {
			return nil, fmt.Errorf("claude %s: %w", name, err)
		}
	}
	return httpcaddyfile.App{Name: "claude", Value: caddyconfig.JSON(app, nil)}, nil
}

func knownOptions() string {
	names := make([]string, 0, len(optionParsers))
	for n := range optionParsers {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
