package localaws

import (
	"net/http"
	"time"
)

// CRL operations (§8, §5.3). crlData is a JSON blob: standard base64 on the
// wire, whose decoded bytes must be the PEM text of one X509 CRL.

// CRL limits: decoded size (§8; counting decoded bytes is a choice, the
// real rule is unverified) and CRLs per trust anchor (§5.6, not adjustable).
const (
	maxCRLBytes      = 300000
	maxCRLsPerAnchor = 2
)

type importCRLInput struct {
	CrlData        []byte  `json:"crlData"`
	Enabled        *bool   `json:"enabled"`
	Name           *string `json:"name"`
	Tags           []tag   `json:"tags"`
	TrustAnchorArn *string `json:"trustAnchorArn"`
}

type updateCRLInput struct {
	CrlData []byte  `json:"crlData"`
	Name    *string `json:"name"`
}

type crlDetail struct {
	CreatedAt      string `json:"createdAt"`
	CrlArn         string `json:"crlArn"`
	CrlData        []byte `json:"crlData"`
	CrlID          string `json:"crlId"`
	Enabled        bool   `json:"enabled"`
	Name           string `json:"name"`
	TrustAnchorArn string `json:"trustAnchorArn"`
	UpdatedAt      string `json:"updatedAt"`
}

type crlResponse struct {
	Crl crlDetail `json:"crl"`
}

func (s *Server) crlDetail(account string, c *crlRecord) crlDetail {
	return crlDetail{
		CreatedAt:      apiTime(c.CreatedAt),
		CrlArn:         s.resourceArn(account, "crl", c.ID),
		CrlData:        c.PEM,
		CrlID:          c.ID,
		Enabled:        c.Enabled,
		Name:           c.Name,
		TrustAnchorArn: s.resourceArn(account, "trust-anchor", c.TrustAnchorID),
		UpdatedAt:      apiTime(c.UpdatedAt),
	}
}

// checkCRLData enforces the size limit before parsing, then requires one
// PEM X509 CRL.
func checkCRLData(data []byte) *apiError {
	if len(data) < 1 || len(data) > maxCRLBytes {
		return validationError("crlData must be 1-%d bytes; got %d", maxCRLBytes, len(data))
	}
	if _, err := parseCRLPEM(data); err != nil {
		return validationError("crlData must be a PEM X509 CRL: %v", err)
	}
	return nil
}

func (s *Server) importCRL(c *cpCall) (int, any, *apiError) {
	var in importCRLInput
	if e := decodeBody(c.body, &in); e != nil {
		return 0, nil, e
	}
	if in.Name == nil || in.TrustAnchorArn == nil || in.CrlData == nil {
		return 0, nil, validationError("crlData, name and trustAnchorArn are required")
	}
	for _, e := range []*apiError{checkName(*in.Name), checkCRLData(in.CrlData), checkTags(in.Tags)} {
		if e != nil {
			return 0, nil, e
		}
	}
	if !trustAnchorArnPattern.MatchString(*in.TrustAnchorArn) {
		return 0, nil, validationError("trustAnchorArn %q is not a trust anchor ARN", *in.TrustAnchorArn)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	anchorID, ok := s.resourceIDFromArn(c.acct.id, *in.TrustAnchorArn, "trust-anchor")
	if !ok || c.acct.TrustAnchors[anchorID] == nil {
		return 0, nil, notFound("Trust anchor %s not found", *in.TrustAnchorArn)
	}
	n := 0
	for _, existing := range c.acct.CRLs {
		if existing.TrustAnchorID == anchorID {
			n++
		}
	}
	if n >= maxCRLsPerAnchor {
		return 0, nil, validationError("trust anchor already has %d CRLs, the maximum", maxCRLsPerAnchor)
	}
	rec := &crlRecord{
		ID: newUUID(), Name: *in.Name, Enabled: boolOr(in.Enabled, false), TrustAnchorID: anchorID,
		PEM: in.CrlData, Tags: in.Tags, CreatedAt: c.now, UpdatedAt: c.now,
	}
	c.acct.CRLs[rec.ID] = rec
	if err := s.persistLocked(); err != nil {
		return 0, nil, internalError(err.Error())
	}
	return http.StatusCreated, crlResponse{s.crlDetail(c.acct.id, rec)}, nil
}

func (s *Server) getCRL(c *cpCall) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := c.acct.CRLs[c.id]
	if rec == nil {
		return 0, nil, notFound("CRL %s not found", c.id)
	}
	return http.StatusOK, crlResponse{s.crlDetail(c.acct.id, rec)}, nil
}

func (s *Server) listCRLs(c *cpCall) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids, next, e := page(c.query, sortedIDs(c.acct.CRLs, func(r *crlRecord) time.Time { return r.CreatedAt }))
	if e != nil {
		return 0, nil, e
	}
	out := struct {
		Crls      []crlDetail `json:"crls"`
		NextToken *string     `json:"nextToken,omitempty"`
	}{Crls: []crlDetail{}, NextToken: next}
	for _, id := range ids {
		out.Crls = append(out.Crls, s.crlDetail(c.acct.id, c.acct.CRLs[id]))
	}
	return http.StatusOK, out, nil
}

func (s *Server) updateCRL(c *cpCall) (int, any, *apiError) {
	var in updateCRLInput
	if e := decodeBody(c.body, &in); e != nil {
		return 0, nil, e
	}
	if in.Name != nil {
		if e := checkName(*in.Name); e != nil {
			return 0, nil, e
		}
	}
	if in.CrlData != nil {
		if e := checkCRLData(in.CrlData); e != nil {
			return 0, nil, e
		}
	}
	return s.mutateCRL(c, func(rec *crlRecord) {
		if in.Name != nil {
			rec.Name = *in.Name
		}
		if in.CrlData != nil {
			rec.PEM = in.CrlData
		}
	})
}

func enableCRL(enabled bool) cpHandler {
	return func(s *Server, c *cpCall) (int, any, *apiError) {
		return s.mutateCRL(c, func(rec *crlRecord) { rec.Enabled = enabled })
	}
}

func (s *Server) mutateCRL(c *cpCall, change func(*crlRecord)) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := c.acct.CRLs[c.id]
	if rec == nil {
		return 0, nil, notFound("CRL %s not found", c.id)
	}
	change(rec)
	rec.UpdatedAt = c.now
	if err := s.persistLocked(); err != nil {
		return 0, nil, internalError(err.Error())
	}
	return http.StatusOK, crlResponse{s.crlDetail(c.acct.id, rec)}, nil
}

func (s *Server) deleteCRL(c *cpCall) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := c.acct.CRLs[c.id]
	if rec == nil {
		return 0, nil, notFound("CRL %s not found", c.id)
	}
	delete(c.acct.CRLs, rec.ID)
	if err := s.persistLocked(); err != nil {
		return 0, nil, internalError(err.Error())
	}
	return http.StatusOK, crlResponse{s.crlDetail(c.acct.id, rec)}, nil
}
