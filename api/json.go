package api

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/problem"
)

// DecodeJSON reads a bounded request body strictly into v: unknown keys,
// trailing data and oversize bodies are refused with a problem.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return problem.New(http.StatusUnsupportedMediaType, problem.Malformed, "content type %q: want application/json", ct)
	}
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= apiv1.MaxBody {
		buf.Grow(int(n) + bytes.MinRead) // ReadFrom wants MinRead free to see EOF
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, apiv1.MaxBody))
	body := buf.Bytes()
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

// WriteJSON sends v with status: compact, newline-terminated (as
// json.Encoder ends it), in one write with its Content-Length, so a
// certificate response is one TLS record and no chunked framing. Clients
// that show it to people indent it themselves. The encoding goes into a
// pooled buffer: json.Marshal's copy of it, and the copy appending the
// newline made, were two of the larger allocations of an enrollment.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	buf := jsonBufs.Get().(*bytes.Buffer)
	defer putJSONBuf(buf)
	buf.Reset()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		// Only a value json cannot encode gets here: a bug, not a request.
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

var jsonBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putJSONBuf pools buf unless a large listing grew it: those stay rare, and
// the pool should not hold their memory.
func putJSONBuf(buf *bytes.Buffer) {
	if buf.Cap() <= 64<<10 {
		jsonBufs.Put(buf)
	}
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

// ChainPEM encodes certificates as concatenated PEM blocks, as pem.Encode
// writes them (TestChainPEM), into one buffer: pem.Encode builds a base64
// encoder and a line breaker per block, which a response with a chain in
// it paid on every request.
func ChainPEM(certs []*x509.Certificate) string {
	n := 0
	for _, c := range certs {
		n += pemLen(len(c.Raw))
	}
	var b strings.Builder
	b.Grow(n)
	for _, c := range certs {
		writeCertPEM(&b, c.Raw)
	}
	return b.String()
}

const (
	pemBegin = "-----BEGIN CERTIFICATE-----\n"
	pemEnd   = "-----END CERTIFICATE-----\n"
	// pemLine is the DER a 64-character line of base64 carries, the
	// line length encoding/pem writes.
	pemLine = 48
)

// pemLen is the length of a CERTIFICATE block of n bytes of DER.
func pemLen(n int) int {
	return len(pemBegin) + base64.StdEncoding.EncodedLen(n) + (n+pemLine-1)/pemLine + len(pemEnd)
}

// writeCertPEM writes the CERTIFICATE block of der to b.
func writeCertPEM(b *strings.Builder, der []byte) {
	b.WriteString(pemBegin)
	var line [64]byte
	for len(der) > 0 {
		chunk := der[:min(pemLine, len(der))]
		der = der[len(chunk):]
		n := base64.StdEncoding.EncodedLen(len(chunk))
		base64.StdEncoding.Encode(line[:n], chunk)
		b.Write(line[:n])
		b.WriteByte('\n')
	}
	b.WriteString(pemEnd)
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
