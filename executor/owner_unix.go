//go:build unix

package executor

import (
	"os"
	"syscall"
)

// owner returns the numeric owner of a file.
func owner(fi os.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}
