package sessions

import (
	"os"
	"syscall"
)

// syncFileRangeWrite is SYNC_FILE_RANGE_WRITE: start writing back the range,
// without waiting.
const syncFileRangeWrite = 0x2

// startWriteback asks the kernel to begin writing bytes [off, off+n) of f to
// disk now, so the fsync at the end of an upload has little left to wait for.
func startWriteback(f *os.File, off, n int64) {
	syscall.SyncFileRange(int(f.Fd()), off, n, syncFileRangeWrite)
}
