package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// realDB returns the bytes of a closed anchorage database holding enough
// certificates that its bbolt high-water mark lies well past half the file,
// so that cutting the file in half loses pages bbolt believes are there.
func realDB(t *testing.T) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "real.db")
	d, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var cs []*Cert
	for i := range 400 {
		c := cert(fmt.Sprintf("%04x", i), fmt.Sprintf("host-%d", i), now.Add(time.Hour))
		c.DER = bytes.Repeat([]byte{byte(i)}, 700)
		cs = append(cs, c)
	}
	if err := d.PutCerts(context.Background(), cs); err != nil {
		t.Fatal(err)
	}
	if err := d.SaveCRL(context.Background(), CRL{Number: 7, DER: []byte("crl")}); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// plainBolt is a valid bbolt file that anchorage did not create: it has
// buckets, even ones named like ours, but no schema marker.
func plainBolt(t *testing.T, buckets ...string) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "plain.db")
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucket([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOpenRefusesLostOrDamagedDatabase is the issue "a CA that never
// forgets": each of these files, opened as if it were the CA's database,
// must give one readable line naming the file, never a panic, never a
// fresh empty CA, and must leave the file exactly as it was.
func TestOpenRefusesLostOrDamagedDatabase(t *testing.T) {
	real := realDB(t)
	garbage := make([]byte, 64<<10)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(garbage)
	// A branch page whose first child is itself: bbolt's cursor loops on
	// it forever.
	cyclic := bytes.Clone(real)
	looped := false
	const ps = createPageSize
	for id := 2; (id+1)*ps <= len(cyclic) && !looped; id++ {
		pg := cyclic[id*ps:]
		if binary.NativeEndian.Uint16(pg[8:]) == branchPageFlag {
			binary.NativeEndian.PutUint64(pg[pageHeaderSize+8:], uint64(id))
			looped = true
		}
	}
	if !looped {
		t.Fatal("test database has no branch page")
	}
	// Valid meta pages, data pages overwritten: bbolt maps it happily.
	scribbled := bytes.Clone(real)
	copy(scribbled[2*ps:], garbage)

	for _, tc := range []struct {
		name    string
		content []byte // nil: no file at all
		is      error
		want    string
	}{
		{"missing", nil, ErrNoDatabase, "does not exist"},
		{"empty", []byte{}, ErrDamaged, "is empty (0 bytes)"},
		{"shorter than a page", real[:100], ErrDamaged, "too short"},
		{"truncated to half", real[:len(real)/2], ErrDamaged, "truncated"},
		{"truncated to two pages", real[:2*ps], ErrDamaged, "truncated"},
		{"garbage", garbage, ErrDamaged, "not a bbolt database"},
		{"garbage with a valid header", scribbled, ErrDamaged, "damaged"},
		{"page tree with a loop", cyclic, ErrDamaged, "is reached twice"},
		{"text", []byte(strings.Repeat("not a database\n", 1000)), ErrDamaged, "not a bbolt database"},
		{"bbolt without buckets", plainBolt(t), ErrNotAnchorage, "not an anchorage database"},
		{"bbolt with other buckets", plainBolt(t, "orders", "accounts"), ErrNotAnchorage, "not an anchorage database"},
		{"bbolt with our empty buckets", plainBolt(t, "certs", "by_subject", "revoked", "tokens", "meta", "anchors"), ErrNotAnchorage, "no schema marker and no certificates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "anchorage.db")
			var mtime time.Time
			if tc.content != nil {
				if err := os.WriteFile(path, tc.content, 0o600); err != nil {
					t.Fatal(err)
				}
				// An old mtime, so a write within the same clock tick shows.
				mtime = time.Now().Add(-time.Hour).Truncate(time.Second)
				if err := os.Chtimes(path, mtime, mtime); err != nil {
					t.Fatal(err)
				}
			}
			var d *DB
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("Open panicked: %v", p)
					}
				}()
				d, err = Open(path)
			}()
			if err == nil {
				d.Close()
				t.Fatal("Open accepted it")
			}
			msg := err.Error()
			if !errors.Is(err, tc.is) || !strings.Contains(msg, tc.want) || !strings.Contains(msg, path) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %s, containing %q, wrapping %v", msg, path, tc.want, tc.is)
			}
			st, serr := os.Stat(path)
			if tc.content == nil {
				if serr == nil {
					t.Fatal("Open created the missing database")
				}
				return
			}
			if serr != nil {
				t.Fatal(serr)
			}
			got, _ := os.ReadFile(path)
			if !bytes.Equal(got, tc.content) || !st.ModTime().Equal(mtime) {
				t.Errorf("refused open changed the file: %d bytes (had %d), mtime %v (had %v)", len(got), len(tc.content), st.ModTime(), mtime)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("refused open left files behind: %v", ents)
			}
		})
	}
}

func TestOpenAcceptsWhatCreateMade(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "anchorage.db")
	d, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SaveCRL(context.Background(), CRL{Number: 3, DER: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err = Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if c, err := d.CRL(context.Background()); err != nil || c.Number != 3 {
		t.Fatalf("CRL number after reopen: %d, %v", c.Number, err)
	}
}

func TestCreateRefusesExistingFile(t *testing.T) {
	for _, content := range [][]byte{{}, []byte("keep me")} {
		p := filepath.Join(t.TempDir(), "anchorage.db")
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := Create(p)
		if err == nil {
			d.Close()
			t.Fatalf("Create over a %d-byte file succeeded", len(content))
		}
		if !strings.Contains(err.Error(), "already exists") {
			t.Errorf("error %q", err)
		}
		if got, _ := os.ReadFile(p); !bytes.Equal(got, content) {
			t.Errorf("Create changed the existing file")
		}
	}
}

// A database from before the schema marker (anchorage's buckets and at
// least the certificates init issues) is adopted: the marker is added and
// nothing else changes.
func TestOpenAdoptsPreMarkerDatabase(t *testing.T) {
	p := filepath.Join(t.TempDir(), "anchorage.db")
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{"certs", "by_subject", "revoked", "tokens", "meta"} {
			if _, err := tx.CreateBucket([]byte(b)); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("certs")).Put([]byte("01"), []byte(`{"serial":"01","subject":"tls","status":"valid"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	d, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := d.Cert(context.Background(), "01"); err != nil || c.Subject != "tls" {
		t.Fatalf("cert after adoption: %v, %v", c, err)
	}
	// The missing bucket (anchors) is created; the marker is there now.
	if _, err := d.AnchorStatuses(context.Background()); err != nil {
		t.Fatal(err)
	}
	d.Close()
	db, err = bolt.Open(p, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte("meta")).Get([]byte("schema")); v == nil {
			t.Error("no schema marker after adoption")
		}
		return nil
	})
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	p := filepath.Join(t.TempDir(), "anchorage.db")
	d, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	err = d.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(`{"app":"anchorage","version":99}`))
	})
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	if d, err := Open(p); err == nil || !strings.Contains(err.Error(), "newer") {
		if d != nil {
			d.Close()
		}
		t.Fatalf("Open of a schema-99 database: %v", err)
	}
}

// bbolt writes its two meta pages alternately so that a torn write of one
// leaves the other: a database with one bad meta page still opens, as it
// does in bbolt.
func TestOpenToleratesOneTornMetaPage(t *testing.T) {
	real := realDB(t)
	for _, off := range []int{0, createPageSize} {
		p := filepath.Join(t.TempDir(), "anchorage.db")
		b := bytes.Clone(real)
		b[off+16+20] ^= 0xff // inside the meta: its checksum no longer matches
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := Open(p)
		if err != nil {
			t.Fatalf("meta page at %d torn: %v", off, err)
		}
		// bbolt falls back to the other meta, which may be one commit
		// older (here: before SaveCRL). The CRL file next to the database
		// is what notices such a rollback (crl.FileNumber).
		if c, err := d.Cert(context.Background(), "0001"); err != nil || c.Subject != "host-1" {
			t.Errorf("meta page at %d torn: cert %v, %v", off, c, err)
		}
		d.Close()
	}
}

// Opening a database that needs no new bucket writes nothing, so a CA that
// refuses to start after Open (caserver's CRL file check) leaves it as it
// was; one that lacks a bucket a newer release added gets it.
func TestOpenWritesOnlyWhatIsMissing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "anchorage.db")
	d, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(p)
	if d, err = Open(p); err != nil {
		t.Fatal(err)
	}
	d.Close()
	after, _ := os.ReadFile(p)
	if st, _ := os.Stat(p); !bytes.Equal(before, after) || !st.ModTime().Equal(old) {
		t.Fatal("Open of a complete database wrote to it")
	}

	saved := buckets
	t.Cleanup(func() { buckets = saved })
	buckets = append(buckets[:len(buckets):len(buckets)], []byte("next_release"))
	if d, err = Open(p); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("next_release")) == nil {
			t.Error("Open did not add the new bucket")
		}
		return nil
	})
}
