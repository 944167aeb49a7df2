package crl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/anchorage-pki/anchorage/atomicfile"
)

// The CRL file is the CA's memory outside its database: a copy of the
// newest published CRL, written right after the database commits it. A
// database restored from an older backup (or lost and recreated) would
// start below that CRL number and, on its next push, replace every anchor's
// CRL with one that has forgotten revocations; the file is what lets the
// CA notice and refuse (caserver). The commit itself wakes the trust-anchor
// pusher, so the file write and the first push run concurrently: the file
// is usually, not strictly, written before an anchor holds the CRL.

// WriteFile replaces the CRL file at path with der (a DER CRL, as served at
// /crl), atomically: a reader sees the previous CRL or this one. A CRL is
// public, so the file is world-readable.
func WriteFile(path string, der []byte) error {
	if err := atomicfile.Write(path, der, 0o644); err != nil {
		return fmt.Errorf("crl: %w", err)
	}
	return nil
}

// FileNumber returns the CRL number of the CRL in the file at path, DER or
// PEM. ok is false, with no error, if there is no file.
func FileNumber(path string) (n uint64, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("crl: %w", err)
	}
	n, err = NumberOf(b)
	if err != nil {
		return 0, false, fmt.Errorf("crl: %s: %w", path, err)
	}
	return n, true, nil
}

// writeFile records a saved CRL in Options.File. A failure is not
// returned: the CRL is already in the database and must still be
// published. It is logged and kept (FileError, shown by /health and
// /metrics) until a write succeeds: while the file is behind the database
// a restore of an older database would go unnoticed. Run retries the
// write on its poll; a file left behind the database is also brought up
// to date at the next start, and only a file ahead of it stops the CA.
func (u *Updater) writeFile(number uint64, der []byte) {
	if u.o.File == "" {
		return
	}
	u.fileMu.Lock()
	defer u.fileMu.Unlock()
	if number < u.fileNumber {
		return // a newer CRL is in the file already
	}
	err := WriteFile(u.o.File, der)
	if err != nil {
		if u.fileErr == nil || number > u.fileErrNumber {
			u.o.Logger.Error("could not record the CRL outside the database: a restored older database would go unnoticed",
				"crl_number", number, "file", u.o.File, "err", err)
		}
		u.fileErr, u.fileErrNumber = fmt.Errorf("CRL %d not written to %s: %w", number, u.o.File, err), number
		return
	}
	if u.fileErr != nil {
		u.o.Logger.Info("CRL file written again", "crl_number", number, "file", u.o.File)
	}
	u.fileErr, u.fileNumber = nil, number
}

// retryFile rewrites the current CRL to the file if the last write failed.
func (u *Updater) retryFile() {
	if u.FileError() == nil {
		return
	}
	if c := u.Current(); c != nil {
		u.writeFile(c.Number, c.DER)
	}
}

// FileError is the error of the last failed write of Options.File, or nil
// if the last write succeeded (or there is no file, or none written yet).
func (u *Updater) FileError() error {
	u.fileMu.Lock()
	defer u.fileMu.Unlock()
	return u.fileErr
}
