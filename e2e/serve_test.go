package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	ra "github.com/aws/aws-sdk-go-v2/service/rolesanywhere"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/internal/pkitest"
	"github.com/anchorage-pki/anchorage/internal/testenv"
	"github.com/anchorage-pki/anchorage/rolesanywhere"
)

// quick is for plain requests to a server under test: one that stops
// answering fails the test rather than hanging it.
var quick = &http.Client{Timeout: 10 * time.Second}

// TestServeIMDSWithSDK: the SDK's EC2 role provider, pointed at `serve`,
// gets credentials through the IMDSv2 token flow; they pass
// GetCallerIdentity; after revocation serve can no longer refresh.
func TestServeIMDSWithSDK(t *testing.T) {
	w := newWorld(t)
	_, cert, key := w.ca.Enroll(t, w.workDir, "imds-host")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := make(chan *net.TCPAddr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- rolesanywhere.Serve(ctx, rolesanywhere.Options{Client: w.sessionCfg,
			Source: rolesanywhere.SourceConfig{Certificate: cert, PrivateKey: key}},
			rolesanywhere.ServeConfig{Port: 0, HopLimit: 1, Listening: func(a *net.TCPAddr) { addr <- a }})
	}()
	var url string
	select {
	case a := <-addr:
		url = fmt.Sprintf("http://%s", a)
	case err := <-errc:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}
	provider := ec2rolecreds.New(func(o *ec2rolecreds.Options) {
		o.Client = imds.New(imds.Options{Endpoint: url})
	})
	id, err := callerIdentity(t, w, aws.NewCredentialsCache(provider))
	if err != nil {
		t.Fatalf("GetCallerIdentity with IMDS credentials: %v", err)
	}
	if !strings.Contains(aws.ToString(id.Arn), "assumed-role/anchorage-e2e/") {
		t.Errorf("ARN %s", aws.ToString(id.Arn))
	}
	// IMDSv2: no token, no credentials.
	resp, err := quick.Get(url + "/latest/meta-data/iam/security-credentials/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("credentials without a token: %s", resp.Status)
	}
}

// TestCRLDistributionPointAgrees: with crl.url and crl.listen configured,
// leaves carry the distribution point, and what is served there is exactly
// the CRL the trust anchor holds.
func TestCRLDistributionPointAgrees(t *testing.T) {
	aws_ := testenv.StartAWS(t)
	ca := testenv.InitCA(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	crlAddr := ln.Addr().String()
	ln.Close()
	ca.Cfg.CRL.URL = "http://" + crlAddr + "/crl"
	ca.Cfg.CRL.Listen = crlAddr
	anchor, _ := aws_.Setup(t, ca.CACert(t))
	ca.AddAnchor(t, anchor, aws_.URL)
	ca.Start(t)
	res, _, _ := ca.Enroll(t, t.TempDir(), "cdp-host.example.com")
	leaf := pkitest.ParseChain(t, []byte(res.Chain))[0]
	if len(leaf.CRLDistributionPoints) != 1 || leaf.CRLDistributionPoints[0] != ca.Cfg.CRL.URL {
		t.Fatalf("CRL DP %v, want %s", leaf.CRLDistributionPoints, ca.Cfg.CRL.URL)
	}
	pkitest.LintPEM(t, []byte(res.Chain))
	rr, err := ca.Admin(t).Revoke(context.Background(), apiv1.RevokeRequest{Serial: res.Serial})
	if err != nil {
		t.Fatal(err)
	}
	ca.WaitAnchors(t, rr.CRLNumber, 15*time.Second)
	resp, err := quick.Get(leaf.CRLDistributionPoints[0])
	if err != nil {
		t.Fatal(err)
	}
	der, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rl, err := x509.ParseRevocationList(der)
	if err != nil || rl.Number.Uint64() != rr.CRLNumber || len(rl.RevokedCertificateEntries) != 1 {
		t.Fatalf("CRL at the distribution point: %v %v", rl, err)
	}
	crls, err := aws_.Client().ListCrls(context.Background(), &ra.ListCrlsInput{})
	if err != nil || len(crls.Crls) != 1 {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(crls.Crls[0].CrlData)
	if blk == nil || string(blk.Bytes) != string(der) {
		t.Error("the trust anchor holds a different CRL than the distribution point serves")
	}
}
