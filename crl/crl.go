// Package crl builds, checks and publishes the issuing CA's certificate
// revocation list. A build reads the revocations of still-unexpired
// certificates from storage, signs them with a strictly increasing CRL
// number, parses the result back and checks it before anything sees it,
// persists it, and then hands it to subscribers (the HTTP endpoint,
// anchorsync). Re-signing happens after every revocation and on a timer.
package crl

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anchorage-pki/anchorage/storage"
)

// MaxPEMSize is the Roles Anywhere ImportCrl/UpdateCrl cap on crlData.
const MaxPEMSize = 300000

// WarnPEMSize is where the size warning starts.
const WarnPEMSize = MaxPEMSize * 8 / 10

// Store is what the publisher needs from storage.
type Store interface {
	Revoked(ctx context.Context, now time.Time) ([]storage.Revocation, error)
	CRL(ctx context.Context) (uint64, []byte, error)
	SaveCRL(ctx context.Context, number uint64, der []byte) error
}

// CRL is one published list.
type CRL struct {
	Number     uint64
	DER        []byte
	PEM        []byte
	ThisUpdate time.Time
	NextUpdate time.Time
	Entries    int
}

// NearCap reports whether the PEM is close to the Roles Anywhere import cap.
func (c *CRL) NearCap() bool { return len(c.PEM) >= WarnPEMSize }

// Options configure a Publisher.
type Options struct {
	Issuer     *x509.Certificate
	Signer     crypto.Signer
	Store      Store
	NextUpdate time.Duration // validity of each CRL (default 24h)
	Resign     time.Duration // timer interval (default 6h)
	Logger     *slog.Logger
	Now        func() time.Time
	File       string // where each saved CRL is also written (WriteFile); "" for none
}

// Publisher owns the current CRL.
type Publisher struct {
	o Options

	requested atomic.Uint64 // bumped by every Update call
	mu        sync.Mutex    // serialises builds
	built     uint64        // value of requested the last build started from
	current   atomic.Pointer[CRL]

	subMu sync.Mutex
	subs  []chan struct{}
}

// New loads the last saved CRL (if any) and returns the publisher. Call
// Update once at start to make sure a fresh CRL exists.
func New(ctx context.Context, o Options) (*Publisher, error) {
	if o.NextUpdate <= 0 {
		o.NextUpdate = 24 * time.Hour
	}
	if o.Resign <= 0 {
		o.Resign = 6 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	p := &Publisher{o: o}
	n, der, err := o.Store.CRL(ctx)
	if err != nil {
		return nil, fmt.Errorf("crl: load: %w", err)
	}
	if der != nil {
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, fmt.Errorf("crl: stored CRL %d does not parse: %w", n, err)
		}
		p.current.Store(&CRL{Number: n, DER: der, PEM: encodePEM(der), ThisUpdate: rl.ThisUpdate,
			NextUpdate: rl.NextUpdate, Entries: len(rl.RevokedCertificateEntries)})
	}
	return p, nil
}

// Current returns the newest published CRL, or nil before the first build.
func (p *Publisher) Current() *CRL { return p.current.Load() }

// Subscribe returns a channel that receives a signal after each new CRL.
// Signals coalesce: a slow reader sees one signal for a burst and reads
// Current() for the newest list.
func (p *Publisher) Subscribe() <-chan struct{} {
	ch := make(chan struct{}, 1)
	p.subMu.Lock()
	p.subs = append(p.subs, ch)
	p.subMu.Unlock()
	return ch
}

// Update builds, checks, saves and publishes a new CRL that includes every
// revocation committed before the call, and returns its number. Concurrent
// callers share builds: a build that started after a caller's revocation
// was committed serves that caller too.
func (p *Publisher) Update(ctx context.Context) (uint64, error) {
	mine := p.requested.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.built >= mine {
		return p.current.Load().Number, nil
	}
	startedAt := p.requested.Load()
	c, err := p.build(ctx)
	if err != nil {
		return 0, err
	}
	p.built = startedAt
	p.current.Store(c)
	p.notify()
	log := p.o.Logger.With("crl_number", c.Number, "entries", c.Entries, "pem_bytes", len(c.PEM))
	if c.NearCap() {
		log.Warn("CRL is nearing the Roles Anywhere import cap", "cap", MaxPEMSize)
	} else {
		log.Info("CRL published")
	}
	return c.Number, nil
}

func (p *Publisher) notify() {
	p.subMu.Lock()
	defer p.subMu.Unlock()
	for _, ch := range p.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Run re-signs the CRL every Resign interval, and sooner if the current one
// is closer to its nextUpdate than that, until ctx ends.
func (p *Publisher) Run(ctx context.Context) {
	for {
		wait := p.o.Resign
		if c := p.Current(); c != nil {
			due := c.ThisUpdate.Add(p.o.Resign)
			wait = max(due.Sub(p.o.Now()), 0)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if _, err := p.Update(ctx); err != nil && ctx.Err() == nil {
			p.o.Logger.Error("scheduled CRL re-sign failed; retrying in a minute", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Minute):
			}
		}
	}
}

func (p *Publisher) build(ctx context.Context) (*CRL, error) {
	now := p.o.Now().Truncate(time.Second)
	prev, _, err := p.o.Store.CRL(ctx)
	if err != nil {
		return nil, fmt.Errorf("crl: read number: %w", err)
	}
	revs, err := p.o.Store.Revoked(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("crl: read revocations: %w", err)
	}
	number := prev + 1
	der, err := Build(p.o.Issuer, p.o.Signer, number, revs, now, p.o.NextUpdate)
	if err != nil {
		return nil, err
	}
	rl, err := Check(der, p.o.Issuer, prev, now, len(revs))
	if err != nil {
		return nil, err
	}
	if err := p.o.Store.SaveCRL(ctx, number, der); err != nil {
		return nil, fmt.Errorf("crl: save %d: %w", number, err)
	}
	p.writeFile(number, der) // after the database has it, before any anchor sees it (file.go)
	return &CRL{Number: number, DER: der, PEM: encodePEM(der), ThisUpdate: rl.ThisUpdate,
		NextUpdate: rl.NextUpdate, Entries: len(revs)}, nil
}

// Build signs a CRL over revs. Revocation times later than thisUpdate are
// clamped to it (a clock step must not produce an invalid list).
func Build(issuer *x509.Certificate, signer crypto.Signer, number uint64, revs []storage.Revocation, now time.Time, validity time.Duration) ([]byte, error) {
	entries := make([]x509.RevocationListEntry, 0, len(revs))
	for _, r := range revs {
		serial, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return nil, fmt.Errorf("crl: stored serial %q is not hex", r.Serial)
		}
		at := r.RevokedAt.UTC()
		if at.After(now) {
			at = now
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: serial, RevocationTime: at, ReasonCode: r.Reason})
	}
	tmpl := &x509.RevocationList{
		Number:                    new(big.Int).SetUint64(number),
		ThisUpdate:                now.UTC(),
		NextUpdate:                now.Add(validity).UTC(),
		RevokedCertificateEntries: entries,
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer, signer)
	if err != nil {
		return nil, fmt.Errorf("crl: sign %d: %w", number, err)
	}
	return der, nil
}

// Check parses a built CRL back and verifies what a relying party will:
// signature by the issuer, issuer name, number above prev, nextUpdate in the
// future, the expected entry count and the size cap.
func Check(der []byte, issuer *x509.Certificate, prev uint64, now time.Time, wantEntries int) (*x509.RevocationList, error) {
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("crl: check: parse: %w", err)
	}
	if err := rl.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("crl: check: signature: %w", err)
	}
	if !bytes.Equal(rl.RawIssuer, issuer.RawSubject) {
		return nil, errors.New("crl: check: issuer name differs from the issuing CA subject")
	}
	if rl.Number == nil || !rl.Number.IsUint64() || rl.Number.Uint64() <= prev {
		return nil, fmt.Errorf("crl: check: number %v does not exceed previous %d", rl.Number, prev)
	}
	if !rl.NextUpdate.After(now) {
		return nil, errors.New("crl: check: nextUpdate is not in the future")
	}
	if len(rl.RevokedCertificateEntries) != wantEntries {
		return nil, fmt.Errorf("crl: check: %d entries, want %d", len(rl.RevokedCertificateEntries), wantEntries)
	}
	return rl, nil
}

func encodePEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}
