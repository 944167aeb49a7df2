package localaws

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// CreateSession (§2-§5): verify the AWS4-X509 envelope, trust the
// certificate through the named anchor, apply the profile, issue credentials.

// Duration bounds of CreateSession and profiles (§2, §8).
const (
	minDurationSeconds     = 900
	maxDurationSeconds     = 43200
	defaultDurationSeconds = 3600
)

// sessionRequestBody is the JSON body of CreateSession. The ARNs may also be
// sent here instead of the query (§2). Unknown keys are refused: a client
// sending one is sending something AWS would silently ignore.
type sessionRequestBody struct {
	DurationSeconds    *int              `json:"durationSeconds"`
	InstanceProperties map[string]string `json:"instanceProperties"`
	RoleSessionName    *string           `json:"roleSessionName"`
	SessionName        *string           `json:"sessionName"`
	ProfileArn         *string           `json:"profileArn"`
	RoleArn            *string           `json:"roleArn"`
	TrustAnchorArn     *string           `json:"trustAnchorArn"`
}

// sessionParams are the validated CreateSession parameters.
type sessionParams struct {
	ProfileArn, RoleArn, TrustAnchorArn string
	DurationSeconds                     int // 0 = not sent
	RoleSessionName                     string
	InstanceProperties                  map[string]string
}

type sessionResponse struct {
	CredentialSet []credentialSetEntry `json:"credentialSet"`
	SubjectArn    string               `json:"subjectArn"`
}

type credentialSetEntry struct {
	AssumedRoleUser  assumedRoleUser    `json:"assumedRoleUser"`
	Credentials      sessionCredentials `json:"credentials"`
	PackedPolicySize int                `json:"packedPolicySize"`
	RoleArn          string             `json:"roleArn"`
	SourceIdentity   string             `json:"sourceIdentity"`
}

type assumedRoleUser struct {
	Arn           string `json:"arn"`
	AssumedRoleID string `json:"assumedRoleId"`
}

type sessionCredentials struct {
	AccessKeyID     string `json:"accessKeyId"`
	Expiration      string `json:"expiration"`
	SecretAccessKey string `json:"secretAccessKey"`
	SessionToken    string `json:"sessionToken"`
}

func (s *Server) createSession(w http.ResponseWriter, r *http.Request, reqID string, body []byte) {
	const op = "CreateSession"
	if !s.allow("", groupCreateSession) {
		s.refuseJSON(w, r, reqID, op, throttled(groupCreateSession))
		return
	}
	now := s.now()
	signed, apiErr := verifyX509Request(r, body, now, s.cfg.Region)
	if apiErr != nil {
		// Name the certificate in the log when it at least parses, so a
		// refused signature can still be traced to a serial.
		var who []any
		if c, err := parseBase64Cert(r.Header.Get("X-Amz-X509")); err == nil {
			who = []any{"serial", serialHex(c), "subject", c.Subject.String()}
		}
		s.refuseJSON(w, r, reqID, op, apiErr, who...)
		return
	}
	leaf := signed.Leaf
	who := []any{"serial", serialHex(leaf), "subject", leaf.Subject.String()}
	params, apiErr := parseSessionParams(r.URL.Query(), body)
	if apiErr != nil {
		s.refuseJSON(w, r, reqID, op, apiErr, who...)
		return
	}
	who = append(who, "anchor", params.TrustAnchorArn, "profile", params.ProfileArn, "role", params.RoleArn)

	cred, apiErr := s.authorizeSession(signed, params, now)
	if apiErr != nil {
		s.refuseJSON(w, r, reqID, op, apiErr, who...)
		return
	}
	s.logDecision(r, reqID, op, nil, append(who, "access_key_id", cred.cred.AccessKeyID,
		"session_name", cred.cred.RoleSessionName, "expiration", expirationTime(cred.cred.Expiration))...)
	writeJSON(w, http.StatusCreated, sessionResponse{
		CredentialSet: []credentialSetEntry{{
			AssumedRoleUser: assumedRoleUser{
				Arn:           assumedRoleArn(cred.cred.RoleArn, cred.cred.RoleSessionName),
				AssumedRoleID: cred.cred.AssumedRoleID,
			},
			Credentials: sessionCredentials{
				AccessKeyID:     cred.cred.AccessKeyID,
				Expiration:      expirationTime(cred.cred.Expiration),
				SecretAccessKey: cred.cred.SecretAccessKey,
				SessionToken:    cred.cred.SessionToken,
			},
			PackedPolicySize: cred.packedPolicySize,
			RoleArn:          cred.cred.RoleArn,
			SourceIdentity:   cred.cred.SourceIdentity,
		}},
		SubjectArn: cred.subjectArn,
	})
}

// issued is what authorizeSession hands back on success.
type issued struct {
	cred             *issuedCredential
	packedPolicySize int
	subjectArn       string
}

// authorizeSession runs the checks in the order of §3.8 step 5 — trust,
// revocation, profile — then the role's: it must exist in IAM of the same
// account, its trust policy must grant rolesanywhere.amazonaws.com
// sts:AssumeRole, sts:TagSession and sts:SetSourceIdentity (trust.go), and
// the session must fit its MaxSessionDuration. Every attempt by a
// certificate that chains to one of the account's anchors is recorded on
// its Subject, refused or not.
func (s *Server) authorizeSession(signed *signedX509Request, p *sessionParams, now time.Time) (*issued, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()

	// The trust anchor ARN names the account: CreateSession carries no
	// SigV4 key, and anchor, profile and role must all be in that account
	// (§5.1).
	account, anchorID, ok := s.parseResourceArn(p.TrustAnchorArn, "trust-anchor")
	acct := s.st.lookup(account)
	var anchor *trustAnchor
	if ok && acct != nil {
		anchor = acct.TrustAnchors[anchorID]
	}
	if anchor == nil {
		return nil, accessDenied(msgUntrusted, "trust anchor "+p.TrustAnchorArn+" does not exist")
	}
	if !anchor.Enabled {
		return nil, accessDenied(msgUntrusted+": trust anchor is disabled", "trust anchor "+p.TrustAnchorArn+" is disabled")
	}
	anchorCerts, err := parseAnchorBundle(anchor.CertificatePEM)
	if err != nil {
		return nil, internalError("stored trust anchor does not parse: " + err.Error())
	}
	crls, err := s.enabledCRLsLocked(acct, anchor.ID)
	if err != nil {
		return nil, internalError(err.Error())
	}
	leaf := signed.Leaf
	fail := func(e *apiError) (*issued, *apiError) {
		s.recordSubjectLocked(acct, leaf, p.InstanceProperties, true, now)
		if err := s.persistLocked(); err != nil {
			return nil, internalError(err.Error())
		}
		return nil, e
	}
	if _, apiErr := verifyTrust(leaf, signed.Intermediates, anchorCerts, crls, now); apiErr != nil {
		if apiErr.Message == msgRevoked {
			return fail(apiErr) // it chains; the revocation is its outcome
		}
		return nil, apiErr
	}

	profileID, ok := s.resourceIDFromArn(acct.id, p.ProfileArn, "profile")
	prof := acct.Profiles[profileID]
	if !ok || prof == nil {
		return fail(notFound("Profile %s not found", p.ProfileArn))
	}
	if !prof.Enabled {
		return fail(accessDenied("Profile is disabled", "profile "+p.ProfileArn+" is disabled"))
	}
	if !contains(prof.RoleArns, p.RoleArn) {
		return fail(accessDenied("Role is not allowed by the profile", "role "+p.RoleArn+" is not in the profile's roleArns"))
	}
	if p.RoleSessionName != "" && !prof.AcceptRoleSessionName {
		return fail(accessDenied("Not authorized to set roleSessionName.", "profile does not accept roleSessionName"))
	}
	if prof.RequireInstanceProperties && len(p.InstanceProperties) == 0 {
		return fail(accessDenied("Instance properties are required by the profile", "profile requires instanceProperties"))
	}
	duration := prof.DurationSeconds
	if p.DurationSeconds != 0 && p.DurationSeconds < duration {
		duration = p.DurationSeconds
	}
	sessionName := p.RoleSessionName
	if sessionName == "" {
		sessionName = serialHex(leaf)
	}
	sess := &sessionContext{
		anchorArn: p.TrustAnchorArn, account: acct.id, roleArn: p.RoleArn, sessionName: sessionName,
		sourceIdentity: sourceIdentity(leaf), tags: principalTags(leaf, prof.AttributeMappings), now: now,
	}
	role, sessionPolicies, apiErr := s.assumeRoleLocked(acct, prof, sess)
	if apiErr != nil {
		return fail(apiErr)
	}
	if duration > role.MaxSessionDuration {
		return fail(validationError("The requested DurationSeconds exceeds the MaxSessionDuration set for this role."))
	}
	cred := &issuedCredential{
		AccessKeyID:     newAccessKeyID(),
		SecretAccessKey: newSecretAccessKey(),
		SessionToken:    newSessionToken(),
		Expiration:      now.Add(time.Duration(duration) * time.Second).Truncate(time.Second),
		RoleArn:         p.RoleArn,
		RoleSessionName: sessionName,
		AssumedRoleID:   role.ID + ":" + sessionName,
		SourceIdentity:  sess.sourceIdentity,
		Serial:          leaf.SerialNumber.String(),
		TrustAnchorID:   anchor.ID,
		ProfileID:       prof.ID,
		Account:         acct.id,
		SessionPolicies: sessionPolicies,
		Tags:            sess.tags,
	}
	s.pruneCredentialsLocked(now)
	s.st.Credentials[cred.AccessKeyID] = cred
	s.recordSubjectLocked(acct, leaf, p.InstanceProperties, false, now)
	if err := s.persistLocked(); err != nil {
		return nil, internalError(err.Error())
	}
	return &issued{cred: cred, packedPolicySize: packedPolicySize(prof, leaf),
		subjectArn: s.resourceArn(acct.id, "subject", subjectID(leaf))}, nil
}

// credentialRetention is how long an expired credential is remembered, so
// that using it yields "expired" rather than "unknown".
const credentialRetention = 24 * time.Hour

// maxIssuedCredentials bounds the remembered sessions (each may carry up
// to ~400 KB of session policy): beyond it the earliest-expiring go first.
const maxIssuedCredentials = 10000

// pruneCredentialsLocked forgets long-expired credentials and makes room for
// one more under maxIssuedCredentials.
func (s *Server) pruneCredentialsLocked(now time.Time) {
	for id, c := range s.st.Credentials {
		if now.Sub(c.Expiration) > credentialRetention {
			delete(s.st.Credentials, id)
		}
	}
	for len(s.st.Credentials) >= maxIssuedCredentials {
		var first *issuedCredential
		for _, c := range s.st.Credentials {
			if first == nil || c.Expiration.Before(first.Expiration) {
				first = c
			}
		}
		delete(s.st.Credentials, first.AccessKeyID)
	}
}

// enabledCRLsLocked parses the enabled CRLs of one trust anchor.
func (s *Server) enabledCRLsLocked(a *accountState, anchorID string) ([]*x509.RevocationList, error) {
	var out []*x509.RevocationList
	for _, c := range a.CRLs {
		if c.TrustAnchorID != anchorID || !c.Enabled {
			continue
		}
		crl, err := parseCRLPEM(c.PEM)
		if err != nil {
			return nil, fmt.Errorf("stored CRL %s does not parse: %w", c.ID, err)
		}
		out = append(out, crl)
	}
	return out, nil
}

// parseSessionParams merges the query and JSON body parameters and validates
// them. An ARN given in both places must be the same (what AWS does then is
// unverified; refusing a contradiction is the strict choice).
func parseSessionParams(query url.Values, body []byte) (*sessionParams, *apiError) {
	var b sessionRequestBody
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil {
			return nil, validationError("Request body is not a valid CreateSession JSON document: %v", err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, validationError("Request body has data after the JSON document")
		}
	}
	for key := range query {
		switch key {
		case "profileArn", "roleArn", "trustAnchorArn":
		default:
			return nil, validationError("Unknown query parameter %q", key)
		}
	}
	p := &sessionParams{InstanceProperties: b.InstanceProperties}
	for _, f := range []struct {
		name  string
		body  *string
		dst   *string
		valid func(string) bool
	}{
		{"profileArn", b.ProfileArn, &p.ProfileArn, profileArnPattern.MatchString},
		{"roleArn", b.RoleArn, &p.RoleArn, roleArnPattern.MatchString},
		{"trustAnchorArn", b.TrustAnchorArn, &p.TrustAnchorArn, trustAnchorArnPattern.MatchString},
	} {
		qv := query[f.name]
		if len(qv) > 1 {
			return nil, validationError("Query parameter %s is repeated", f.name)
		}
		switch {
		case len(qv) == 1 && f.body != nil && qv[0] != *f.body:
			return nil, validationError("%s differs between the query and the body", f.name)
		case len(qv) == 1:
			*f.dst = qv[0]
		case f.body != nil:
			*f.dst = *f.body
		}
		if *f.dst == "" {
			return nil, validationError("%s is required", f.name)
		}
		if len(*f.dst) > 1011 || !f.valid(*f.dst) {
			return nil, validationError("%s %q is not a valid ARN", f.name, *f.dst)
		}
	}
	if b.DurationSeconds != nil {
		d := *b.DurationSeconds
		if d < minDurationSeconds || d > maxDurationSeconds {
			return nil, validationError("durationSeconds must be between %d and %d", minDurationSeconds, maxDurationSeconds)
		}
		p.DurationSeconds = d
	}
	if b.RoleSessionName != nil {
		if !sessionNamePattern.MatchString(*b.RoleSessionName) {
			return nil, validationError("roleSessionName must be 2-64 characters of [\\w+=,.@-]")
		}
		p.RoleSessionName = *b.RoleSessionName
	}
	if len(b.InstanceProperties) > 50 {
		return nil, validationError("instanceProperties holds more than 50 entries")
	}
	for k, v := range b.InstanceProperties {
		if len(k) < 1 || len(k) > 200 || len(v) < 1 || len(v) > 200 {
			return nil, validationError("instanceProperties keys and values must be 1-200 characters")
		}
	}
	return p, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
