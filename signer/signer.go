// Package signer opens and creates the private keys anchorage signs with,
// for the CA and for workloads alike, behind crypto.Signer.
//
// A key is named by one reference string, the same for every command:
//
//	/etc/anchorage/host.key                     PEM private key file (0600)
//	pkcs11:token=anchorage;object=host?pin-source=/etc/anchorage/pin
//	                                            key in a PKCS#11 token (RFC 7512)
//	handle:0x81000010                           TPM 2.0 persistent key
//	tpm:/etc/anchorage/host.tss2                TPM 2.0 key wrapped in a
//	                                            "TSS2 PRIVATE KEY" file
//
// A file that holds a TSS2 PRIVATE KEY is recognised by its content, so the
// "tpm:" prefix is needed only to create one. Open returns a signer for an
// existing key; Create makes a new one where the reference says — in the
// token or TPM, where it never leaves — and returns it as a Pending key that
// the caller saves once the CA has issued, or discards.
//
// PKCS#11 goes through go.step.sm/crypto/kms/pkcs11 (crypto11, so cgo) and
// TPM through go-tpm with the TSS2 key format of go.step.sm/crypto/tpm/tss2,
// the format aws_signing_helper and the OpenSSL tpm2 provider read.
package signer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.step.sm/crypto/pemutil"

	"github.com/anchorage-pki/anchorage/atomicfile"
)

// KeyType names a key algorithm for Generate and Create.
type KeyType string

// Key types. The CA accepts P-256, P-384 and RSA 2048–4096; P-521 exists so
// that a refusal can be shown and tested.
const (
	EC      KeyType = "ec"      // ECDSA P-256
	P384    KeyType = "p384"    // ECDSA P-384
	P521    KeyType = "p521"    // ECDSA P-521 (the CA refuses it)
	RSA     KeyType = "rsa"     // RSA 2048
	RSA3072 KeyType = "rsa3072" // RSA 3072
	RSA4096 KeyType = "rsa4096" // RSA 4096
)

// ParseKeyType accepts the --key-type values.
func ParseKeyType(s string) (KeyType, error) {
	switch strings.ToLower(s) {
	case "ec", "ecdsa", "p256", "p-256", "":
		return EC, nil
	case "p384", "p-384":
		return P384, nil
	case "p521", "p-521":
		return P521, nil
	case "rsa", "rsa2048":
		return RSA, nil
	case "rsa3072":
		return RSA3072, nil
	case "rsa4096":
		return RSA4096, nil
	}
	return "", fmt.Errorf("unknown key type %q (want ec, p384, rsa, rsa3072 or rsa4096)", s)
}

func (t KeyType) curve() elliptic.Curve {
	switch t {
	case EC, "":
		return elliptic.P256()
	case P384:
		return elliptic.P384()
	case P521:
		return elliptic.P521()
	}
	return nil
}

func (t KeyType) rsaBits() int {
	switch t {
	case RSA:
		return 2048
	case RSA3072:
		return 3072
	case RSA4096:
		return 4096
	}
	return 0
}

// Generate makes a new software key.
func Generate(t KeyType) (crypto.Signer, error) {
	if c := t.curve(); c != nil {
		return ecdsa.GenerateKey(c, rand.Reader)
	}
	if bits := t.rsaBits(); bits > 0 {
		return rsa.GenerateKey(rand.Reader, bits)
	}
	return nil, fmt.Errorf("unknown key type %q", t)
}

// Kind is the backend a reference names.
type Kind int

// Backends.
const (
	KindFile   Kind = iota // PEM file (or a TSS2 file, told by content)
	KindPKCS11             // pkcs11: URI
	KindTPM                // handle:0x81… or tpm:PATH
)

func (k Kind) String() string {
	return [...]string{"file", "PKCS#11", "TPM"}[k]
}

// KindOf tells which backend ref names, by its prefix only.
func KindOf(ref string) Kind {
	switch {
	case strings.HasPrefix(ref, "pkcs11:"):
		return KindPKCS11
	case strings.HasPrefix(ref, "handle:"), strings.HasPrefix(ref, "tpm:"):
		return KindTPM
	}
	return KindFile
}

// IsHardware reports whether ref names a key in a token or a TPM.
func IsHardware(ref string) bool { return KindOf(ref) != KindFile }

// FilePath returns the file a reference keeps on disk, if any: the path of
// a PEM key, or of the TSS2 file of a "tpm:" reference. aws_signing_helper
// and rolesanywhere take that path (they recognise TSS2 files by content).
func FilePath(ref string) (string, bool) {
	switch {
	case strings.HasPrefix(ref, "tpm:"):
		return strings.TrimPrefix(ref, "tpm:"), true
	case IsHardware(ref):
		return "", false
	}
	return ref, true
}

// Redact hides every pin-value so a reference can be logged.
func Redact(ref string) string {
	const attr, hidden = "pin-value=", "pin-value=REDACTED"
	var out strings.Builder
	for {
		i := strings.Index(ref, attr)
		if i < 0 {
			return out.String() + ref
		}
		out.WriteString(ref[:i] + hidden)
		ref = ref[i+len(attr):]
		end := strings.IndexAny(ref, "&;")
		if end < 0 {
			return out.String()
		}
		ref = ref[end:]
	}
}

// Options are the settings a reference does not carry.
type Options struct {
	// PKCS11Module is the module used when a pkcs11: URI has no
	// module-path (aws_signing_helper's --pkcs11-lib). Default
	// p11-kit-proxy.so.
	PKCS11Module string
	// TPMDevice is the TPM to use: a character device or the unix socket
	// of swtpm (--server type=unixio). Default $TPM_DEVICE, then
	// /dev/tpmrm0, then /dev/tpm0.
	TPMDevice string
	// TPMKeyPassword is the authorization value of a TPM key.
	TPMKeyPassword string
}

// Option sets one of the Options. An empty value leaves the setting as it
// is, so callers can pass flag values straight through.
type Option func(*Options)

func set(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// WithPKCS11Module sets the default PKCS#11 module.
func WithPKCS11Module(path string) Option { return func(o *Options) { set(&o.PKCS11Module, path) } }

// WithTPMDevice sets the TPM device or swtpm socket.
func WithTPMDevice(path string) Option { return func(o *Options) { set(&o.TPMDevice, path) } }

// WithTPMKeyPassword sets the TPM key's authorization value.
func WithTPMKeyPassword(pw string) Option { return func(o *Options) { set(&o.TPMKeyPassword, pw) } }

func options(opts []Option) Options {
	var o Options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Open returns the signer a reference names. PKCS#11 sessions are kept
// open and shared in the process, so opening the same key again (as a
// credential source does after each renewal) costs no new login.
func Open(ctx context.Context, ref string, opts ...Option) (crypto.Signer, error) {
	o := options(opts)
	switch KindOf(ref) {
	case KindPKCS11:
		return openPKCS11(ctx, ref, o)
	case KindTPM:
		if h, ok := strings.CutPrefix(ref, "handle:"); ok {
			return openTPMHandle(ctx, h, o)
		}
		return openTSS2File(ctx, strings.TrimPrefix(ref, "tpm:"), o)
	}
	b, err := os.ReadFile(ref)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("key file %s does not exist", ref)
		}
		return nil, fmt.Errorf("read key: %w", err)
	}
	if isTSS2(b) {
		return parseTSS2(ctx, b, ref, o)
	}
	return Parse(b, ref)
}

// Parse decodes a PEM private key; name is used in errors.
func Parse(b []byte, name string) (crypto.Signer, error) {
	k, err := pemutil.ParseKey(b, pemutil.WithFilename(name))
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", name, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key %s: %T is not a private key", name, k)
	}
	return s, nil
}

// Encode returns the PKCS#8 PEM encoding of a software key.
func Encode(key crypto.Signer) ([]byte, error) {
	blk, err := pemutil.Serialize(key, pemutil.WithPKCS8(true))
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(blk), nil
}

// WriteFile stores a software key as PKCS#8 PEM with mode 0600, atomically.
func WriteFile(path string, key crypto.Signer) error {
	b, err := Encode(key)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o600)
}

// Pending is a key made by Create that is not committed yet. For a file
// key (PEM or TSS2) nothing is on disk until Save; a key in a PKCS#11
// token or at a TPM persistent handle exists in the device already, and
// Discard deletes it again. So a caller that saves only after the CA has
// issued, and discards otherwise, leaves nothing behind on a refusal.
type Pending struct {
	crypto.Signer
	// Ref is the reference that opens the key later.
	Ref string

	save    func() error
	discard func() error
	done    bool
}

// Save commits the key: writes the file (0600, atomically) if it has one.
func (p *Pending) Save() error {
	if p.done {
		return nil
	}
	p.done = true
	if p.save == nil {
		return nil
	}
	return p.save()
}

// Discard removes a key that exists in a device; for file keys it does
// nothing (nothing was written). It is a no-op after Save.
func (p *Pending) Discard() error {
	if p.done {
		return nil
	}
	p.done = true
	if p.discard == nil {
		return nil
	}
	return p.discard()
}

// ErrExists is returned by Create when the reference already holds a key.
var ErrExists = errors.New("key already exists")

// Create makes a new key of type t where ref says: in memory for a PEM
// file path (written by Save), in the PKCS#11 token, or in the TPM. It
// refuses to replace an existing key (ErrExists).
func Create(ctx context.Context, ref string, t KeyType, opts ...Option) (*Pending, error) {
	if t == "" {
		t = EC
	}
	if t.curve() == nil && t.rsaBits() == 0 {
		return nil, fmt.Errorf("unknown key type %q", t)
	}
	o := options(opts)
	switch KindOf(ref) {
	case KindPKCS11:
		return createPKCS11(ctx, ref, t, o)
	case KindTPM:
		if h, ok := strings.CutPrefix(ref, "handle:"); ok {
			return createTPMHandle(ctx, ref, h, t, o)
		}
		return createTSS2File(ctx, ref, strings.TrimPrefix(ref, "tpm:"), t, o)
	}
	if _, err := os.Stat(ref); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrExists, ref)
	}
	key, err := Generate(t)
	if err != nil {
		return nil, err
	}
	return &Pending{Signer: key, Ref: ref, save: func() error { return WriteFile(ref, key) }}, nil
}
