package api

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/problem"
)

// DecodeJSON reads a bounded request body strictly into v: unknown keys,
// trailing data and oversize bodies are refused with a problem.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return problem.New(http.StatusUnsupportedMediaType, problem.Malformed, "content type %q: want application/json", ct)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, apiv1.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return problem.New(http.StatusRequestEntityTooLarge, problem.TooLarge, "request body over %d bytes", apiv1.MaxBody)
		}
		return problem.New(http.StatusBadRequest, problem.Malformed, "read body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return problem.New(http.StatusBadRequest, problem.Malformed, "request body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return problem.New(http.StatusBadRequest, problem.Malformed, "request body: trailing data after the JSON object")
	}
	return nil
}

// WriteJSON sends v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ParseCSR decodes a PEM (or bare base64 DER-free) PKCS#10 request.
func ParseCSR(s string) (*x509.CertificateRequest, error) {
	blk, rest := pem.Decode([]byte(s))
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" && blk.Type != "NEW CERTIFICATE REQUEST" {
		return nil, problem.New(http.StatusBadRequest, problem.BadCSR, "csr: want one PEM CERTIFICATE REQUEST block")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, problem.New(http.StatusBadRequest, problem.BadCSR, "csr: trailing data after the PEM block")
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, problem.New(http.StatusBadRequest, problem.BadCSR, "csr: %v", err)
	}
	return csr, nil
}

// ChainPEM encodes certificates as concatenated PEM blocks.
func ChainPEM(certs []*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.String()
}

// decodeWithCSR decodes the JSON body into a T and parses the PEM CSR that
// csrOf names in it: what enroll, renew and admin issue all start with.
func decodeWithCSR[T any](w http.ResponseWriter, r *http.Request, csrOf func(*T) string) (*T, *x509.CertificateRequest, error) {
	req := new(T)
	if err := DecodeJSON(w, r, req); err != nil {
		return nil, nil, err
	}
	csr, err := ParseCSR(csrOf(req))
	if err != nil {
		return nil, nil, err
	}
	return req, csr, nil
}
