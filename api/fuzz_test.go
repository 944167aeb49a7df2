package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/anchorage-pki/anchorage/apiv1"
)

// FuzzParseCSR: any input gives a CSR or a problem, never a panic.
func FuzzParseCSR(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"a.example.com"}}, k)
	f.Add(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})))
	f.Add("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		csr, err := ParseCSR(s)
		if (csr == nil) == (err == nil) {
			t.Fatalf("csr %v, err %v", csr, err)
		}
	})
}

// FuzzDecodeJSON: request bodies decode strictly or fail with a problem.
func FuzzDecodeJSON(f *testing.F) {
	f.Add(`{"token":"t","csr":"c"}`)
	f.Add(`{"token":"t","extra":1}`)
	f.Add(`{"token":"t"}{}`)
	f.Add(strings.Repeat("[", 1000))
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/v1/enroll", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var req apiv1.EnrollRequest
		_ = DecodeJSON(httptest.NewRecorder(), r, &req)
	})
}
