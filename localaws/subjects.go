package localaws

import (
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"time"
)

// Subjects (§8, §11): the service's record of which certificate identities
// came, with which certificates, from where. One Subject per certificate
// subject per account; only certificates that chain to a trust anchor of
// the account are recorded (an untrusted caller must not grow state), and
// every list is capped, oldest entries evicted first.
const (
	maxSubjectsPerAccount       = 1000
	maxCredentialsPerSubject    = 20
	maxInstancePropsPerSubject  = 20
	maxSubjectCertificateLength = 8000 // x509CertificateData quota (§11)
)

type subject struct {
	ID                 string               `json:"id"`
	X509Subject        string               `json:"x509Subject"`
	Enabled            bool                 `json:"enabled"`
	CreatedAt          time.Time            `json:"createdAt"`
	UpdatedAt          time.Time            `json:"updatedAt"`
	LastSeenAt         time.Time            `json:"lastSeenAt"`
	Credentials        []subjectCredential  `json:"credentials"`
	InstanceProperties []subjectInstanceRec `json:"instanceProperties"`
}

type subjectCredential struct {
	SerialNumber        string    `json:"serialNumber"`
	Issuer              string    `json:"issuer"`
	Enabled             bool      `json:"enabled"`
	Failed              bool      `json:"failed"`
	SeenAt              time.Time `json:"seenAt"`
	X509CertificateData string    `json:"x509CertificateData"`
}

type subjectInstanceRec struct {
	Properties map[string]string `json:"properties"`
	Failed     bool              `json:"failed"`
	SeenAt     time.Time         `json:"seenAt"`
}

// recordSubjectLocked notes one CreateSession by a certificate that chains
// to an anchor of a: its serial (the newest outcome per serial and issuer)
// and the instance properties it sent. The caller persists.
func (s *Server) recordSubjectLocked(a *accountState, leaf *x509.Certificate, props map[string]string, failed bool, now time.Time) {
	id := subjectID(leaf)
	sub := a.Subjects[id]
	if sub == nil {
		if len(a.Subjects) >= maxSubjectsPerAccount {
			var oldest *subject
			for _, x := range a.Subjects {
				if oldest == nil || x.LastSeenAt.Before(oldest.LastSeenAt) {
					oldest = x
				}
			}
			delete(a.Subjects, oldest.ID)
		}
		sub = &subject{ID: id, X509Subject: leaf.Subject.String(), Enabled: true, CreatedAt: now,
			Credentials: []subjectCredential{}, InstanceProperties: []subjectInstanceRec{}}
		a.Subjects[id] = sub
	}
	sub.LastSeenAt, sub.UpdatedAt = now, now
	serial, issuer := serialHex(leaf), leaf.Issuer.String()
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}))
	if len(certPEM) > maxSubjectCertificateLength {
		certPEM = ""
	}
	entry := subjectCredential{SerialNumber: serial, Issuer: issuer, Enabled: true, Failed: failed, SeenAt: now, X509CertificateData: certPEM}
	kept := sub.Credentials[:0:0]
	for _, cr := range sub.Credentials {
		if cr.SerialNumber != serial || cr.Issuer != issuer {
			kept = append(kept, cr)
		}
	}
	sub.Credentials = capNewest(append(kept, entry), maxCredentialsPerSubject)
	if len(props) > 0 {
		sub.InstanceProperties = capNewest(append(sub.InstanceProperties, subjectInstanceRec{Properties: props, Failed: failed, SeenAt: now}), maxInstancePropsPerSubject)
	}
}

// capNewest keeps the last max entries (entries are appended in time order).
func capNewest[T any](list []T, max int) []T {
	if len(list) <= max {
		return list
	}
	return append(list[:0:0], list[len(list)-max:]...)
}

type subjectSummaryJSON struct {
	CreatedAt   string `json:"createdAt"`
	Enabled     bool   `json:"enabled"`
	LastSeenAt  string `json:"lastSeenAt"`
	SubjectArn  string `json:"subjectArn"`
	SubjectID   string `json:"subjectId"`
	UpdatedAt   string `json:"updatedAt"`
	X509Subject string `json:"x509Subject"`
}

type credentialSummaryJSON struct {
	Enabled             bool   `json:"enabled"`
	Failed              bool   `json:"failed"`
	Issuer              string `json:"issuer"`
	SeenAt              string `json:"seenAt"`
	SerialNumber        string `json:"serialNumber"`
	X509CertificateData string `json:"x509CertificateData,omitempty"`
}

type instancePropertyJSON struct {
	Failed     bool              `json:"failed"`
	Properties map[string]string `json:"properties"`
	SeenAt     string            `json:"seenAt"`
}

type subjectDetailJSON struct {
	subjectSummaryJSON
	Credentials        []credentialSummaryJSON `json:"credentials"`
	InstanceProperties []instancePropertyJSON  `json:"instanceProperties"`
}

func (s *Server) subjectSummary(account string, x *subject) subjectSummaryJSON {
	return subjectSummaryJSON{CreatedAt: apiTime(x.CreatedAt), Enabled: x.Enabled, LastSeenAt: apiTime(x.LastSeenAt),
		SubjectArn: s.resourceArn(account, "subject", x.ID), SubjectID: x.ID, UpdatedAt: apiTime(x.UpdatedAt), X509Subject: x.X509Subject}
}

func (s *Server) getSubject(c *cpCall) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := c.acct.Subjects[c.id]
	if x == nil {
		return 0, nil, notFound("Subject %s not found", c.id)
	}
	out := subjectDetailJSON{subjectSummaryJSON: s.subjectSummary(c.acct.id, x),
		Credentials: []credentialSummaryJSON{}, InstanceProperties: []instancePropertyJSON{}}
	for _, cr := range x.Credentials {
		out.Credentials = append(out.Credentials, credentialSummaryJSON{Enabled: cr.Enabled, Failed: cr.Failed, Issuer: cr.Issuer,
			SeenAt: apiTime(cr.SeenAt), SerialNumber: cr.SerialNumber, X509CertificateData: cr.X509CertificateData})
	}
	for _, ip := range x.InstanceProperties {
		out.InstanceProperties = append(out.InstanceProperties, instancePropertyJSON{Failed: ip.Failed, Properties: ip.Properties, SeenAt: apiTime(ip.SeenAt)})
	}
	return http.StatusOK, struct {
		Subject subjectDetailJSON `json:"subject"`
	}{out}, nil
}

func (s *Server) listSubjects(c *cpCall) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := sortedIDs(c.acct.Subjects, func(x *subject) time.Time { return x.CreatedAt })
	page, next, e := page(c.query, ids)
	if e != nil {
		return 0, nil, e
	}
	out := struct {
		NextToken *string              `json:"nextToken,omitempty"`
		Subjects  []subjectSummaryJSON `json:"subjects"`
	}{NextToken: next, Subjects: []subjectSummaryJSON{}}
	for _, id := range page {
		out.Subjects = append(out.Subjects, s.subjectSummary(c.acct.id, c.acct.Subjects[id]))
	}
	return http.StatusOK, out, nil
}
