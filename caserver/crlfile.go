package caserver

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/anchorage-pki/anchorage/crl"
	"github.com/anchorage-pki/anchorage/storage"
)

// crlNumberStore is what the start-up check needs from storage.
type crlNumberStore interface {
	CRL(ctx context.Context) (storage.CRL, error)
}

// checkCRLFile compares the CRL number kept next to the database (file,
// see crl.WriteFile) with the database's newest. A file ahead of the
// database means the database is older than what relying parties have
// seen: restored from an old backup, or lost and made again. Serving it
// would push a CRL that has forgotten revocations, so the CA refuses to
// start. A file that is missing or behind (a crash between the two
// writes, or a release before the file) is brought up to date.
func checkCRLFile(ctx context.Context, store crlNumberStore, dbPath, file string, log *slog.Logger) error {
	stored, err := store.CRL(ctx)
	dbN, der := stored.Number, stored.DER
	if err != nil {
		return fmt.Errorf("read the newest CRL from %s: %w", dbPath, err)
	}
	fileN, ok, err := crl.FileNumber(file)
	if err != nil {
		return fmt.Errorf("%w: it records the newest published CRL number; if %s is the newest backup, move the file aside and start again", err, dbPath)
	}
	switch {
	case ok && fileN > dbN:
		return fmt.Errorf("database %s is older than the CRL published at %d (%s); restore the newest backup", dbPath, fileN, file)
	case der == nil || (ok && fileN == dbN):
		return nil
	}
	if err := crl.WriteFile(file, der); err != nil {
		return err
	}
	if ok {
		log.Warn("CRL file was behind the database; updated it", "file", file, "crl_number", dbN, "file_crl_number", fileN)
	} else {
		log.Warn("CRL file was missing; recreated it from the database", "file", file, "crl_number", dbN)
	}
	return nil
}
