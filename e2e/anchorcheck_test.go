package e2e

import (
	"context"
	"encoding/pem"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	ra "github.com/aws/aws-sdk-go-v2/service/rolesanywhere"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/crl"
	"github.com/anchorage-pki/anchorage/internal/pkitest"
	"github.com/anchorage-pki/anchorage/internal/testenv"
	"github.com/anchorage-pki/anchorage/rolesanywhere"
)

// A CRL disabled or deleted at the trust anchor enforces nothing: a
// revoked host gets credentials again. The CA notices on its periodic
// read-back (anchorCheck) and on its next push, turns the CRL back on or
// imports it again, and only then reports the anchor current.
func TestDisabledOrDeletedCRLIsRestored(t *testing.T) {
	w := &world{aws: testenv.StartAWS(t), ca: testenv.InitCA(t), workDir: t.TempDir()}
	w.anchor, w.profile = w.aws.Setup(t, w.ca.CACert(t))
	w.ca.AddAnchor(t, w.anchor, w.aws.URL)
	w.ca.Cfg.AnchorCheck = config.Duration(time.Second)
	if err := w.ca.Cfg.Save(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	defer func() { t.Logf("whole test %s", time.Since(start).Round(time.Millisecond)) }()
	w.ca.Start(t)
	w.sessionCfg = rolesanywhere.Config{TrustAnchorARN: w.anchor, ProfileARN: w.profile, RoleARN: testenv.RoleARN,
		Endpoint: w.aws.URL, SessionDuration: 900}
	w.ca.WaitAnchors(t, 1, 10*time.Second)
	ctx := context.Background()
	api := w.aws.Client()
	// The CA and this test share the endpoint's 1 request/s CRL quota:
	// retry throttled calls soon rather than with the SDK's long backoff.
	quick := func(o *ra.Options) {
		o.Retryer = retry.AddWithMaxAttempts(retry.AddWithMaxBackoffDelay(o.Retryer, 300*time.Millisecond), 40)
	}

	res, certFile, keyFile := w.ca.Enroll(t, w.workDir, "gone-host")
	rr, err := w.ca.Admin(t).Revoke(ctx, apiv1.RevokeRequest{Serial: res.Serial, Reason: "keyCompromise"})
	if err != nil {
		t.Fatal(err)
	}
	w.ca.WaitAnchors(t, rr.CRLNumber, 15*time.Second)
	if _, err := w.createSession(t, certFile, keyFile); !accessDenied(err) {
		t.Fatalf("revoked host before tampering: %v", err)
	}
	crlID := func() *string {
		list, err := api.ListCrls(ctx, &ra.ListCrlsInput{}, quick)
		if err != nil || len(list.Crls) != 1 {
			t.Fatalf("ListCrls: %+v %v", list, err)
		}
		return list.Crls[0].CrlId
	}

	// Disabled at the anchor: the revoked host gets in again, until the CA
	// notices and turns it back on.
	if _, err := api.DisableCrl(ctx, &ra.DisableCrlInput{CrlId: crlID()}, quick); err != nil {
		t.Fatal(err)
	}
	if _, err := w.createSession(t, certFile, keyFile); err != nil {
		t.Fatalf("with the CRL disabled the stand-in must let the revoked host in (else this test proves nothing): %v", err)
	}
	waitDenied(t, w, certFile, keyFile, "after the CRL was disabled at the anchor")

	// Deleted at the anchor: imported again.
	if _, err := api.DeleteCrl(ctx, &ra.DeleteCrlInput{CrlId: crlID()}, quick); err != nil {
		t.Fatal(err)
	}
	waitDenied(t, w, certFile, keyFile, "after the CRL was deleted at the anchor")
	list, _ := api.ListCrls(ctx, &ra.ListCrlsInput{}, quick)
	if len(list.Crls) != 1 || !aws.ToBool(list.Crls[0].Enabled) {
		t.Fatalf("anchor CRLs after the CA restored it: %+v", list)
	}

	// Replaced by another CA's CRL with the same number: it enforces
	// nothing for this CA's certificates, so the CA puts its own back.
	n, err := crl.NumberOf(list.Crls[0].CrlData)
	if err != nil {
		t.Fatal(err)
	}
	other, otherKey := pkitest.NewCA(t, "Other CA")
	der, err := crl.Build(other, otherKey, n, nil, time.Now().Truncate(time.Second), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.UpdateCrl(ctx, &ra.UpdateCrlInput{CrlId: list.Crls[0].CrlId,
		CrlData: pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})}, quick); err != nil {
		t.Fatal(err)
	}
	waitDenied(t, w, certFile, keyFile, "after another CA's CRL replaced it at the anchor")
}

func waitDenied(t *testing.T, w *world, certFile, keyFile, when string) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(20 * time.Second)
	for {
		_, err := w.createSession(t, certFile, keyFile)
		if accessDenied(err) {
			t.Logf("%s: denied again after %s", when, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the revoked host still gets credentials (%v)", when, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
