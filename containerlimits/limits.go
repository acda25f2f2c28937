// Package containerlimits holds the resource limits of one container, the
// same four for a run's sandbox (executor) and a session's workspace
// (workspaces): one type, one way to fill in defaults and check floors, one
// mapping onto the Docker engine's settings. Each kind of container passes
// its own defaults and floors.
package containerlimits

import (
	"fmt"
	"strconv"

	"github.com/moby/moby/api/types/container"
)

// Limits bounds the resources of one container. The zero value of a field
// means the default of the container's kind (WithDefaults). Embedded in a
// configuration, its fields stay at the configuration's own level in JSON.
type Limits struct {
	// Memory is the memory limit in bytes; swap equals it (none is allowed).
	Memory int64 `json:"memory,omitempty"`
	// CPUs is the CPU quota, in CPUs.
	CPUs float64 `json:"cpus,omitempty"`
	// Pids is the maximum number of processes.
	Pids int64 `json:"pids,omitempty"`
	// TmpSize is the size of the tmpfs mounted at /tmp, in bytes.
	TmpSize int64 `json:"tmp_size,omitempty"`
}

// WithDefaults returns l with every zero field set to def's.
func (l Limits) WithDefaults(def Limits) Limits {
	if l.Memory == 0 {
		l.Memory = def.Memory
	}
	if l.CPUs == 0 {
		l.CPUs = def.CPUs
	}
	if l.Pids == 0 {
		l.Pids = def.Pids
	}
	if l.TmpSize == 0 {
		l.TmpSize = def.TmpSize
	}
	return l
}

// Validate reports the first limit of l below its floor in floor. Call it
// on l with its defaults filled in.
func (l Limits) Validate(floor Limits) error {
	switch {
	case l.Memory < floor.Memory:
		return fmt.Errorf("memory %d is below %s", l.Memory, bytes(floor.Memory))
	case l.CPUs < floor.CPUs:
		return fmt.Errorf("cpus %g is below %g", l.CPUs, floor.CPUs)
	case l.Pids < floor.Pids:
		return fmt.Errorf("pids %d is below %d", l.Pids, floor.Pids)
	case l.TmpSize < floor.TmpSize:
		return fmt.Errorf("tmp_size %d is below %s", l.TmpSize, bytes(floor.TmpSize))
	}
	return nil
}

// Resources is l as the engine's resource settings: memory with swap equal
// to it, the CPU quota and the process limit. The caller adds the rest
// (ulimits).
func (l Limits) Resources() container.Resources {
	pids := l.Pids
	return container.Resources{
		Memory:     l.Memory,
		MemorySwap: l.Memory,
		NanoCPUs:   int64(l.CPUs * 1e9),
		PidsLimit:  &pids,
	}
}

// Tmpfs is the mount options of the container's /tmp: TmpSize bytes, no
// setuid programs, no device files.
func (l Limits) Tmpfs() map[string]string {
	return map[string]string{"/tmp": "rw,nosuid,nodev,size=" + strconv.FormatInt(l.TmpSize, 10)}
}

// bytes writes a size in MiB when it is a whole number of them.
func bytes(n int64) string {
	if n != 0 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
