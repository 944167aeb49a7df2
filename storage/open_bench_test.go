package storage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	largeOnce sync.Once
	largePath string
	largeErr  error
)

// largeDB makes, once per run, a database of ANCHORAGE_BENCH_CERTS
// (default 200000) certificates of about 1 KB, as a big CA's would be, in
// commits of 5000 (about 520 MB), in a directory of its own that the
// benchmark removes when it is done.
func largeDB(b *testing.B) string {
	largeOnce.Do(func() {
		n := 200000
		if s := os.Getenv("ANCHORAGE_BENCH_CERTS"); s != "" {
			n, _ = strconv.Atoi(s)
		}
		dir, err := os.MkdirTemp("", "anchorage-bench-")
		if err != nil {
			largeErr = err
			return
		}
		largePath = filepath.Join(dir, "large.db")
		d, err := Create(largePath)
		if err != nil {
			largeErr = err
			return
		}
		defer d.Close()
		start := time.Now()
		now := time.Now()
		for i := 0; i < n; i += 5000 {
			var cs []*Cert
			for j := i; j < min(i+5000, n); j++ {
				c := cert(fmt.Sprintf("%016x", uint64(j)*0x9e3779b97f4a7c15), fmt.Sprintf("host-%d.example.internal", j%50000), now.Add(time.Duration(j)*time.Second))
				c.DER = bytes.Repeat([]byte{byte(j)}, 1000)
				cs = append(cs, c)
			}
			if largeErr = d.PutCerts(context.Background(), cs); largeErr != nil {
				return
			}
		}
		st, _ := os.Stat(largePath)
		fmt.Fprintf(os.Stderr, "large database: %d certificates, %d MB, made in %v\n", n, st.Size()>>20, time.Since(start).Round(time.Millisecond))
	})
	if largeErr != nil {
		b.Fatal(largeErr)
	}
	return largePath
}

// BenchmarkOpenLarge measures Open on a large database, and apart its two
// checks: the page walk (checkFile with tree) and bbolt's tx.Check.
//
//	go test ./storage/ -run '^$' -bench OpenLarge -benchtime 5x
func BenchmarkOpenLarge(b *testing.B) {
	p := largeDB(b)
	b.Cleanup(func() { os.RemoveAll(filepath.Dir(p)) })
	b.Run("walk", func(b *testing.B) {
		for b.Loop() {
			if err := checkFile(p, true); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("txcheck", func(b *testing.B) {
		for b.Loop() {
			db, err := bolt.Open(p, 0o600, &bolt.Options{ReadOnly: true})
			if err != nil {
				b.Fatal(err)
			}
			if err := db.View(func(tx *bolt.Tx) error { return checkBolt(p, tx) }); err != nil {
				b.Fatal(err)
			}
			db.Close()
		}
	})
	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			d, err := Open(p)
			if err != nil {
				b.Fatal(err)
			}
			d.Close()
		}
	})
}
