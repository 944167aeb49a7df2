//go:build !unix

package storage

import "os"

// sameOwner is a no-op where files have no Unix owner.
func sameOwner(*os.File, os.FileInfo) error { return nil }
