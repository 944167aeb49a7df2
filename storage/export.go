package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Record kinds of a bulk export, in the order Export streams them. Every
// backend imports the same kinds, so a copy between backends is a loop
// over records.
const (
	KindCert       = "certificates"
	KindRevocation = "revocations"
	KindLineage    = "lineage cuts"
	KindToken      = "token ids"
	KindAnchor     = "anchor statuses"
	KindACMEAcct   = "ACME accounts"
	KindACMEEAB    = "ACME EAB keys"
	KindACMEOrder  = "ACME orders"
	KindACMEAuthz  = "ACME authorizations"
	KindCounters   = "counters" // exactly one, last: revocation sequence and newest CRL
)

// Kinds lists every record kind in export order.
var Kinds = []string{KindCert, KindRevocation, KindLineage, KindToken, KindAnchor, KindACMEAcct, KindACMEEAB, KindACMEOrder, KindACMEAuthz, KindCounters}

// RevocationEntry is one CRL-source entry with the revocation sequence
// number of the commit that added it.
type RevocationEntry struct {
	Revocation
	Seq uint64
}

// LineageCut records that a lineage was cut off by a revocation.
type LineageCut struct {
	ID        string
	RevokedAt time.Time
	By        string
}

// UsedToken is one consumed enrollment token id and the time (unix
// seconds, as both backends keep it) until which it is remembered.
type UsedToken struct {
	JTI       string
	KeepUntil int64
}

// ACMEEAB binds an external account key of a provisioner to an account.
type ACMEEAB struct {
	Provisioner string
	KeyID       string
	AccountID   string
}

// Counters is the revocation sequence and the newest stored CRL.
type Counters struct {
	RevSeq uint64
	CRL    CRL
}

// Record is one exported record: Kind says which one field is set.
type Record struct {
	Kind       string
	Cert       *Cert
	Revocation *RevocationEntry
	Lineage    *LineageCut
	Token      *UsedToken
	Anchor     *AnchorStatus
	Account    *ACMEAccount
	EAB        *ACMEEAB
	Order      *ACMEOrder
	Authz      *ACMEAuthz
	Counters   *Counters
}

// Counts is how many records of each kind an export holds (Counters not
// included).
type Counts map[string]int

// String lists the counts in export order.
func (c Counts) String() string {
	var parts []string
	for _, k := range Kinds {
		if k != KindCounters {
			parts = append(parts, fmt.Sprintf("%s %d", k, c[k]))
		}
	}
	return strings.Join(parts, ", ")
}

// Export streams every record of the database to fn from one consistent
// read transaction, kind by kind in the order of Kinds, the Counters
// record last. Derived indexes (subjects, ACME keys and open orders) are
// not exported: an importer rebuilds them from the records.
func (d *DB) Export(ctx context.Context, fn func(Record) error) error {
	return d.view(func(tx *bolt.Tx) error {
		each := func(name []byte, f func(k, v []byte) error) error {
			b := tx.Bucket(name)
			if b == nil {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := f(k, v); err != nil {
					key := string(k)
					if bytes.Equal(name, bucketCerts) {
						key = serialOf(k) // bytes: the serial, as every message names it
					}
					return fmt.Errorf("%s %q: %w", name, key, err)
				}
				return nil
			})
		}
		steps := []func() error{
			func() error {
				return each(bucketCerts, func(k, v []byte) error {
					c, err := decodeCert(serialOf(k), v)
					if err != nil {
						return err
					}
					return fn(Record{Kind: KindCert, Cert: c})
				})
			},
			func() error {
				return each(bucketRevoked, func(k, v []byte) error {
					var r revocationRecord
					if err := json.Unmarshal(v, &r); err != nil {
						return err
					}
					return fn(Record{Kind: KindRevocation, Revocation: &RevocationEntry{
						Revocation: Revocation{Serial: string(k), RevokedAt: r.RevokedAt, Reason: r.Reason, NotAfter: r.NotAfter}, Seq: r.Seq}})
				})
			},
			func() error {
				return each(bucketLineages, func(k, v []byte) error {
					var l lineageRecord
					if err := json.Unmarshal(v, &l); err != nil {
						return err
					}
					return fn(Record{Kind: KindLineage, Lineage: &LineageCut{ID: string(k), RevokedAt: l.RevokedAt, By: l.By}})
				})
			},
			func() error {
				return each(bucketTokens, func(k, v []byte) error {
					if len(v) != 8 {
						return fmt.Errorf("keep-until is %d bytes, not 8", len(v))
					}
					return fn(Record{Kind: KindToken, Token: &UsedToken{JTI: string(k), KeepUntil: int64(u64(v))}})
				})
			},
			func() error {
				return each(bucketAnchors, func(k, v []byte) error {
					s := new(AnchorStatus)
					if err := json.Unmarshal(v, s); err != nil {
						return err
					}
					return fn(Record{Kind: KindAnchor, Anchor: s})
				})
			},
			func() error {
				return each(bucketACMEAccounts, func(k, v []byte) error {
					a := new(ACMEAccount)
					if err := json.Unmarshal(v, a); err != nil {
						return err
					}
					return fn(Record{Kind: KindACMEAcct, Account: a})
				})
			},
			func() error {
				return each(bucketACMEEAB, func(k, v []byte) error {
					prov, key, ok := bytes.Cut(k, []byte{0})
					if !ok {
						return fmt.Errorf("key has no provisioner")
					}
					return fn(Record{Kind: KindACMEEAB, EAB: &ACMEEAB{Provisioner: string(prov), KeyID: string(key), AccountID: string(v)}})
				})
			},
			func() error {
				return each(bucketACMEOrders, func(k, v []byte) error {
					o := new(ACMEOrder)
					if err := json.Unmarshal(v, o); err != nil {
						return err
					}
					return fn(Record{Kind: KindACMEOrder, Order: o})
				})
			},
			func() error {
				return each(bucketACMEAuthzs, func(k, v []byte) error {
					a := new(ACMEAuthz)
					if err := json.Unmarshal(v, a); err != nil {
						return err
					}
					return fn(Record{Kind: KindACMEAuthz, Authz: a})
				})
			},
			func() error {
				m := tx.Bucket(bucketMeta)
				c := &Counters{RevSeq: u64(m.Get(keyRevSeq)), CRL: CRL{Number: u64(m.Get(keyCRLNumber)), Seq: u64(m.Get(keyCRLSeq)), DER: bytes.Clone(m.Get(keyCRLDER))}}
				return fn(Record{Kind: KindCounters, Counters: c})
			},
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return err
			}
		}
		return nil
	})
}

// ExportCounts counts the records Export would stream, and returns the
// Counters record, from one read transaction.
func (d *DB) ExportCounts(ctx context.Context) (Counts, Counters, error) {
	n := Counts{}
	var c Counters
	err := d.view(func(tx *bolt.Tx) error {
		for kind, name := range map[string][]byte{KindCert: bucketCerts, KindRevocation: bucketRevoked, KindLineage: bucketLineages,
			KindToken: bucketTokens, KindAnchor: bucketAnchors, KindACMEAcct: bucketACMEAccounts, KindACMEEAB: bucketACMEEAB,
			KindACMEOrder: bucketACMEOrders, KindACMEAuthz: bucketACMEAuthzs} {
			if b := tx.Bucket(name); b != nil {
				n[kind] = b.Stats().KeyN
			}
		}
		m := tx.Bucket(bucketMeta)
		c = Counters{RevSeq: u64(m.Get(keyRevSeq)), CRL: CRL{Number: u64(m.Get(keyCRLNumber)), Seq: u64(m.Get(keyCRLSeq))}}
		return nil
	})
	return n, c, err
}
