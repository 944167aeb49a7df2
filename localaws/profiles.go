package localaws

import (
	"net/http"
	"time"

	"github.com/anchorage-pki/anchorage/iampolicy"
)

// Profile operations (§8).

type createProfileInput struct {
	AcceptRoleSessionName     *bool    `json:"acceptRoleSessionName"`
	DurationSeconds           *int     `json:"durationSeconds"`
	Enabled                   *bool    `json:"enabled"`
	ManagedPolicyArns         []string `json:"managedPolicyArns"`
	Name                      *string  `json:"name"`
	RequireInstanceProperties *bool    `json:"requireInstanceProperties"`
	RoleArns                  []string `json:"roleArns"`
	SessionPolicy             *string  `json:"sessionPolicy"`
	Tags                      []tag    `json:"tags"`
}

type updateProfileInput struct {
	AcceptRoleSessionName *bool    `json:"acceptRoleSessionName"`
	DurationSeconds       *int     `json:"durationSeconds"`
	ManagedPolicyArns     []string `json:"managedPolicyArns"`
	Name                  *string  `json:"name"`
	RoleArns              []string `json:"roleArns"`
	SessionPolicy         *string  `json:"sessionPolicy"`
}

type profileDetail struct {
	AcceptRoleSessionName     bool               `json:"acceptRoleSessionName"`
	AttributeMappings         []attributeMapping `json:"attributeMappings"`
	CreatedAt                 string             `json:"createdAt"`
	CreatedBy                 string             `json:"createdBy"`
	DurationSeconds           int                `json:"durationSeconds"`
	Enabled                   bool               `json:"enabled"`
	ManagedPolicyArns         []string           `json:"managedPolicyArns,omitempty"`
	Name                      string             `json:"name"`
	ProfileArn                string             `json:"profileArn"`
	ProfileID                 string             `json:"profileId"`
	RequireInstanceProperties bool               `json:"requireInstanceProperties"`
	RoleArns                  []string           `json:"roleArns"`
	SessionPolicy             string             `json:"sessionPolicy,omitempty"`
	UpdatedAt                 string             `json:"updatedAt"`
}

type profileResponse struct {
	Profile profileDetail `json:"profile"`
}

func (s *Server) profileDetail(account string, p *profile) profileDetail {
	return profileDetail{
		AcceptRoleSessionName:     p.AcceptRoleSessionName,
		AttributeMappings:         p.AttributeMappings,
		CreatedAt:                 apiTime(p.CreatedAt),
		CreatedBy:                 p.CreatedBy,
		DurationSeconds:           p.DurationSeconds,
		Enabled:                   p.Enabled,
		ManagedPolicyArns:         p.ManagedPolicyArns,
		Name:                      p.Name,
		ProfileArn:                s.resourceArn(account, "profile", p.ID),
		ProfileID:                 p.ID,
		RequireInstanceProperties: p.RequireInstanceProperties,
		RoleArns:                  p.RoleArns,
		SessionPolicy:             p.SessionPolicy,
		UpdatedAt:                 apiTime(p.UpdatedAt),
	}
}

// defaultAttributeMappings are the documented defaults (§5.5).
func defaultAttributeMappings() []attributeMapping {
	return []attributeMapping{
		{CertificateField: "x509Subject", MappingRules: []mappingRule{{Specifier: "*"}}},
		{CertificateField: "x509Issuer", MappingRules: []mappingRule{{Specifier: "*"}}},
		{CertificateField: "x509SAN", MappingRules: []mappingRule{{Specifier: "DNS"}, {Specifier: "URI"}, {Specifier: "Name/*"}}},
	}
}

func checkRoleArns(arns []string) *apiError {
	if len(arns) > 250 {
		return validationError("roleArns holds more than 250 roles")
	}
	for _, a := range arns {
		if len(a) > 1011 || !roleArnPattern.MatchString(a) {
			return validationError("roleArns: %q is not an IAM role ARN", a)
		}
	}
	return nil
}

func checkManagedPolicies(arns []string) *apiError {
	if len(arns) > 50 {
		return validationError("managedPolicyArns holds more than 50 policies")
	}
	for _, a := range arns {
		if len(a) < 1 || len(a) > 200 {
			return validationError("managedPolicyArns entries must be 1-200 characters")
		}
	}
	return nil
}

func checkDuration(d *int) *apiError {
	if d != nil && (*d < minDurationSeconds || *d > maxDurationSeconds) {
		return validationError("durationSeconds must be between %d and %d", minDurationSeconds, maxDurationSeconds)
	}
	return nil
}

// checkSessionPolicy bounds the profile's sessionPolicy and parses it as
// the identity-style policy STS will bound the session with.
func checkSessionPolicy(p *string) *apiError {
	if p == nil {
		return nil
	}
	if len(*p) < 1 || len(*p) > 100000 {
		return validationError("sessionPolicy must be 1-100000 characters")
	}
	if _, e := parsePolicy(*p, iampolicy.KindIdentity); e != nil {
		return validationError("sessionPolicy is not a valid policy: %s", e.Message)
	}
	return nil
}

func (s *Server) createProfile(c *cpCall) (int, any, *apiError) {
	var in createProfileInput
	if e := decodeBody(c.body, &in); e != nil {
		return 0, nil, e
	}
	if in.Name == nil {
		return 0, nil, validationError("name is required")
	}
	if in.RoleArns == nil {
		return 0, nil, validationError("roleArns is required")
	}
	for _, e := range []*apiError{checkName(*in.Name), checkRoleArns(in.RoleArns), checkManagedPolicies(in.ManagedPolicyArns),
		checkDuration(in.DurationSeconds), checkSessionPolicy(in.SessionPolicy), checkTags(in.Tags)} {
		if e != nil {
			return 0, nil, e
		}
	}
	p := &profile{
		ID: newUUID(), Name: *in.Name, Enabled: boolOr(in.Enabled, false), RoleArns: in.RoleArns,
		DurationSeconds: defaultDurationSeconds, AcceptRoleSessionName: boolOr(in.AcceptRoleSessionName, false),
		RequireInstanceProperties: boolOr(in.RequireInstanceProperties, false), ManagedPolicyArns: in.ManagedPolicyArns,
		AttributeMappings: defaultAttributeMappings(), Tags: in.Tags, CreatedBy: s.principalArn(c.caller),
		CreatedAt: c.now, UpdatedAt: c.now,
	}
	if in.DurationSeconds != nil {
		p.DurationSeconds = *in.DurationSeconds
	}
	if in.SessionPolicy != nil {
		p.SessionPolicy = *in.SessionPolicy
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(c.acct.Profiles) >= 250 {
		return 0, nil, validationError("the quota of 250 profiles per account is reached")
	}
	c.acct.Profiles[p.ID] = p
	if err := s.persistLocked(); err != nil {
		return 0, nil, internalError(err.Error())
	}
	return http.StatusCreated, profileResponse{s.profileDetail(c.acct.id, p)}, nil
}

func (s *Server) getProfile(c *cpCall) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := c.acct.Profiles[c.id]
	if p == nil {
		return 0, nil, notFound("Profile %s not found", c.id)
	}
	return http.StatusOK, profileResponse{s.profileDetail(c.acct.id, p)}, nil
}

func (s *Server) listProfiles(c *cpCall) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids, next, e := page(c.query, sortedIDs(c.acct.Profiles, func(p *profile) time.Time { return p.CreatedAt }))
	if e != nil {
		return 0, nil, e
	}
	out := struct {
		NextToken *string         `json:"nextToken,omitempty"`
		Profiles  []profileDetail `json:"profiles"`
	}{NextToken: next, Profiles: []profileDetail{}}
	for _, id := range ids {
		out.Profiles = append(out.Profiles, s.profileDetail(c.acct.id, c.acct.Profiles[id]))
	}
	return http.StatusOK, out, nil
}

func (s *Server) updateProfile(c *cpCall) (int, any, *apiError) {
	var in updateProfileInput
	if e := decodeBody(c.body, &in); e != nil {
		return 0, nil, e
	}
	if in.Name != nil {
		if e := checkName(*in.Name); e != nil {
			return 0, nil, e
		}
	}
	for _, e := range []*apiError{checkRoleArns(in.RoleArns), checkManagedPolicies(in.ManagedPolicyArns),
		checkDuration(in.DurationSeconds), checkSessionPolicy(in.SessionPolicy)} {
		if e != nil {
			return 0, nil, e
		}
	}
	return s.mutateProfile(c, func(p *profile) {
		if in.Name != nil {
			p.Name = *in.Name
		}
		if in.RoleArns != nil {
			p.RoleArns = in.RoleArns
		}
		if in.ManagedPolicyArns != nil {
			p.ManagedPolicyArns = in.ManagedPolicyArns
		}
		if in.DurationSeconds != nil {
			p.DurationSeconds = *in.DurationSeconds
		}
		if in.SessionPolicy != nil {
			p.SessionPolicy = *in.SessionPolicy
		}
		if in.AcceptRoleSessionName != nil {
			p.AcceptRoleSessionName = *in.AcceptRoleSessionName
		}
	})
}

func enableProfile(enabled bool) cpHandler {
	return func(s *Server, c *cpCall) (int, any, *apiError) {
		return s.mutateProfile(c, func(p *profile) { p.Enabled = enabled })
	}
}

func (s *Server) mutateProfile(c *cpCall, change func(*profile)) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := c.acct.Profiles[c.id]
	if p == nil {
		return 0, nil, notFound("Profile %s not found", c.id)
	}
	change(p)
	p.UpdatedAt = c.now
	if err := s.persistLocked(); err != nil {
		return 0, nil, internalError(err.Error())
	}
	return http.StatusOK, profileResponse{s.profileDetail(c.acct.id, p)}, nil
}

func (s *Server) deleteProfile(c *cpCall) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := c.acct.Profiles[c.id]
	if p == nil {
		return 0, nil, notFound("Profile %s not found", c.id)
	}
	delete(c.acct.Profiles, p.ID)
	if err := s.persistLocked(); err != nil {
		return 0, nil, internalError(err.Error())
	}
	return http.StatusOK, profileResponse{s.profileDetail(c.acct.id, p)}, nil
}
