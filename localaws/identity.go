package localaws

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Identifiers, ARNs and generated secrets. Shapes follow §4.1, §5.5 and §8.

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// newUUID returns a random (version 4) UUID in lower-case hex.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatUUID(b)
}

// nameUUID derives a stable UUID from data (SHA-256 based, version 8), so
// the Subject resource of one certificate subject keeps one id without being
// stored.
func nameUUID(data []byte) string {
	sum := sha256.Sum256(data)
	var b [16]byte
	copy(b[:], sum[:16])
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	return formatUUID(b)
}

func formatUUID(b [16]byte) string {
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// resourceArn renders arn:aws:rolesanywhere:REGION:ACCOUNT:KIND/ID.
func (s *Server) resourceArn(account, kind, id string) string {
	return fmt.Sprintf("arn:aws:rolesanywhere:%s:%s:%s/%s", s.cfg.Region, account, kind, id)
}

// parseResourceArn returns the account and id of an ARN of this server's
// region and of kind; ok is false for any other ARN.
func (s *Server) parseResourceArn(arn, kind string) (account, id string, ok bool) {
	rest, ok := strings.CutPrefix(arn, "arn:aws:rolesanywhere:"+s.cfg.Region+":")
	if !ok {
		return "", "", false
	}
	account, rest, ok = strings.Cut(rest, ":")
	if !ok || !accountPattern.MatchString(account) {
		return "", "", false
	}
	id, ok = strings.CutPrefix(rest, kind+"/")
	if !ok || !uuidPattern.MatchString(id) {
		return "", "", false
	}
	return account, id, true
}

// resourceIDFromArn returns the id of an ARN of account, this server's
// region and kind; ok is false for any other ARN.
func (s *Server) resourceIDFromArn(account, arn, kind string) (string, bool) {
	got, id, ok := s.parseResourceArn(arn, kind)
	if !ok || got != account {
		return "", false
	}
	return id, true
}

// Generic ARN patterns from the service model (§2) and IAM.
var (
	profileArnPattern     = regexp.MustCompile(`^arn:aws(-[^:]+)?:rolesanywhere(:.*){2}(:profile.*)$`)
	trustAnchorArnPattern = regexp.MustCompile(`^arn:aws(-[^:]+)?:rolesanywhere(:.*){2}(:trust-anchor.*)$`)
	roleArnPattern        = regexp.MustCompile(`^arn:aws(-[^:]+)?:iam::\d{12}:role/([\w+=,.@/-]{1,512})$`)
	sessionNamePattern    = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
)

// roleName is the last path element of a role ARN (roles may have paths).
func roleName(roleArn string) string {
	return roleArn[strings.LastIndex(roleArn, "/")+1:]
}

// roleAccount is the account of a role ARN that matched roleArnPattern.
func roleAccount(roleArn string) string {
	return strings.SplitN(roleArn, ":", 6)[4]
}

// assumedRoleArn is the STS identity of a session (§4.1), in the role's
// account.
func assumedRoleArn(roleArn, sessionName string) string {
	return fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", roleAccount(roleArn), roleName(roleArn), sessionName)
}

// serialHex is the serial's big-endian bytes in lower-case hex, so always an
// even length (§5.5: the safe rendering of the default session name).
func serialHex(c *x509.Certificate) string {
	return hex.EncodeToString(c.SerialNumber.Bytes())
}

// sourceIdentity applies the documented rules (§5.5): "CN=<cn>" up to 61
// characters, the bare CN for 62-64, otherwise "ID=<serial hex>". Lower-case
// hex for ID= is a choice (the case is unverified).
func sourceIdentity(c *x509.Certificate) string {
	cn := c.Subject.CommonName
	switch {
	case cn != "" && len(cn) <= 61:
		return "CN=" + cn
	case len(cn) >= 62 && len(cn) <= 64:
		return cn
	default:
		return "ID=" + serialHex(c)
	}
}

// subjectID is the stable id of the Subject resource of a certificate
// subject.
func subjectID(c *x509.Certificate) string { return nameUUID(c.RawSubject) }

// newIAMID returns an IAM unique id: a 4-letter kind prefix (AROA for
// roles, ANPA for managed policies) and 17 characters of [A-Z2-7].
func newIAMID(prefix string) string {
	var b [11]byte
	_, _ = rand.Read(b[:])
	return prefix + base32.StdEncoding.EncodeToString(b[:])[:17]
}

// newAccessKeyID returns "ASIA" + 16 base32 characters: the 20-character
// shape of temporary STS access keys.
func newAccessKeyID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return "ASIA" + base32.StdEncoding.EncodeToString(b[:])
}

// newSecretAccessKey returns 40 characters of base64 (30 random bytes).
func newSecretAccessKey() string {
	var b [30]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// newSessionToken returns an opaque token; the prefix makes a stray one easy
// to recognise as local and worthless.
func newSessionToken() string {
	var b [96]byte
	_, _ = rand.Read(b[:])
	return "LOCALAWS" + base64.StdEncoding.EncodeToString(b[:])
}

// apiTime renders control-plane timestamps (ISO 8601, microseconds, Z).
func apiTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// expirationTime renders credential expirations: RFC 3339, seconds, Z (§4.1).
func expirationTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// packedPolicySize estimates the percentage of the packed session
// policy+tags budget used. AWS's packing is undocumented; the estimate only
// has to be a plausible non-negative integer that grows with the policy.
func packedPolicySize(p *profile, c *x509.Certificate) int {
	n := len(p.SessionPolicy) + 20*len(p.ManagedPolicyArns) + len(c.RawSubject) + len(c.RawIssuer)
	pct := n * 100 / 2048
	if pct > 100 {
		pct = 100
	}
	return pct
}
