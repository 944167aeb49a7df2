// Package crl builds, checks and stores the issuing CA's certificate
// revocation list. Storage is the record of truth and the bus: the Updater
// builds whenever storage's revocation sequence is ahead of the newest
// stored CRL (and on a re-sign timer), from one consistent snapshot of the
// revocations of certificates not yet past expiry (plus
// storage.RevocationGrace, for a CA clock running ahead); it signs them with a
// strictly increasing CRL number (Build: hand-written DER, the bytes
// x509.CreateRevocationList would produce, memory proportional to the
// output), walks the result back and checks it (Check: signature,
// structure, number, dates, every entry against storage, zlint — whole up
// to LintFullMax entries, a same-code sample above — and the Roles
// Anywhere size cap) before storing it together with the sequence it
// covers. A CRL over the cap is stored whole all the same, never trimmed:
// anchorsync refuses to push it and /health and /metrics say so. Readers
// (the HTTP endpoint, anchorsync, revoke) read the newest stored CRL; a
// Watch signal only wakes them sooner.
package crl

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anchorage-pki/anchorage/storage"
)

// MaxPEMSize is the Roles Anywhere ImportCrl/UpdateCrl cap on crlData.
const MaxPEMSize = 300000

// WarnPEMSize is where the size warning starts.
const WarnPEMSize = MaxPEMSize * 8 / 10

// ErrTooLarge refuses a CRL whose PEM is over MaxPEMSize: no trust anchor
// would accept it.
var ErrTooLarge = errors.New("CRL is over the Roles Anywhere import cap")

// Store is what the updater needs from storage.
type Store interface {
	Revocations(ctx context.Context, now time.Time) (storage.RevocationSet, error)
	RevocationSeq(ctx context.Context) (uint64, error)
	CRL(ctx context.Context) (storage.CRL, error)
	CRLNumber(ctx context.Context) (number, seq uint64, err error)
	SaveCRL(ctx context.Context, c storage.CRL) error
	Watch(t storage.Topic) (<-chan struct{}, func())
}

// CRL is one stored list.
type CRL struct {
	Number     uint64
	Seq        uint64 // revocation sequence it covers
	DER        []byte
	PEM        []byte
	ThisUpdate time.Time
	NextUpdate time.Time
	Entries    int
	// Linted is how many entries zlint saw when this process built it
	// (Check); 0 for a CRL loaded from storage.
	Linted int
}

// NearCap reports whether the PEM is close to (or over) the Roles
// Anywhere import cap.
func (c *CRL) NearCap() bool { return len(c.PEM) >= WarnPEMSize }

// OverCap reports whether the PEM is over the Roles Anywhere import cap:
// no trust anchor will import this CRL.
func (c *CRL) OverCap() bool { return len(c.PEM) > MaxPEMSize }

// Options configure an Updater.
type Options struct {
	Issuer     *x509.Certificate
	Signer     crypto.Signer
	Store      Store
	NextUpdate time.Duration // validity of each CRL (default 24h)
	Resign     time.Duration // re-sign interval (default 6h)
	// Poll is how often Run looks at storage without a signal (default
	// 30s): a missed signal delays a CRL, it never loses one.
	Poll   time.Duration
	Logger *slog.Logger
	Now    func() time.Time
	File   string // where each stored CRL is also written (WriteFile); "" for none
}

// Updater builds CRLs from storage and reads back the newest stored one.
// In a single-host CA it runs in the CA process; with several replicas
// exactly one runs Run (it holds the "crl" lease) and every replica reads.
type Updater struct {
	o Options

	mu     sync.Mutex          // serialises builds
	cached atomic.Pointer[CRL] // last CRL read or built, by number

	fileMu        sync.Mutex // serialises writes of Options.File
	fileErr       error      // last write error, nil after a success
	fileErrNumber uint64     // CRL number fileErr is about
	fileNumber    uint64     // newest CRL number written to the file
}

// New loads the newest stored CRL (if any) and returns the updater. Call
// Sync once at start to make sure a current CRL exists.
func New(ctx context.Context, o Options) (*Updater, error) {
	if o.NextUpdate <= 0 {
		o.NextUpdate = 24 * time.Hour
	}
	if o.Resign <= 0 {
		o.Resign = 6 * time.Hour
	}
	if o.Poll <= 0 {
		o.Poll = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	u := &Updater{o: o}
	if _, err := u.load(ctx); err != nil {
		return nil, err
	}
	return u, nil
}

// load reads the newest stored CRL into the cache.
func (u *Updater) load(ctx context.Context) (*CRL, error) {
	st, err := u.o.Store.CRL(ctx)
	if err != nil {
		return nil, fmt.Errorf("crl: load: %w", err)
	}
	if st.DER == nil {
		return nil, nil
	}
	sum, err := summarize(st.DER)
	if err != nil {
		return nil, fmt.Errorf("crl: stored CRL %d does not parse: %w", st.Number, err)
	}
	c := &CRL{Number: st.Number, Seq: st.Seq, DER: st.DER, PEM: encodePEM(st.DER), ThisUpdate: sum.ThisUpdate,
		NextUpdate: sum.NextUpdate, Entries: sum.Entries}
	u.cached.Store(c)
	return c, nil
}

// Current returns the newest stored CRL, or nil before the first build.
// It asks storage for the newest number on every call (cheap) and reloads
// only when that changed, so a reader never serves a list older than the
// store's.
func (u *Updater) Current() *CRL {
	c := u.cached.Load()
	n, _, err := u.o.Store.CRLNumber(context.Background())
	if err != nil {
		u.o.Logger.Error("reading the newest CRL number", "err", err)
		return c
	}
	if c != nil && c.Number == n || c == nil && n == 0 {
		return c
	}
	fresh, err := u.load(context.Background())
	if err != nil {
		u.o.Logger.Error("reading the newest CRL", "err", err)
		return c
	}
	if fresh != nil {
		// Built by another replica: this replica's file follows too, so
		// its start-up check catches a database older than what it served.
		u.writeFile(fresh.Number, fresh.DER)
	}
	return fresh
}

// Sync builds a new CRL if storage holds revocations the newest stored CRL
// does not cover, or if that CRL is due for re-signing, and returns the
// newest CRL either way.
func (u *Updater) Sync(ctx context.Context) (*CRL, error) {
	return u.update(ctx, false)
}

// Update builds and stores a new CRL now (a re-sign), whatever is stored.
func (u *Updater) Update(ctx context.Context) (*CRL, error) {
	return u.update(ctx, true)
}

func (u *Updater) update(ctx context.Context, force bool) (*CRL, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !force {
		seq, err := u.o.Store.RevocationSeq(ctx)
		if err != nil {
			return nil, err
		}
		if c := u.Current(); c != nil && c.Seq >= seq && !u.due(c) {
			return c, nil
		}
	}
	c, err := u.build(ctx)
	if errors.Is(err, storage.ErrStaleCRL) {
		// Another replica stored a CRL with this number first (one
		// starting up builds outside the crl lease, or a lease changed
		// hands mid-build): the store has a newer list, which is what
		// this build was for; it is served, and the lease holder builds
		// again if revocations remain uncovered.
		fresh, lerr := u.load(ctx)
		if lerr != nil {
			return nil, lerr
		}
		if fresh != nil {
			u.writeFile(fresh.Number, fresh.DER)
			u.o.Logger.Info("CRL stored by another replica first; serving it", "crl_number", fresh.Number, "revocation_seq", fresh.Seq)
			return fresh, nil
		}
	}
	if err != nil {
		return nil, err
	}
	log := u.o.Logger.With("crl_number", c.Number, "revocation_seq", c.Seq, "entries", c.Entries, "pem_bytes", len(c.PEM))
	if c.Linted < c.Entries {
		log = log.With("linted_entries", c.Linted)
	}
	switch {
	case c.OverCap():
		log.Error("CRL is over the Roles Anywhere import cap: stored and served at /crl, but no trust anchor will import it, so anchors keep their last CRL and later revocations are not enforced there; move workloads to a second issuing CA (README: CRL size)",
			"cap", MaxPEMSize)
	case c.NearCap():
		log.Warn("CRL is nearing the Roles Anywhere import cap; plan a second issuing CA (README: CRL size)", "cap", MaxPEMSize)
	default:
		log.Info("CRL stored")
	}
	return c, nil
}

// due reports whether c should be re-signed: Resign after its thisUpdate,
// or sooner if its nextUpdate is closer than that.
func (u *Updater) due(c *CRL) bool {
	now := u.o.Now()
	return !now.Before(c.ThisUpdate.Add(u.o.Resign)) || !now.Before(c.NextUpdate.Add(-u.o.Resign))
}

// Run keeps the stored CRL current until ctx ends: it builds when storage's
// revocation sequence moves (signalled, or seen on the poll) and re-signs
// on the Resign timer. Failures are logged and retried.
func (u *Updater) Run(ctx context.Context) {
	wake, stop := u.o.Store.Watch(storage.TopicRevocation)
	defer stop()
	retry := time.Duration(0)
	for {
		c, err := u.Sync(ctx)
		u.retryFile()
		wait := u.o.Poll
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			retry = min(max(2*retry, time.Second), time.Minute)
			wait = retry
			u.o.Logger.Error("CRL build failed; retrying", "err", err, "retry_in", retry)
		} else {
			retry = 0
			if c != nil {
				wait = min(wait, max(c.ThisUpdate.Add(u.o.Resign).Sub(u.o.Now()), 0))
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// WaitFor returns the first stored CRL that covers revocation sequence seq,
// waiting until ctx ends.
func (u *Updater) WaitFor(ctx context.Context, seq uint64) (*CRL, error) {
	wake, stop := u.o.Store.Watch(storage.TopicCRL)
	defer stop()
	for {
		if c := u.Current(); c != nil && c.Seq >= seq {
			return c, nil
		}
		t := time.NewTimer(u.o.Poll / 30)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (u *Updater) build(ctx context.Context) (*CRL, error) {
	now := u.o.Now().Truncate(time.Second)
	prev, _, err := u.o.Store.CRLNumber(ctx)
	if err != nil {
		return nil, fmt.Errorf("crl: read number: %w", err)
	}
	set, err := u.o.Store.Revocations(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("crl: read revocations: %w", err)
	}
	number := prev + 1
	der, err := Build(u.o.Issuer, u.o.Signer, number, set.Entries, now, u.o.NextUpdate)
	if err != nil {
		return nil, err
	}
	chk, err := Check(der, u.o.Issuer, prev, now, set.Entries)
	if err != nil && !errors.Is(err, ErrTooLarge) {
		return nil, err
	}
	// Over the cap the CRL is still correct and complete: it is stored,
	// served at /crl and written to the file, so no revocation is dropped
	// anywhere it can be read. Only trust anchors cannot import it
	// (anchorsync refuses and marks each anchor behind); update logs it
	// as an error and /health and /metrics show it (OverCap).
	if err := u.o.Store.SaveCRL(ctx, storage.CRL{Number: number, Seq: set.Seq, DER: der}); err != nil {
		return nil, fmt.Errorf("crl: save %d: %w", number, err)
	}
	u.writeFile(number, der) // after the database has it; the pusher is already awake (file.go)
	c := &CRL{Number: number, Seq: set.Seq, DER: der, PEM: encodePEM(der), ThisUpdate: chk.ThisUpdate,
		NextUpdate: chk.NextUpdate, Entries: chk.Entries, Linted: chk.Linted}
	u.cached.Store(c)
	return c, nil
}

// Backdate shifts each CRL's thisUpdate into the past, as leaf notBefore
// is (ca), so a relying party whose clock is slightly behind the CA's does
// not see a CRL from the future. nextUpdate stays now + validity.
const Backdate = time.Minute

func encodePEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// Parse parses a CRL given as DER or as one PEM "X509 CRL" block (what
// Roles Anywhere's GetCrl answers) and returns it with its DER.
func Parse(data []byte) (*x509.RevocationList, []byte, error) {
	der := data
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")) {
		b, _ := pem.Decode(data)
		if b == nil || b.Type != "X509 CRL" {
			return nil, nil, errors.New("no X509 CRL PEM block")
		}
		der = b.Bytes
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, nil, fmt.Errorf("CRL does not parse: %w", err)
	}
	return rl, der, nil
}

// NumberOf returns the CRL number of a CRL in DER or PEM.
func NumberOf(data []byte) (uint64, error) {
	der := data
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")) {
		b, _ := pem.Decode(data)
		if b == nil || b.Type != "X509 CRL" {
			return 0, errors.New("no X509 CRL PEM block")
		}
		der = b.Bytes
	}
	// Not x509.ParseRevocationList: the file may hold a million entries.
	sum, err := summarize(der)
	if err != nil {
		return 0, fmt.Errorf("CRL does not parse: %w", err)
	}
	return sum.Number, nil
}
