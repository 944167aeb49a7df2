// Package anchorsync keeps every configured IAM Roles Anywhere trust anchor
// holding the CA's newest stored CRL. Each anchor gets one named CRL:
// imported once (enabled), then replaced with UpdateCrl. Bursts of
// revocations coalesce (only the newest CRL matters), control-plane calls
// are paced under the service's 1 request/s quota across all anchors,
// failures retry with backoff, and per-anchor status (CRL number pushed,
// when, last error) lives in storage, where revoke --wait and every replica
// read it, so a restarted CA neither re-imports duplicates nor forgets what
// it still owes an anchor.
//
// An anchor is never pushed a CRL numbered below the one it holds: before
// the first push of each run the pusher reads the anchor's CRL back
// (ListCrls, GetCrl), and if the anchor is ahead of the CA — a CA restored
// from an old backup, a second CA under the same name — it marks the anchor
// regressed and leaves it alone, because the push would un-revoke hosts.
package anchorsync

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ra "github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere/types"
	"github.com/aws/smithy-go"

	"github.com/anchorage-pki/anchorage/crl"
	"github.com/anchorage-pki/anchorage/events"
	"github.com/anchorage-pki/anchorage/storage"
)

// Anchor is one trust anchor to keep current.
type Anchor struct {
	ARN      string
	Region   string // default: the ARN's region
	Endpoint string // default: the AWS endpoint for the region
}

// API is the part of the Roles Anywhere control plane the pusher uses;
// *rolesanywhere.Client implements it.
type API interface {
	ImportCrl(ctx context.Context, in *ra.ImportCrlInput, optFns ...func(*ra.Options)) (*ra.ImportCrlOutput, error)
	UpdateCrl(ctx context.Context, in *ra.UpdateCrlInput, optFns ...func(*ra.Options)) (*ra.UpdateCrlOutput, error)
	ListCrls(ctx context.Context, in *ra.ListCrlsInput, optFns ...func(*ra.Options)) (*ra.ListCrlsOutput, error)
	EnableCrl(ctx context.Context, in *ra.EnableCrlInput, optFns ...func(*ra.Options)) (*ra.EnableCrlOutput, error)
	GetCrl(ctx context.Context, in *ra.GetCrlInput, optFns ...func(*ra.Options)) (*ra.GetCrlOutput, error)
}

// CRLSource gives the newest stored CRL.
type CRLSource interface {
	Current() *crl.CRL
}

// StatusStore persists per-anchor status, signals new CRLs, and takes
// back revocations an anchor enforces that the store has lost.
type StatusStore interface {
	PutAnchorStatus(ctx context.Context, s storage.AnchorStatus) error
	AnchorStatuses(ctx context.Context) (map[string]storage.AnchorStatus, error)
	Watch(t storage.Topic) (<-chan struct{}, func())
	Revocations(ctx context.Context, now time.Time) (storage.RevocationSet, error)
	RecoverRevocations(ctx context.Context, entries []storage.Revocation, maxLifetime time.Duration) (int, error)
}

// Options configure a Pusher.
type Options struct {
	Anchors  []Anchor
	CRLName  string // name of the CRL at each anchor
	Source   CRLSource
	Store    StatusStore
	Client   func(a Anchor) (API, error) // builds the control-plane client of an anchor
	Interval time.Duration               // minimum spacing of control-plane calls (default 1.1s)
	MaxRetry time.Duration               // backoff cap (default 30s)
	// Verify is how often every anchor's CRL is read back (GetCrl) even
	// when nothing changed (default 5m): a CRL disabled or deleted at the
	// anchor un-enforces every revocation, and must not go unnoticed
	// until the next revocation.
	Verify time.Duration
	// Issuer is the issuing CA: a CRL read back from an anchor counts as
	// ours only if it verifies against it.
	Issuer *x509.Certificate
	// MaxLifetime bounds any leaf's lifetime; a recovered revocation of an
	// unknown serial is kept that long past its revocation time.
	MaxLifetime time.Duration
	Logger      *slog.Logger
	Now         func() time.Time
	Meter       Meter       // push latency; may be nil
	Events      events.Sink // one event per push attempt recorded; may be nil
}

// Meter records each push's latency; package metrics implements it.
type Meter interface {
	ObservePush(anchor string, d time.Duration, err error)
}

// Pusher pushes CRLs to trust anchors.
type Pusher struct {
	o Options

	mu       sync.Mutex
	anchors  []Anchor
	clients  map[string]API
	status   map[string]storage.AnchorStatus
	verified map[string]bool                // anchor's held CRL read back this run
	held     map[string]map[string]struct{} // serials the anchor's CRL (ours) carried at read-back
	lastCall time.Time

	kick chan struct{}
}

// New loads persisted status and builds a client per anchor.
func New(ctx context.Context, o Options) (*Pusher, error) {
	if o.Interval <= 0 {
		o.Interval = 1100 * time.Millisecond
	}
	if o.MaxRetry <= 0 {
		o.MaxRetry = 30 * time.Second
	}
	if o.Verify <= 0 {
		o.Verify = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CRLName == "" {
		o.CRLName = "anchorage"
	}
	if o.MaxLifetime <= 0 {
		o.MaxLifetime = 7 * 24 * time.Hour
	}
	p := &Pusher{o: o, kick: make(chan struct{}, 1), held: map[string]map[string]struct{}{}}
	if err := p.SetAnchors(ctx, o.Anchors); err != nil {
		return nil, err
	}
	return p, nil
}

// SetAnchors replaces the configured anchors (a config reload) and asks
// for an immediate push; status of anchors that stay is kept.
func (p *Pusher) SetAnchors(ctx context.Context, anchors []Anchor) error {
	st, err := p.o.Store.AnchorStatuses(ctx)
	if err != nil {
		return fmt.Errorf("anchorsync: load status: %w", err)
	}
	clients := map[string]API{}
	status := map[string]storage.AnchorStatus{}
	for _, a := range anchors {
		c, err := p.o.Client(a)
		if err != nil {
			return fmt.Errorf("anchorsync: client for %s: %w", a.ARN, err)
		}
		clients[a.ARN] = c
		s := st[a.ARN]
		s.ARN = a.ARN
		status[a.ARN] = s
	}
	p.mu.Lock()
	p.anchors, p.clients, p.status = anchors, clients, status
	p.verified = map[string]bool{} // a reload re-reads what every anchor holds
	p.held = map[string]map[string]struct{}{}
	p.mu.Unlock()
	p.Kick()
	return nil
}

// Status returns the stored status of every configured anchor, sorted by
// ARN. It reads storage, the record every replica shares, not this
// process's memory.
func (p *Pusher) Status(ctx context.Context) ([]storage.AnchorStatus, error) {
	st, err := p.o.Store.AnchorStatuses(ctx)
	if err != nil {
		return nil, fmt.Errorf("anchorsync: load status: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]storage.AnchorStatus, 0, len(p.anchors))
	for _, a := range p.anchors {
		s := st[a.ARN]
		s.ARN = a.ARN
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ARN < out[j].ARN })
	return out, nil
}

// Kick asks for an immediate push attempt (anchors push, revoke).
func (p *Pusher) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Run pushes until ctx ends: at start, on every new CRL, on Kick, and on
// the retry timer while any anchor is behind.
func (p *Pusher) Run(ctx context.Context) {
	sub, stop := p.o.Store.Watch(storage.TopicCRL)
	defer stop()
	p.takeOver(ctx)
	verify := time.NewTicker(p.o.Verify)
	defer verify.Stop()
	backoff := time.Second
	for {
		behind := p.pushAll(ctx)
		var retry <-chan time.Time
		if behind {
			retry = time.After(backoff)
			backoff = min(backoff*2, p.o.MaxRetry)
		} else {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-sub:
		case <-p.kick:
			backoff = time.Second
		case <-retry:
		case <-verify.C:
			p.mu.Lock()
			p.verified = map[string]bool{} // read every anchor back again
			p.mu.Unlock()
		}
	}
}

// pushAll brings every anchor to the current CRL; it reports whether any
// anchor is still behind.
func (p *Pusher) pushAll(ctx context.Context) (behind bool) {
	p.mu.Lock()
	anchors := p.anchors
	p.mu.Unlock()
	for _, a := range anchors {
		c := p.o.Source.Current()
		if c == nil || ctx.Err() != nil {
			return c == nil
		}
		p.mu.Lock()
		st, configured := p.status[a.ARN]
		p.mu.Unlock()
		if !configured {
			continue // removed by a reload meanwhile
		}
		if st.Regressed && p.isVerified(a.ARN) {
			if c.Number <= st.HeldNumber {
				behind = true
				continue // never push below what the anchor holds
			}
			// Our numbers have passed the anchor's: read it back again, so
			// what it carries is recovered and the push that follows is
			// checked to carry it too.
			p.mu.Lock()
			delete(p.verified, a.ARN)
			p.mu.Unlock()
		}
		if st.CRLNumber > c.Number {
			p.regressed(ctx, a, c, st.CRLNumber, "the CA's status record says it pushed a newer CRL")
			behind = true
			continue
		}
		if !p.isVerified(a.ARN) {
			h, err := p.readBack(ctx, a, st.CRLID)
			if err != nil {
				p.record(ctx, a, c, "", fmt.Errorf("reading back the anchor's CRL: %w", err), isThrottle(err))
				behind = true
				continue
			}
			if h.foreign {
				// Not signed by this CA: it enforces nothing for our
				// certificates. Replace it with ours.
				p.o.Logger.Warn("CRL at the trust anchor is not this CA's; replacing it", "anchor", a.ARN, "crl_id", h.id, "held_crl_number", h.number)
				h.number = 0
			} else if len(h.entries) > 0 {
				if err := p.recover(ctx, a, h); err != nil {
					p.record(ctx, a, c, "", err, false)
					behind = true
					continue
				}
			}
			if h.number > c.Number {
				p.regressed(ctx, a, c, h.number, "the anchor holds a newer CRL than the CA")
				behind = true
				continue
			}
			p.mu.Lock()
			p.verified[a.ARN] = true
			p.held[a.ARN] = h.serials()
			prev := p.status[a.ARN]
			st = prev
			st.Regressed, st.HeldNumber, st.CRLID, st.LastError, st.Attempts = false, h.number, h.id, "", 0
			if h.number < st.CRLNumber || h.id == "" || h.number == c.Number && !h.same(c) {
				// Replaced, disabled, deleted or rewritten at the anchor:
				// what the status said is enforced is not. Push again.
				st.CRLNumber = min(h.number, st.CRLNumber)
				if h.id == "" || h.number == c.Number && !h.same(c) {
					st.CRLNumber = 0
				}
			}
			p.status[a.ARN] = st
			p.mu.Unlock()
			if st != prev {
				if prev.CRLNumber > st.CRLNumber {
					p.o.Logger.Warn("trust anchor does not enforce what the CA pushed; pushing again", "anchor", a.ARN,
						"pushed_crl_number", prev.CRLNumber, "held_crl_number", h.number, "crl_id", h.id)
				}
				if err := p.o.Store.PutAnchorStatus(ctx, st); err != nil {
					p.o.Logger.Error("saving anchor status", "anchor", a.ARN, "err", err)
				}
			}
		}
		if st.CRLNumber >= c.Number && st.CRLID != "" {
			continue
		}
		if len(c.PEM) > crl.MaxPEMSize {
			p.record(ctx, a, c, "", fmt.Errorf("CRL %d is %d bytes of PEM, over the Roles Anywhere limit of %d; not pushed", c.Number, len(c.PEM), crl.MaxPEMSize), false)
			behind = true
			continue
		}
		if missing := p.dropped(a.ARN, c); missing != "" {
			// Never replace a list with one that forgets a revocation the
			// anchor enforces: wait for the CRL that carries what was
			// recovered.
			p.record(ctx, a, c, "", fmt.Errorf("CRL %d lacks serial %s that the anchor's CRL carries; not pushed until a CRL carries it", c.Number, missing), false)
			behind = true
			continue
		}
		start := time.Now()
		id, err := p.push(ctx, a, st.CRLID, c)
		if p.o.Meter != nil {
			p.o.Meter.ObservePush(a.ARN, time.Since(start), err)
		}
		throttled := isThrottle(err)
		p.record(ctx, a, c, id, err, throttled)
		if err != nil {
			behind = true
		}
	}
	return behind
}

// takeOver starts a run from the stored status: with several replicas the
// one taking the push lease may have loaded its status long ago, while
// another replica pushed; pushing from that memory would record older
// numbers over newer ones. What each anchor holds is read back again too.
func (p *Pusher) takeOver(ctx context.Context) {
	st, err := p.o.Store.AnchorStatuses(ctx)
	if err != nil {
		p.o.Logger.Error("anchorsync: reloading anchor status at lease start; going on from memory", "err", err)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for arn := range p.status {
		if s, ok := st[arn]; ok {
			s.ARN = arn
			p.status[arn] = s
		}
	}
	p.verified = map[string]bool{}
	p.held = map[string]map[string]struct{}{}
}

func (p *Pusher) isVerified(arn string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.verified[arn]
}

// regressed marks an anchor that holds a CRL numbered above the CA's
// newest. Pushing would replace a list that may carry revocations this CA
// no longer knows of, so the pusher stops for that anchor and says so.
func (p *Pusher) regressed(ctx context.Context, a Anchor, c *crl.CRL, held uint64, why string) {
	p.mu.Lock()
	st, configured := p.status[a.ARN]
	if !configured {
		p.mu.Unlock()
		return
	}
	p.verified[a.ARN] = true
	st.Regressed, st.HeldNumber, st.LastTry = true, held, p.o.Now()
	st.LastError = fmt.Sprintf("regressed: %s (anchor holds CRL %d, the CA's newest is %d); not pushed — restore the CA's newest database or investigate a second CA", why, held, c.Number)
	p.status[a.ARN] = st
	p.mu.Unlock()
	p.o.Logger.Error("trust anchor holds a newer CRL than the CA; refusing to push an older one", "anchor", a.ARN,
		"held_crl_number", held, "crl_number", c.Number)
	if err := p.o.Store.PutAnchorStatus(ctx, st); err != nil {
		p.o.Logger.Error("saving anchor status", "anchor", a.ARN, "err", err)
	}
}

// heldCRL is what an anchor holds under our name, read back.
type heldCRL struct {
	id      string // "" if it holds none (or it was deleted)
	number  uint64
	foreign bool                 // not signed by this CA
	entries []storage.Revocation // its entries, when ours
	der     []byte
}

func (h *heldCRL) serials() map[string]struct{} {
	out := make(map[string]struct{}, len(h.entries))
	for _, e := range h.entries {
		out[e.Serial] = struct{}{}
	}
	return out
}

// same reports whether the anchor holds exactly c.
func (h *heldCRL) same(c *crl.CRL) bool { return bytes.Equal(h.der, c.DER) }

// readBack reads the CRL the anchor holds under our name: its number,
// whether this CA signed it, and its entries. A disabled CRL enforces
// nothing, so it is enabled again on the way.
func (p *Pusher) readBack(ctx context.Context, a Anchor, crlID string) (*heldCRL, error) {
	p.mu.Lock()
	api := p.clients[a.ARN]
	p.mu.Unlock()
	if crlID == "" {
		id, _, err := p.find(ctx, api, a)
		if err != nil || id == "" {
			return &heldCRL{}, err
		}
		crlID = id
	}
	out, err := paced(ctx, p, func() (*ra.GetCrlOutput, error) {
		return api.GetCrl(ctx, &ra.GetCrlInput{CrlId: aws.String(crlID)})
	})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return &heldCRL{}, nil // gone: the next push imports it again
	}
	if err != nil {
		return nil, fmt.Errorf("GetCrl: %w", err)
	}
	if out.Crl == nil || aws.ToString(out.Crl.TrustAnchorArn) != a.ARN {
		return &heldCRL{}, nil // not ours at this anchor: find or import ours
	}
	h := &heldCRL{id: crlID}
	if len(out.Crl.CrlData) > 0 {
		if err := h.parse(out.Crl.CrlData, p.o.Issuer); err != nil {
			return nil, fmt.Errorf("GetCrl %s: %w", crlID, err)
		}
	}
	if !aws.ToBool(out.Crl.Enabled) {
		// The CA owns this CRL: turn it back on, and say so loudly.
		p.o.Logger.Warn("CRL at the trust anchor was disabled; enabling it again", "anchor", a.ARN, "crl_id", crlID, "crl_number", h.number)
		if err := p.enable(ctx, api, crlID); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func (h *heldCRL) parse(data []byte, issuer *x509.Certificate) error {
	rl, der, err := crl.Parse(data)
	if err != nil {
		return err
	}
	if rl.Number != nil && rl.Number.IsUint64() {
		h.number = rl.Number.Uint64()
	}
	h.der = der
	if issuer == nil || !bytes.Equal(rl.RawIssuer, issuer.RawSubject) || rl.CheckSignatureFrom(issuer) != nil {
		h.foreign = true
		return nil
	}
	for _, e := range rl.RevokedCertificateEntries {
		h.entries = append(h.entries, storage.Revocation{Serial: fmt.Sprintf("%x", e.SerialNumber.Bytes()),
			RevokedAt: e.RevocationTime, Reason: e.ReasonCode})
	}
	return nil
}

// recover takes into storage the revocations the anchor's CRL (ours)
// carries and storage does not: the database is then older than what AWS
// enforces, and the next CRL must not forget them.
func (p *Pusher) recover(ctx context.Context, a Anchor, h *heldCRL) error {
	set, err := p.o.Store.Revocations(ctx, p.o.Now())
	if err != nil {
		return fmt.Errorf("reading revocations: %w", err)
	}
	have := make(map[string]struct{}, len(set.Entries))
	for _, e := range set.Entries {
		have[e.Serial] = struct{}{}
	}
	var missing []storage.Revocation
	for _, e := range h.entries {
		if _, ok := have[e.Serial]; !ok {
			missing = append(missing, e)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	n, err := p.o.Store.RecoverRevocations(ctx, missing, p.o.MaxLifetime)
	if err != nil {
		return err
	}
	if n > 0 {
		p.o.Logger.Error("trust anchor enforces revocations this CA's database did not have (restored from an older backup?); recovered them",
			"anchor", a.ARN, "held_crl_number", h.number, "recovered", n)
		p.mu.Lock()
		st := p.status[a.ARN]
		st.Recovered += n
		p.status[a.ARN] = st
		p.mu.Unlock()
		if err := p.o.Store.PutAnchorStatus(ctx, st); err != nil {
			p.o.Logger.Error("saving anchor status", "anchor", a.ARN, "err", err)
		}
	}
	return nil
}

// dropped returns a serial the anchor's CRL carried at read-back that c
// does not, if storage still counts it as revoked and unexpired; "" if c
// carries everything.
func (p *Pusher) dropped(arn string, c *crl.CRL) string {
	p.mu.Lock()
	held := p.held[arn]
	p.mu.Unlock()
	if len(held) == 0 {
		return ""
	}
	rl, err := x509.ParseRevocationList(c.DER)
	if err != nil {
		return "(unparseable CRL)"
	}
	in := make(map[string]struct{}, len(rl.RevokedCertificateEntries))
	for _, e := range rl.RevokedCertificateEntries {
		in[fmt.Sprintf("%x", e.SerialNumber.Bytes())] = struct{}{}
	}
	set, err := p.o.Store.Revocations(context.Background(), p.o.Now())
	if err != nil {
		return ""
	}
	for _, e := range set.Entries {
		if _, anchorHas := held[e.Serial]; anchorHas {
			if _, ok := in[e.Serial]; !ok {
				return e.Serial
			}
		}
	}
	return ""
}

func (p *Pusher) enable(ctx context.Context, api API, crlID string) error {
	_, err := paced(ctx, p, func() (*ra.EnableCrlOutput, error) {
		return api.EnableCrl(ctx, &ra.EnableCrlInput{CrlId: aws.String(crlID)})
	})
	if err != nil {
		return fmt.Errorf("EnableCrl: %w", err)
	}
	return nil
}

func (p *Pusher) record(ctx context.Context, a Anchor, c *crl.CRL, id string, err error, throttled bool) {
	p.mu.Lock()
	st, configured := p.status[a.ARN]
	if !configured {
		p.mu.Unlock()
		return
	}
	now := p.o.Now()
	st.LastTry = now
	if id != "" {
		st.CRLID = id
	}
	log := p.o.Logger.With("anchor", a.ARN, "crl_number", c.Number)
	if err != nil {
		st.LastError = err.Error()
		st.Attempts++
		if throttled {
			st.Throttled++
		}
		log.Warn("CRL push failed; will retry", "err", err, "attempts", st.Attempts)
	} else {
		st.CRLNumber = c.Number
		st.HeldNumber = c.Number
		st.PushedAt = now
		st.LastError = ""
		st.Attempts = 0
		st.Regressed = false
		log.Info("CRL pushed to trust anchor", "crl_id", st.CRLID)
	}
	p.status[a.ARN] = st
	p.mu.Unlock()
	if perr := p.o.Store.PutAnchorStatus(ctx, st); perr != nil {
		p.o.Logger.Error("saving anchor status", "anchor", a.ARN, "err", perr)
	}
	// After the status is stored: the event says what the record says.
	e := events.Event{Event: events.AnchorPush, Anchor: a.ARN, CRLNumber: c.Number, Actor: "anchorsync", Result: events.OK}
	if err != nil {
		e.Result, e.Error = events.Failed, err.Error()
		if throttled {
			e.Reason = "throttled"
		}
	}
	events.Emit(ctx, p.o.Events, e)
}

// push makes the anchor hold c and returns the CRL id at the anchor.
func (p *Pusher) push(ctx context.Context, a Anchor, crlID string, c *crl.CRL) (string, error) {
	p.mu.Lock()
	api := p.clients[a.ARN]
	p.mu.Unlock()
	if crlID == "" {
		// A crash between ImportCrl and saving its id must not import a
		// second copy: look for ours by name first.
		found, enabled, err := p.find(ctx, api, a)
		if err != nil {
			return "", err
		}
		crlID = found
		if crlID != "" && !enabled {
			if err := p.enable(ctx, api, crlID); err != nil {
				return crlID, err
			}
		}
	}
	if crlID != "" {
		out, err := paced(ctx, p, func() (*ra.UpdateCrlOutput, error) {
			return api.UpdateCrl(ctx, &ra.UpdateCrlInput{CrlId: aws.String(crlID), CrlData: c.PEM})
		})
		if err == nil {
			// Pushed is not enforced: only an enabled CRL counts.
			if out.Crl != nil && !aws.ToBool(out.Crl.Enabled) {
				p.o.Logger.Warn("CRL at the trust anchor is disabled; enabling it again", "anchor", a.ARN, "crl_id", crlID)
				if err := p.enable(ctx, api, crlID); err != nil {
					return crlID, err
				}
			}
			return crlID, nil
		}
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			return crlID, fmt.Errorf("UpdateCrl: %w", err)
		}
		p.o.Logger.Warn("CRL vanished at the trust anchor; importing it again", "anchor", a.ARN, "crl_id", crlID)
	}
	out, err := paced(ctx, p, func() (*ra.ImportCrlOutput, error) {
		return api.ImportCrl(ctx, &ra.ImportCrlInput{
			CrlData: c.PEM, Name: aws.String(p.o.CRLName), TrustAnchorArn: aws.String(a.ARN), Enabled: aws.Bool(true),
		})
	})
	if err != nil {
		return "", fmt.Errorf("ImportCrl: %w", err)
	}
	if out.Crl == nil || out.Crl.CrlId == nil {
		return "", errors.New("ImportCrl: response carries no crlId")
	}
	if !aws.ToBool(out.Crl.Enabled) {
		if err := p.enable(ctx, api, *out.Crl.CrlId); err != nil {
			return *out.Crl.CrlId, err
		}
	}
	return *out.Crl.CrlId, nil
}

func (p *Pusher) find(ctx context.Context, api API, a Anchor) (id string, enabled bool, err error) {
	var next *string
	for {
		out, err := paced(ctx, p, func() (*ra.ListCrlsOutput, error) {
			return api.ListCrls(ctx, &ra.ListCrlsInput{NextToken: next, PageSize: aws.Int32(50)})
		})
		if err != nil {
			return "", false, fmt.Errorf("ListCrls: %w", err)
		}
		for _, d := range out.Crls {
			if aws.ToString(d.TrustAnchorArn) == a.ARN && aws.ToString(d.Name) == p.o.CRLName {
				return aws.ToString(d.CrlId), aws.ToBool(d.Enabled), nil
			}
		}
		if out.NextToken == nil || *out.NextToken == "" {
			return "", false, nil
		}
		next = out.NextToken
	}
}

// pace spaces control-plane calls so all anchors together stay under the
// service quota. The spacing counts from the end of the previous call (see
// called): the service takes its token somewhere between a request leaving
// and its answer arriving, so spacing the starts alone lets a slow request
// followed by a prompt one land closer together than Interval at the
// service, and be throttled.
func (p *Pusher) pace(ctx context.Context) error {
	p.mu.Lock()
	wait := p.lastCall.Add(p.o.Interval).Sub(p.o.Now())
	if wait < 0 {
		wait = 0
	}
	p.lastCall = p.o.Now().Add(wait)
	p.mu.Unlock()
	if wait == 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// paced makes one control-plane call in its turn (pace), and starts the
// next call's wait from this one's end (called).
func paced[T any](ctx context.Context, p *Pusher, call func() (T, error)) (T, error) {
	if err := p.pace(ctx); err != nil {
		var zero T
		return zero, err
	}
	defer p.called()
	return call()
}

// called marks the end of a control-plane call paced by pace: the next
// call waits Interval from here.
func (p *Pusher) called() {
	p.mu.Lock()
	if now := p.o.Now(); now.After(p.lastCall) {
		p.lastCall = now
	}
	p.mu.Unlock()
}

func isThrottle(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		return code == "ThrottlingException" || code == "TooManyRequestsException" || strings.Contains(code, "Throttl")
	}
	return false
}

// ARNRegion returns the region field of an ARN.
func ARNRegion(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[3]
}

// SafeName maps s to the character set Roles Anywhere allows in resource
// names (letters, digits, space, '-', '_'), at most 255 characters.
func SafeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	out := b.String()
	if len(out) > 255 {
		out = out[:255]
	}
	return out
}
