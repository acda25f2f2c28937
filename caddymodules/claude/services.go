package claude

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/claude-gateway/claude-gateway/auth"
	"github.com/claude-gateway/claude-gateway/executor"
	"github.com/claude-gateway/claude-gateway/workspaces"
)

// executors holds the executors by configuration. A reload with the same
// executor settings re-uses the running one (its limits, queue and runs); a
// changed one gets a new executor while the old one's runs finish.
var executors = caddy.NewUsagePool()

// pooledExecutor lets an executor live in a caddy.UsagePool.
type pooledExecutor struct{ *executor.Executor }

// Destruct stops the executor's sweep; its runs in progress finish.
func (p pooledExecutor) Destruct() error { return p.Close() }

// workspaceManagers holds the workspace managers by configuration (their
// own settings, the executor's and the session store's), so a reload keeps
// the running one and its running workspaces.
var workspaceManagers = caddy.NewUsagePool()

// pooledWorkspaces lets a workspace manager live in a caddy.UsagePool. It
// holds a reference to the executor whose Docker client it uses.
type pooledWorkspaces struct {
	*workspaces.Manager
	executorKey string
}

// Destruct stops the manager's sweep (its workspaces keep running) and
// releases the executor.
func (p pooledWorkspaces) Destruct() error {
	err := p.Close()
	if _, derr := executors.Delete(p.executorKey); derr != nil && err == nil {
		err = derr
	}
	return err
}

// services are the shared services the app starts on first request by a
// module (not every config authenticates or executes code), and releases in
// Cleanup.
type services struct {
	auth *auth.Service // holds a reference into authStates

	executor    *executor.Executor
	executorKey string

	workspaces    *workspaces.Manager
	workspacesKey string
	cancelHook    func()
}

// Executor returns the executor of the app's `executor` settings, starting
// it (or re-using the one of the previous config) on first use, and
// registers its non-critical "docker" health check. Modules call it in
// Provision.
func (a *App) Executor() (*executor.Executor, error) {
	if a.svc.executor != nil {
		return a.svc.executor, nil
	}
	cfg := a.ExecutorSettings()
	if cfg.Instance == "" {
		// One name per data directory, kept across restarts: two gateways
		// on one host never sweep each other's runs.
		inst, err := executor.InstanceFromDir(filepath.Join(caddy.AppDataDir(), "claude"))
		if err != nil {
			return nil, fmt.Errorf("claude: executor: %w", err)
		}
		cfg.Instance = inst
	}
	key, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("claude: %w", err)
	}
	e, loaded, err := acquireExecutor(string(key), cfg, a.logger.Named("executor"))
	if err != nil {
		return nil, fmt.Errorf("claude: executor: %w", err)
	}
	a.svc.executor, a.svc.executorKey = e, string(key)
	trail := a.audit
	e.SetObserver(func(info executor.RunInfo, res executor.Result, err error) {
		trail.Record(runEvent(info, res, err))
	})
	a.health.Register("docker", false, e.IsAvailable)
	a.logger.Info("executor ready", zap.Bool("reused", loaded),
		zap.String("image", e.Config().Image(executor.Python)), zap.String("instance", e.Config().Instance))
	return e, nil
}

func acquireExecutor(key string, cfg executor.Config, logger *zap.Logger) (*executor.Executor, bool, error) {
	val, loaded, err := executors.LoadOrNew(key, func() (caddy.Destructor, error) {
		e, err := executor.New(cfg, logger)
		if err != nil {
			return nil, err
		}
		return pooledExecutor{e}, nil
	})
	if err != nil {
		return nil, false, err
	}
	return val.(pooledExecutor).Executor, loaded, nil
}

// Workspaces returns the manager of the session workspaces (one container
// per session hosting its IDE and its runs) on the executor's Docker
// engine, starting it (or re-using the previous config's) on first use.
// Sessions removed from the store take their workspace with them.
func (a *App) Workspaces() (*workspaces.Manager, error) {
	if a.svc.workspaces != nil {
		return a.svc.workspaces, nil
	}
	if _, err := a.Executor(); err != nil {
		return nil, err
	}
	st := a.Sessions()
	if st == nil {
		return nil, errors.New("claude: workspaces need the session store")
	}
	cfg := a.WorkspaceSettings()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("claude: %w", err)
	}
	k, err := json.Marshal(struct {
		Workspaces workspaces.Config
		Executor   string
		Sessions   string
	}{cfg, a.svc.executorKey, a.SessionsConfig.key})
	if err != nil {
		return nil, fmt.Errorf("claude: %w", err)
	}
	key := string(k)
	execKey, execCfg := a.svc.executorKey, a.ExecutorSettings()
	logger := a.logger.Named("workspaces")
	index := func(ctx context.Context) (map[string]time.Time, error) {
		list, err := st.ListAll(ctx)
		if err != nil {
			return nil, err
		}
		out := make(map[string]time.Time, len(list))
		for _, s := range list {
			out[s.ID] = s.LastActiveAt
		}
		return out, nil
	}
	val, loaded, err := workspaceManagers.LoadOrNew(key, func() (caddy.Destructor, error) {
		e, _, err := acquireExecutor(execKey, execCfg, a.logger.Named("executor"))
		if err != nil {
			return nil, err
		}
		m, err := workspaces.New(cfg, e.Docker(), index, logger)
		if err != nil {
			executors.Delete(execKey)
			return nil, err
		}
		return pooledWorkspaces{m, execKey}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("claude: workspaces: %w", err)
	}
	m := val.(pooledWorkspaces).Manager
	a.svc.workspaces, a.svc.workspacesKey = m, key
	trail := a.audit
	m.SetObserver(func(c workspaces.Change) { trail.Record(workspaceEvent(c)) })
	a.svc.cancelHook = st.OnRemove(func(ctx context.Context, id string) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := m.Remove(ctx, id); err != nil {
			logger.Error("removing the workspace of a removed session", zap.String("session", id), zap.Error(err))
		}
	})
	logger.Info("workspaces ready", zap.Bool("reused", loaded), zap.String("image", m.Config().Image),
		zap.String("pull", m.Config().Pull), zap.Duration("idle_timeout", m.Config().IdleTimeout))
	return m, nil
}

// cleanupServices releases this config's references to the services.
func (a *App) cleanupServices() {
	a.cleanupAuth()
	if a.svc.cancelHook != nil {
		a.svc.cancelHook()
	}
	if a.svc.workspaces != nil {
		if _, err := workspaceManagers.Delete(a.svc.workspacesKey); err != nil {
			a.logger.Error("releasing the workspace manager", zap.Error(err))
		}
	}
	if a.svc.executor != nil {
		if _, err := executors.Delete(a.svc.executorKey); err != nil {
			a.logger.Error("releasing the executor", zap.Error(err))
		}
	}
	a.svc = services{}
}

// Interface guards
var (
	_ caddy.Destructor = pooledExecutor{}
	_ caddy.Destructor = pooledWorkspaces{}
)
