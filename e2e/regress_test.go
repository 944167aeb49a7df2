package e2e

import (
	"context"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	ra "github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	"go.step.sm/crypto/pemutil"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/crl"
	"github.com/anchorage-pki/anchorage/signer"
)

// An anchor that holds a CRL numbered above the CA's newest — the CA was
// restored from an old backup, or a second CA signs under its name — must
// not be pushed over: that would un-revoke hosts at AWS. The CA reads the
// anchor's CRL back, marks it regressed, says so on /health and in the
// anchor status, and makes no UpdateCrl call.
func TestAnchorAheadIsNotRegressed(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.ca.Stop()

	// At the anchor, the CA's CRL is replaced by one numbered 1000, signed
	// by the same issuing CA (as a newer CA database would have made).
	issuer, err := pemutil.ReadCertificate(w.ca.Cfg.Path(w.ca.Cfg.Paths.CACert))
	if err != nil {
		t.Fatal(err)
	}
	key, err := signer.Open(ctx, w.ca.Cfg.Path(w.ca.Cfg.Paths.CAKey))
	if err != nil {
		t.Fatal(err)
	}
	der, err := crl.Build(issuer, key, 1000, nil, time.Now().Truncate(time.Second), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	api := w.aws.Client()
	list, err := api.ListCrls(ctx, &ra.ListCrlsInput{})
	if err != nil || len(list.Crls) != 1 {
		t.Fatalf("ListCrls: %+v %v", list, err)
	}
	id := list.Crls[0].CrlId
	if _, err := api.UpdateCrl(ctx, &ra.UpdateCrlInput{CrlId: id, CrlData: pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})}); err != nil {
		t.Fatal(err)
	}
	updates := w.aws.Count("PATCH", "/crl")

	w.ca.Start(t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := w.ca.Admin(t).Anchors(ctx)
		if err == nil && len(st.Anchors) == 1 && st.Anchors[0].Regressed {
			if st.Anchors[0].HeldNumber != 1000 || !strings.Contains(st.Anchors[0].LastError, "regressed") {
				t.Errorf("regressed status: %+v", st.Anchors[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("anchor never marked regressed: %+v %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := w.ca.Client(t, nil).Health(ctx); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("/health with a regressed anchor: %v, want 503", err)
	}
	if !strings.Contains(w.ca.Metrics(t), `anchorage_trust_anchor_regressed{anchor="`+w.anchor+`"} 1`) {
		t.Error("/metrics does not show the regressed anchor")
	}
	// A revocation now still commits, but nothing is pushed over the anchor.
	res, _, _ := w.ca.Enroll(t, w.workDir, "host-after-restore")
	if _, err := w.ca.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: res.Serial}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if n := w.aws.Count("PATCH", "/crl"); n != updates {
		t.Errorf("%d UpdateCrl calls after the anchor was found ahead", n-updates)
	}
	got, err := api.GetCrl(ctx, &ra.GetCrlInput{CrlId: id})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := crl.NumberOf(got.Crl.CrlData); err != nil || n != 1000 {
		t.Errorf("anchor now holds CRL %d (%v), want 1000 untouched", n, err)
	}
}
