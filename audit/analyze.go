package audit

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"
)

// CRLSizeCap is the Roles Anywhere limit on crlData; CRLNearCap is the
// share of it past which a CRL is a finding.
const (
	CRLSizeCap = 300000
	CRLNearCap = 0.8
)

// lifetimeSkew is allowed on top of the lifetime policy: the CA backdates
// notBefore by a minute, other issuers by a few.
const lifetimeSkew = 5 * time.Minute

// Failed-attempt bursts: this many failed attempts of one subject within
// the window.
const (
	burstCount  = 5
	burstWindow = time.Hour
)

// Analyze answers the audit's questions about a fixed world. It does no
// I/O.
func Analyze(w *World) *Report {
	r := &Report{Schema: SchemaVersion, GeneratedAt: w.Now.UTC(), Summary: map[string]int{},
		CA: []CAInfo{}, Accounts: []AccountInfo{}, Anchors: []AnchorNode{}, Profiles: []ProfileNode{},
		Roles: []RoleNode{}, Certificates: []CertEntry{}, Ranking: []RankEntry{}, Findings: []Finding{}}
	an := &analysis{w: w, r: r, roleNodes: map[string]int{}, policies: map[string]*parsed{}, blasts: map[[2]string][]ScorePart{}, sigs: map[sigKey]bool{}}
	for _, c := range w.CA {
		r.CA = append(r.CA, CAInfo{Subject: c.Subject.String(), SKI: hex.EncodeToString(c.SubjectKeyId), Fingerprint: fingerprint(c)})
	}
	for _, a := range w.Accounts {
		an.account(a)
	}
	an.certificates()
	an.anomalies()
	if w.Previous != nil {
		r.Snapshot = &SnapshotInfo{TakenAt: w.Previous.TakenAt, Subjects: len(w.Previous.Subjects)}
	} else {
		r.Notes = append(r.Notes, "first audit: no previous snapshot, so no subject is reported as new")
	}
	r.snapshot = newSnapshot(w)
	an.finish()
	return r
}

type analysis struct {
	w         *World
	r         *Report
	roleNodes map[string]int // role ARN -> index in r.Roles
	policies  map[string]*parsed
	blasts    map[[2]string][]ScorePart // (role ARN, profile ARN): the same for every certificate
	sigs      map[sigKey]bool           // signature checks, by child and issuer key
}

type sigKey struct {
	child *x509.Certificate
	key   string // the issuer's SubjectPublicKeyInfo
}

// signedBy reports whether parent's key signed child (and the names
// chain), checking each signature once: every anchor holding this CA asks
// again of every certificate.
func (an *analysis) signedBy(child, parent *x509.Certificate) bool {
	if !bytes.Equal(child.RawIssuer, parent.RawSubject) {
		return false
	}
	k := sigKey{child, string(parent.RawSubjectPublicKeyInfo)}
	ok, seen := an.sigs[k]
	if !seen {
		ok = child.CheckSignatureFrom(parent) == nil
		an.sigs[k] = ok
	}
	return ok
}

func fingerprint(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return hex.EncodeToString(s[:])
}

func (an *analysis) add(f Finding) { an.r.Findings = append(an.r.Findings, f) }

// ours reports whether b is one of this CA's certificates (same public key:
// a re-issued CA certificate with the same key is the same CA).
func (an *analysis) ours(b *x509.Certificate) bool {
	for _, c := range an.w.CA {
		if bytes.Equal(c.RawSubjectPublicKeyInfo, b.RawSubjectPublicKeyInfo) {
			return true
		}
	}
	return false
}

func (an *analysis) account(a *Account) {
	r := an.r
	info := AccountInfo{Name: a.Name, ID: a.ID, Region: a.Region}
	if a.Err != nil {
		info.Error = a.Err.Error()
		r.Accounts = append(r.Accounts, info)
		an.add(Finding{ID: "account-unreadable", Severity: High, Kind: "account", Subject: a.Name, Account: a.Name,
			Explanation: fmt.Sprintf("could not read the account, so nothing in it was audited: %v", a.Err)})
		return
	}
	info.Anchors, info.Profiles, info.Roles, info.Subjects = len(a.Anchors), len(a.Profiles), len(a.Roles), len(a.Subjects)
	r.Accounts = append(r.Accounts, info)
	for _, ta := range a.Anchors {
		an.anchor(a, ta)
	}
	for _, p := range a.Profiles {
		an.profile(a, p)
	}
	arns := make([]string, 0, len(a.Roles))
	for arn := range a.Roles {
		arns = append(arns, arn)
	}
	sort.Strings(arns)
	for _, arn := range arns {
		an.role(a, a.Roles[arn])
	}
}

func (an *analysis) anchor(a *Account, ta Anchor) {
	node := AnchorNode{ARN: ta.ARN, Account: a.Name, Name: ta.Name, Enabled: ta.Enabled, Bundle: []BundleCert{}, CRLs: []CRLInfo{}}
	var foreign []string
	for _, b := range ta.Bundle {
		o := an.ours(b)
		node.Ours = node.Ours || o
		node.Bundle = append(node.Bundle, BundleCert{Subject: b.Subject.String(), SKI: hex.EncodeToString(b.SubjectKeyId), Ours: o})
		if !o {
			foreign = append(foreign, b.Subject.String())
		}
	}
	var enabledCRL bool
	for _, c := range a.CRLs {
		if c.AnchorARN != ta.ARN {
			continue
		}
		node.CRLs = append(node.CRLs, CRLInfo{ARN: c.ARN, Name: c.Name, Enabled: c.Enabled, Size: c.Size, Number: c.Number, NextUpdate: c.NextUpdate})
		if !c.Enabled || !node.Ours {
			continue
		}
		enabledCRL = true
		if !c.NextUpdate.IsZero() && an.w.Now.After(c.NextUpdate) {
			an.add(Finding{ID: "anchor-crl-expired", Severity: High, Kind: "anchor", Subject: ta.ARN, Account: a.Name,
				Explanation: fmt.Sprintf("CRL %q (number %s) was due for an update at %s: revocations since then are not enforced", c.Name, c.Number, c.NextUpdate.UTC().Format(time.RFC3339))})
		}
		if float64(c.Size) > CRLNearCap*CRLSizeCap {
			an.add(Finding{ID: "anchor-crl-near-cap", Severity: Medium, Kind: "anchor", Subject: ta.ARN, Account: a.Name,
				Explanation: fmt.Sprintf("CRL %q is %d characters, %.0f%% of the %d limit: a few more revocations and UpdateCrl fails", c.Name, c.Size, 100*float64(c.Size)/CRLSizeCap, CRLSizeCap)})
		}
	}
	an.r.Anchors = append(an.r.Anchors, node)
	if ta.SourceType != "" && ta.SourceType != "CERTIFICATE_BUNDLE" {
		an.r.Notes = append(an.r.Notes, fmt.Sprintf("trust anchor %s has source %s: its CAs are not compared with this CA", ta.ARN, ta.SourceType))
	}
	if node.Ours && ta.Enabled && !enabledCRL {
		an.add(Finding{ID: "anchor-no-enabled-crl", Severity: High, Kind: "anchor", Subject: ta.ARN, Account: a.Name,
			Explanation: "the anchor trusts this CA but holds no enabled CRL: a revoked certificate still gets AWS credentials"})
	}
	if len(ta.Bundle) > 1 {
		an.add(Finding{ID: "anchor-multiple-cas", Severity: Low, Kind: "anchor", Subject: ta.ARN, Account: a.Name,
			Explanation: fmt.Sprintf("the bundle holds %d CA certificates; every one of them can mint identities for its profiles", len(ta.Bundle))})
	}
	if len(foreign) > 0 {
		sev, why := Medium, "the anchor trusts only other CAs"
		if node.Ours {
			sev, why = High, "the anchor of this CA also trusts other CAs"
		}
		an.add(Finding{ID: "anchor-foreign-ca", Severity: sev, Kind: "anchor", Subject: ta.ARN, Account: a.Name,
			Explanation: fmt.Sprintf("%s (%s): certificates this CA never issued reach the same profiles and roles", why, strings.Join(foreign, "; "))})
	}
}

func (an *analysis) profile(a *Account, p Profile) {
	node := ProfileNode{ARN: p.ARN, Account: a.Name, Name: p.Name, Enabled: p.Enabled, Roles: append([]string{}, p.RoleARNs...),
		SessionPolicy: p.SessionPolicy != "", ManagedPolicies: p.ManagedPolicyARNs, Mappings: p.Mappings}
	if node.Mappings == nil {
		node.Mappings = DefaultMappings
	}
	sort.Strings(node.Roles)
	an.r.Profiles = append(an.r.Profiles, node)
	if !p.Enabled {
		return
	}
	if p.SessionPolicy == "" && len(p.ManagedPolicyARNs) == 0 {
		an.add(Finding{ID: "profile-no-session-policy", Severity: Medium, Kind: "profile", Subject: p.ARN, Account: a.Name,
			Explanation: "no session policy and no managed policies: sessions get everything their role's policies allow"})
	}
	for _, sp := range sessionPolicies(p) {
		pp := an.parse(sp.Document)
		if pp.err != nil {
			an.add(Finding{ID: "profile-session-policy-invalid", Severity: Medium, Kind: "profile", Subject: p.ARN, Account: a.Name,
				Explanation: fmt.Sprintf("session policy %s does not parse: %v", sp.Name, pp.err)})
			continue
		}
		switch {
		case pp.admin:
			an.add(Finding{ID: "profile-session-admin", Severity: High, Kind: "profile", Subject: p.ARN, Account: a.Name,
				Explanation: fmt.Sprintf("session policy %s is admin-equivalent: it bounds nothing", sp.Name)})
		case pp.wildcardAction != "":
			an.add(Finding{ID: "profile-session-wildcard-action", Severity: High, Kind: "profile", Subject: p.ARN, Account: a.Name,
				Explanation: fmt.Sprintf("session policy %s statement %s allows every action (%s)", sp.Name, pp.wildcardAction, "*")})
		}
		if !pp.admin && pp.wildcardResource != "" {
			an.add(Finding{ID: "profile-session-wildcard-resource", Severity: Medium, Kind: "profile", Subject: p.ARN, Account: a.Name,
				Explanation: fmt.Sprintf("session policy %s statement %s allows its actions on every resource (\"*\")", sp.Name, pp.wildcardResource)})
		}
	}
}

// sessionPolicies are the profile's session policy and managed policies:
// each bounds a session (the session's permissions are the role's
// intersected with them).
func sessionPolicies(p Profile) []NamedPolicy {
	var out []NamedPolicy
	if p.SessionPolicy != "" {
		out = append(out, NamedPolicy{Name: "sessionPolicy", Document: p.SessionPolicy})
	}
	return append(out, p.ManagedPolicies...)
}

func (an *analysis) role(a *Account, ro *Role) {
	node := RoleNode{ARN: ro.ARN, Account: a.Name, Name: ro.Name}
	if ro.Err != nil {
		node.Error = ro.Err.Error()
		node.Permissions.Level = "none"
		an.roleNodes[ro.ARN] = len(an.r.Roles)
		an.r.Roles = append(an.r.Roles, node)
		an.add(Finding{ID: "role-unreadable", Severity: Medium, Kind: "role", Subject: ro.ARN, Account: a.Name,
			Explanation: fmt.Sprintf("a profile names this role but it could not be read: %v", ro.Err)})
		return
	}
	node.Permissions = an.summary(ro)
	an.roleNodes[ro.ARN] = len(an.r.Roles)
	an.r.Roles = append(an.r.Roles, node)
	tp := an.parse(ro.TrustPolicy)
	if tp.err != nil {
		an.add(Finding{ID: "role-trust-policy-invalid", Severity: Medium, Kind: "role", Subject: ro.ARN, Account: a.Name,
			Explanation: fmt.Sprintf("the trust policy does not parse: %v", tp.err)})
		return
	}
	subj, src, trusts := trustConditions(tp)
	if !trusts {
		return // not a Roles Anywhere role; CreateSession cannot assume it
	}
	if !subj {
		an.add(Finding{ID: "role-trust-no-subject-condition", Severity: High, Kind: "role", Subject: ro.ARN, Account: a.Name,
			Explanation: "the trust policy lets rolesanywhere.amazonaws.com in without a condition on the certificate's subject or SAN (aws:PrincipalTag/x509Subject/... or x509SAN/...): any certificate of any trusted CA may assume it"})
	}
	if !src {
		an.add(Finding{ID: "role-trust-no-source-arn", Severity: Medium, Kind: "role", Subject: ro.ARN, Account: a.Name,
			Explanation: "the trust policy has no aws:SourceArn condition: a certificate from any trust anchor of the account (another CA's) may assume it"})
	}
}

// certificates builds the map and the blast radius of each certificate,
// and the findings about certificates themselves.
func (an *analysis) certificates() {
	w := an.w
	byKey := map[string][]Cert{}
	done := 0
	for _, c := range w.Certs {
		e := an.certificate(c)
		an.r.Certificates = append(an.r.Certificates, e)
		roles := map[string]bool{}
		for _, x := range e.Access {
			roles[x.Account+"\x00"+x.Role] = true
		}
		an.r.Ranking = append(an.r.Ranking, RankEntry{Serial: e.Serial, Subject: e.Subject, Score: e.Score, Roles: len(roles)})
		if life := c.Cert.NotAfter.Sub(c.Cert.NotBefore); w.MaxLifetime > 0 && life > w.MaxLifetime+lifetimeSkew {
			an.add(Finding{ID: "cert-lifetime-over-policy", Severity: Medium, Kind: "certificate", Subject: c.Serial,
				Explanation: fmt.Sprintf("%s is valid for %s, over the %s policy: a stolen key stays useful that long", c.Cert.Subject.CommonName, life.Round(time.Minute), w.MaxLifetime)})
		}
		if c.KeyID != "" {
			byKey[c.KeyID] = append(byKey[c.KeyID], c)
		}
		done++
		if w.Progress != nil && (done%100 == 0 || done == len(w.Certs)) {
			w.Progress("analysed %d/%d certificates", done, len(w.Certs))
		}
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cs := byKey[k]
		lineages := map[string]bool{}
		for _, c := range cs {
			lineages[c.Lineage] = true
		}
		// A renewal that keeps its key is one holder; several lineages on
		// one key are several enrollments sharing a private key.
		if len(lineages) < 2 {
			continue
		}
		var names []string
		for _, c := range cs {
			names = append(names, fmt.Sprintf("%s (%s)", c.Serial, c.Cert.Subject.CommonName))
		}
		for _, c := range cs {
			an.add(Finding{ID: "cert-shared-key", Severity: High, Kind: "certificate", Subject: c.Serial,
				Explanation: fmt.Sprintf("its public key (SHA-256 %s) is shared by %d live certificates of different enrollments: %s", k[:16], len(cs), strings.Join(names, ", "))})
		}
	}
}

// chain is the certificate and the CA certificates above it, leaf first.
func (an *analysis) chain(c *x509.Certificate) []*x509.Certificate {
	out := []*x509.Certificate{c}
	cur := c
	for range len(an.w.CA) {
		var next *x509.Certificate
		for _, ca := range an.w.CA {
			if !bytes.Equal(ca.Raw, cur.Raw) && an.signedBy(cur, ca) {
				next = ca
				break
			}
		}
		if next == nil || bytes.Equal(next.Raw, cur.Raw) {
			break
		}
		out = append(out, next)
		cur = next
	}
	return out
}

// trusts reports whether the anchor's bundle holds an issuer of the chain:
// a bundle certificate that signed one of its members (compared by
// signature, so by public key) or that has the same key as a CA member.
func (an *analysis) trusts(ta Anchor, chain []*x509.Certificate) bool {
	for i, e := range chain {
		for _, b := range ta.Bundle {
			if i > 0 && bytes.Equal(e.RawSubjectPublicKeyInfo, b.RawSubjectPublicKeyInfo) {
				return true
			}
			if an.signedBy(e, b) {
				return true
			}
		}
	}
	return false
}

func (an *analysis) certificate(c Cert) CertEntry {
	e := CertEntry{Serial: c.Serial, Subject: c.Cert.Subject.CommonName, SANs: SANs(c.Cert),
		NotBefore: c.Cert.NotBefore.UTC(), NotAfter: c.Cert.NotAfter.UTC(),
		Anchors: []string{}, Access: []Access{}, ScoreParts: []ScorePart{}}
	if e.SANs == nil {
		e.SANs = []string{}
	}
	chain := an.chain(c.Cert)
	type reach struct{ account, role string }
	best := map[reach][]ScorePart{}
	var order []reach
	for _, a := range an.w.Accounts {
		if a.Err != nil {
			continue
		}
		for _, ta := range a.Anchors {
			if !ta.Enabled || !an.trusts(ta, chain) {
				continue
			}
			e.Anchors = append(e.Anchors, ta.ARN)
			for _, p := range a.Profiles {
				if !p.Enabled {
					continue
				}
				// One request context per (anchor, profile): only the role
				// changes below.
				ctx := sessionContext(ta.ARN, a.ID, c.Cert, SessionTags(c.Cert, p.Mappings), an.w.Now)
				for _, roleARN := range p.RoleARNs {
					ro := a.Roles[roleARN]
					if ro == nil || ro.Err != nil {
						continue
					}
					tp := an.parse(ro.TrustPolicy)
					if tp.err != nil || !canAssume(tp, ctx) {
						continue
					}
					e.Access = append(e.Access, Access{Account: a.Name, Anchor: ta.ARN, Profile: p.ARN, Role: roleARN})
					parts, ok := an.blasts[[2]string{roleARN, p.ARN}]
					if !ok {
						parts = an.blast(a, ro, p)
						an.blasts[[2]string{roleARN, p.ARN}] = parts
					}
					k := reach{a.Name, roleARN}
					old, seen := best[k]
					if !seen {
						order = append(order, k)
					}
					if !seen || points(parts) > points(old) {
						best[k] = parts
					}
				}
			}
		}
	}
	// A role reached through several profiles counts once, with the
	// widest session it can get.
	for _, k := range order {
		e.ScoreParts = append(e.ScoreParts, best[k]...)
	}
	e.Score = points(e.ScoreParts)
	sort.Slice(e.Access, func(i, j int) bool {
		x, y := e.Access[i], e.Access[j]
		if x.Account != y.Account {
			return x.Account < y.Account
		}
		if x.Role != y.Role {
			return x.Role < y.Role
		}
		if x.Profile != y.Profile {
			return x.Profile < y.Profile
		}
		return x.Anchor < y.Anchor
	})
	sort.SliceStable(e.ScoreParts, func(i, j int) bool { return e.ScoreParts[i].Points > e.ScoreParts[j].Points })
	return e
}

func points(ps []ScorePart) int {
	n := 0
	for _, p := range ps {
		n += p.Points
	}
	return n
}

// anomalies compares what AWS saw with what this CA issued and with the
// previous audit.
func (an *analysis) anomalies() {
	w := an.w
	prev := map[string]bool{}
	if w.Previous != nil {
		for _, k := range w.Previous.Subjects {
			prev[k] = true
		}
	}
	for _, a := range w.Accounts {
		if a.Err != nil {
			continue
		}
		for _, su := range a.Subjects {
			an.subject(a, su, prev)
		}
	}
}

func (an *analysis) subject(a *Account, su Subject, prev map[string]bool) {
	w := an.w
	name := su.X509Subject
	// Foreign: a certificate AWS accepted or saw that this CA did not issue.
	var foreign []string
	for _, cr := range su.Credentials {
		if !an.issuedHere(cr) {
			foreign = append(foreign, fmt.Sprintf("serial %s from %s", cr.Serial, cr.Issuer))
		}
	}
	if len(foreign) > 0 {
		an.add(Finding{ID: "subject-foreign", Severity: High, Kind: "subject", Subject: su.ARN, Account: a.Name,
			Explanation: fmt.Sprintf("%s was seen at AWS with a certificate this CA never issued (%s): a trust anchor trusts another issuer", name, strings.Join(foreign, "; "))})
	}
	hosts := map[string]bool{}
	for _, ip := range su.Instances {
		if ip.Failed || len(ip.Properties) == 0 {
			continue
		}
		hosts[propsKey(ip.Properties)] = true
	}
	if len(hosts) > 1 {
		hs := make([]string, 0, len(hosts))
		for h := range hosts {
			hs = append(hs, h)
		}
		sort.Strings(hs)
		an.add(Finding{ID: "subject-multiple-hosts", Severity: Medium, Kind: "subject", Subject: su.ARN, Account: a.Name,
			Explanation: fmt.Sprintf("%s got sessions from %d different hosts (%s): one certificate and key in several places, or a copied key", name, len(hs), strings.Join(hs, " | "))})
	}
	if w.Previous != nil && !prev[subjectKey(a.Name, su.ID)] {
		an.add(Finding{ID: "subject-new", Severity: Low, Kind: "subject", Subject: su.ARN, Account: a.Name,
			Explanation: fmt.Sprintf("%s is new at AWS since the audit of %s", name, w.Previous.TakenAt.UTC().Format(time.RFC3339))})
	}
	var failed []time.Time
	for _, cr := range su.Credentials {
		if cr.Failed {
			failed = append(failed, cr.SeenAt)
		}
	}
	for _, ip := range su.Instances {
		if ip.Failed {
			failed = append(failed, ip.SeenAt)
		}
	}
	sort.Slice(failed, func(i, j int) bool { return failed[i].Before(failed[j]) })
	for i := 0; i+burstCount-1 < len(failed); i++ {
		if failed[i+burstCount-1].Sub(failed[i]) <= burstWindow {
			an.add(Finding{ID: "subject-failed-burst", Severity: Medium, Kind: "subject", Subject: su.ARN, Account: a.Name,
				Explanation: fmt.Sprintf("%s failed %d times within %s from %s (%d failed attempts recorded): someone is trying", name, burstCount, burstWindow, failed[i].UTC().Format(time.RFC3339), len(failed))})
			break
		}
	}
}

// issuedHere reports whether AWS's record of a credential is a
// certificate this CA issued: by the certificate itself when AWS returns
// it, else by serial and issuer.
func (an *analysis) issuedHere(cr SubjectCredential) bool {
	if len(cr.DER) > 0 {
		c, err := x509.ParseCertificate(cr.DER)
		if err != nil {
			return false
		}
		for _, ca := range an.w.CA {
			if c.CheckSignatureFrom(ca) == nil {
				return true
			}
		}
		return false
	}
	// AWS's serial format is not documented (localaws prints hex): try
	// hex, then decimal.
	known := false
	for _, serial := range normalizeSerial(cr.Serial) {
		known = known || an.w.Issued[serial]
	}
	if !known {
		return false
	}
	if cr.Issuer == "" {
		return true
	}
	for _, ca := range an.w.CA {
		if sameDN(cr.Issuer, ca) {
			return true
		}
	}
	return false
}

// sameDN compares an issuer as AWS prints it with a CA's subject,
// ignoring RDN order and spacing.
func sameDN(s string, ca *x509.Certificate) bool {
	norm := func(s string) string {
		parts := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '/' })
		for i, p := range parts {
			parts[i] = strings.ToLower(strings.TrimSpace(p))
		}
		sort.Strings(parts)
		return strings.Join(parts, ",")
	}
	return norm(s) == norm(ca.Subject.String())
}

// normalizeSerial reads a serial as AWS may report it — hex with or
// without colons, or decimal — as the lowercase even-length hex the CA
// stores: the hex reading first, then the decimal one.
func normalizeSerial(s string) []string {
	s = strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	var out []string
	for _, base := range []int{16, 10} {
		n, ok := new(big.Int).SetString(s, base)
		if !ok {
			continue
		}
		h := n.Text(16)
		if len(h)%2 == 1 {
			h = "0" + h
		}
		out = append(out, h)
	}
	return out
}

func propsKey(p map[string]string) string {
	ks := make([]string, 0, len(p))
	for k := range p {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for i, k := range ks {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(k + "=" + p[k])
	}
	return b.String()
}

func (an *analysis) finish() {
	r := an.r
	sort.Slice(r.Anchors, func(i, j int) bool { return r.Anchors[i].ARN < r.Anchors[j].ARN })
	sort.Slice(r.Profiles, func(i, j int) bool { return r.Profiles[i].ARN < r.Profiles[j].ARN })
	sort.Slice(r.Roles, func(i, j int) bool { return r.Roles[i].ARN < r.Roles[j].ARN })
	sort.Slice(r.Certificates, func(i, j int) bool { return r.Certificates[i].Serial < r.Certificates[j].Serial })
	sort.SliceStable(r.Ranking, func(i, j int) bool {
		if r.Ranking[i].Score != r.Ranking[j].Score {
			return r.Ranking[i].Score > r.Ranking[j].Score
		}
		return r.Ranking[i].Serial < r.Ranking[j].Serial
	})
	sort.SliceStable(r.Findings, func(i, j int) bool {
		x, y := r.Findings[i], r.Findings[j]
		if x.Severity.Rank() != y.Severity.Rank() {
			return x.Severity.Rank() > y.Severity.Rank()
		}
		if x.ID != y.ID {
			return x.ID < y.ID
		}
		return x.Subject < y.Subject
	})
	for _, s := range []Severity{High, Medium, Low} {
		r.Summary[string(s)] = 0
	}
	for _, f := range r.Findings {
		r.Summary[string(f.Severity)]++
	}
}
