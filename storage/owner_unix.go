//go:build unix

package storage

import (
	"os"
	"syscall"
)

// sameOwner gives f the owner and group fi records, when they differ
// from f's (a compact run as root over a file the CA's user owns must
// not leave it a file that user cannot open).
func sameOwner(f *os.File, fi os.FileInfo) error {
	want, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if got, ok := st.Sys().(*syscall.Stat_t); ok && got.Uid == want.Uid && got.Gid == want.Gid {
		return nil
	}
	return f.Chown(int(want.Uid), int(want.Gid))
}
