// Package ca is anchorage's issuing core. It applies the certificate
// profile (lifetime, key usage, EKU, names), signs with the issuing CA key
// through a crypto.Signer, and records every certificate in storage before
// handing it back; renewals extend a lineage in one transaction with their
// checks; revocations are committed before they are acknowledged, and the
// CRL follows from storage. It knows nothing about HTTP.
package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/anchorage-pki/anchorage/events"
	"github.com/anchorage-pki/anchorage/lint"
	"github.com/anchorage-pki/anchorage/storage"
)

// Store is what the Authority needs from storage.
type Store interface {
	PutCert(ctx context.Context, c *storage.Cert) error
	PutCertUsingToken(ctx context.Context, c *storage.Cert, jti string, keepUntil time.Time) error
	PutRenewal(ctx context.Context, pred string, succ *storage.Cert, now time.Time) error
	Cert(ctx context.Context, serial string) (*storage.Cert, error)
	RevokeSerial(ctx context.Context, serial string, reason int, at time.Time) (*storage.RevokeResult, error)
	RevokeSubject(ctx context.Context, subject string, reason int, at time.Time) (*storage.RevokeResult, error)
}

// Profile is the workload certificate profile.
type Profile struct {
	DefaultLifetime time.Duration
	MaxLifetime     time.Duration
	ServerAuth      bool
	CRLURL          string // CRL distribution point; empty = none
}

// Options configure New.
type Options struct {
	Issuer  *x509.Certificate // issuing CA certificate
	Signer  crypto.Signer     // its key
	Store   Store
	Profile Profile
	Logger  *slog.Logger
	Now     func() time.Time
	Meter   Meter       // may be nil
	Events  events.Sink // audit stream; may be nil
}

// Counts are the Authority's running totals since start, for /metrics.
type Counts struct {
	Issued  map[storage.Method]uint64
	Revoked uint64
	// Superseded counts renewals refused because the certificate had been
	// renewed already by another key: a possible stolen-certificate signal.
	Superseded uint64
}

// Authority issues, renews and revokes workload certificates.
type Authority struct {
	countMu sync.Mutex
	counts  Counts

	// renewing serialises renewals of one predecessor (striped by serial),
	// so parallel retries of one renewal wait for the first and get its
	// answer instead of each signing a certificate that then loses the
	// race. Storage's transaction stays what makes a renewal correct.
	renewing [64]sync.Mutex

	issuer  *x509.Certificate
	signer  crypto.Signer
	store   Store
	profile Profile
	log     *slog.Logger
	now     func() time.Time
	meter   Meter
	events  events.Sink

	// issuerName is issuer.Subject as crypto/x509 parses it from
	// issuer.RawSubject, for the certificates leafCert builds; with
	// issuerNameOK false (RawSubject unreadable) leafCert leaves the
	// building to a parse.
	issuerName   pkix.Name
	issuerNameOK bool
}

// Errors callers map to responses.
var (
	ErrBadCSR      = errors.New("bad certificate request")
	ErrUnknownCert = errors.New("certificate unknown to this CA")
	ErrRevoked     = errors.New("certificate is revoked")
	ErrExpired     = errors.New("certificate has expired")
	ErrNotFound    = errors.New("no matching certificate")
	// ErrSuperseded refuses a renewal of a certificate that was renewed
	// already (by a different key): only the newest certificate of a
	// lineage renews.
	ErrSuperseded = errors.New("certificate was renewed already; only its newest successor may renew")
)

// New checks the issuing CA and its key, lints the leaf profile with a
// throwaway key, and returns the Authority.
func New(o Options) (*Authority, error) {
	if o.Issuer == nil || o.Signer == nil || o.Store == nil {
		return nil, errors.New("ca: issuer, signer and store are required")
	}
	if !o.Issuer.IsCA || o.Issuer.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("ca: issuer certificate is not a CA with keyCertSign")
	}
	if !publicKeysEqual(o.Issuer.PublicKey, o.Signer.Public()) {
		return nil, errors.New("ca: issuing CA key does not match its certificate")
	}
	if o.Profile.DefaultLifetime <= 0 {
		o.Profile.DefaultLifetime = 24 * time.Hour
	}
	if o.Profile.MaxLifetime < o.Profile.DefaultLifetime {
		o.Profile.MaxLifetime = o.Profile.DefaultLifetime
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &Authority{issuer: o.Issuer, signer: o.Signer, store: o.Store,
		profile: o.Profile, log: o.Logger, now: o.Now, meter: o.Meter, events: o.Events, counts: Counts{Issued: map[storage.Method]uint64{}}}
	var rdn pkix.RDNSequence
	if rest, err := asn1.Unmarshal(o.Issuer.RawSubject, &rdn); err == nil && len(rest) == 0 {
		a.issuerName.FillFromRDNSequence(&rdn)
		a.issuerNameOK = true
	}
	if err := a.lintProfile(); err != nil {
		return nil, err
	}
	return a, nil
}

// Counts returns a copy of the running totals.
func (a *Authority) Counts() Counts {
	a.countMu.Lock()
	defer a.countMu.Unlock()
	c := Counts{Issued: make(map[storage.Method]uint64, len(a.counts.Issued)), Revoked: a.counts.Revoked, Superseded: a.counts.Superseded}
	for k, v := range a.counts.Issued {
		c.Issued[k] = v
	}
	return c
}

// Issuer returns the issuing CA certificate.
func (a *Authority) Issuer() *x509.Certificate { return a.issuer }

// Request asks for one certificate. Subject and Names are what the caller
// authorised (token grant, ACME order); the CSR only supplies the key and
// proves possession of it.
type Request struct {
	CSR      *x509.CertificateRequest
	Subject  string
	Names    Names
	Lifetime time.Duration // 0 = profile default
	Method   storage.Method
	TokenID  string // consumed atomically with storing the certificate
	// TokenKeepUntil is how long the consumed token id must be remembered:
	// as long as any verifier could still accept the token.
	TokenKeepUntil time.Time
	Order          string // ACME order the certificate finalizes
	ClientOnly     bool   // omit serverAuth even if the profile adds it
	// keyProven: possession of CSR.PublicKey was proven by other means
	// (the mTLS handshake with the certificate that holds it), so CSR
	// carries only the key and has no self-signature to check. Set only
	// by RenewSameKey, never from a caller's request.
	keyProven bool
}

// Issued is a signed, stored certificate.
type Issued struct {
	Cert   *x509.Certificate
	Chain  []*x509.Certificate // leaf, then the issuing CA
	Record *storage.Cert
}

// Issue signs and records a certificate that starts a lineage of its own.
func (a *Authority) Issue(ctx context.Context, r Request) (*Issued, error) {
	start := time.Now()
	iss, err := a.issue(ctx, r)
	e := events.Event{Event: events.Issue, Subject: r.Subject, TokenID: r.TokenID}
	if iss != nil {
		e.Serial, e.Lineage = iss.Record.Serial, iss.Record.LineageID()
	}
	a.observe(ctx, OpIssue, string(r.Method), start, err, e)
	return iss, err
}

func (a *Authority) issue(ctx context.Context, r Request) (*Issued, error) {
	iss, err := a.sign(r)
	if err != nil {
		return nil, err
	}
	if r.TokenID != "" {
		err = a.store.PutCertUsingToken(ctx, iss.Record, r.TokenID, r.TokenKeepUntil)
	} else {
		err = a.store.PutCert(ctx, iss.Record)
	}
	if err != nil {
		return nil, fmt.Errorf("ca: record certificate: %w", err)
	}
	a.issued(iss.Record)
	return iss, nil
}

// sign checks the request and signs its certificate; nothing is recorded.
func (a *Authority) sign(r Request) (*Issued, error) {
	if err := checkCSR(r.CSR, r.keyProven); err != nil {
		return nil, err
	}
	if err := CheckSubject(r.Subject); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	lifetime := r.Lifetime
	if lifetime <= 0 {
		lifetime = a.profile.DefaultLifetime
	}
	lifetime = min(lifetime, a.profile.MaxLifetime)
	now := a.now()
	tmpl, err := a.template(r.Subject, r.Names, r.CSR.PublicKey, now, lifetime, !r.ClientOnly && a.profile.ServerAuth)
	if err != nil {
		return nil, err
	}
	cert, err := a.createCertificate(tmpl, r.CSR.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("ca: sign certificate: %w", err)
	}
	rec := &storage.Cert{
		Serial: SerialHex(cert.SerialNumber), Subject: r.Subject, SANs: r.Names.Strings(),
		NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, IssuedAt: now,
		Method: r.Method, TokenID: r.TokenID, Order: r.Order, KeyID: KeyID(cert),
		Status: storage.StatusValid, DER: cert.Raw, Parsed: cert,
	}
	// The root stays out of the chain: relying parties hold it already.
	return &Issued{Cert: cert, Chain: []*x509.Certificate{cert, a.issuer}, Record: rec}, nil
}

func (a *Authority) issued(rec *storage.Cert) {
	a.countMu.Lock()
	a.counts.Issued[rec.Method]++
	a.countMu.Unlock()
	// One line per certificate: typed attributes, so the line costs no
	// boxing of its values (the text is what Info would write).
	if !a.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	a.log.LogAttrs(context.Background(), slog.LevelInfo, "certificate issued", slog.String("serial", rec.Serial),
		slog.String("subject", rec.Subject), slog.Any("sans", rec.SANs), slog.String("method", string(rec.Method)),
		slog.String("lineage", rec.Lineage), slog.String("renewed_from", rec.RenewedFrom),
		slog.String("not_after", rec.NotAfter.UTC().Format(time.RFC3339)))
}

// KeyID is the lowercase hex SHA-256 of a certificate's public key
// (SubjectPublicKeyInfo).
func KeyID(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

func csrKeyID(csr *x509.CertificateRequest) string {
	sum := sha256.Sum256(csr.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// Renew issues the successor of current, which the caller has proven
// possession of over mTLS: same subject and names, a fresh lifetime, the
// same lineage. Only the newest certificate of a lineage renews, and the
// check and the store of the successor are one transaction, which also
// refuses if anything in the lineage is revoked. A predecessor asking again
// with the key its successor already has gets that successor back: a
// renewal whose answer was lost stays retryable, so an agent never locks
// itself out. Asking with another key is refused (ErrSuperseded) and
// logged as a possible stolen certificate.
func (a *Authority) Renew(ctx context.Context, current *x509.Certificate, csr *x509.CertificateRequest) (*Issued, error) {
	return a.renewObserved(ctx, current, csr, false)
}

// RenewSameKey renews current keeping its key, with no CSR: the caller
// proved possession of that key in the mTLS handshake that presented
// current (step CLI's POST /renew). Every other rule is Renew's.
func (a *Authority) RenewSameKey(ctx context.Context, current *x509.Certificate) (*Issued, error) {
	csr := &x509.CertificateRequest{
		PublicKey:               current.PublicKey,
		PublicKeyAlgorithm:      current.PublicKeyAlgorithm,
		RawSubjectPublicKeyInfo: current.RawSubjectPublicKeyInfo,
	}
	return a.renewObserved(ctx, current, csr, true)
}

// renewObserved is renew, counted and recorded as one event.
func (a *Authority) renewObserved(ctx context.Context, current *x509.Certificate, csr *x509.CertificateRequest, keyProven bool) (*Issued, error) {
	start := time.Now()
	iss, retried, err := a.renew(ctx, current, csr, keyProven)
	e := events.Event{Event: events.Renew, Serial: SerialHex(current.SerialNumber), Subject: current.Subject.CommonName}
	if iss != nil {
		e.Serial, e.Lineage, e.RenewedFrom = iss.Record.Serial, iss.Record.LineageID(), iss.Record.RenewedFrom
		if retried {
			e.Result = resultRetried
		}
	} else if rec, lerr := a.store.Cert(ctx, e.Serial); lerr == nil && bytes.Equal(rec.DER, current.Raw) {
		e.Lineage = rec.LineageID()
	}
	a.observe(ctx, OpRenew, MethodMTLS, start, err, e)
	return iss, err
}

func (a *Authority) renew(ctx context.Context, current *x509.Certificate, csr *x509.CertificateRequest, keyProven bool) (_ *Issued, retried bool, _ error) {
	serial := SerialHex(current.SerialNumber)
	stripe := &a.renewing[fnv32(serial)%uint32(len(a.renewing))]
	stripe.Lock()
	defer stripe.Unlock()
	rec, err := a.store.Cert(ctx, serial)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, ErrUnknownCert
	}
	if err != nil {
		return nil, false, fmt.Errorf("ca: look up certificate: %w", err)
	}
	if !bytes.Equal(rec.DER, current.Raw) {
		return nil, false, fmt.Errorf("%w: serial %s is recorded with a different certificate", ErrUnknownCert, serial)
	}
	if rec.Method == storage.MethodAdmin || rec.Method == storage.MethodTLS {
		return nil, false, fmt.Errorf("%w: %s certificates are not renewed over the API", ErrUnknownCert, rec.Method)
	}
	now := a.now()
	switch {
	case rec.Status == storage.StatusRevoked:
		return nil, false, ErrRevoked
	case rec.Expired(now):
		return nil, false, ErrExpired
	case rec.RenewedTo != "":
		if err := checkCSR(csr, keyProven); err != nil {
			return nil, false, err
		}
		next, err := a.store.Cert(ctx, rec.RenewedTo)
		if err != nil {
			return nil, false, fmt.Errorf("ca: look up successor: %w", err)
		}
		return a.renewedAlready(rec, next, csr, now)
	}
	names, err := ParseSANs(rec.SANs)
	if err != nil {
		return nil, false, fmt.Errorf("ca: stored names of %s: %w", rec.Serial, err)
	}
	iss, err := a.sign(Request{
		CSR: csr, Subject: rec.Subject, Names: names, Method: storage.MethodRenew,
		Lifetime:   rec.NotAfter.Sub(rec.NotBefore) - backdate,
		ClientOnly: !slices.Contains(current.ExtKeyUsage, x509.ExtKeyUsageServerAuth),
		keyProven:  keyProven,
	})
	if err != nil {
		return nil, false, err
	}
	err = a.store.PutRenewal(ctx, rec.Serial, iss.Record, now)
	var sup *storage.SupersededError
	switch {
	case errors.As(err, &sup):
		// Lost a race with another renewal of the same certificate. What
		// was just signed is recorded as revoked (superseded), never handed out.
		a.log.Info("renewal lost a race; its certificate is recorded as superseded", "serial", iss.Record.Serial, "renewed_from", rec.Serial)
		return a.renewedAlready(rec, sup.Successor, csr, now)
	case errors.Is(err, storage.ErrRevoked):
		return nil, false, ErrRevoked
	case errors.Is(err, storage.ErrExpired):
		return nil, false, ErrExpired
	case err != nil:
		return nil, false, fmt.Errorf("ca: record renewal: %w", err)
	}
	a.issued(iss.Record)
	return iss, false, nil
}

func fnv32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// renewedAlready answers a renewal of pred, which was renewed as next: the
// same key gets next back (the answer was lost), another key is refused.
func (a *Authority) renewedAlready(pred, next *storage.Cert, csr *x509.CertificateRequest, now time.Time) (_ *Issued, retried bool, _ error) {
	if next.KeyID == csrKeyID(csr) && next.RenewedTo == "" && next.Status == storage.StatusValid && !next.Expired(now) {
		cert, err := x509.ParseCertificate(next.DER)
		if err != nil {
			return nil, false, fmt.Errorf("ca: stored successor %s: %w", next.Serial, err)
		}
		a.log.Info("renewal retried; returning the successor already issued", "serial", next.Serial, "renewed_from", pred.Serial)
		return &Issued{Cert: cert, Chain: []*x509.Certificate{cert, a.issuer}, Record: next}, true, nil
	}
	if next.Status == storage.StatusRevoked {
		return nil, false, ErrRevoked
	}
	a.countMu.Lock()
	a.counts.Superseded++
	a.countMu.Unlock()
	a.log.Warn("renewal of a superseded certificate refused: another key holds its successor (possible stolen certificate)",
		"serial", pred.Serial, "successor", next.Serial, "subject", pred.Subject, "lineage", pred.LineageID())
	return nil, false, fmt.Errorf("%w: %s was renewed as %s", ErrSuperseded, pred.Serial, next.Serial)
}

// RevokeRequest selects what to revoke: one serial (and everything renewed
// from it) or every live certificate of a subject.
type RevokeRequest struct {
	Serial  string // hex, any case, optional colons
	Subject string
	Reason  int
	Method  string // who asks, for metrics and events: MethodAdmin (default) or MethodACME
}

// RevokeResult says what changed and the revocation sequence that covers
// it: the first CRL whose sequence reaches Seq carries every revocation.
type RevokeResult struct {
	Revoked        []*storage.Cert
	AlreadyRevoked []*storage.Cert
	Seq            uint64
}

// Revoke commits the revocation (fsync) and returns. Building the CRL and
// pushing it are storage's consumers' work (crl.Updater, anchorsync), so a
// revocation stands once this returns, whatever happens to them.
func (a *Authority) Revoke(ctx context.Context, r RevokeRequest) (*RevokeResult, error) {
	start := time.Now()
	if r.Method == "" {
		r.Method = MethodAdmin
	}
	res, err := a.revoke(ctx, r)
	if err != nil {
		a.observe(ctx, OpRevoke, r.Method, start, err, events.Event{Event: events.Revoke, Serial: r.Serial, Subject: r.Subject, Reason: ReasonName(r.Reason)})
		return nil, err
	}
	if a.meter != nil {
		a.meter.Observe(OpRevoke, r.Method, events.OK, time.Since(start))
	}
	// One line per certificate this commit revoked (a lineage revokes
	// together); none for what was revoked already.
	for _, c := range res.Revoked {
		events.Emit(ctx, a.events, events.Event{Event: events.Revoke, Serial: c.Serial, Subject: c.Subject, Lineage: c.LineageID(),
			Method: r.Method, Result: events.OK, Reason: ReasonName(r.Reason)})
	}
	return res, nil
}

func (a *Authority) revoke(ctx context.Context, r RevokeRequest) (*RevokeResult, error) {
	if (r.Serial == "") == (r.Subject == "") {
		return nil, errors.New("give exactly one of serial or subject")
	}
	if r.Reason < 0 || r.Reason > 10 || r.Reason == 7 || r.Reason == 8 {
		return nil, fmt.Errorf("reason code %d is not an RFC 5280 CRLReason", r.Reason)
	}
	at := a.now().Truncate(time.Second)
	var res *storage.RevokeResult
	var err error
	if r.Serial != "" {
		serial, perr := NormalizeSerial(r.Serial)
		if perr != nil {
			return nil, perr
		}
		res, err = a.store.RevokeSerial(ctx, serial, r.Reason, at)
	} else {
		res, err = a.store.RevokeSubject(ctx, r.Subject, r.Reason, at)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("ca: revoke: %w", err)
	}
	a.countMu.Lock()
	a.counts.Revoked += uint64(len(res.Changed))
	a.countMu.Unlock()
	for _, c := range res.Changed {
		a.log.Warn("certificate revoked", "serial", c.Serial, "subject", c.Subject, "reason", ReasonName(r.Reason),
			"lineage", c.LineageID(), "revoked_with", c.RevokedWith, "revocation_seq", res.Seq)
	}
	return &RevokeResult{Revoked: res.Changed, AlreadyRevoked: res.Already, Seq: res.Seq}, nil
}

// backdate shifts notBefore into the past so hosts with slightly slow
// clocks accept a fresh certificate.
const backdate = time.Minute

func (a *Authority) template(subject string, names Names, pub crypto.PublicKey, now time.Time, lifetime time.Duration, serverAuth bool) (*x509.Certificate, error) {
	serial, err := NewSerial()
	if err != nil {
		return nil, err
	}
	skid, err := subjectKeyID(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(a.issuer.NotAfter) {
		notAfter = a.issuer.NotAfter
	}
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if serverAuth {
		eku = append(eku, x509.ExtKeyUsageServerAuth)
	}
	t := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: subject},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		IsCA:                  false,
		SubjectKeyId:          skid,
		DNSNames:              names.DNS,
		IPAddresses:           names.IPs,
		URIs:                  names.URIs,
	}
	if a.profile.CRLURL != "" {
		t.CRLDistributionPoints = []string{a.profile.CRLURL}
	}
	return t, nil
}

// lintProfile signs a sample leaf with a throwaway copy of the issuing CA
// and runs zlint on it, so a profile that would produce bad certificates
// stops the CA at start rather than reaching a workload.
func (a *Authority) lintProfile() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	fakeIssuer := *a.issuer
	fakeIssuer.PublicKey = key.Public()
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	names, _ := ParseSANs([]string{"DNS:sample.anchorage.example.com"})
	t, err := a.template("sample-workload", names, leafKey.Public(), a.now(), a.profile.DefaultLifetime, a.profile.ServerAuth)
	if err != nil {
		return err
	}
	t.AuthorityKeyId = a.issuer.SubjectKeyId
	// Lint what this CA's key will be signed through: the TBS encoder of
	// createCertificate for an in-memory ECDSA key, crypto/x509 otherwise.
	der, fast := []byte(nil), false
	if _, ok := a.signer.(*ecdsa.PrivateKey); ok {
		var s *signed
		if s, fast = signFast(t, &fakeIssuer, leafKey.Public(), key); fast {
			der = s.der
		}
	}
	if !fast {
		if der, err = x509.CreateCertificate(rand.Reader, t, &fakeIssuer, leafKey.Public(), key); err != nil {
			return fmt.Errorf("ca: lint sample: %w", err)
		}
	}
	if err := lint.Certificate(der); err != nil {
		return fmt.Errorf("ca: leaf profile does not pass zlint: %w", err)
	}
	return nil
}

// CheckCSR verifies the request's self-signature and that its key is one
// the CA accepts: ECDSA P-256/P-384 or RSA 2048–4096.
func CheckCSR(csr *x509.CertificateRequest) error { return checkCSR(csr, false) }

// checkCSR is CheckCSR, without the self-signature when keyProven.
func checkCSR(csr *x509.CertificateRequest, keyProven bool) error {
	if csr == nil {
		return fmt.Errorf("%w: missing", ErrBadCSR)
	}
	if !keyProven {
		if err := csr.CheckSignature(); err != nil {
			return fmt.Errorf("%w: signature does not verify: %v", ErrBadCSR, err)
		}
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("%w: ECDSA curve %s not accepted (use P-256 or P-384)", ErrBadCSR, k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 4096 {
			return fmt.Errorf("%w: RSA key of %d bits not accepted (use 2048 to 4096)", ErrBadCSR, n)
		}
	default:
		return fmt.Errorf("%w: key type %T not accepted (use ECDSA or RSA)", ErrBadCSR, csr.PublicKey)
	}
	return nil
}

// NewSerial returns a positive 20-octet serial, as RFC 5280 §4.1.2.2
// allows: 8 octets of issue time (Unix nanoseconds, big endian, kept
// strictly increasing within the process) and then 96 bits from
// crypto/rand (the CA/Browser Forum asks for at least 64). The random part
// makes serials unguessable and unique across CAs; the time part makes
// each new serial sort after the ones before it, so the storage B-trees
// keyed by serial grow at their end and fill their pages instead of
// splitting them at random (a file about half the size).
func NewSerial() (*big.Int, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b[8:]); err != nil {
		return nil, fmt.Errorf("ca: serial: %w", err)
	}
	binary.BigEndian.PutUint64(b, serialClock.next(time.Now()))
	// Positive, and the full 20 octets: true from 1972 to 2262; a clock
	// outside that gives up ordering, never validity.
	b[0] &= 0x7f
	if b[0] == 0 {
		b[0] = 1
	}
	return new(big.Int).SetBytes(b), nil
}

// serialClock hands out strictly increasing timestamps: two serials made
// in the same nanosecond, or across a clock step back, still sort in the
// order they were made.
var serialClock monotonic

type monotonic struct {
	mu   sync.Mutex
	last uint64
}

func (m *monotonic) next(now time.Time) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last = max(uint64(now.UnixNano()), m.last+1)
	return m.last
}

// SerialHex is the canonical text form of a serial: lowercase hex of its
// big-endian bytes, so always an even number of digits (the form Roles
// Anywhere uses for session names).
func SerialHex(n *big.Int) string { return hex.EncodeToString(n.Bytes()) }

// NormalizeSerial accepts hex with optional colons, any case, leading zeros.
func NormalizeSerial(s string) (string, error) {
	clean := make([]byte, 0, len(s))
	for _, r := range s {
		if r == ':' {
			continue
		}
		clean = append(clean, byte(r))
	}
	n, ok := new(big.Int).SetString(string(clean), 16)
	if !ok || n.Sign() <= 0 {
		return "", fmt.Errorf("serial %q is not a positive hex number", s)
	}
	return SerialHex(n), nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type eq interface{ Equal(crypto.PublicKey) bool }
	k, ok := a.(eq)
	return ok && k.Equal(b)
}
