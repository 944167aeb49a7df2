package crl

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/anchorage-pki/anchorage/atomicfile"
)

// The CRL file is the CA's memory outside its database: a copy of the
// newest published CRL, written after the database has it and before any
// trust anchor sees it. A database restored from an older backup (or lost
// and recreated) would start below that CRL number and, on its next push,
// replace every anchor's CRL with one that has forgotten revocations; the
// file is what lets the CA notice and refuse (caserver).

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
	der := b
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN")) {
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "X509 CRL" {
			return 0, false, fmt.Errorf("crl: %s: no X509 CRL PEM block", path)
		}
		der = blk.Bytes
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return 0, false, fmt.Errorf("crl: %s does not parse: %w", path, err)
	}
	if rl.Number == nil || rl.Number.Sign() < 0 || !rl.Number.IsUint64() {
		return 0, false, fmt.Errorf("crl: %s: CRL number %v is not a uint64", path, rl.Number)
	}
	return rl.Number.Uint64(), true, nil
}

// writeFile records a saved CRL in Options.File. A failure is logged, not
// returned: the CRL is already in the database and must still be
// published; a file left behind the database is brought up to date at the
// next start, and only a file ahead of it stops the CA.
func (p *Publisher) writeFile(number uint64, der []byte) {
	if p.o.File == "" {
		return
	}
	if err := WriteFile(p.o.File, der); err != nil {
		p.o.Logger.Error("could not record the CRL outside the database: a restored older database would go unnoticed",
			"crl_number", number, "file", p.o.File, "err", err)
	}
}
