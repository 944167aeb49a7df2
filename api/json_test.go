package api

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
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
