package api

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// TestChainPEM: ChainPEM writes what pem.Encode writes, for every length
// of DER around the line and base64 boundaries.
func TestChainPEM(t *testing.T) {
	for n := 0; n < 600; n++ {
		der := make([]byte, n)
		rand.Read(der)
		other := make([]byte, 600-n)
		rand.Read(other)
		want := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) +
			string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other}))
		got := ChainPEM([]*x509.Certificate{{Raw: der}, {Raw: other}})
		if got != want {
			t.Fatalf("%d bytes:\n got %q\nwant %q", n, got, want)
		}
		if len(got) != pemLen(n)+pemLen(600-n) {
			t.Fatalf("%d bytes: pemLen %d, wrote %d", n, pemLen(n)+pemLen(600-n), len(got))
		}
	}
}

// TestWriteJSON: the body is json.Marshal's, newline-terminated, with its
// length, HTML escaped as Marshal escapes it; buffers reused between
// responses do not leak one into the next.
func TestWriteJSON(t *testing.T) {
	for _, v := range []any{
		map[string]string{"chain": "-----BEGIN CERTIFICATE-----\nAAAA\n", "html": "<a&b>"},
		struct{ N int }{7},
		[]string{},
	} {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, '\n')
		rec := httptest.NewRecorder()
		WriteJSON(rec, http.StatusCreated, v)
		if rec.Code != http.StatusCreated || !bytes.Equal(rec.Body.Bytes(), want) ||
			rec.Header().Get("Content-Length") != strconv.Itoa(len(want)) || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("%v: %d %q %v, want %q", v, rec.Code, rec.Body.Bytes(), rec.Header(), want)
		}
	}
}
