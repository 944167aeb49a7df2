package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// CompactResult is the file's size before and after Compact.
type CompactResult struct {
	Before, After int64
}

// compactTxSize bounds each transaction of the copy (bbolt holds a
// transaction's pages in memory until it commits).
const compactTxSize = 64 << 20

// Compact rewrites the stopped CA's bbolt database at path into a new
// file, with every page filled and createPageSize pages, and puts it in
// place of the old one. A database written before serials were time
// ordered has pages about two-thirds full and free pages it may never
// reuse; the copy has neither. It holds the file's lock throughout, so it
// refuses while the CA serves it (and a CA started meanwhile waits, then
// opens the new file: see Open). The copy is fsynced and its key counts
// checked against the original before an atomic rename replaces it: a
// crash leaves either file, whole, at path (and at most a stale
// path.compact, which the next Compact removes).
func Compact(path string) (CompactResult, error) { return CompactWith(path, OpenOptions{}) }

// CompactWith is Compact, opening the database with o (a file from an
// older release is migrated first, and o.Logger hears how that goes).
func CompactWith(path string, o OpenOptions) (CompactResult, error) {
	var res CompactResult
	// The file itself, not a symlink to it: the rename below replaces
	// what path names, and must replace the database, in its directory.
	path, err := filepath.EvalSymlinks(path)
	if err != nil {
		return res, fmt.Errorf("storage: compact: %w", err)
	}
	src, err := OpenWith(path, o)
	if err != nil {
		return res, err
	}
	defer src.Close()
	st, err := os.Stat(path)
	if err != nil {
		return res, err
	}
	res.Before = st.Size()
	tmp := path + ".compact"
	// Left by a compaction that crashed before its rename: no one else
	// can be writing it, since we hold the database's lock.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return res, fmt.Errorf("storage: compact %s: %w", path, err)
	}
	if err := compactInto(src.db, tmp, st); err != nil {
		os.Remove(tmp)
		return res, fmt.Errorf("storage: compact %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return res, fmt.Errorf("storage: compact %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return res, fmt.Errorf("storage: compact %s: the new file is in place but its directory entry may not be durable: %w", path, err)
	}
	if st, err = os.Stat(path); err != nil {
		return res, err
	}
	res.After = st.Size()
	return res, nil
}

// compactInto copies src into a new file at tmp, with orig's owner and
// mode, fsyncs it and checks that every bucket holds as many keys as in
// src.
func compactInto(src *bolt.DB, tmp string, orig os.FileInfo) error {
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{PageSize: createPageSize, NoSync: true, OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return nil, err
		}
		// The copy takes the original's place: the CA's user (compact
		// may run as root) must still open it, with the mode it had.
		if err := sameOwner(f, orig); err != nil {
			f.Close()
			return nil, fmt.Errorf("give the copy the owner of the database: %w", err)
		}
		if err := f.Chmod(orig.Mode().Perm()); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}})
	if err != nil {
		return err
	}
	defer dst.Close()
	dst.AllocSize = allocSize
	// bbolt's Compact fills each page to 100%; later writes split them at
	// the bucket's own FillPercent (putCert).
	if err := bolt.Compact(dst, src, compactTxSize); err != nil {
		return err
	}
	if err := dst.Sync(); err != nil {
		return err
	}
	want, err := keyCounts(src)
	if err != nil {
		return err
	}
	got, err := keyCounts(dst)
	if err != nil {
		return err
	}
	for b, n := range want {
		if got[b] != n {
			return fmt.Errorf("the copy's bucket %s has %d keys, the database %d", b, got[b], n)
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("the copy has %d buckets, the database %d", len(got), len(want))
	}
	return dst.Close()
}

// keyCounts is the number of keys (nested buckets' included) of each
// top-level bucket.
func keyCounts(db *bolt.DB) (map[string]int, error) {
	out := map[string]int{}
	err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			out[string(name)] = b.Stats().KeyN
			return nil
		})
	})
	return out, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
