package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	ra "github.com/aws/aws-sdk-go-v2/service/rolesanywhere"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/crl"
)

// An operator restores an old backup of the database and deletes crl.der
// (or restores both). Revocations made after the backup are what AWS
// enforces, and must stay enforced: the CA reads the anchor's CRL back,
// takes the revocations it lacks into storage, never pushes a CRL that
// forgets them — also once its own CRL numbers climb past the anchor's —
// and the revoked host cannot renew back in.
func TestRestoredBackupDoesNotUnrevoke(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	res, certFile, keyFile := w.ca.Enroll(t, w.workDir, "after-backup")
	dbPath, crlPath := w.ca.Cfg.Path(w.ca.Cfg.Paths.DB), w.ca.Cfg.Path(w.ca.Cfg.Paths.CRL)

	w.ca.Stop()
	backup, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	// Issued after the backup, then revoked: the backup knows neither.
	w.ca.Start(t)
	late, lateCert, lateKey := w.ca.Enroll(t, w.workDir, "issued-after-backup")
	for _, serial := range []string{res.Serial, late.Serial} {
		rr, err := w.ca.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: serial, Reason: "keyCompromise"})
		if err != nil {
			t.Fatal(err)
		}
		w.ca.WaitAnchors(t, rr.CRLNumber, 15*time.Second)
	}
	for _, f := range [][2]string{{certFile, keyFile}, {lateCert, lateKey}} {
		if _, err := w.createSession(t, f[0], f[1]); !accessDenied(err) {
			t.Fatalf("revoked before the restore: %v", err)
		}
	}

	// Restore the backup; crl.der goes too.
	w.ca.Stop()
	if err := os.WriteFile(dbPath, backup, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(crlPath); err != nil {
		t.Fatal(err)
	}
	w.ca.Start(t)

	// The CA takes both revocations back from the anchor.
	deadline := time.Now().Add(20 * time.Second)
	for {
		list, err := w.ca.Admin(t).Certs(ctx, "after-backup", "revoked", 0, "")
		if err == nil && len(list.Certs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revocation made after the backup was not recovered from the anchor: %+v %v", list, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	st, err := w.ca.Admin(t).Anchors(ctx)
	if err != nil || len(st.Anchors) != 1 || st.Anchors[0].Recovered < 1 {
		t.Errorf("anchor status after the restore: %+v %v", st, err)
	}

	// Routine revocations push the CA's CRL numbers past the anchor's; what
	// is pushed then still carries both recovered revocations.
	var last uint64
	for i := range 4 {
		r, _, _ := w.ca.Enroll(t, w.workDir, fmt.Sprintf("routine-%d", i))
		rr, err := w.ca.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: r.Serial})
		if err != nil {
			t.Fatal(err)
		}
		last = rr.CRLNumber
	}
	w.ca.WaitAnchors(t, last, 30*time.Second)
	for _, f := range [][2]string{{certFile, keyFile}, {lateCert, lateKey}} {
		if _, err := w.createSession(t, f[0], f[1]); !accessDenied(err) {
			t.Errorf("a revocation made after the backup is no longer enforced at AWS: %v", err)
		}
	}
	list, _ := w.aws.Client().ListCrls(ctx, &ra.ListCrlsInput{})
	if len(list.Crls) != 1 {
		t.Fatalf("anchor CRLs: %+v", list)
	}
	n, _ := crl.NumberOf(list.Crls[0].CrlData)
	t.Logf("anchor holds CRL %d after the restore and %d revocations", n, 4)
}
