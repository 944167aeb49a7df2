package signer

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"go.step.sm/crypto/kms/apiv1"
	"go.step.sm/crypto/kms/pkcs11"
	"go.step.sm/crypto/kms/uri"
)

// defaultPKCS11Module is aws_signing_helper's default too.
const defaultPKCS11Module = "p11-kit-proxy.so"

// p11Token is one logged-in token: module, token selector and PIN.
type p11Token struct {
	kms    *pkcs11.PKCS11
	module string
	desc   string // token=… / serial=… / slot-id=…
}

// p11Tokens keeps one logged-in context per (module, token, PIN) for the
// life of the process: logging in again for every open would be slow, and
// PKCS#11 login state is per process anyway.
var p11Tokens = struct {
	sync.Mutex
	m map[string]*p11Token
}{m: map[string]*p11Token{}}

// p11Ref is a parsed pkcs11: reference.
type p11Ref struct {
	raw    string
	u      *uri.URI
	module string
	token  string // what selects the token, for messages
	pin    string
	hasPIN bool
}

func parsePKCS11(ref string, o Options) (*p11Ref, error) {
	u, err := uri.ParseWithScheme("pkcs11", ref)
	if err != nil {
		// The parser's error quotes the raw URI, PIN and all: say what
		// to fix without it.
		return nil, fmt.Errorf("PKCS#11 URI %q does not parse: check its %%XX escapes (RFC 7512)", Redact(ref))
	}
	r := &p11Ref{raw: ref, u: u}
	r.module = u.Get("module-path")
	if r.module == "" {
		r.module = o.PKCS11Module
	}
	if r.module == "" {
		r.module = defaultPKCS11Module
	}
	if strings.ContainsRune(r.module, filepath.Separator) {
		if _, err := os.Stat(r.module); err != nil {
			return nil, fmt.Errorf("PKCS#11 module %s not found (set module-path= in the URI or --pkcs11-lib)", r.module)
		}
	}
	var sel []string
	for _, k := range []string{"token", "serial", "slot-id"} {
		if v := u.Get(k); v != "" {
			sel = append(sel, k+"="+v)
		}
	}
	switch len(sel) {
	case 0:
		return nil, fmt.Errorf("PKCS#11 URI %q names no token: add token=LABEL (or serial= or slot-id=)", Redact(ref))
	case 1:
		r.token = sel[0]
	default:
		return nil, fmt.Errorf("PKCS#11 URI %q: use only one of token=, serial= and slot-id=", Redact(ref))
	}
	switch {
	case u.Has("pin-value"):
		r.pin, r.hasPIN = u.Get("pin-value"), true
	case u.Has("pin-source"):
		src := strings.TrimPrefix(u.Get("pin-source"), "file://")
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("PKCS#11 PIN: cannot read pin-source %s: %v", src, errors.Unwrap(err))
		}
		r.pin, r.hasPIN = strings.TrimRight(string(b), "\r\n \t"), true
	}
	return r, nil
}

// object describes the key part of the URI for messages.
func (r *p11Ref) object() string {
	var parts []string
	if v := r.u.Get("object"); v != "" {
		parts = append(parts, "object="+v)
	}
	if v := r.u.Get("id"); v != "" {
		parts = append(parts, "id="+v)
	}
	return strings.Join(parts, ";")
}

// kmsURI is what go.step.sm/crypto/kms/pkcs11 needs to open the token.
func (r *p11Ref) kmsURI() string {
	k, val, _ := strings.Cut(r.token, "=")
	s := "pkcs11:module-path=" + escape(r.module) + ";" + k + "=" + escape(val)
	if r.hasPIN {
		s += "?pin-value=" + url.QueryEscape(r.pin)
	}
	return s
}

func escape(s string) string {
	return strings.NewReplacer("%", "%25", ";", "%3B", "?", "%3F", "#", "%23").Replace(s)
}

func (r *p11Ref) open(ctx context.Context) (*p11Token, error) {
	key := r.module + "\x00" + r.token + "\x00" + fmt.Sprint(r.hasPIN) + "\x00" + r.pin
	p11Tokens.Lock()
	defer p11Tokens.Unlock()
	if t, ok := p11Tokens.m[key]; ok {
		return t, nil
	}
	k, err := pkcs11.New(ctx, apiv1.Options{Type: apiv1.PKCS11, URI: r.kmsURI()})
	if err != nil {
		return nil, r.explain(err)
	}
	t := &p11Token{kms: k, module: r.module, desc: r.token}
	p11Tokens.m[key] = t
	return t, nil
}

// explain turns crypto11 and PKCS#11 errors into one line that says what
// to fix.
func (r *p11Ref) explain(err error) error {
	msg := err.Error()
	tok := fmt.Sprintf("PKCS#11 token %s (module %s)", r.token, r.module)
	switch {
	case strings.Contains(msg, "compiled without cgo"):
		return fmt.Errorf("PKCS#11 keys need a build with cgo: %v", err)
	case strings.Contains(msg, "failed to open module"), strings.Contains(msg, "failed to initialize module"):
		return fmt.Errorf("cannot load PKCS#11 module %s (set module-path= in the URI or --pkcs11-lib): %v", r.module, lastPart(msg))
	case strings.Contains(msg, "could not find PKCS#11 token"):
		return fmt.Errorf("no PKCS#11 token matches %s in module %s", r.token, r.module)
	case strings.Contains(msg, "CKR_PIN_INCORRECT"):
		return fmt.Errorf("%s: wrong PIN", tok)
	case strings.Contains(msg, "CKR_PIN_LOCKED"):
		return fmt.Errorf("%s: the PIN is locked (too many wrong PINs); reset it with the SO PIN", tok)
	case strings.Contains(msg, "CKR_PIN_LEN_RANGE"), strings.Contains(msg, "CKR_ARGUMENTS_BAD") && r.hasPIN && r.pin == "":
		return fmt.Errorf("%s: the PIN is empty or has the wrong length", tok)
	case strings.Contains(msg, "CKR_USER_PIN_NOT_INITIALIZED"):
		return fmt.Errorf("%s: the user PIN is not initialised", tok)
	case strings.Contains(msg, "CKR_KEY_TYPE_INCONSISTENT"), strings.Contains(msg, "CKR_DOMAIN_PARAMS_INVALID"),
		strings.Contains(msg, "CKR_MECHANISM_INVALID"), strings.Contains(msg, "CKR_KEY_SIZE_RANGE"):
		return fmt.Errorf("%s does not support this key type: %v", tok, lastPart(msg))
	}
	return fmt.Errorf("%s: %v", tok, err)
}

// lastPart drops the "x failed: y failed:" prefixes of wrapped errors.
func lastPart(msg string) string {
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

func openPKCS11(ctx context.Context, ref string, o Options) (crypto.Signer, error) {
	r, err := parsePKCS11(ref, o)
	if err != nil {
		return nil, err
	}
	if r.object() == "" {
		return nil, fmt.Errorf("PKCS#11 URI %q names no key: add object=LABEL and/or id=", Redact(ref))
	}
	t, err := r.open(ctx)
	if err != nil {
		return nil, err
	}
	s, err := t.kms.CreateSigner(&apiv1.CreateSignerRequest{SigningKey: r.keyURI()})
	if err != nil {
		if errors.Is(err, apiv1.NotFoundError{}) || strings.Contains(err.Error(), "not found") {
			hint := ""
			if !r.hasPIN {
				hint = " (no PIN given: private keys are visible only after login; add pin-value= or pin-source=)"
			}
			return nil, fmt.Errorf("no private key %s in PKCS#11 token %s%s", r.object(), r.token, hint)
		}
		return nil, r.explain(err)
	}
	return s, nil
}

// keyURI keeps only the object attributes.
func (r *p11Ref) keyURI() string {
	s := "pkcs11:"
	var parts []string
	if v := r.u.Get("id"); v != "" {
		parts = append(parts, "id="+idEscape(r.u.GetEncoded("id")))
	}
	if v := r.u.Get("object"); v != "" {
		parts = append(parts, "object="+escape(v))
	}
	return s + strings.Join(parts, ";")
}

func idEscape(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		fmt.Fprintf(&sb, "%%%02x", c)
	}
	return sb.String()
}

func createPKCS11(ctx context.Context, ref string, t KeyType, o Options) (*Pending, error) {
	r, err := parsePKCS11(ref, o)
	if err != nil {
		return nil, err
	}
	if r.u.Get("object") == "" {
		return nil, fmt.Errorf("PKCS#11 URI %q: name the new key with object=LABEL", Redact(ref))
	}
	if !r.hasPIN {
		return nil, fmt.Errorf("PKCS#11 URI %q: creating a key needs the user PIN (pin-value= or pin-source=)", Redact(ref))
	}
	if r.u.Get("id") == "" {
		// crypto11 wants both a label and an id; a random id keeps it
		// unique while the label stays what the user chose.
		id := make([]byte, 8)
		rand.Read(id)
		r.u.Set("id", string(id))
		ref = addPathAttr(ref, "id="+idEscape(id))
	}
	tok, err := r.open(ctx)
	if err != nil {
		return nil, err
	}
	req := &apiv1.CreateKeyRequest{Name: r.keyURI()}
	switch t {
	case EC, "":
		req.SignatureAlgorithm = apiv1.ECDSAWithSHA256
	case P384:
		req.SignatureAlgorithm = apiv1.ECDSAWithSHA384
	case P521:
		req.SignatureAlgorithm = apiv1.ECDSAWithSHA512
	default:
		req.SignatureAlgorithm, req.Bits = apiv1.SHA256WithRSA, t.rsaBits()
	}
	// Look first: CreateKey matches id AND label, so a key that shares
	// only the label would otherwise be duplicated.
	if _, err := tok.kms.CreateSigner(&apiv1.CreateSignerRequest{SigningKey: "pkcs11:object=" + escape(r.u.Get("object"))}); err == nil {
		return nil, fmt.Errorf("%w: PKCS#11 token %s already holds a key object=%s (choose another label, or delete it)", ErrExists, r.token, r.u.Get("object"))
	}
	if _, err := tok.kms.CreateKey(req); err != nil {
		var ae apiv1.AlreadyExistsError
		if errors.As(err, &ae) {
			return nil, fmt.Errorf("%w: PKCS#11 token %s already holds a key %s", ErrExists, r.token, r.object())
		}
		return nil, r.explain(err)
	}
	s, err := tok.kms.CreateSigner(&apiv1.CreateSignerRequest{SigningKey: r.keyURI()})
	if err != nil {
		return nil, r.explain(err)
	}
	keyURI := r.keyURI()
	return &Pending{Signer: s, Ref: ref, discard: func() error {
		d, ok := any(tok.kms).(interface{ DeleteKey(string) error })
		if !ok {
			return nil
		}
		if err := d.DeleteKey(keyURI); err != nil {
			return r.explain(err)
		}
		return nil
	}}, nil
}

// addPathAttr inserts attr into the path part of a pkcs11: URI.
func addPathAttr(ref, attr string) string {
	path, query, hasQuery := strings.Cut(ref, "?")
	if !strings.HasSuffix(path, ":") {
		path += ";"
	}
	path += attr
	if hasQuery {
		return path + "?" + query
	}
	return path
}
