package ca

import (
	"bytes"
	"math/big"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// derBuf writes the lengths and integers cryptobyte writes, short form and
// long, nested.
func TestDerBuf(t *testing.T) {
	for _, n := range []int{0, 1, 126, 127, 128, 129, 254, 255, 256, 257, 65535, 65536, 70000} {
		content := bytes.Repeat([]byte{0xab}, n)
		var d derBuf
		s := d.open(tagSequence)
		d.add(tagOctetString, content[:n/2], content[n/2:])
		d.addPositiveInt(big.NewInt(int64(n) + 1))
		d.close(s)
		b := cryptobyte.NewBuilder(nil)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1OctetString(content)
			b.AddASN1BigInt(big.NewInt(int64(n) + 1))
		})
		want, err := b.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(d, want) {
			t.Fatalf("%d bytes: got %x…, want %x…", n, d[:min(len(d), 12)], want[:min(len(want), 12)])
		}
	}
	for _, v := range []string{"1", "7f", "80", "ff", "0100", "8000", "7fffffffffffffffffffffffffffffffffffffff", "ffffffffffffffffffffffffffffffffffffffff"} {
		n, _ := new(big.Int).SetString(v, 16)
		var d derBuf
		d.addPositiveInt(n)
		b := cryptobyte.NewBuilder(nil)
		b.AddASN1BigInt(n)
		if want, _ := b.Bytes(); !bytes.Equal(d, want) {
			t.Fatalf("integer %s: got %x, want %x", v, d, want)
		}
	}
}
