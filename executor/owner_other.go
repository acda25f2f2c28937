//go:build !unix

package executor

import "os"

// owner is not known on this platform.
func owner(os.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }
