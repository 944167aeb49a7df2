package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// exportAll is every record of d, as Export gives them, in JSON.
func exportAll(t *testing.T, d *DB) []string {
	t.Helper()
	var out []string
	err := d.Export(context.Background(), func(r Record) error {
		b, err := json.Marshal(r)
		out = append(out, string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A database of random serials (as written before they were time
// ordered), compacted: every record is there, the file is smaller, and
// it still takes writes.
func TestCompact(t *testing.T) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	d, path := openTemp(t)
	var cs []*Cert
	for i := range 3000 {
		b := make([]byte, 20)
		rand.Read(b)
		b[0] = 0x40 | b[0]&0x3f
		c := cert(hex.EncodeToString(b), "web", now.Add(time.Duration(i)*time.Second))
		c.DER = make([]byte, 500)
		rand.Read(c.DER)
		cs = append(cs, c)
	}
	for i := 0; i < len(cs); i += 100 { // many commits: random inserts split pages
		if err := d.PutCerts(ctx, cs[i:i+100]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.RevokeSerial(ctx, cs[7].Serial, 1, now); err != nil {
		t.Fatal(err)
	}
	if err := d.SaveCRL(ctx, CRL{Number: 2, Seq: 1, DER: []byte("crl")}); err != nil {
		t.Fatal(err)
	}
	want := exportAll(t, d)

	if _, err := Compact(path); err == nil {
		t.Fatal("Compact of a database that is open elsewhere succeeded")
	}
	d.Close()
	res, err := Compact(path)
	if err != nil {
		t.Fatal(err)
	}
	if res.After >= res.Before {
		t.Errorf("compacted %d bytes to %d", res.Before, res.After)
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	d, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got := exportAll(t, d)
	if len(got) != len(want) {
		t.Fatalf("%d records after compaction, %d before", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %d after compaction:\n%s\nbefore:\n%s", i, got[i], want[i])
		}
	}
	if err := d.PutCert(ctx, cert("01", "db", now)); err != nil {
		t.Fatal(err)
	}
}

// A process that waited for the lock while the file was replaced (as
// Compact replaces it) checks and opens the new file, not the old one it
// waited on: whether it waited for its read-only checks (behind a writer)
// or for its read-write open (behind a reader).
func TestOpenAfterReplacement(t *testing.T) {
	for _, readOnly := range []bool{false, true} {
		d, path := openTemp(t)
		if err := d.PutCert(context.Background(), cert("0a", "old", time.Now())); err != nil {
			t.Fatal(err)
		}
		next := filepath.Join(t.TempDir(), "next.db")
		n, err := Create(next)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.PutCert(context.Background(), cert("0b", "new", time.Now())); err != nil {
			t.Fatal(err)
		}
		n.Close()

		holder := func() error { return d.Close() }
		if readOnly {
			// A reader's shared lock lets Open's read-only checks through
			// and holds its read-write open, on the old file.
			d.Close()
			reader, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			holder = reader.Close
		}
		type opened struct {
			d   *DB
			err error
		}
		ch := make(chan opened, 1)
		go func() { d, err := Open(path); ch <- opened{d, err} }()
		time.Sleep(300 * time.Millisecond)
		if err := os.Rename(next, path); err != nil {
			t.Fatal(err)
		}
		holder()
		o := <-ch
		if o.err != nil {
			t.Fatal(o.err)
		}
		if _, err := o.d.Cert(context.Background(), "0b"); err != nil {
			t.Errorf("read-only holder %v: opened the replaced file: %v", readOnly, err)
		}
		o.d.Close()
	}
}

// The compacted file keeps the original's mode (and owner), and a
// database named through a symlink is replaced where it lives, the
// symlink left as it was.
func TestCompactKeepsModeAndSymlink(t *testing.T) {
	d, path := openTemp(t)
	if err := d.PutCert(context.Background(), cert("0a", "web", time.Now())); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link.db")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Compact(link); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced: %v %v", fi, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v after compact, want 0640", fi.Mode().Perm())
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	d, err = Open(link)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Cert(context.Background(), "0a"); err != nil {
		t.Fatal(err)
	}
}
