package storage

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The database is the CA's memory: every revocation, every used token id
// and the CRL number. A CA that starts on an empty or damaged file forgets
// all of it, and its next CRL push un-revokes every host at AWS. So Open
// only ever opens an existing anchorage database, checked before bbolt maps
// it, and Create (anchorage-ca init, tests) is the only way to make one.

// Errors Open wraps; each comes inside an *OpenError that names the file.
var (
	ErrNoDatabase   = errors.New("database does not exist")
	ErrDamaged      = errors.New("database is damaged")
	ErrNotAnchorage = errors.New("not an anchorage database")
)

// OpenError is a refused Open or Create: one line naming the file, what is
// wrong with it and what to do.
type OpenError struct {
	Path    string
	Problem string // "is empty (0 bytes): ..."
	Err     error  // ErrNoDatabase, ErrDamaged, ErrNotAnchorage or a cause
}

func (e *OpenError) Error() string { return "storage: " + e.Path + " " + e.Problem }
func (e *OpenError) Unwrap() error { return e.Err }

// schemaVersion is the layout this binary reads and writes. A database
// with a higher version was written by a newer release. Version 2 stores
// certificate records in the binary encoding of record.go and indexes
// them by state and expiry (bucketByState). Version 3 keys the
// certificate buckets by the serial's bytes instead of its hex (bolt.go).
// Open migrates a version 1 or 2 database (see migrate.go).
const schemaVersion = 3

var keySchema = []byte("schema") // in bucketMeta: schemaMarker JSON

// schemaMarker tells an anchorage database from any other bbolt file.
type schemaMarker struct {
	App       string    `json:"app"` // "anchorage"
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"createdAt"`
	// Adopted is set when Open added the marker to a database made before
	// markers existed.
	Adopted bool `json:"adopted,omitempty"`
}

const lockTimeout = 3 * time.Second

const restore = "restore the newest backup"

// Open opens the existing anchorage database at path. It refuses, with an
// *OpenError naming the file, a file that is missing, empty, truncated,
// damaged or not an anchorage database, and leaves such a file exactly as
// it was: a refused open writes nothing. It never creates a database (see
// Create), but adds buckets a newer release needs. A second process opening
// the same file waits up to 3s for the lock and then fails with a clear
// error instead of hanging.
func Open(path string) (*DB, error) { return OpenWith(path, OpenOptions{}) }

// OpenOptions are Open's settings.
type OpenOptions struct {
	// Logger, when set, hears how a migration of a database from an
	// older release goes (it runs before OpenWith returns).
	Logger *slog.Logger
}

// OpenWith is Open with options.
func OpenWith(path string, o OpenOptions) (*DB, error) { return open(path, 1, o) }

func open(path string, attempt int, o OpenOptions) (*DB, error) {
	if err := checkFile(path, false); err != nil {
		return nil, err
	}
	// Read-only first: bbolt's read-write open may already write (it syncs
	// a missing freelist), and a refused file must stay as it was.
	var checked os.FileInfo // the file the checks below read
	ro, err := openBolt(path, &bolt.Options{ReadOnly: true, Timeout: lockTimeout, OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := openExisting(name, flag, perm)
		if err == nil {
			checked, _ = f.Stat()
		}
		return f, err
	}})
	if err != nil {
		return nil, err
	}
	var adopt, missing bool
	var version int
	err = checkFile(path, true)
	if err == nil {
		err = guard(path, func() error {
			return ro.View(func(tx *bolt.Tx) error {
				if err := checkBolt(path, tx); err != nil {
					return err
				}
				var err error
				if adopt, version, err = checkSchema(path, tx); err != nil {
					return err
				}
				if version < schemaVersion {
					// Refused here, on the read-only open, so that a
					// migration that cannot be done writes nothing.
					if err := checkV3Keys(tx); err != nil {
						return &OpenError{Path: path, Problem: fmt.Sprintf("cannot be migrated to schema %d (%v); nothing was written, and the previous release still opens it", schemaVersion, err), Err: err}
					}
				}
				for _, b := range buckets {
					missing = missing || tx.Bucket(b) == nil
				}
				return nil
			})
		})
	}
	if cerr := ro.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("storage: close %s: %w", path, cerr)
	}
	if err != nil {
		return nil, err
	}
	var opened *os.File
	db, err := openBolt(path, &bolt.Options{Timeout: lockTimeout, OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := openExisting(name, flag, perm)
		opened = f
		return f, err
	}})
	if err != nil {
		return nil, err
	}
	// The lock is the open file's: a Compact that held it while this
	// process waited has since renamed a new file over path, and the one
	// opened here (or the one checked) is the old copy, gone from the
	// directory. Check and open again.
	if replaced(opened, path) || !sameFile(opened, checked) {
		db.Close()
		if attempt < 3 {
			return open(path, attempt+1, o)
		}
		return nil, fmt.Errorf("storage: %s was replaced while this process waited for its lock, three times; try again", path)
	}
	db.AllocSize = allocSize // the migration's growth too
	if !adopt && !missing && version >= schemaVersion && !migrating(db) {
		// Even an empty commit writes a meta page; opening a database
		// that needs nothing leaves it as it was.
		return newDB(db), nil
	}
	err = guard(path, func() error {
		return db.Update(func(tx *bolt.Tx) error {
			for _, b := range buckets {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			if adopt {
				return putSchema(tx, true, 1)
			}
			return nil
		})
	})
	if err == nil {
		err = guard(path, func() error { return migrate(db, migrateBatch, o.Logger) })
	}
	if err != nil {
		db.Close()
		var oe *OpenError
		if errors.As(err, &oe) {
			return nil, err
		}
		return nil, fmt.Errorf("storage: bring %s to schema %d: %w", path, schemaVersion, err)
	}
	return newDB(db), nil
}

// createPageSize is the page size of a database Create makes (bbolt's
// default is the OS page, 4 KiB). A page holds whole records, so a page
// of 4 KiB loses up to one ~600-byte record's room (a certificate and its
// record: 7 do not fit, 6 fill 85%); 16 KiB loses a quarter as much, and
// index pages filled by inserts at random places split less often. A
// database keeps the page size it was made with.
const createPageSize = 16 << 10

// allocSize is how far ahead bbolt grows the file, each growth costing a
// truncate and an fsync. bbolt's 16 MiB is file bytes that hold nothing
// (an eighth of a database of 100,000 certificates); 1 MiB is an extra
// fsync every couple of thousand certificates.
const allocSize = 1 << 20

// Create makes a new, empty anchorage database at path (and its directory)
// and refuses if any file is already there, even an empty one: a new CA
// is made on purpose (anchorage-ca init), never by accident.
func Create(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("storage: create directory: %w", err)
	}
	db, err := openBolt(path, &bolt.Options{PageSize: createPageSize, Timeout: lockTimeout, OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
		return os.OpenFile(name, flag|os.O_CREATE|os.O_EXCL, perm)
	}})
	if errors.Is(err, fs.ErrExist) {
		return nil, &OpenError{Path: path, Problem: "already exists; refusing to make a new database over it", Err: err}
	}
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return putSchema(tx, false, schemaVersion)
	})
	if err != nil {
		db.Close()
		os.Remove(path) // ours: O_EXCL made it
		return nil, fmt.Errorf("storage: create %s: %w", path, err)
	}
	return newDB(db), nil
}

func putSchema(tx *bolt.Tx, adopted bool, version int) error {
	v, err := json.Marshal(schemaMarker{App: "anchorage", Version: version, CreatedAt: time.Now().UTC(), Adopted: adopted})
	if err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(keySchema, v)
}

// openExisting is bbolt's file opener without O_CREATE, refusing an empty
// file: bbolt initialises a zero-length file as a new database, and the
// file may have changed since checkFile looked at it.
func openExisting(name string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(name, flag&^os.O_CREATE, perm)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || st.Size() == 0 {
		f.Close()
		return nil, &OpenError{Path: name, Problem: "is empty (0 bytes): the CA's records are gone; " + restore, Err: ErrDamaged}
	}
	return f, nil
}

// sameFile reports whether f is the file fi describes (true if either is
// unknown).
func sameFile(f *os.File, fi os.FileInfo) bool {
	if f == nil || fi == nil {
		return true
	}
	got, err := f.Stat()
	return err != nil || os.SameFile(got, fi)
}

// replaced reports whether path no longer names the file f.
func replaced(f *os.File, path string) bool {
	pi, err := os.Stat(path)
	return err == nil && !sameFile(f, pi)
}

// openBolt is bolt.Open with anchorage's errors and without its panics.
func openBolt(path string, o *bolt.Options) (db *bolt.DB, err error) {
	err = guard(path, func() error {
		db, err = bolt.Open(path, 0o600, o)
		return err
	})
	if err == nil {
		return db, nil
	}
	var oe *OpenError
	switch {
	case errors.As(err, &oe):
		return nil, err
	case errors.Is(err, bolt.ErrTimeout):
		return nil, fmt.Errorf("storage: %s is locked by another process (is the CA already running?)", path)
	case errors.Is(err, fs.ErrNotExist):
		return nil, &OpenError{Path: path, Problem: "does not exist; " + restore + " (anchorage-ca init makes a new CA)", Err: ErrNoDatabase}
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrChecksum), errors.Is(err, bolt.ErrVersionMismatch):
		return nil, &OpenError{Path: path, Problem: fmt.Sprintf("is damaged (%v); %s", err, restore), Err: ErrDamaged}
	}
	return nil, fmt.Errorf("storage: open %s: %w", path, err)
}

// guard runs fn, turning a bbolt panic, or a memory fault on a mapped page
// the file does not really have, into ErrDamaged instead of a crash.
func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			msg, _, _ := strings.Cut(fmt.Sprint(p), "\n")
			err = &OpenError{Path: path, Problem: fmt.Sprintf("is damaged (bbolt: %s); %s", msg, restore), Err: ErrDamaged}
		}
	}()
	return fn()
}

// checkBolt runs bbolt's own consistency check (as `bbolt check` does) on
// the read-only open, after checkPages has shown the tree has no loops and
// no offsets off its pages: key order, pages neither reachable nor free,
// pages freed twice. bbolt runs it on a goroutine of its own, which
// recovers bbolt's panics into errors; every error is drained, so that the
// goroutine is done with tx before View returns, and the first is reported.
func checkBolt(path string, tx *bolt.Tx) error {
	var first error
	for err := range tx.Check() {
		if first == nil {
			first = err
		}
	}
	if first == nil {
		return nil
	}
	msg, _, _ := strings.Cut(first.Error(), "\n")
	if len(msg) > 160 {
		msg = msg[:160] + "…"
	}
	return &OpenError{Path: path, Problem: fmt.Sprintf("is damaged (bbolt check: %s); %s", msg, restore), Err: ErrDamaged}
}

// checkSchema is bbolt's first read of an open database (after
// checkPages): the schema marker. adopt is true for an anchorage database
// made before markers existed.
func checkSchema(path string, tx *bolt.Tx) (adopt bool, version int, err error) {
	notOurs := func(why string) error {
		return &OpenError{Path: path, Problem: "is not an anchorage database (" + why + "); is this the right file?", Err: ErrNotAnchorage}
	}
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return false, 0, notOurs("a bbolt file without anchorage's meta bucket")
	}
	v := meta.Get(keySchema)
	if v == nil {
		// Releases before the marker made the same buckets, and init
		// always records the TLS and admin certificates; an empty set of
		// our buckets is what an old release made of a zero-length file.
		certs := tx.Bucket(bucketCertsV2)
		if certs == nil || tx.Bucket(bucketRevoked) == nil {
			return false, 0, notOurs("no schema marker")
		}
		if k, _ := certs.Cursor().First(); k == nil {
			return false, 0, &OpenError{Path: path, Problem: "has no schema marker and no certificates: an empty database, as an older release made in place of a lost one; " + restore, Err: ErrNotAnchorage}
		}
		return true, 1, nil
	}
	var m schemaMarker
	if err := json.Unmarshal(v, &m); err != nil || m.App != "anchorage" {
		return false, 0, notOurs(fmt.Sprintf("schema marker %.40q", v))
	}
	if m.Version > schemaVersion {
		return false, 0, &OpenError{Path: path, Problem: fmt.Sprintf("was written by a newer anchorage (schema %d; this one knows %d): run the newer release", m.Version, schemaVersion), Err: ErrNotAnchorage}
	}
	return false, m.Version, nil
}

// bbolt's file header (go.etcd.io/bbolt internal/common meta.go, page.go):
// pages 0 and 1 each hold a 16-byte page header and then the meta, in the
// machine's byte order.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	pageHeaderSize = 16
	metaSize       = 64 // magic … txid (56 bytes) + FNV-64a checksum of them
	minPageSize    = 1024
	maxPageSize    = 16 << 20 // bbolt looks for the second meta up to here
	noFreelist     = ^uint64(0)
)

type boltMeta struct {
	pageSize uint32
	root     uint64 // page of the root bucket
	freelist uint64
	pgid     uint64 // high-water mark: pages [0, pgid) are in the file
	txid     uint64
}

// parseMeta decodes the meta of the page starting at b, or returns ok=false
// if it is not a valid one (magic, version, checksum).
func parseMeta(b []byte) (m boltMeta, ok bool) {
	if len(b) < pageHeaderSize+metaSize {
		return m, false
	}
	b = b[pageHeaderSize : pageHeaderSize+metaSize]
	e := binary.NativeEndian
	h := fnv.New64a()
	h.Write(b[:56])
	if e.Uint32(b[0:]) != boltMagic || e.Uint32(b[4:]) != boltVersion || e.Uint64(b[56:]) != h.Sum64() {
		return m, false
	}
	return boltMeta{pageSize: e.Uint32(b[8:]), root: e.Uint64(b[16:]), freelist: e.Uint64(b[32:]),
		pgid: e.Uint64(b[40:]), txid: e.Uint64(b[48:])}, true
}

// checkFile looks at the file before bbolt maps it: bbolt trusts its meta
// pages, and a file shorter than they say faults when a page past the end
// is touched. It reads only. With tree set it also walks every page
// (checkPages); Open does that once it holds the lock, so that no writer
// is changing pages under the walk.
func checkFile(path string, tree bool) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &OpenError{Path: path, Problem: "does not exist; " + restore + " (anchorage-ca init makes a new CA)", Err: ErrNoDatabase}
	}
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	damaged := func(format string, a ...any) error {
		return &OpenError{Path: path, Problem: fmt.Sprintf(format, a...) + "; " + restore, Err: ErrDamaged}
	}
	size := st.Size()
	switch {
	case st.IsDir():
		return &OpenError{Path: path, Problem: "is a directory, not a database", Err: ErrDamaged}
	case size == 0:
		return damaged("is empty (0 bytes): the CA's records are gone")
	case size < 2*minPageSize:
		return damaged("is too short (%d bytes) to be a database", size)
	}
	read := func(off int64) []byte {
		b := make([]byte, pageHeaderSize+metaSize)
		if n, _ := f.ReadAt(b, off); n < len(b) {
			return nil
		}
		return b
	}
	// Like bbolt: the first meta gives the page size; if it is bad, look
	// for the second at every page size bbolt supports.
	var metas []boltMeta
	m0, ok0 := parseMeta(read(0))
	if ok0 {
		metas = append(metas, m0)
	}
	for ps := int64(minPageSize); ps <= maxPageSize && ps+pageHeaderSize+metaSize <= size; ps <<= 1 {
		if ok0 && ps != int64(m0.pageSize) {
			continue
		}
		if m1, ok := parseMeta(read(ps)); ok && int64(m1.pageSize) == ps {
			metas = append(metas, m1)
			break
		}
	}
	if len(metas) == 0 {
		return damaged("is not a bbolt database (no valid meta page)")
	}
	// bbolt uses the valid meta with the highest transaction id.
	m := metas[0]
	for _, o := range metas[1:] {
		if o.txid > m.txid {
			m = o
		}
	}
	ps := uint64(m.pageSize)
	switch {
	case ps < minPageSize || ps > maxPageSize || ps&(ps-1) != 0:
		return damaged("is damaged (page size %d in its header)", ps)
	case m.pgid > uint64(size)/ps: // pgid*ps without overflow
		return damaged("is truncated: %d bytes, but its header counts %d pages of %d bytes", size, m.pgid, ps)
	case m.pgid < 2 || m.root < 2 || m.root >= m.pgid || (m.freelist != noFreelist && m.freelist >= m.pgid):
		return damaged("is damaged (inconsistent header: root page %d, freelist page %d, %d pages)", m.root, m.freelist, m.pgid)
	}
	if tree {
		if why := checkPages(f, m); why != "" {
			return damaged("is damaged (%s)", why)
		}
	}
	return nil
}
