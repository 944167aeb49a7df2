// Command boltstat prints, for each bucket of a bbolt file, its keys and
// the bytes its pages take and use, then where the rest of the file goes:
//
//	buckets alloc=... free=... meta=... file=... hwm=... tail=... page=...
//
// free is the pages the freelist holds (free or pending), meta the two
// meta pages, the freelist's own pages and the root bucket's page, hwm
// the end of the last page bbolt uses and tail the bytes the file has
// past it (bbolt grows the file ahead of need). The file is opened
// read-write, to read the freelist, but nothing is written: close the CA
// first.
package main

import (
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

func main() {
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "boltstat:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		var total int
		tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			s := b.Stats()
			alloc := s.BranchAlloc + s.LeafAlloc
			total += alloc
			fmt.Printf("%-14s keys=%-8d alloc=%-11d inuse=%-11d fill=%.2f leaf=%d/%d branch=%d/%d\n", name, s.KeyN, alloc, s.BranchInuse+s.LeafInuse,
				float64(s.BranchInuse+s.LeafInuse)/float64(max(alloc, 1)), s.LeafInuse, s.LeafAlloc, s.BranchInuse, s.BranchAlloc)
			return nil
		})
		ds, ps := db.Stats(), db.Info().PageSize
		free := (ds.FreePageN + ds.PendingPageN) * ps
		hwm := int(tx.Size())
		fmt.Printf("buckets alloc=%d free=%d meta=%d file=%d hwm=%d tail=%d page=%d\n",
			total, free, hwm-total-free, st.Size(), hwm, st.Size()-int64(hwm), ps)
		return nil
	})
}
