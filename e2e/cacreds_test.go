package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ra "github.com/aws/aws-sdk-go-v2/service/rolesanywhere"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/config"
	"github.com/anchorage-pki/anchorage/internal/testenv"
)

// TestCAPushesWithItsOwnCertificate: with "aws": {"credentials":
// "rolesanywhere"} the CA's CRL pushes are signed with session credentials
// it got for its own certificate, not with a long-lived key.
func TestCAPushesWithItsOwnCertificate(t *testing.T) {
	w := &world{aws: testenv.StartAWS(t), ca: testenv.InitCA(t), workDir: t.TempDir()}
	w.anchor, w.profile = w.aws.Setup(t, w.ca.CACert(t))
	// A certificate for the CA's sync identity, issued by the CA itself
	// (started once without anchors to enroll it).
	w.ca.Start(t)
	_, syncCert, syncKey := w.ca.Enroll(t, w.ca.Dir, "anchorage-crl-sync")
	w.ca.Stop()

	w.ca.Cfg.AWS = &config.AWS{Credentials: "rolesanywhere", RolesAnywhere: &config.RolesAnywhere{
		Certificate: syncCert, PrivateKey: syncKey, TrustAnchorARN: w.anchor, ProfileARN: w.profile,
		RoleARN: testenv.RoleARN, Endpoint: w.aws.URL}}
	w.ca.AddAnchor(t, w.anchor, w.aws.URL)
	w.ca.Start(t)
	w.ca.WaitAnchors(t, 1, 15*time.Second)
	// The push needed a CreateSession with the sync certificate: nothing
	// else has asked for a session yet.
	if n := w.aws.Count("POST", "/sessions"); n < 1 {
		t.Fatalf("%d CreateSession calls: the CA did not use its certificate", n)
	}

	res, cert, key := w.ca.Enroll(t, w.workDir, "victim")
	w.sessionCfg.TrustAnchorARN, w.sessionCfg.ProfileARN, w.sessionCfg.RoleARN = w.anchor, w.profile, testenv.RoleARN
	w.sessionCfg.Endpoint, w.sessionCfg.SessionDuration = w.aws.URL, 900
	rr, err := w.ca.Admin(t).Revoke(context.Background(), apiv1.RevokeRequest{Serial: res.Serial})
	if err != nil {
		t.Fatal(err)
	}
	w.ca.WaitAnchors(t, rr.CRLNumber, 15*time.Second)
	if _, err := w.createSession(t, cert, key); !accessDenied(err) {
		t.Errorf("after a push signed with certificate-based credentials: %v", err)
	}
	crls, err := w.aws.Client().ListCrls(context.Background(), &ra.ListCrlsInput{})
	if err != nil || len(crls.Crls) != 1 || aws.ToString(crls.Crls[0].TrustAnchorArn) != w.anchor {
		t.Fatalf("ListCrls: %+v %v", crls, err)
	}
}
