package executor

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/moby/client"
	"go.uber.org/zap"
)

// orphanGrace is how long past the longest possible run a container of
// another gateway instance is left alone before it counts as an orphan.
const orphanGrace = time.Minute

// Cleanup removes the executor's containers that no run owns: those of this
// instance whose run is not in progress in this process (a killed
// predecessor's), and those of other instances older than the longest run
// allowed (a replica that died). It returns how many it removed.
func (e *Executor) Cleanup(ctx context.Context) (int, error) {
	list, err := e.docker.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: client.Filters{}.Add("label", LabelManaged+"=1"),
	})
	if err != nil {
		return 0, fmt.Errorf("listing sandbox containers: %w", unavailable(err))
	}
	staleBefore := time.Now().Add(-(e.cfg.MaxTimeout + orphanGrace)).Unix()
	removed := 0
	var firstErr error
	for _, c := range list.Items {
		run := c.Labels[LabelRun]
		if _, running := live.Load(run); running {
			continue
		}
		if c.Labels[LabelInstance] != e.cfg.Instance && c.Created > staleBefore {
			continue // another gateway's run, possibly still in progress
		}
		_, err := e.docker.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("removing sandbox container %s: %w", c.ID, unavailable(err))
			}
			continue
		}
		removed++
		e.logger.Info("removed an orphaned sandbox container",
			zap.String("container", c.ID), zap.String("run", run),
			zap.String("session", c.Labels[LabelSession]), zap.String("instance", c.Labels[LabelInstance]))
	}
	return removed, firstErr
}

// sweepLoop runs Cleanup at start and then every CleanupInterval until
// Close.
func (e *Executor) sweepLoop() {
	defer close(e.done)
	if e.cfg.CleanupInterval < 0 {
		return
	}
	ticker := time.NewTicker(e.cfg.CleanupInterval)
	defer ticker.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, err := e.Cleanup(ctx); err != nil {
			e.logger.Debug("sandbox sweep", zap.Error(err))
		}
		cancel()
		select {
		case <-e.stop:
			return
		case <-ticker.C:
		}
	}
}
