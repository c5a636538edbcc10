// Package writeback wraps a file being written sequentially so that the
// kernel starts writing its dirty pages to disk as they accumulate
// (sync_file_range(SYNC_FILE_RANGE_WRITE), which does not wait), instead of
// holding gigabytes in the page cache until the final fsync writes them all
// while nothing else happens. Uploads and cache downloads then overlap disk
// writes with the network and hashing.
package writeback

import (
	"os"

	"golang.org/x/sys/unix"
)

// Every is how many bytes may accumulate before writeback is started.
const Every = 32 << 20

// Writer writes to F, starting writeback every Every bytes. Errors of the
// early writeback are ignored: they show up at the caller's Sync.
type Writer struct {
	F     *os.File
	dirty int64
}

// Write implements io.Writer.
func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.F.Write(p)
	w.dirty += int64(n)
	if w.dirty >= Every {
		w.dirty = 0
		_ = unix.SyncFileRange(int(w.F.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
	return n, err
}
