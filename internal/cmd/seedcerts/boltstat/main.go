// Command boltstat prints, for each bucket of a bbolt file, its keys and
// the bytes its pages take and use, and the file's free pages: where a
// database's size goes.
package main

import (
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

func main() {
	db, err := bolt.Open(os.Args[1], 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		var total int
		tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			s := b.Stats()
			alloc := s.BranchAlloc + s.LeafAlloc
			total += alloc
			fmt.Printf("%-14s keys=%-8d alloc=%-11d inuse=%-11d fill=%.2f\n", name, s.KeyN, alloc, s.BranchInuse+s.LeafInuse, float64(s.BranchInuse+s.LeafInuse)/float64(max(alloc, 1)))
			return nil
		})
		st := db.Stats()
		fmt.Printf("buckets alloc=%d file=%d free_pages=%d pending=%d page=%d\n", total, tx.Size(), st.FreePageN, st.PendingPageN, db.Info().PageSize)
		return nil
	})
}
