package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Schema 3 keys the three per-certificate buckets by the serial's bytes
// (serialKey: its hex, as ca.SerialHex writes it, decoded), not its 40 hex
// characters: 20 bytes less in each of three keys, about an eighth of
// the DER of every certificate. They have names of their own, so a
// bucket never holds keys of both forms: migrate.go copies schema 2's
// into them and then deletes those. Hex serials and byte serials sort
// alike, so listings and cursors are as they were. Every other bucket
// keys by strings as before (revoked by the hex serial, as a CRL entry
// may name a serial this database never recorded).
var (
	bucketCerts     = []byte("certs3")      // serial bytes -> certificate record (record.go)
	bucketBySubject = []byte("by_subject3") // subject \x00 serial bytes -> nil
	bucketRevoked   = []byte("revoked")     // hex serial -> revocation JSON (CRL source)
	bucketTokens    = []byte("tokens")      // jti -> expiry (unix seconds, big endian)
	bucketMeta      = []byte("meta")        // crl_number, crl_der
	bucketAnchors   = []byte("anchors")     // trust anchor ARN -> AnchorStatus JSON
	bucketLineages  = []byte("lineages")    // lineage id -> lineageRecord JSON
	// bucketByState indexes certificates by state and expiry: class ('v'
	// not revoked, 'r' revoked), notAfter (stateTime), serial bytes.
	bucketByState = []byte("by_state3")

	// Schemas 1 and 2 keyed these by the hex serial, under these names;
	// only the migration (migrate.go) and checkSchema read them.
	bucketCertsV2     = []byte("certs")
	bucketBySubjectV2 = []byte("by_subject")
	bucketByStateV2   = []byte("by_state") // schema 2 only

	// buckets is every bucket an anchorage database has. Create makes them
	// all; Open adds the ones a database from an older release lacks.
	buckets = [][]byte{bucketCerts, bucketBySubject, bucketRevoked, bucketTokens, bucketMeta, bucketAnchors, bucketLineages, bucketByState}

	keyCRLNumber = []byte("crl_number")
	keyCRLDER    = []byte("crl_der")
	keyCRLSeq    = []byte("crl_seq") // revocation sequence the stored CRL covers
	keyRevSeq    = []byte("rev_seq") // revocation sequence: +1 per commit that revokes
)

// DB is the bbolt-backed store.
type DB struct {
	db     *bolt.DB
	group  *groupCommit
	watch  Signals
	leases leases
	nonces nonceMemory // ACME nonce key and used ids (nonce.go)
}

// newDB wraps a bolt file that Open or Create (open.go) has checked.
func newDB(db *bolt.DB) *DB {
	db.AllocSize = allocSize
	return &DB{db: db, group: &groupCommit{db: db}}
}

// Close releases the file.
func (d *DB) Close() error { return d.db.Close() }

// Watch returns a channel signalled after each commit that changes t, and
// a function that stops the signals.
func (d *DB) Watch(t Topic) (<-chan struct{}, func()) { return d.watch.Watch(t) }

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func putU64(b *bolt.Bucket, k []byte, v uint64) error {
	var x [8]byte
	binary.BigEndian.PutUint64(x[:], v)
	return b.Put(k, x[:])
}

// errSerial is a certificate serial schema 3 cannot key: not lowercase
// hex of whole bytes, the form ca.SerialHex gives every serial the CA
// makes.
var errSerial = errors.New("is not lowercase hex of whole bytes (as ca.SerialHex writes serials)")

// serialKey is serial's key in the certificate buckets: its bytes. ok is
// false for a serial that is not lowercase, even-length hex; no record has
// such a serial, as putCert refuses it.
func serialKey(serial string) (k []byte, ok bool) { return lowerHex(serial) }

// serialOf is the serial (lowercase hex) a certificate bucket key names.
func serialOf(k []byte) string { return hex.EncodeToString(k) }

func checkSerial(serial string) ([]byte, error) {
	k, ok := serialKey(serial)
	if !ok {
		return nil, fmt.Errorf("serial %q %w", serial, errSerial)
	}
	return k, nil
}

func subjectKey(subject string, serial []byte) []byte {
	k := make([]byte, 0, len(subject)+1+len(serial))
	k = append(k, subject...)
	k = append(k, 0)
	return append(k, serial...)
}

// subjectSerials yields the serial keys the subject index holds under
// subject, in serial order, after the key after (nil: from the first).
// The index cannot tell subject "a" from "a\x00…" (serial bytes may hold
// a NUL): callers check the record's subject, as Filter.Match does.
func subjectSerials(tx *bolt.Tx, subject string, after []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		prefix := append([]byte(subject), 0)
		cur := tx.Bucket(bucketBySubject).Cursor()
		k, _ := cur.Seek(prefix)
		if after != nil {
			start := subjectKey(subject, after)
			if k, _ = cur.Seek(start); bytes.Equal(k, start) {
				k, _ = cur.Next()
			}
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
			if !yield(k[len(prefix):]) {
				return
			}
		}
	}
}

// getCert reads the record of serial; ErrNotFound for a serial that no
// record can have, too.
func getCert(tx *bolt.Tx, serial string) (*Cert, error) {
	k, ok := serialKey(serial)
	if !ok {
		return nil, ErrNotFound
	}
	return getCertKey(tx, k)
}

func getCertKey(tx *bolt.Tx, k []byte) (*Cert, error) {
	v := tx.Bucket(bucketCerts).Get(k)
	if v == nil {
		return nil, ErrNotFound
	}
	return decodeCert(serialOf(k), v)
}

const (
	classValid   = 'v' // not revoked: valid or, past notAfter, expired
	classRevoked = 'r'
)

func stateClass(s Status) byte {
	if s == StatusRevoked {
		return classRevoked
	}
	return classValid
}

// stateTime is t in microseconds (PostgreSQL's precision, so that both
// backends order alike) with the sign bit flipped, so that byte order is
// time order.
func stateTime(t time.Time) uint64 { return uint64(t.UnixMicro()) ^ 1<<63 }

func stateKey(class byte, notAfter time.Time, serial []byte) []byte {
	k := make([]byte, 9, 9+len(serial))
	k[0] = class
	binary.BigEndian.PutUint64(k[1:], stateTime(notAfter))
	return append(k, serial...)
}

// putCert writes a certificate record and its index entries. prev is the
// status the stored record had (empty for a new one): the state index
// entry moves with the status. Serial, subject and notAfter never change.
// A serial that is not lowercase, even-length hex is refused (errSerial).
func putCert(tx *bolt.Tx, c *Cert, prev Status) error {
	key, err := checkSerial(c.Serial)
	if err != nil {
		return err
	}
	certs, bySubject, st := tx.Bucket(bucketCerts), tx.Bucket(bucketBySubject), tx.Bucket(bucketByState)
	// Mostly appended (new serials sort last, as ca.NewSerial makes them;
	// new certificates expire last): a page split at bbolt's default 50%
	// would stay half empty for good. certs keeps 5% of each page for
	// the records that grow after they are written (a renewal marks its
	// predecessor, a revocation its member), or each would split a full
	// page in two; by_state's 10% also covers lifetimes that differ.
	// by_subject stays at bbolt's default: it is written at each subject's
	// end, places all over the bucket, and full pages split there
	// would leave a trail of near-empty ones (38% filled against 76%).
	certs.FillPercent = 0.95
	if st != nil {
		st.FillPercent = 0.9
	}
	if err := certs.Put(key, encodeCert(c)); err != nil {
		return err
	}
	if err := bySubject.Put(subjectKey(c.Subject, key), nil); err != nil {
		return err
	}
	if prev != "" && stateClass(prev) != stateClass(c.Status) {
		if err := st.Delete(stateKey(stateClass(prev), c.NotAfter, key)); err != nil {
			return err
		}
	}
	return st.Put(stateKey(stateClass(c.Status), c.NotAfter, key), nil)
}

// insertCert stores a new certificate; a serial seen before is refused
// (serials are issue time plus 96 random bits: a repeat is a bug, not
// chance).
func insertCert(tx *bolt.Tx, c *Cert) error {
	key, err := checkSerial(c.Serial)
	if err != nil {
		return err
	}
	if tx.Bucket(bucketCerts).Get(key) != nil {
		return fmt.Errorf("serial %s is already recorded", c.Serial)
	}
	if c.Lineage == "" {
		c.Lineage = c.Serial
	}
	// An ACME order turns valid in the commit that stores its certificate,
	// so no crash leaves a certificate out behind a "processing" order.
	if c.Order != "" {
		if err := orderIssuedInTx(tx, c); err != nil {
			return err
		}
	}
	return putCert(tx, c, "")
}

// PutCert records an issued certificate durably. It starts a lineage of
// its own unless Lineage is set.
func (d *DB) PutCert(ctx context.Context, c *Cert) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.group.do(func(tx *bolt.Tx) error { return insertCert(tx, c) }); err != nil {
		return fmt.Errorf("storage: put cert %s: %w", c.Serial, err)
	}
	return nil
}

// PutCerts records many certificates in one commit (imports, tests).
func (d *DB) PutCerts(ctx context.Context, cs []*Cert) error {
	return d.group.update(func(tx *bolt.Tx) error {
		for _, c := range cs {
			if err := insertCert(tx, c); err != nil {
				return fmt.Errorf("storage: put cert %s: %w", c.Serial, err)
			}
		}
		return nil
	})
}

// PutCertUsingToken records the certificate and marks the enrollment token
// jti as used until keepUntil, in one commit: either both are durable or
// neither is. A jti seen before gives ErrTokenUsed and stores nothing.
// keepUntil must cover every moment a verifier could still accept the
// token (its expiry plus the verifier's clock leeway).
func (d *DB) PutCertUsingToken(ctx context.Context, c *Cert, jti string, keepUntil time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := d.group.do(func(tx *bolt.Tx) error {
		// Checked when the commit runs, not when the request arrived: a
		// token verified just before exp+Leeway whose commit lands after a
		// prune that forgot its id must not be accepted.
		if time.Now().After(keepUntil) {
			return ErrTokenExpired
		}
		tb := tx.Bucket(bucketTokens)
		if tb.Get([]byte(jti)) != nil {
			return ErrTokenUsed
		}
		if err := putU64(tb, []byte(jti), uint64(keepUntil.Unix())); err != nil {
			return err
		}
		return insertCert(tx, c)
	})
	if err == ErrTokenUsed || err == ErrTokenExpired {
		return err
	}
	if err != nil {
		return fmt.Errorf("storage: put cert %s with token: %w", c.Serial, err)
	}
	return nil
}

// TokenUsed reports whether jti has been consumed. It lets a verifier refuse
// a replay before doing any signing work; PutCertUsingToken remains the
// authoritative check.
func (d *DB) TokenUsed(ctx context.Context, jti string) (bool, error) {
	var used bool
	err := d.view(func(tx *bolt.Tx) error {
		used = tx.Bucket(bucketTokens).Get([]byte(jti)) != nil
		return nil
	})
	return used, err
}

// PruneTokens forgets used token ids whose keep-until time has passed: by
// then a verifier refuses the token on its expiry alone.
func (d *DB) PruneTokens(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := d.group.update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketTokens).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(v) == 8 && int64(u64(v)) < now.Unix() {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	return n, err
}

// Cert returns the record for serial (lowercase hex).
func (d *DB) Cert(ctx context.Context, serial string) (*Cert, error) {
	var c *Cert
	err := d.view(func(tx *bolt.Tx) (err error) { c, err = getCert(tx, serial); return err })
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ListCerts returns every certificate matching f (at most f.Limit), in
// the order Filter describes; see ListCertsPage.
func (d *DB) ListCerts(ctx context.Context, f Filter, now time.Time) ([]*Cert, error) {
	p, err := d.ListCertsPage(ctx, f, now)
	return p.Certs, err
}

// ListCertsPage returns one page of the certificates matching f, after
// f.Cursor, from one read transaction. It reads index keys and the
// records it returns (plus, with Subject and another condition, the
// subject's records it skips), never the whole bucket.
func (d *DB) ListCertsPage(ctx context.Context, f Filter, now time.Time) (CertPage, error) {
	var page CertPage
	after, resume, err := DecodeCursor(f.Cursor)
	if err != nil {
		return page, err
	}
	var afterKey []byte
	if resume {
		var ok bool
		if afterKey, ok = serialKey(after.Serial); !ok {
			return page, ErrBadCursor // EncodeCursor names a stored serial
		}
	}
	err = d.view(func(tx *bolt.Tx) error {
		page = CertPage{}
		certs := tx.Bucket(bucketCerts)
		// add returns true when the page is full.
		add := func(serial []byte) (bool, error) {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			v := certs.Get(serial)
			if v == nil {
				return false, nil
			}
			c, err := decodeCert(serialOf(serial), v)
			if err != nil {
				return false, err
			}
			if !f.Match(c, now) {
				return false, nil
			}
			page.Certs = append(page.Certs, c)
			if f.Limit > 0 && len(page.Certs) >= f.Limit {
				page.Next = EncodeCursor(c)
				return true, nil
			}
			return false, nil
		}
		switch {
		case f.Subject != "":
			for serial := range subjectSerials(tx, f.Subject, afterKey) {
				if done, err := add(serial); err != nil || done {
					return err
				}
			}
			return nil
		case f.ByExpiry():
			return d.listByState(tx, f, now, after.NotAfter, afterKey, add)
		}
		cur := certs.Cursor()
		k, _ := cur.First()
		if resume {
			if k, _ = cur.Seek(afterKey); bytes.Equal(k, afterKey) {
				k, _ = cur.Next()
			}
		}
		for ; k != nil; k, _ = cur.Next() {
			if done, err := add(k); err != nil || done {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return CertPage{}, err
	}
	return page, nil
}

// listByState walks the state index of the classes f selects, merged in
// (notAfter, serial) order, from the later of the cursor and the lower
// bound f sets on notAfter, until the upper bound. afterKey is the
// cursor's serial key (nil without a cursor), afterNotAfter its notAfter.
func (d *DB) listByState(tx *bolt.Tx, f Filter, now time.Time, afterNotAfter time.Time, afterKey []byte, add func(serial []byte) (bool, error)) error {
	classes := []byte{classValid, classRevoked}
	switch f.Status {
	case StatusValid:
		classes = []byte{classValid}
	case StatusRevoked:
		classes = []byte{classRevoked}
	case "":
	default:
		return nil // no such status: nothing matches
	}
	var lo []byte // position (notAfter, serial) to start at, inclusive
	if f.Live {
		lo = binary.BigEndian.AppendUint64(nil, stateTime(now))
	}
	var skip []byte // the cursor's own entry
	if afterKey != nil {
		skip = binary.BigEndian.AppendUint64(nil, stateTime(afterNotAfter))
		skip = append(skip, afterKey...)
		if bytes.Compare(skip, lo) > 0 {
			lo = skip
		}
	}
	hi := uint64(1<<64 - 1) // last notAfter (stateTime) to read, inclusive
	if f.Expired {
		hi = stateTime(now)
	}
	if !f.Before.IsZero() {
		hi = min(hi, stateTime(f.Before))
	}
	type head struct {
		cur   *bolt.Cursor
		class byte
		k     []byte // key without its class byte; nil when done
	}
	var heads []*head
	for _, cl := range classes {
		cur := tx.Bucket(bucketByState).Cursor()
		h := &head{cur: cur, class: cl}
		k, _ := cur.Seek(append([]byte{cl}, lo...))
		h.k = trimClass(k, cl)
		heads = append(heads, h)
	}
	for {
		var next *head
		for _, h := range heads {
			if h.k != nil && (next == nil || bytes.Compare(h.k, next.k) < 0) {
				next = h
			}
		}
		if next == nil || binary.BigEndian.Uint64(next.k) > hi {
			return nil
		}
		if skip == nil || !bytes.Equal(next.k, skip) {
			if done, err := add(next.k[8:]); err != nil || done {
				return err
			}
		}
		k, _ := next.cur.Next()
		next.k = trimClass(k, next.class)
	}
}

// trimClass is k without its class byte, or nil if k is not of class cl.
func trimClass(k []byte, cl byte) []byte {
	if len(k) < 9 || k[0] != cl {
		return nil
	}
	return k[1:]
}

// lineageRecord marks a lineage cut off: once any member is revoked, no
// member renews again.
type lineageRecord struct {
	RevokedAt time.Time `json:"revokedAt"`
	By        string    `json:"by"` // serial (or subject:CN) the revocation named
}

func lineageRevoked(tx *bolt.Tx, id string) bool {
	return tx.Bucket(bucketLineages).Get([]byte(id)) != nil
}

// PutRenewal stores succ as the renewal of the certificate pred, in one
// transaction that first checks, against the committed state, that pred is
// known, unexpired at now, not revoked, in a lineage with nothing revoked,
// and not renewed already. A refused renewal stores nothing, except when
// pred was renewed meanwhile (a *SupersededError): succ was signed, so it
// is recorded as revoked (superseded, off the CRL) — every signature the CA
// makes is in its inventory, and one that never reached its holder must
// not be valid.
func (d *DB) PutRenewal(ctx context.Context, pred string, succ *Cert, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var refusal error
	var lost bool
	var final Cert
	err := d.group.do(func(tx *bolt.Tx) error {
		// fn may run again after a group rollback: work on a fresh copy.
		refusal, lost, final = nil, false, *succ
		succ := &final
		p, err := getCert(tx, pred)
		if err != nil {
			return err
		}
		switch {
		case p.Status == StatusRevoked || lineageRevoked(tx, p.LineageID()):
			return ErrRevoked
		case p.Expired(now):
			return ErrExpired
		case p.RenewedTo != "":
			next, err := getCert(tx, p.RenewedTo)
			if err != nil {
				return fmt.Errorf("successor of %s: %w", pred, err)
			}
			refusal, lost = &SupersededError{Predecessor: pred, Successor: next}, true
			// succ was signed but is never handed out: it is recorded (the
			// inventory holds every signature) as revoked, but kept off the
			// CRL — no one holds it, and a flood of such races must not be
			// able to push the CRL past the Roles Anywhere cap.
			succ.Lineage, succ.RenewedFrom = p.LineageID(), pred
			succ.Status, succ.RevokedAt, succ.Reason, succ.Undelivered = StatusRevoked, now.Truncate(time.Second), ReasonSuperseded, true
			return insertCert(tx, succ)
		}
		succ.Lineage, succ.RenewedFrom = p.LineageID(), pred
		if err := insertCert(tx, succ); err != nil {
			return err
		}
		p.RenewedTo = succ.Serial
		return putCert(tx, p, p.Status)
	})
	if err == nil {
		*succ = final
	}
	switch {
	case err == nil && lost:
		return refusal
	case errors.Is(err, ErrRevoked), errors.Is(err, ErrExpired), errors.Is(err, ErrNotFound):
		return err
	case err != nil:
		return fmt.Errorf("storage: renew %s as %s: %w", pred, succ.Serial, err)
	}
	return nil
}

type revocationRecord struct {
	RevokedAt time.Time `json:"revokedAt"`
	Reason    int       `json:"reason"`
	NotAfter  time.Time `json:"notAfter"`
	Seq       uint64    `json:"seq,omitempty"`
}

// revokeInTx marks c revoked, advances the revocation sequence and, for a
// certificate of the issuing CA, adds it to the CRL source. It returns the
// new sequence.
func revokeInTx(tx *bolt.Tx, c *Cert, reason int, at time.Time, with string) (uint64, error) {
	prev := c.Status
	c.Status, c.RevokedAt, c.Reason, c.RevokedWith = StatusRevoked, at, reason, with
	if err := putCert(tx, c, prev); err != nil {
		return 0, err
	}
	m := tx.Bucket(bucketMeta)
	seq := u64(m.Get(keyRevSeq)) + 1
	if err := putU64(m, keyRevSeq, seq); err != nil {
		return 0, err
	}
	if !c.Method.OnCRL() {
		return seq, nil
	}
	v, err := json.Marshal(revocationRecord{RevokedAt: at, Reason: reason, NotAfter: c.NotAfter, Seq: seq})
	if err != nil {
		return 0, err
	}
	return seq, tx.Bucket(bucketRevoked).Put([]byte(c.Serial), v)
}

// revoke revokes the certificates pick selects and every unexpired member
// of their lineages, and cuts those lineages off, in one fsynced commit.
// Certificates revoked before are returned in Already, unchanged, so a
// repeated revoke is harmless.
func (d *DB) revoke(ctx context.Context, reason int, at time.Time, by string, pick func(tx *bolt.Tx) ([]*Cert, error)) (*RevokeResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var res *RevokeResult
	err := d.group.update(func(tx *bolt.Tx) error {
		res = &RevokeResult{}
		named, err := pick(tx)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		visit := func(c *Cert, with string) error {
			if seen[c.Serial] {
				return nil
			}
			seen[c.Serial] = true
			if c.Status == StatusRevoked {
				res.Already = append(res.Already, c)
				return nil
			}
			if _, err := revokeInTx(tx, c, reason, at, with); err != nil {
				return err
			}
			res.Changed = append(res.Changed, c)
			return nil
		}
		for _, c := range named {
			if err := visit(c, ""); err != nil {
				return err
			}
			// The whole lineage goes: its successors, or a stolen
			// certificate would live on in what it was renewed to, and its
			// unexpired predecessors, which usually hold the same key (a
			// renewal keeps the key unless rekeyed) — a responder revoking
			// the serial seen in CloudTrail must not leave its older
			// sibling able to assume the role.
			root := c
			if id := c.LineageID(); id != c.Serial {
				if root, err = getCert(tx, id); errors.Is(err, ErrNotFound) {
					root = c // an import without its first member
				} else if err != nil {
					return fmt.Errorf("lineage %s of %s: %w", id, c.Serial, err)
				}
			}
			for m := root; ; {
				if m.Serial != c.Serial && (!m.Expired(at) || m.Status == StatusRevoked) {
					if err := visit(m, c.Serial); err != nil {
						return err
					}
				}
				if m.RenewedTo == "" {
					break
				}
				next, err := getCert(tx, m.RenewedTo)
				if err != nil {
					return fmt.Errorf("successor %s of %s: %w", m.RenewedTo, m.Serial, err)
				}
				m = next
			}
			lin, err := json.Marshal(lineageRecord{RevokedAt: at, By: by})
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketLineages).Put([]byte(c.LineageID()), lin); err != nil {
				return err
			}
		}
		res.Seq = u64(tx.Bucket(bucketMeta).Get(keyRevSeq))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(res.Changed) > 0 {
		d.watch.Signal(TopicRevocation)
	}
	return res, nil
}

// RevokeSerial revokes one certificate and every unexpired member of its
// lineage (what it was renewed from and to). ErrNotFound if it was never
// issued.
func (d *DB) RevokeSerial(ctx context.Context, serial string, reason int, at time.Time) (*RevokeResult, error) {
	return d.revoke(ctx, reason, at, serial, func(tx *bolt.Tx) ([]*Cert, error) {
		c, err := getCert(tx, serial)
		if err != nil {
			return nil, err
		}
		return []*Cert{c}, nil
	})
}

// RevokeSubject revokes every unexpired certificate whose subject CN is
// subject, and so every lineage of that name. ErrNotFound if there is none.
func (d *DB) RevokeSubject(ctx context.Context, subject string, reason int, at time.Time) (*RevokeResult, error) {
	return d.revoke(ctx, reason, at, "subject:"+subject, func(tx *bolt.Tx) ([]*Cert, error) {
		var out []*Cert
		live := Filter{Subject: subject, Live: true}
		for serial := range subjectSerials(tx, subject, nil) {
			c, err := getCertKey(tx, serial)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if live.Match(c, at) {
				out = append(out, c)
			}
		}
		if len(out) == 0 {
			return nil, ErrNotFound
		}
		return out, nil
	})
}

// Revocations returns, from one consistent snapshot, the revocation
// sequence and the revocations of certificates whose notAfter is less than
// RevocationGrace before now: an expired certificate is invalid on its
// own, so CRLs need not carry it once it is safely past expiry.
func (d *DB) Revocations(ctx context.Context, now time.Time) (RevocationSet, error) {
	var out RevocationSet
	err := d.view(func(tx *bolt.Tx) error {
		out.Seq = u64(tx.Bucket(bucketMeta).Get(keyRevSeq))
		return tx.Bucket(bucketRevoked).ForEach(func(k, v []byte) error {
			var r revocationRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("revocation %s: %w", k, err)
			}
			if now.Before(r.NotAfter.Add(RevocationGrace)) {
				out.Entries = append(out.Entries, Revocation{Serial: string(k), RevokedAt: r.RevokedAt, Reason: r.Reason, NotAfter: r.NotAfter})
			}
			return nil
		})
	})
	return out, err
}

// RevocationSeq is the current revocation sequence.
func (d *DB) RevocationSeq(ctx context.Context) (uint64, error) {
	var seq uint64
	err := d.view(func(tx *bolt.Tx) error { seq = u64(tx.Bucket(bucketMeta).Get(keyRevSeq)); return nil })
	return seq, err
}

// PruneRevoked drops revocation entries of certificates that expired at
// least RevocationRetention before now: they left the CRL already, and the
// certificate records keep their history. It keeps CRL builds
// proportional to live revocations.
func (d *DB) PruneRevoked(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := d.group.update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRevoked).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var r revocationRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("revocation %s: %w", k, err)
			}
			if !now.Before(r.NotAfter.Add(RevocationRetention)) {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	return n, err
}

// CRL returns the newest stored CRL (zero Number and nil DER if none yet).
func (d *DB) CRL(ctx context.Context) (CRL, error) {
	var c CRL
	err := d.view(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		c.Number, c.Seq = u64(m.Get(keyCRLNumber)), u64(m.Get(keyCRLSeq))
		c.DER = bytes.Clone(m.Get(keyCRLDER))
		return nil
	})
	return c, err
}

// CRLNumber returns the newest stored CRL's number and covered sequence
// without copying its DER.
func (d *DB) CRLNumber(ctx context.Context) (number, seq uint64, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		number, seq = u64(m.Get(keyCRLNumber)), u64(m.Get(keyCRLSeq))
		return nil
	})
	return number, seq, err
}

// SaveCRL stores a newly built CRL. Its number must exceed the stored one
// (ErrStaleCRL otherwise), which keeps CRL numbers strictly increasing even
// if two builders race.
func (d *DB) SaveCRL(ctx context.Context, c CRL) error {
	err := d.group.update(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if u64(m.Get(keyCRLNumber)) >= c.Number {
			return ErrStaleCRL
		}
		if err := putU64(m, keyCRLNumber, c.Number); err != nil {
			return err
		}
		if err := putU64(m, keyCRLSeq, c.Seq); err != nil {
			return err
		}
		return m.Put(keyCRLDER, c.DER)
	})
	if err == nil {
		d.watch.Signal(TopicCRL)
	}
	return err
}

// PutAnchorStatus saves anchorsync's status for one trust anchor.
func (d *DB) PutAnchorStatus(ctx context.Context, s AnchorStatus) error {
	v, err := json.Marshal(s)
	if err != nil {
		return err
	}
	err = d.group.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAnchors).Put([]byte(s.ARN), v)
	})
	if err == nil {
		d.watch.Signal(TopicAnchors)
	}
	return err
}

// AnchorStatuses returns every saved trust anchor status, by ARN.
func (d *DB) AnchorStatuses(ctx context.Context) (map[string]AnchorStatus, error) {
	out := map[string]AnchorStatus{}
	err := d.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAnchors).ForEach(func(k, v []byte) error {
			var s AnchorStatus
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			out[string(k)] = s
			return nil
		})
	})
	return out, err
}

// RecoverRevocations adds to this database the revocations a trust anchor
// enforces that it does not have — entries of a CRL this CA signed, read
// back from the anchor. That happens only when the database is older than
// what AWS enforces (restored from a backup): without this, the next CRL
// would leave those certificates out and un-revoke them at AWS. A known
// certificate is revoked with its whole lineage; an unknown serial (issued
// after the backup) gets a CRL entry kept until revokedAt + maxLifetime,
// by when any certificate issued before its revocation has expired. It
// returns how many serials it added; the revocation sequence advances, so
// the CRL updater builds a list that carries them.
func (d *DB) RecoverRevocations(ctx context.Context, entries []Revocation, maxLifetime time.Duration) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	err := d.group.update(func(tx *bolt.Tx) error {
		n = 0
		revoked, meta := tx.Bucket(bucketRevoked), tx.Bucket(bucketMeta)
		for _, e := range entries {
			if revoked.Get([]byte(e.Serial)) != nil {
				continue
			}
			c, err := getCert(tx, e.Serial)
			switch {
			case err == nil && c.Status == StatusRevoked && c.Method.OnCRL():
				// Revoked but its entry was pruned: only if it expired.
				if !c.Expired(time.Now()) {
					if _, err := revokeInTx(tx, c, c.Reason, c.RevokedAt, c.RevokedWith); err != nil {
						return err
					}
					n++
				}
				continue
			case err == nil:
				if c.Status == StatusRevoked {
					continue
				}
				if _, err := revokeInTx(tx, c, e.Reason, e.RevokedAt, "recovered:trust-anchor"); err != nil {
					return err
				}
				lin, _ := json.Marshal(lineageRecord{RevokedAt: e.RevokedAt, By: "recovered:" + e.Serial})
				if err := tx.Bucket(bucketLineages).Put([]byte(c.LineageID()), lin); err != nil {
					return err
				}
				n++
				continue
			case !errors.Is(err, ErrNotFound):
				return err
			}
			seq := u64(meta.Get(keyRevSeq)) + 1
			if err := putU64(meta, keyRevSeq, seq); err != nil {
				return err
			}
			v, err := json.Marshal(revocationRecord{RevokedAt: e.RevokedAt, Reason: e.Reason, NotAfter: e.RevokedAt.Add(maxLifetime), Seq: seq})
			if err != nil {
				return err
			}
			if err := revoked.Put([]byte(e.Serial), v); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("storage: recover revocations: %w", err)
	}
	if n > 0 {
		d.watch.Signal(TopicRevocation)
	}
	return n, nil
}
