package localaws

import (
	"net/http"
	"time"
)

// Trust-anchor operations (§8). Only CERTIFICATE_BUNDLE sources exist here:
// there is no ACM PCA to read a CA from.

type sourceJSON struct {
	SourceData *sourceDataJSON `json:"sourceData"`
	SourceType string          `json:"sourceType"`
}

// sourceDataJSON is the SourceData union: exactly one member is set.
type sourceDataJSON struct {
	AcmPcaArn           *string `json:"acmPcaArn,omitempty"`
	X509CertificateData *string `json:"x509CertificateData,omitempty"`
}

type notificationSettingInput struct {
	Channel   *string `json:"channel"`
	Enabled   *bool   `json:"enabled"`
	Event     string  `json:"event"`
	Threshold *int    `json:"threshold"`
}

type createTrustAnchorInput struct {
	CrlDpRevocationEnabled *bool                      `json:"crlDpRevocationEnabled"`
	Enabled                *bool                      `json:"enabled"`
	Name                   *string                    `json:"name"`
	NotificationSettings   []notificationSettingInput `json:"notificationSettings"`
	Source                 *sourceJSON                `json:"source"`
	Tags                   []tag                      `json:"tags"`
}

type updateTrustAnchorInput struct {
	CrlDpRevocationEnabled *bool       `json:"crlDpRevocationEnabled"`
	Name                   *string     `json:"name"`
	Source                 *sourceJSON `json:"source"`
}

type trustAnchorDetail struct {
	CreatedAt              string                `json:"createdAt"`
	CrlDpRevocationEnabled bool                  `json:"crlDpRevocationEnabled"`
	Enabled                bool                  `json:"enabled"`
	Name                   string                `json:"name"`
	NotificationSettings   []notificationSetting `json:"notificationSettings"`
	Source                 sourceJSON            `json:"source"`
	TrustAnchorArn         string                `json:"trustAnchorArn"`
	TrustAnchorID          string                `json:"trustAnchorId"`
	UpdatedAt              string                `json:"updatedAt"`
}

type trustAnchorResponse struct {
	TrustAnchor trustAnchorDetail `json:"trustAnchor"`
}

func (s *Server) trustAnchorDetail(account string, a *trustAnchor) trustAnchorDetail {
	pemData := a.CertificatePEM
	return trustAnchorDetail{
		CreatedAt:              apiTime(a.CreatedAt),
		CrlDpRevocationEnabled: a.CRLDPRevocationEnabled,
		Enabled:                a.Enabled,
		Name:                   a.Name,
		NotificationSettings:   a.NotificationSettings,
		Source:                 sourceJSON{SourceType: a.SourceType, SourceData: &sourceDataJSON{X509CertificateData: &pemData}},
		TrustAnchorArn:         s.resourceArn(account, "trust-anchor", a.ID),
		TrustAnchorID:          a.ID,
		UpdatedAt:              apiTime(a.UpdatedAt),
	}
}

// checkSource validates a Source and returns its PEM bundle.
func checkSource(src *sourceJSON) (string, *apiError) {
	if src == nil || src.SourceData == nil {
		return "", validationError("source with sourceType and sourceData is required")
	}
	if src.SourceType != "CERTIFICATE_BUNDLE" {
		return "", validationError("sourceType %q is not supported here; use CERTIFICATE_BUNDLE", src.SourceType)
	}
	d := src.SourceData
	if d.AcmPcaArn != nil || d.X509CertificateData == nil {
		return "", validationError("a CERTIFICATE_BUNDLE source needs sourceData.x509CertificateData and nothing else")
	}
	data := *d.X509CertificateData
	if len(data) < 1 || len(data) > 8000 {
		return "", validationError("x509CertificateData must be 1-8000 characters")
	}
	if _, err := parseAnchorBundle(data); err != nil {
		return "", validationError("x509CertificateData: %v", err)
	}
	return data, nil
}

// crlDP refuses CRL distribution point checking: this server has no network
// to fetch CRLs from, and silently not checking would fail open.
func crlDP(v *bool) *apiError {
	if v != nil && *v {
		return validationError("crlDpRevocationEnabled is not supported by this local endpoint; import CRLs with ImportCrl")
	}
	return nil
}

// defaultNotificationSettings are the ones a real response showed (§8).
func defaultNotificationSettings() []notificationSetting {
	return []notificationSetting{
		{Channel: "ALL", ConfiguredBy: "rolesanywhere.amazonaws.com", Enabled: true, Event: "CA_CERTIFICATE_EXPIRY", Threshold: 45},
		{Channel: "ALL", ConfiguredBy: "rolesanywhere.amazonaws.com", Enabled: true, Event: "END_ENTITY_CERTIFICATE_EXPIRY", Threshold: 45},
	}
}

// mergeNotificationSettings overlays requested settings on the defaults.
func mergeNotificationSettings(in []notificationSettingInput, by string) ([]notificationSetting, *apiError) {
	if len(in) > 50 {
		return nil, validationError("at most 50 notificationSettings are allowed")
	}
	out := defaultNotificationSettings()
	for _, n := range in {
		i := -1
		for j := range out {
			if out[j].Event == n.Event {
				i = j
			}
		}
		if i < 0 || n.Enabled == nil {
			return nil, validationError("notificationSettings need enabled and an event of CA_CERTIFICATE_EXPIRY or END_ENTITY_CERTIFICATE_EXPIRY")
		}
		if n.Channel != nil && *n.Channel != "ALL" {
			return nil, validationError("notification channel must be ALL")
		}
		if n.Threshold != nil && (*n.Threshold < 1 || *n.Threshold > 360) {
			return nil, validationError("notification threshold must be 1-360 days")
		}
		out[i].Enabled, out[i].ConfiguredBy = *n.Enabled, by
		if n.Threshold != nil {
			out[i].Threshold = *n.Threshold
		}
	}
	return out, nil
}

func (s *Server) createTrustAnchor(c *cpCall) (int, any, *apiError) {
	var in createTrustAnchorInput
	if e := decodeBody(c.body, &in); e != nil {
		return 0, nil, e
	}
	if in.Name == nil {
		return 0, nil, validationError("name is required")
	}
	if e := checkName(*in.Name); e != nil {
		return 0, nil, e
	}
	pemData, e := checkSource(in.Source)
	if e != nil {
		return 0, nil, e
	}
	if e := crlDP(in.CrlDpRevocationEnabled); e != nil {
		return 0, nil, e
	}
	if e := checkTags(in.Tags); e != nil {
		return 0, nil, e
	}
	notes, e := mergeNotificationSettings(in.NotificationSettings, s.principalArn(c.caller))
	if e != nil {
		return 0, nil, e
	}
	a := &trustAnchor{
		ID: newUUID(), Name: *in.Name, Enabled: boolOr(in.Enabled, false),
		SourceType: "CERTIFICATE_BUNDLE", CertificatePEM: pemData,
		NotificationSettings: notes, Tags: in.Tags, CreatedAt: c.now, UpdatedAt: c.now,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(c.acct.TrustAnchors) >= 50 {
		return 0, nil, &apiError{Status: http.StatusBadRequest, Code: "ValidationException", Message: "the quota of 50 trust anchors per account is reached"}
	}
	c.acct.TrustAnchors[a.ID] = a
	if err := s.persistLocked(); err != nil {
		return 0, nil, internalError(err.Error())
	}
	return http.StatusCreated, trustAnchorResponse{s.trustAnchorDetail(c.acct.id, a)}, nil
}

func (s *Server) getTrustAnchor(c *cpCall) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := c.acct.TrustAnchors[c.id]
	if a == nil {
		return 0, nil, notFound("Trust anchor %s not found", c.id)
	}
	return http.StatusOK, trustAnchorResponse{s.trustAnchorDetail(c.acct.id, a)}, nil
}

func (s *Server) listTrustAnchors(c *cpCall) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids, next, e := page(c.query, sortedIDs(c.acct.TrustAnchors, func(a *trustAnchor) time.Time { return a.CreatedAt }))
	if e != nil {
		return 0, nil, e
	}
	out := struct {
		NextToken    *string             `json:"nextToken,omitempty"`
		TrustAnchors []trustAnchorDetail `json:"trustAnchors"`
	}{NextToken: next, TrustAnchors: []trustAnchorDetail{}}
	for _, id := range ids {
		out.TrustAnchors = append(out.TrustAnchors, s.trustAnchorDetail(c.acct.id, c.acct.TrustAnchors[id]))
	}
	return http.StatusOK, out, nil
}

func (s *Server) updateTrustAnchor(c *cpCall) (int, any, *apiError) {
	var in updateTrustAnchorInput
	if e := decodeBody(c.body, &in); e != nil {
		return 0, nil, e
	}
	if in.Name != nil {
		if e := checkName(*in.Name); e != nil {
			return 0, nil, e
		}
	}
	var pemData string
	if in.Source != nil {
		var e *apiError
		if pemData, e = checkSource(in.Source); e != nil {
			return 0, nil, e
		}
	}
	if e := crlDP(in.CrlDpRevocationEnabled); e != nil {
		return 0, nil, e
	}
	return s.mutateTrustAnchor(c, func(a *trustAnchor) {
		if in.Name != nil {
			a.Name = *in.Name
		}
		if in.Source != nil {
			a.CertificatePEM = pemData
		}
	})
}

func enableTrustAnchor(enabled bool) cpHandler {
	return func(s *Server, c *cpCall) (int, any, *apiError) {
		return s.mutateTrustAnchor(c, func(a *trustAnchor) { a.Enabled = enabled })
	}
}

// mutateTrustAnchor applies change to the anchor named by the call, stamps
// updatedAt and persists.
func (s *Server) mutateTrustAnchor(c *cpCall, change func(*trustAnchor)) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := c.acct.TrustAnchors[c.id]
	if a == nil {
		return 0, nil, notFound("Trust anchor %s not found", c.id)
	}
	change(a)
	a.UpdatedAt = c.now
	if err := s.persistLocked(); err != nil {
		return 0, nil, internalError(err.Error())
	}
	return http.StatusOK, trustAnchorResponse{s.trustAnchorDetail(c.acct.id, a)}, nil
}

// deleteTrustAnchor also deletes the anchor's CRLs: they belong to it and
// would otherwise dangle (what AWS does is unverified).
func (s *Server) deleteTrustAnchor(c *cpCall) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := c.acct.TrustAnchors[c.id]
	if a == nil {
		return 0, nil, notFound("Trust anchor %s not found", c.id)
	}
	delete(c.acct.TrustAnchors, a.ID)
	for id, crl := range c.acct.CRLs {
		if crl.TrustAnchorID == a.ID {
			delete(c.acct.CRLs, id)
		}
	}
	if err := s.persistLocked(); err != nil {
		return 0, nil, internalError(err.Error())
	}
	return http.StatusOK, trustAnchorResponse{s.trustAnchorDetail(c.acct.id, a)}, nil
}
