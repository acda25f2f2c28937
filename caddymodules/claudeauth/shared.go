// Package claudeauth wires the auth domain package into Caddy: the
// `claude_auth` handler (token check, identity headers) and the
// `claude_auth_api` handler (/api/auth/login, /refresh, /logout, /me). Other
// handlers (origin checks, IDE sign-on, the login page) use Acquire, the
// cookie helpers and UserFromRequest.
package claudeauth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/audit"
	"github.com/claude-gateway/claude-gateway/auth"
	"github.com/claude-gateway/claude-gateway/caddymodules/claude"
	"github.com/claude-gateway/claude-gateway/database"
)

// states holds, per database, what must outlive a config reload: the
// revocation snapshot with its sync loop, and the login regulators (the
// in-memory one's counts; the SQL one keeps its own in the database).
var states = caddy.NewUsagePool()

// cleanupEvery is how often expired refresh tokens and revocations are deleted.
const cleanupEvery = 15 * time.Minute

type state struct {
	revocations *auth.Revocations
	memReg      *auth.MemoryRegulator
	sqlReg      *auth.SQLRegulator
	syncEvery   atomic.Int64 // time.Duration, the latest config's
	cancel      context.CancelFunc
	done        chan struct{}
	now         func() time.Time // nil: time.Now
}

// Destruct stops the background loop; it lets state live in a caddy.UsagePool.
func (s *state) Destruct() error {
	s.cancel()
	<-s.done
	return nil
}

func newState(db *database.DB, users *auth.Users, logger *zap.Logger, syncEvery time.Duration, policy auth.RegulationPolicy) (*state, error) {
	s := &state{
		revocations: auth.NewRevocations(db),
		memReg:      auth.NewMemoryRegulator(policy),
		sqlReg:      auth.NewSQLRegulator(db, policy),
		done:        make(chan struct{}),
	}
	s.syncEvery.Store(int64(syncEvery))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.revocations.Sync(ctx); err != nil {
		return nil, err
	}
	initial, err := adminPassword(os.Getenv)
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
	loopCtx, stop := context.WithCancel(context.Background())
	s.cancel = stop
	go s.loop(loopCtx, db, logger)
	return s, nil
}

// adminPassword is the first admin's password from CLAUDE_ADMIN_PASSWORD or
// the file named by CLAUDE_ADMIN_PASSWORD_FILE (a Docker or Kubernetes
// secret); "" when neither is set, and the password is generated.
func adminPassword(getenv func(string) string) (string, error) {
	val, _, err := auth.FromEnvOrFile(getenv, "CLAUDE_ADMIN_PASSWORD")
	if err != nil || val == nil {
		return "", err
	}
	if err := auth.ValidPassword(string(val)); err != nil {
		return "", fmt.Errorf("the first admin's password: %w", err)
	}
	return string(val), nil
}

func (s *state) loop(ctx context.Context, db *database.DB, logger *zap.Logger) {
	defer close(s.done)
	nextCleanup := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(s.syncEvery.Load())):
		}
		if err := s.revocations.Sync(ctx); err != nil && ctx.Err() == nil {
			logger.Error("reading the token revocation list; using the last copy", zap.Error(err),
				zap.Time("last_sync", s.revocations.LastSync()))
		}
		if now := time.Now(); now.After(nextCleanup) {
			nextCleanup = now.Add(cleanupEvery)
			s.memReg.Prune(now)
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			_, err1 := auth.NewRefreshTokens(db, 0).DeleteExpired(cctx, now)
			_, err2 := s.revocations.DeleteExpired(cctx, now)
			_, err3 := s.sqlReg.DeleteExpired(cctx, now)
			cancel()
			if err := errors.Join(err1, err2, err3); err != nil && ctx.Err() == nil {
				logger.Warn("deleting expired auth rows", zap.Error(err))
			}
		}
	}
}

// staleAfter is how many sync intervals without a successful read of the
// revocation list make the "revocations" health check fail (at least 1 minute).
const staleAfter = 30

// check is the "revocations" health check: it fails while the revocation list
// has not been read for a while (the database is unreachable), because a
// token revoked meanwhile elsewhere is still honoured here.
func (s *state) check(context.Context) error {
	bound := max(staleAfter*time.Duration(s.syncEvery.Load()), time.Minute)
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	last := s.revocations.LastSync()
	if age := now().Sub(last); last.IsZero() || age > bound {
		return fmt.Errorf("revocation list not read for %s", age.Round(time.Second))
	}
	return nil
}

// Auth is the authentication service of one config, as handlers use it.
// Acquire one in Provision and Release it in Cleanup.
type Auth struct {
	*auth.Service

	// Audit is the `claude` app's audit trail.
	Audit *audit.Writer

	poolKey string
}

// Acquire builds the auth service of the config being provisioned from the
// `claude` app's `auth` options and the environment (SECRET_KEY or
// SECRET_KEY_FILE), sharing the revocation list and the login regulator with
// every other config on the same database. The first acquisition on a
// database with no user creates the user "admin".
func Acquire(ctx caddy.Context) (*Auth, error) {
	app, err := claude.FromContext(ctx)
	if err != nil {
		return nil, err
	}
	cfg := app.Auth
	if cfg == nil {
		cfg = new(claude.AuthConfig)
	}
	logger := ctx.Logger()
	key, verifyKeys, err := loadKeys(cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("claude auth: %w", err)
	}
	tokens, err := auth.NewTokens(auth.TokenConfig{
		Key:        key,
		VerifyKeys: verifyKeys,
		Issuer:     cfg.Issuer,
		Audience:   cfg.Audience,
		TTL:        time.Duration(cfg.AccessTTL),
		Leeway:     time.Duration(cfg.Leeway),
		MaxBytes:   cfg.MaxTokenSize,
	})
	if err != nil {
		return nil, fmt.Errorf("claude auth: %w", err)
	}
	db := app.DB()
	users := auth.NewUsers(db, cfg.BcryptCost)
	syncEvery := time.Duration(cfg.RevocationSync)
	if syncEvery == 0 {
		syncEvery = auth.DefaultRevocationSync
	}
	policy := auth.RegulationPolicy{MaxRetries: cfg.MaxRetries, FindTime: time.Duration(cfg.FindTime), BanTime: time.Duration(cfg.BanTime)}
	val, _, err := states.LoadOrNew(app.Database, func() (caddy.Destructor, error) {
		return newState(db, users, logger, syncEvery, policy)
	})
	if err != nil {
		return nil, fmt.Errorf("claude auth: %w", err)
	}
	st := val.(*state)
	st.syncEvery.Store(int64(syncEvery))
	var regulator auth.RegulationStore = st.sqlReg
	if cfg.Regulation == "memory" {
		regulator = st.memReg
	}
	regulator.SetPolicy(policy)
	app.Health().Register("revocations", false, st.check)
	svc := auth.NewService(tokens, users, auth.NewRefreshTokens(db, time.Duration(cfg.RefreshTTL)), st.revocations, regulator)
	trail := app.Audit()
	svc.OnBan = func(key string, until time.Time) {
		trail.Record(audit.Event{Kind: audit.Ban, Actor: "system", Subject: key,
			Details: map[string]string{"until": until.UTC().Format(time.RFC3339)}})
	}
	return &Auth{Service: svc, Audit: trail, poolKey: app.Database}, nil
}

// Release gives back what Acquire took; call it from Cleanup.
func (a *Auth) Release() error {
	if a == nil {
		return nil
	}
	_, err := states.Delete(a.poolKey)
	return err
}

// loadKeys finds the signing key: SECRET_KEY or SECRET_KEY_FILE, else the
// configured key file, else (development) a generated key file. There is no
// built-in fallback key.
func loadKeys(cfg *claude.AuthConfig, logger *zap.Logger) (key []byte, verify [][]byte, err error) {
	key, err = auth.SecretFromEnv(os.Getenv, "SECRET_KEY")
	switch {
	case err == nil:
	case !errors.Is(err, auth.ErrNoSecret):
		return nil, nil, err
	case cfg.SecretKeyFile != "":
		if key, err = auth.ReadSecretFile(cfg.SecretKeyFile); err != nil {
			return nil, nil, err
		}
	case cfg.GenerateSecretFile != "":
		var created bool
		if key, created, err = auth.LoadOrCreateSecretFile(cfg.GenerateSecretFile); err != nil {
			return nil, nil, err
		}
		if created {
			logger.Warn("no SECRET_KEY set: generated a signing key for development", zap.String("file", cfg.GenerateSecretFile))
		}
	default:
		return nil, nil, err
	}
	prev, err := auth.SecretFromEnv(os.Getenv, "SECRET_KEY_PREVIOUS")
	switch {
	case err == nil:
		verify = append(verify, prev)
	case !errors.Is(err, auth.ErrNoSecret):
		return nil, nil, err
	}
	for _, f := range cfg.VerifyKeyFiles {
		k, err := auth.ReadSecretFile(f)
		if err != nil {
			return nil, nil, err
		}
		verify = append(verify, k)
	}
	return key, verify, nil
}

// Interface guards
var _ caddy.Destructor = (*state)(nil)
