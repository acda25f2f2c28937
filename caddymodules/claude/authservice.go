package claude

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/audit"
	"github.com/claude-gateway/claude-gateway/auth"
	"github.com/claude-gateway/claude-gateway/database"
)

// authStates holds, per database, the auth state that must outlive a config
// reload: the revocation snapshot with its sync loop, and the login
// regulators (the in-memory one's counts; the SQL one keeps its own in the
// database).
var authStates = caddy.NewUsagePool()

// authState lets a database's auth state live in a caddy.UsagePool.
type authState struct {
	revocations *auth.Revocations
	memReg      *auth.MemoryRegulator
	sqlReg      *auth.SQLRegulator
	loop        *auth.SyncLoop
}

// Destruct stops the sync loop.
func (s *authState) Destruct() error {
	s.loop.Stop()
	return nil
}

// newAuthState reads the revocation list, creates the first admin when the
// database has no user, and starts the sync loop.
func newAuthState(db *database.DB, users *auth.Users, syncEvery time.Duration, policy auth.RegulationPolicy, logger *zap.Logger) (*authState, error) {
	s := &authState{
		revocations: auth.NewRevocations(db),
		memReg:      auth.NewMemoryRegulator(policy),
		sqlReg:      auth.NewSQLRegulator(db, policy),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.revocations.Sync(ctx); err != nil {
		return nil, err
	}
	initial, err := auth.AdminPassword(os.Getenv)
	if err != nil {
		return nil, err
	}
	pw, created, err := users.EnsureAdmin(ctx, initial)
	if err != nil {
		return nil, err
	}
	switch {
	case created && pw != "":
		logger.Warn("no user existed: created user \"admin\" with the generated password below; it is shown only this once, change it with `claude-gateway users passwd admin`",
			zap.String("username", "admin"), zap.String("password", pw))
	case created:
		logger.Info("no user existed: created user \"admin\" with the password from CLAUDE_ADMIN_PASSWORD")
	}
	s.loop = auth.NewSyncLoop(s.revocations, auth.NewRefreshTokens(db, 0), s.memReg, s.sqlReg, syncEvery, logger)
	s.loop.Start(context.Background())
	return s, nil
}

// Auth returns the authentication service of the app's `auth` settings,
// signing with the key of the environment (SECRET_KEY or SECRET_KEY_FILE)
// or the configured key files. It is built on first call and kept for the
// config's lifetime; the revocation list, its sync loop and the login
// regulators are shared with every config on the same database, so a reload
// keeps them. The first call on a database with no user creates the user
// "admin". Bans go to the audit trail, and the non-critical "revocations"
// health check is registered. Modules call it in Provision.
func (a *App) Auth() (*auth.Service, error) {
	if a.svc.auth != nil {
		return a.svc.auth, nil
	}
	cfg := a.AuthConfig
	if cfg == nil {
		cfg = new(AuthConfig)
	}
	logger := a.logger.Named("auth")
	keys, err := auth.LoadKeys(os.Getenv, auth.KeyFiles{Secret: cfg.SecretKeyFile, Generate: cfg.GenerateSecretFile, Verify: cfg.VerifyKeyFiles})
	if err != nil {
		return nil, fmt.Errorf("claude auth: %w", err)
	}
	if keys.Generated {
		logger.Warn("no SECRET_KEY set: generated a signing key for development", zap.String("file", cfg.GenerateSecretFile))
	}
	tokens, err := auth.NewTokens(auth.TokenConfig{
		Key:        keys.Signing,
		VerifyKeys: keys.Verify,
		Issuer:     cfg.Issuer,
		Audience:   cfg.Audience,
		TTL:        time.Duration(cfg.AccessTTL),
		Leeway:     time.Duration(cfg.Leeway),
		MaxBytes:   cfg.MaxTokenSize,
	})
	if err != nil {
		return nil, fmt.Errorf("claude auth: %w", err)
	}
	users := auth.NewUsers(a.db, cfg.BcryptCost)
	syncEvery := time.Duration(cfg.RevocationSync)
	policy := auth.RegulationPolicy{MaxRetries: cfg.MaxRetries, FindTime: time.Duration(cfg.FindTime), BanTime: time.Duration(cfg.BanTime)}
	val, _, err := authStates.LoadOrNew(a.Database, func() (caddy.Destructor, error) {
		return newAuthState(a.db, users, syncEvery, policy, logger)
	})
	if err != nil {
		return nil, fmt.Errorf("claude auth: %w", err)
	}
	st := val.(*authState)
	st.loop.SetInterval(syncEvery)
	var regulator auth.RegulationStore = st.sqlReg
	if cfg.Regulation == "memory" {
		regulator = st.memReg
	}
	regulator.SetPolicy(policy)
	a.health.Register("revocations", false, st.loop.Check)
	svc := auth.NewService(tokens, users, auth.NewRefreshTokens(a.db, time.Duration(cfg.RefreshTTL)), st.revocations, regulator)
	trail := a.audit
	svc.OnBan = func(key string, until time.Time) {
		trail.Record(audit.Event{Kind: audit.Ban, Actor: "system", Subject: key,
			Details: map[string]string{"until": until.UTC().Format(time.RFC3339)}})
	}
	a.svc.auth = svc
	return svc, nil
}

// cleanupAuth releases this config's reference to its database's auth
// state; the sync loop stops when no config uses it any more.
func (a *App) cleanupAuth() {
	if a.svc.auth == nil {
		return
	}
	if _, err := authStates.Delete(a.Database); err != nil {
		a.logger.Error("releasing the auth state", zap.Error(err))
	}
}

// Interface guard
var _ caddy.Destructor = (*authState)(nil)
