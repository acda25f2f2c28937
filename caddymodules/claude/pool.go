package claude

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/claude-gateway/claude-gateway/database"
)

// databases holds the open pools by setting. A reload provisions the new
// config before the old one is cleaned up, so the pool's reference count never
// drops to zero and the connections are re-used, not reopened.
var databases = caddy.NewUsagePool()

// AcquireDB returns the process-wide pool of a `database` setting, opening
// and migrating it on first use, and counts one more user of it. Modules that
// need the database before or apart from the `claude` app (the certificate
// storage is provisioned before any app) share the app's pool this way. Pair
// every successful call with ReleaseDB(setting) in Cleanup.
func AcquireDB(ctx context.Context, setting string) (db *database.DB, reused bool, err error) {
	if _, err := database.ParseSetting(setting); err != nil {
		return nil, false, err
	}
	val, loaded, err := databases.LoadOrNew(setting, func() (caddy.Destructor, error) {
		openCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		return database.Open(openCtx, setting)
	})
	if err != nil {
		return nil, false, err
	}
	return val.(*database.DB), loaded, nil
}

// ReleaseDB drops one user of the pool of setting, taken by AcquireDB; the
// pool closes when its last user releases it, never before.
func ReleaseDB(setting string) error {
	if _, err := databases.Delete(setting); err != nil {
		return fmt.Errorf("releasing database pool: %w", err)
	}
	return nil
}
