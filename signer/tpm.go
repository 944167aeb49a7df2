package signer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/google/go-tpm/tpmutil"
	"go.step.sm/crypto/tpm/tss2"

	"github.com/anchorage-pki/anchorage/atomicfile"
)

// Hierarchy handles a TSS2 key's parent may name (then the primary key is
// re-created from the template below on every use).
const (
	handleOwner       = tpmutil.Handle(0x40000001)
	persistentFirst   = 0x81000000
	persistentLast    = 0x81FFFFFF
	tss2PEMType       = "TSS2 PRIVATE KEY"
	defaultTPMDevice  = "/dev/tpmrm0"
	fallbackTPMDevice = "/dev/tpm0"
)

// srkTemplate is the ECC P-256 storage primary key aws_signing_helper
// re-creates for a TSS2 key whose parent is a hierarchy, and that
// `tpm2_createprimary -C o -g sha256 -G ecc256:aes128cfb` makes: keys we
// create under it work with the helper and the OpenSSL tpm2 provider.
var srkTemplate = tss2.ECCSRKTemplate

// tpmDevice is one TPM shared by the process. The TPM runs one command at
// a time and swtpm serves one connection at a time, so every use holds mu.
type tpmDevice struct {
	path string
	mu   sync.Mutex
	rwc  io.ReadWriteCloser
}

var tpmDevices = struct {
	sync.Mutex
	m map[string]*tpmDevice
}{m: map[string]*tpmDevice{}}

// tpmPath picks the device: the option, $TPM_DEVICE, /dev/tpmrm0, /dev/tpm0.
func tpmPath(o Options) string {
	switch {
	case o.TPMDevice != "":
		return o.TPMDevice
	case os.Getenv("TPM_DEVICE") != "":
		return os.Getenv("TPM_DEVICE")
	}
	if _, err := os.Stat(defaultTPMDevice); err != nil {
		if _, err := os.Stat(fallbackTPMDevice); err == nil {
			return fallbackTPMDevice
		}
	}
	return defaultTPMDevice
}

func deviceFor(o Options) *tpmDevice {
	p := tpmPath(o)
	tpmDevices.Lock()
	defer tpmDevices.Unlock()
	d, ok := tpmDevices.m[p]
	if !ok {
		d = &tpmDevice{path: p}
		tpmDevices.m[p] = d
	}
	return d
}

// do runs f with the TPM open. A failed command drops the connection so
// the next use opens it afresh (the TPM may have restarted).
func (d *tpmDevice) do(f func(rw io.ReadWriter) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rwc == nil {
		if _, err := os.Stat(d.path); err != nil {
			return fmt.Errorf("TPM unreachable: %s does not exist (set TPM_DEVICE to the TPM device or swtpm socket)", d.path)
		}
		rwc, err := tpm2.OpenTPM(d.path)
		if err != nil {
			return fmt.Errorf("TPM unreachable at %s: %v", d.path, lastPart(err.Error()))
		}
		d.rwc = rwc
	}
	err := f(d.rwc)
	if err != nil && !isTPMResponse(err) {
		d.rwc.Close()
		d.rwc = nil
		return fmt.Errorf("TPM at %s: %w", d.path, err)
	}
	return err
}

// isTPMResponse tells an error the TPM answered from a broken channel.
func isTPMResponse(err error) bool {
	var e1 tpm2.Error
	var e2 tpm2.HandleError
	var e3 tpm2.ParameterError
	var e4 tpm2.SessionError
	var e5 tpm2.Warning
	return errors.As(err, &e1) || errors.As(err, &e2) || errors.As(err, &e3) || errors.As(err, &e4) || errors.As(err, &e5)
}

// tpmSigner signs with a key that is either persistent (handle) or loaded
// from a TSS2 blob under its parent for each signature.
type tpmSigner struct {
	dev      *tpmDevice
	pub      crypto.PublicKey
	handle   tpmutil.Handle // persistent key, or 0
	key      *tss2.TPMKey   // loadable key, or nil
	password string
}

func (s *tpmSigner) Public() crypto.PublicKey { return s.pub }

func (s *tpmSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	var scheme *tpm2.SigScheme
	switch pub := s.pub.(type) {
	case *ecdsa.PublicKey:
		// As the helper does: the digest is cut or padded to the curve
		// size and the TPM is told the matching hash.
		h, size := curveHash(pub.Curve)
		if h == 0 {
			return nil, fmt.Errorf("TPM: unsupported curve %s", pub.Curve.Params().Name)
		}
		digest = fitDigest(digest, size)
		scheme = &tpm2.SigScheme{Alg: tpm2.AlgECDSA, Hash: h}
	case *rsa.PublicKey:
		if opts == nil {
			return nil, errors.New("TPM: RSA signing needs a hash")
		}
		h, err := tpm2.HashToAlgorithm(opts.HashFunc())
		if err != nil {
			return nil, fmt.Errorf("TPM: %w", err)
		}
		scheme = &tpm2.SigScheme{Alg: tpm2.AlgRSASSA, Hash: h}
		if _, ok := opts.(*rsa.PSSOptions); ok {
			scheme.Alg = tpm2.AlgRSAPSS
		}
	default:
		return nil, fmt.Errorf("TPM: unsupported key %T", s.pub)
	}
	var sig *tpm2.Signature
	err := s.dev.do(func(rw io.ReadWriter) error {
		h := s.handle
		if s.key != nil {
			lh, flush, err := loadTSS2(rw, s.key)
			if err != nil {
				return err
			}
			defer flush()
			h = lh
		}
		var err error
		sig, err = tpm2.Sign(rw, h, s.password, digest, nil, scheme)
		return err
	})
	if err != nil {
		return nil, explainTPM(err, "sign")
	}
	switch {
	case sig.ECC != nil:
		return asn1.Marshal(struct{ R, S *big.Int }{sig.ECC.R, sig.ECC.S})
	case sig.RSA != nil:
		return sig.RSA.Signature, nil
	}
	return nil, fmt.Errorf("TPM returned an unexpected signature (%v)", sig.Alg)
}

func curveHash(c elliptic.Curve) (tpm2.Algorithm, int) {
	switch c {
	case elliptic.P256():
		return tpm2.AlgSHA256, 32
	case elliptic.P384():
		return tpm2.AlgSHA384, 48
	case elliptic.P521():
		return tpm2.AlgSHA512, 64
	}
	return 0, 0
}

func fitDigest(d []byte, size int) []byte {
	if len(d) >= size {
		return d[:size]
	}
	return append(make([]byte, size-len(d)), d...)
}

// loadTSS2 loads a wrapped key under its parent; flush unloads both.
func loadTSS2(rw io.ReadWriter, k *tss2.TPMKey) (tpmutil.Handle, func(), error) {
	parent := tpmutil.Handle(uint32(k.Parent))
	var flushParent func()
	if uint32(parent) < persistentFirst || uint32(parent) > persistentLast {
		ph, _, err := tpm2.CreatePrimary(rw, parent, tpm2.PCRSelection{}, "", "", srkTemplate)
		if err != nil {
			return 0, nil, fmt.Errorf("create the parent key under hierarchy 0x%x: %w", uint32(parent), err)
		}
		parent = ph
		flushParent = func() { tpm2.FlushContext(rw, ph) }
	}
	h, _, err := tpm2.Load(rw, parent, "", k.PublicKey[2:], k.PrivateKey[2:])
	if err != nil {
		if flushParent != nil {
			flushParent()
		}
		return 0, nil, fmt.Errorf("load the key (was it made by this TPM?): %w", err)
	}
	return h, func() {
		tpm2.FlushContext(rw, h)
		if flushParent != nil {
			flushParent()
		}
	}, nil
}

// explainTPM makes TPM response codes readable.
func explainTPM(err error, what string) error {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "TPM unreachable"):
		return err
	case strings.Contains(msg, "authorization HMAC check failed"), strings.Contains(msg, "authorization failure"):
		return fmt.Errorf("TPM %s: wrong TPM key password", what)
	case strings.Contains(msg, "lockout"):
		return fmt.Errorf("TPM %s: the TPM is in dictionary-attack lockout", what)
	}
	return fmt.Errorf("TPM %s: %w", what, err)
}

func parsePersistent(h string) (tpmutil.Handle, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(h), "0x"), 16, 32)
	if err != nil || v < persistentFirst || v > persistentLast {
		return 0, fmt.Errorf("TPM handle %q: want a persistent handle 0x81000000–0x81FFFFFF", h)
	}
	return tpmutil.Handle(v), nil
}

func openTPMHandle(_ context.Context, h string, o Options) (crypto.Signer, error) {
	handle, err := parsePersistent(h)
	if err != nil {
		return nil, err
	}
	d := deviceFor(o)
	var pub crypto.PublicKey
	err = d.do(func(rw io.ReadWriter) error {
		p, _, _, err := tpm2.ReadPublic(rw, handle)
		if err != nil {
			return err
		}
		if p.Attributes&tpm2.FlagSign == 0 {
			return fmt.Errorf("the key at 0x%x is not a signing key", uint32(handle))
		}
		pub, err = p.Key()
		return err
	})
	if err != nil {
		var he tpm2.HandleError
		if errors.As(err, &he) || strings.Contains(err.Error(), "handle") && !strings.HasPrefix(err.Error(), "TPM unreachable") {
			return nil, fmt.Errorf("no key at TPM handle 0x%x on %s", uint32(handle), d.path)
		}
		return nil, explainTPM(err, "open key")
	}
	return &tpmSigner{dev: d, pub: pub, handle: handle, password: o.TPMKeyPassword}, nil
}

func isTSS2(b []byte) bool { return bytes.Contains(b, []byte("-----BEGIN "+tss2PEMType+"-----")) }

func openTSS2File(ctx context.Context, path string, o Options) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("TPM key file %s does not exist", path)
		}
		return nil, fmt.Errorf("read TPM key: %w", err)
	}
	if !isTSS2(b) {
		return nil, fmt.Errorf("%s holds no %s", path, tss2PEMType)
	}
	return parseTSS2(ctx, b, path, o)
}

// parseTSS2 checks a TSS2 key and that the TPM can load it, so a key from
// another TPM fails at open rather than at the first signature.
func parseTSS2(_ context.Context, b []byte, name string, o Options) (crypto.Signer, error) {
	var blk *pem.Block
	for rest := b; ; {
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, fmt.Errorf("%s holds no %s", name, tss2PEMType)
		}
		if blk.Type == tss2PEMType {
			break
		}
	}
	k, err := tss2.ParsePrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("TPM key %s: %v", name, err)
	}
	switch {
	case len(k.Policy) > 0 || len(k.AuthPolicy) > 0 || len(k.Secret) > 0:
		return nil, fmt.Errorf("TPM key %s: keys with policies or imported secrets are not supported", name)
	case k.EmptyAuth && o.TPMKeyPassword != "":
		return nil, fmt.Errorf("TPM key %s has no password, but one was given", name)
	case !k.EmptyAuth && o.TPMKeyPassword == "":
		return nil, fmt.Errorf("TPM key %s needs its password (--tpm-key-password)", name)
	case len(k.PublicKey) < 2 || len(k.PrivateKey) < 2:
		return nil, fmt.Errorf("TPM key %s: truncated key blobs", name)
	}
	pub, err := k.Public()
	if err != nil {
		return nil, fmt.Errorf("TPM key %s: %v", name, err)
	}
	d := deviceFor(o)
	if err := d.do(func(rw io.ReadWriter) error {
		_, flush, err := loadTSS2(rw, k)
		if err == nil {
			flush()
		}
		return err
	}); err != nil {
		return nil, explainTPM(err, "key "+name)
	}
	return &tpmSigner{dev: d, pub: pub, key: k, password: o.TPMKeyPassword}, nil
}

// keyTemplate is an unrestricted signing key that never leaves the TPM
// (fixedTPM, fixedParent, sensitiveDataOrigin); the scheme is chosen per
// signature.
func keyTemplate(t KeyType) tpm2.Public {
	attrs := tpm2.FlagSign | tpm2.FlagFixedTPM | tpm2.FlagFixedParent | tpm2.FlagSensitiveDataOrigin | tpm2.FlagUserWithAuth | tpm2.FlagNoDA
	if c := t.curve(); c != nil {
		curve := map[elliptic.Curve]tpm2.EllipticCurve{elliptic.P256(): tpm2.CurveNISTP256, elliptic.P384(): tpm2.CurveNISTP384, elliptic.P521(): tpm2.CurveNISTP521}[c]
		return tpm2.Public{Type: tpm2.AlgECC, NameAlg: tpm2.AlgSHA256, Attributes: attrs,
			ECCParameters: &tpm2.ECCParams{Sign: &tpm2.SigScheme{Alg: tpm2.AlgNull}, CurveID: curve}}
	}
	return tpm2.Public{Type: tpm2.AlgRSA, NameAlg: tpm2.AlgSHA256, Attributes: attrs,
		RSAParameters: &tpm2.RSAParams{Sign: &tpm2.SigScheme{Alg: tpm2.AlgNull}, KeyBits: uint16(t.rsaBits())}}
}

// createBlob makes a key under the owner hierarchy's SRK.
func createBlob(d *tpmDevice, t KeyType) (priv, pub []byte, err error) {
	err = d.do(func(rw io.ReadWriter) error {
		ph, _, err := tpm2.CreatePrimary(rw, handleOwner, tpm2.PCRSelection{}, "", "", srkTemplate)
		if err != nil {
			return fmt.Errorf("create the storage key: %w", err)
		}
		defer tpm2.FlushContext(rw, ph)
		priv, pub, _, _, _, err = tpm2.CreateKey(rw, ph, tpm2.PCRSelection{}, "", "", keyTemplate(t))
		return err
	})
	if err != nil {
		msg := err.Error()
		if strings.Contains(msg, "curve not supported") || strings.Contains(msg, "key size") || strings.Contains(msg, "value is out of range") ||
			strings.Contains(msg, "RCCurve") || strings.Contains(msg, "RCKeySize") {
			return nil, nil, fmt.Errorf("this TPM cannot make %s keys: %v", t, err)
		}
		return nil, nil, explainTPM(err, "create key")
	}
	return priv, pub, nil
}

func createTSS2File(ctx context.Context, ref, path string, t KeyType, o Options) (*Pending, error) {
	if path == "" {
		return nil, errors.New(`TPM key reference "tpm:" needs a file path: tpm:/etc/anchorage/host.tss2`)
	}
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrExists, path)
	}
	if o.TPMKeyPassword != "" {
		return nil, errors.New("creating TPM keys with a password is not supported")
	}
	d := deviceFor(o)
	priv, pub, err := createBlob(d, t)
	if err != nil {
		return nil, err
	}
	k := tss2.New(pub, priv, tss2.WithParent(handleOwner))
	pemBytes, err := k.EncodeToMemory()
	if err != nil {
		return nil, fmt.Errorf("encode TPM key: %w", err)
	}
	s, err := parseTSS2(ctx, pemBytes, path, o)
	if err != nil {
		return nil, err
	}
	return &Pending{Signer: s, Ref: ref, save: func() error { return atomicfile.Write(path, pemBytes, 0o600) }}, nil
}

func createTPMHandle(ctx context.Context, ref, h string, t KeyType, o Options) (*Pending, error) {
	handle, err := parsePersistent(h)
	if err != nil {
		return nil, err
	}
	if o.TPMKeyPassword != "" {
		return nil, errors.New("creating TPM keys with a password is not supported")
	}
	d := deviceFor(o)
	inUse := false
	if err := d.do(func(rw io.ReadWriter) error {
		_, _, _, err := tpm2.ReadPublic(rw, handle)
		inUse = err == nil
		if err != nil && isTPMResponse(err) {
			return nil
		}
		return err
	}); err != nil {
		return nil, explainTPM(err, "create key")
	}
	if inUse {
		return nil, fmt.Errorf("%w: TPM handle 0x%x is in use (choose another, or evict it with tpm2_evictcontrol)", ErrExists, uint32(handle))
	}
	priv, pub, err := createBlob(d, t)
	if err != nil {
		return nil, err
	}
	err = d.do(func(rw io.ReadWriter) error {
		lh, flush, err := loadTSS2(rw, tss2.New(pub, priv, tss2.WithParent(handleOwner)))
		if err != nil {
			return err
		}
		defer flush()
		return tpm2.EvictControl(rw, "", tpm2.HandleOwner, lh, handle)
	})
	if err != nil {
		return nil, explainTPM(err, fmt.Sprintf("persist key at 0x%x", uint32(handle)))
	}
	s, err := openTPMHandle(ctx, h, o)
	if err != nil {
		return nil, err
	}
	return &Pending{Signer: s, Ref: ref, discard: func() error {
		return d.do(func(rw io.ReadWriter) error {
			return tpm2.EvictControl(rw, "", tpm2.HandleOwner, handle, handle)
		})
	}}, nil
}
