package storage

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen: whatever the file holds, Open returns a database or an error;
// it never panics or faults.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	p := filepath.Join(dir, "seed.db")
	d, err := Create(p)
	if err != nil {
		f.Fatal(err)
	}
	d.Close()
	seed, _ := os.ReadFile(p)
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "anchorage.db")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if d, err := Open(p); err == nil {
			d.Close()
		}
	})
}
