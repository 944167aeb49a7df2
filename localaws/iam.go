package localaws

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// IAM's query protocol (awsquery), the part CreateSession depends on: roles
// with their trust policies, inline role policies, customer managed
// policies and their attachment to roles. aws-sdk-go-v2/service/iam and
// `aws iam --endpoint-url` POST a form "Action=...&Version=2010-05-08"
// signed for service "iam" in us-east-1 (IAM is global) and read XML in
// iamNamespace; errors are ErrorResponse/Error{Type,Code,Message} with the
// HTTP status IAM uses for the code (404 NoSuchEntity, 409
// EntityAlreadyExists/DeleteConflict/LimitExceeded, 400 otherwise).
//
// Policy documents are validated when stored (policy.go) and returned
// URL-encoded, as IAM returns them. Only version v1 of a managed policy
// exists (no CreatePolicyVersion), and there are no AWS managed policies.

const (
	iamVersion   = "2010-05-08"
	iamNamespace = "https://iam.amazonaws.com/doc/2010-05-08/"
	// iamRegion is the only credential-scope region IAM accepts in the aws
	// partition.
	iamRegion  = "us-east-1"
	maxIAMBody = 256 << 10
)

// IAM quotas (IAM User Guide, "IAM and AWS STS quotas"; defaults).
const (
	maxRolesPerAccount       = 1000
	maxPoliciesPerAccount    = 1500
	maxAttachedPerRole       = 10
	maxTrustPolicyChars      = 2048
	maxInlineRolePolicyChars = 10240 // aggregate of a role's inline policies
	maxManagedPolicyChars    = 6144
	maxIAMTags               = 50
)

type iamTag struct {
	Key   string `json:"key" xml:"Key"`
	Value string `json:"value" xml:"Value"`
}

// iamRole is a role as IAM keeps it.
type iamRole struct {
	Name               string            `json:"name"`
	ID                 string            `json:"id"`
	Path               string            `json:"path"`
	Description        string            `json:"description,omitempty"`
	MaxSessionDuration int               `json:"maxSessionDuration"`
	TrustPolicy        string            `json:"trustPolicy"`
	InlinePolicies     map[string]string `json:"inlinePolicies"` // name -> document
	Attached           []string          `json:"attached"`       // managed policy ARNs, in attach order
	Tags               []iamTag          `json:"tags,omitempty"`
	CreatedAt          time.Time         `json:"createdAt"`
}

// managedPolicy is a customer managed policy (one version, v1).
type managedPolicy struct {
	Name        string    `json:"name"`
	ID          string    `json:"id"`
	Path        string    `json:"path"`
	Description string    `json:"description,omitempty"`
	Document    string    `json:"document"`
	Tags        []iamTag  `json:"tags,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

func roleArnOf(account string, r *iamRole) string {
	return "arn:aws:iam::" + account + ":role" + r.Path + r.Name
}

func policyArnOf(account string, p *managedPolicy) string {
	return "arn:aws:iam::" + account + ":policy" + p.Path + p.Name
}

// iamCall is one authenticated IAM request.
type iamCall struct {
	caller *principal
	acct   *accountState // read and written under s.mu
	form   url.Values
	now    time.Time
}

// iamHandler returns the <Action>Result content, or nil for actions whose
// response carries only ResponseMetadata.
type iamHandler func(s *Server, c *iamCall) (any, *apiError)

type iamAction struct {
	handler iamHandler
	params  []string // every parameter the action takes ("Tags" covers Tags.member.N.*)
}

var iamActions = map[string]iamAction{
	"CreateRole":               {(*Server).iamCreateRole, []string{"RoleName", "AssumeRolePolicyDocument", "Path", "Description", "MaxSessionDuration", "Tags"}},
	"GetRole":                  {(*Server).iamGetRole, []string{"RoleName"}},
	"ListRoles":                {(*Server).iamListRoles, []string{"PathPrefix", "Marker", "MaxItems"}},
	"DeleteRole":               {(*Server).iamDeleteRole, []string{"RoleName"}},
	"UpdateAssumeRolePolicy":   {(*Server).iamUpdateAssumeRolePolicy, []string{"RoleName", "PolicyDocument"}},
	"PutRolePolicy":            {(*Server).iamPutRolePolicy, []string{"RoleName", "PolicyName", "PolicyDocument"}},
	"GetRolePolicy":            {(*Server).iamGetRolePolicy, []string{"RoleName", "PolicyName"}},
	"ListRolePolicies":         {(*Server).iamListRolePolicies, []string{"RoleName", "Marker", "MaxItems"}},
	"DeleteRolePolicy":         {(*Server).iamDeleteRolePolicy, []string{"RoleName", "PolicyName"}},
	"CreatePolicy":             {(*Server).iamCreatePolicy, []string{"PolicyName", "PolicyDocument", "Path", "Description", "Tags"}},
	"GetPolicy":                {(*Server).iamGetPolicy, []string{"PolicyArn"}},
	"GetPolicyVersion":         {(*Server).iamGetPolicyVersion, []string{"PolicyArn", "VersionId"}},
	"ListPolicies":             {(*Server).iamListPolicies, []string{"Scope", "OnlyAttached", "PathPrefix", "PolicyUsageFilter", "Marker", "MaxItems"}},
	"DeletePolicy":             {(*Server).iamDeletePolicy, []string{"PolicyArn"}},
	"AttachRolePolicy":         {(*Server).iamAttachRolePolicy, []string{"RoleName", "PolicyArn"}},
	"DetachRolePolicy":         {(*Server).iamDetachRolePolicy, []string{"RoleName", "PolicyArn"}},
	"ListAttachedRolePolicies": {(*Server).iamListAttachedRolePolicies, []string{"RoleName", "PathPrefix", "Marker", "MaxItems"}},
}

// isIAMRequest recognises an IAM call by its credential scope.
func isIAMRequest(r *http.Request) bool {
	a, err := parseAuthorization(r.Header.Get("Authorization"))
	return err == nil && a.Service == "iam"
}

func (s *Server) serveIAM(w http.ResponseWriter, r *http.Request, reqID string, body []byte) {
	op := "IAM"
	form, formErr := url.ParseQuery(string(body))
	if formErr == nil && form.Get("Action") != "" {
		op = "iam:" + form.Get("Action")
	}
	refuse := func(e *apiError, attrs ...any) {
		s.logDecision(r, reqID, op, e, attrs...)
		writeQueryError(w, iamNamespace, reqID, e)
	}
	if r.Method != http.MethodPost {
		refuse(&apiError{Status: http.StatusBadRequest, Code: "InvalidAction", Message: "IAM actions must be POSTed as a form"})
		return
	}
	caller, sigErr := s.verifySigV4Region(r, body, "iam", iamRegion, s.now())
	if sigErr != nil {
		refuse(stsAuthError(sigErr))
		return
	}
	who := []any{"access_key_id", caller.AccessKeyID, "caller", s.principalArn(caller)}
	if formErr != nil {
		refuse(&apiError{Status: http.StatusBadRequest, Code: "MalformedInput", Message: "request body is not a form"}, who...)
		return
	}
	action, ok := iamActions[form.Get("Action")]
	if !ok || form.Get("Version") != iamVersion {
		refuse(&apiError{Status: http.StatusBadRequest, Code: "InvalidAction",
			Message: "Could not find operation " + form.Get("Action") + " for version " + form.Get("Version")}, who...)
		return
	}
	if e := checkIAMParams(form, action.params); e != nil {
		refuse(e, who...)
		return
	}
	s.mu.Lock()
	acct := s.st.account(caller.Account)
	s.mu.Unlock()
	result, apiErr := action.handler(s, &iamCall{caller: caller, acct: acct, form: form, now: s.now()})
	if apiErr != nil {
		refuse(apiErr, who...)
		return
	}
	s.logDecision(r, reqID, op, nil, who...)
	writeQueryResult(w, iamNamespace, form.Get("Action"), reqID, result)
}

// checkIAMParams refuses parameters the action does not take (a
// PermissionsBoundary, say, which is not modelled here, must not be
// silently dropped) and repeated ones.
func checkIAMParams(form url.Values, allowed []string) *apiError {
	for key, vs := range form {
		if key == "Action" || key == "Version" {
			continue
		}
		name, _, _ := strings.Cut(key, ".")
		if !contains(allowed, name) {
			return &apiError{Status: http.StatusBadRequest, Code: "InvalidInput", Message: "Parameter " + key + " is not supported by this endpoint for this action"}
		}
		if len(vs) > 1 {
			return &apiError{Status: http.StatusBadRequest, Code: "InvalidInput", Message: "Parameter " + key + " is repeated"}
		}
	}
	return nil
}

func iamNoSuchEntity(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: "NoSuchEntity", Message: fmt.Sprintf(format, args...)}
}

func iamConflict(code, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusConflict, Code: code, Message: fmt.Sprintf(format, args...)}
}

func iamValidation(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "ValidationError", Message: fmt.Sprintf(format, args...)}
}

func iamInvalidInput(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "InvalidInput", Message: fmt.Sprintf(format, args...)}
}

func iamMalformed(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "MalformedPolicyDocument", Message: fmt.Sprintf(format, args...)}
}

var (
	iamNamePattern   = regexp.MustCompile(`^[\w+=,.@-]+$`)
	iamPathPattern   = regexp.MustCompile(`^(/|/[\x21-\x7e]+/)$`)
	iamPrefixPattern = regexp.MustCompile(`^/[\x21-\x7e]*$`)
	policyArnPattern = regexp.MustCompile(`^arn:aws:iam::(\d{12}|aws):policy(/|/[\x21-\x7e]+/)([\w+=,.@-]{1,128})$`)
)

// required returns a parameter that must be present, in IAM's validation
// wording.
func required(form url.Values, name string) (string, *apiError) {
	v, ok := form[name]
	if !ok {
		return "", iamValidation("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", lowerFirst(name))
	}
	return v[0], nil
}

// requiredAll is required for several parameters, in order: the first
// missing one is the error, as IAM reports it.
func requiredAll(form url.Values, names ...string) ([]string, *apiError) {
	out := make([]string, len(names))
	for i, n := range names {
		v, e := required(form, n)
		if e != nil {
			return nil, e
		}
		out[i] = v
	}
	return out, nil
}

func lowerFirst(s string) string { return strings.ToLower(s[:1]) + s[1:] }

func checkIAMName(field, v string, max int) *apiError {
	if len(v) < 1 || len(v) > max || !iamNamePattern.MatchString(v) {
		return iamValidation("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+ and have length 1-%d", v, lowerFirst(field), max)
	}
	return nil
}

// pathParam reads an optional Path (default "/").
func pathParam(form url.Values) (string, *apiError) {
	p, ok := form["Path"]
	if !ok {
		return "/", nil
	}
	if len(p[0]) > 512 || !iamPathPattern.MatchString(p[0]) {
		return "", iamValidation("The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.")
	}
	return p[0], nil
}

// tagsParam reads Tags.member.N.Key / .Value (N from 1, consecutive).
func tagsParam(form url.Values) ([]iamTag, *apiError) {
	var tags []iamTag
	for n := 1; ; n++ {
		k, hasKey := form[fmt.Sprintf("Tags.member.%d.Key", n)]
		v, hasValue := form[fmt.Sprintf("Tags.member.%d.Value", n)]
		if !hasKey && !hasValue {
			break
		}
		if !hasKey || !hasValue {
			return nil, iamValidation("Tags.member.%d needs both Key and Value", n)
		}
		if len(k[0]) < 1 || len(k[0]) > 128 || len(v[0]) > 256 {
			return nil, iamValidation("Tags.member.%d: keys are 1-128 and values 0-256 characters", n)
		}
		for _, t := range tags {
			if strings.EqualFold(t.Key, k[0]) {
				return nil, iamInvalidInput("Duplicate tag keys found. Please note that Tag keys are case insensitive.")
			}
		}
		tags = append(tags, iamTag{Key: k[0], Value: v[0]})
	}
	n := 0
	for key := range form {
		if strings.HasPrefix(key, "Tags") {
			n++
		}
	}
	if n != 2*len(tags) {
		return nil, iamInvalidInput("Tags must be given as Tags.member.N.Key and Tags.member.N.Value with N = 1, 2, ...")
	}
	if len(tags) > maxIAMTags {
		return nil, iamConflict("LimitExceeded", "The number of tags has reached the maximum limit of %d.", maxIAMTags)
	}
	return tags, nil
}

// pageParams reads Marker and MaxItems (1-1000, default 100).
func pageParams(form url.Values) (start, size int, e *apiError) {
	size = 100
	if v, ok := form["MaxItems"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > 1000 {
			return 0, 0, iamValidation("1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000", v[0])
		}
		size = n
	}
	if v, ok := form["Marker"]; ok {
		raw, err := base64.RawURLEncoding.DecodeString(v[0])
		n, convErr := strconv.Atoi(string(raw))
		if err != nil || convErr != nil || n < 0 {
			return 0, 0, iamInvalidInput("Invalid Marker.")
		}
		start = n
	}
	return start, size, nil
}

// pageOf slices n items from start; it returns the end index, whether the
// list is truncated and the marker of the next page.
func pageOf(n, start, size int) (from, to int, truncated bool, marker string) {
	if start > n {
		start = n
	}
	to = start + size
	if to >= n {
		return start, n, false, ""
	}
	return start, to, true, base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(to)))
}

// encodeDocument is how IAM returns a policy document: URL-encoded, spaces
// as %20 (botocore and the console decode it with unquote, which would
// keep a "+").
func encodeDocument(doc string) string {
	return strings.ReplaceAll(url.QueryEscape(doc), "+", "%20")
}

func iamTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// policyChars is the size IAM counts against its quotas: the document
// without whitespace.
func policyChars(doc string) int {
	n := 0
	for _, r := range doc {
		if r != ' ' && r != '\t' && r != '\n' && r != '\r' {
			n++
		}
	}
	return n
}

// XML shapes.

type roleXML struct {
	Path                     string   `xml:"Path"`
	RoleName                 string   `xml:"RoleName"`
	RoleID                   string   `xml:"RoleId"`
	Arn                      string   `xml:"Arn"`
	CreateDate               string   `xml:"CreateDate"`
	AssumeRolePolicyDocument string   `xml:"AssumeRolePolicyDocument"`
	Description              string   `xml:"Description,omitempty"`
	MaxSessionDuration       int      `xml:"MaxSessionDuration"`
	Tags                     []iamTag `xml:"Tags>member,omitempty"`
}

func (s *Server) roleXML(account string, r *iamRole, withTags bool) roleXML {
	out := roleXML{Path: r.Path, RoleName: r.Name, RoleID: r.ID, Arn: roleArnOf(account, r), CreateDate: iamTime(r.CreatedAt),
		AssumeRolePolicyDocument: encodeDocument(r.TrustPolicy), Description: r.Description, MaxSessionDuration: r.MaxSessionDuration}
	if withTags {
		out.Tags = r.Tags
	}
	return out
}

type policyXML struct {
	PolicyName                    string   `xml:"PolicyName"`
	PolicyID                      string   `xml:"PolicyId"`
	Arn                           string   `xml:"Arn"`
	Path                          string   `xml:"Path"`
	DefaultVersionID              string   `xml:"DefaultVersionId"`
	AttachmentCount               int      `xml:"AttachmentCount"`
	PermissionsBoundaryUsageCount int      `xml:"PermissionsBoundaryUsageCount"`
	IsAttachable                  bool     `xml:"IsAttachable"`
	Description                   string   `xml:"Description,omitempty"`
	CreateDate                    string   `xml:"CreateDate"`
	UpdateDate                    string   `xml:"UpdateDate"`
	Tags                          []iamTag `xml:"Tags>member,omitempty"`
}

// attachmentsLocked counts the roles a managed policy is attached to.
func attachmentsLocked(a *accountState, arn string) int {
	n := 0
	for _, r := range a.Roles {
		if contains(r.Attached, arn) {
			n++
		}
	}
	return n
}

func policyXMLOf(a *accountState, p *managedPolicy, withTags bool) policyXML {
	arn := policyArnOf(a.id, p)
	out := policyXML{PolicyName: p.Name, PolicyID: p.ID, Arn: arn, Path: p.Path, DefaultVersionID: "v1",
		AttachmentCount: attachmentsLocked(a, arn), IsAttachable: true, Description: p.Description,
		CreateDate: iamTime(p.CreatedAt), UpdateDate: iamTime(p.UpdatedAt)}
	if withTags {
		out.Tags = p.Tags
	}
	return out
}

type attachedPolicyXML struct {
	PolicyName string `xml:"PolicyName"`
	PolicyArn  string `xml:"PolicyArn"`
}

// Handlers.

func (s *Server) roleLocked(a *accountState, name string) (*iamRole, *apiError) {
	r := a.Roles[strings.ToLower(name)]
	if r == nil {
		return nil, iamNoSuchEntity("The role with name %s cannot be found.", name)
	}
	return r, nil
}

// policyLocked finds a managed policy of the account by ARN.
func (s *Server) policyLocked(a *accountState, arn string) (*managedPolicy, *apiError) {
	m := policyArnPattern.FindStringSubmatch(arn)
	if m == nil {
		return nil, iamValidation("ARN %s is not valid.", arn)
	}
	p := a.Policies[strings.ToLower(m[3])]
	if p == nil || policyArnOf(a.id, p) != arn {
		return nil, iamNoSuchEntity("Policy %s does not exist or is not attachable.", arn)
	}
	return p, nil
}

func (s *Server) iamCreateRole(c *iamCall) (any, *apiError) {
	v, e := requiredAll(c.form, "RoleName", "AssumeRolePolicyDocument")
	if e != nil {
		return nil, e
	}
	name, doc := v[0], v[1]
	if e := checkIAMName("RoleName", name, 64); e != nil {
		return nil, e
	}
	path, e := pathParam(c.form)
	if e != nil {
		return nil, e
	}
	if e := checkTrustPolicy(doc); e != nil {
		return nil, e
	}
	desc := c.form.Get("Description")
	if len(desc) > 1000 {
		return nil, iamValidation("Description must be at most 1000 characters")
	}
	maxDur := 3600
	if v, ok := c.form["MaxSessionDuration"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 3600 || n > 43200 {
			return nil, iamValidation("1 validation error detected: Value '%s' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200", v[0])
		}
		maxDur = n
	}
	tags, e := tagsParam(c.form)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.acct.Roles[strings.ToLower(name)] != nil {
		return nil, iamConflict("EntityAlreadyExists", "Role with name %s already exists.", name)
	}
	if len(c.acct.Roles) >= maxRolesPerAccount {
		return nil, iamConflict("LimitExceeded", "Cannot exceed quota for RolesPerAccount: %d", maxRolesPerAccount)
	}
	r := &iamRole{Name: name, ID: newIAMID("AROA"), Path: path, Description: desc, MaxSessionDuration: maxDur,
		TrustPolicy: doc, InlinePolicies: map[string]string{}, Attached: []string{}, Tags: tags, CreatedAt: c.now.Truncate(time.Second)}
	c.acct.Roles[strings.ToLower(name)] = r
	if err := s.persistLocked(); err != nil {
		return nil, internalError(err.Error())
	}
	return struct {
		Role roleXML `xml:"Role"`
	}{s.roleXML(c.acct.id, r, true)}, nil
}

func (s *Server) iamGetRole(c *iamCall) (any, *apiError) {
	name, e := required(c.form, "RoleName")
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, e := s.roleLocked(c.acct, name)
	if e != nil {
		return nil, e
	}
	return struct {
		Role roleXML `xml:"Role"`
	}{s.roleXML(c.acct.id, r, true)}, nil
}

func prefixParam(form url.Values) (string, *apiError) {
	p, ok := form["PathPrefix"]
	if !ok {
		return "/", nil
	}
	if len(p[0]) > 512 || !iamPrefixPattern.MatchString(p[0]) {
		return "", iamValidation("The specified value for pathPrefix is invalid. It must begin with /.")
	}
	return p[0], nil
}

func (s *Server) iamListRoles(c *iamCall) (any, *apiError) {
	prefix, e := prefixParam(c.form)
	if e != nil {
		return nil, e
	}
	start, size, e := pageParams(c.form)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var roles []*iamRole
	for _, r := range c.acct.Roles {
		if strings.HasPrefix(r.Path, prefix) {
			roles = append(roles, r)
		}
	}
	sort.Slice(roles, func(i, j int) bool { return strings.ToLower(roles[i].Name) < strings.ToLower(roles[j].Name) })
	from, to, truncated, marker := pageOf(len(roles), start, size)
	out := struct {
		Roles       []roleXML `xml:"Roles>member"`
		IsTruncated bool      `xml:"IsTruncated"`
		Marker      string    `xml:"Marker,omitempty"`
	}{IsTruncated: truncated, Marker: marker}
	for _, r := range roles[from:to] {
		out.Roles = append(out.Roles, s.roleXML(c.acct.id, r, false))
	}
	return out, nil
}

func (s *Server) iamDeleteRole(c *iamCall) (any, *apiError) {
	name, e := required(c.form, "RoleName")
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, e := s.roleLocked(c.acct, name)
	if e != nil {
		return nil, e
	}
	if len(r.InlinePolicies) > 0 {
		return nil, iamConflict("DeleteConflict", "Cannot delete entity, must delete policies first.")
	}
	if len(r.Attached) > 0 {
		return nil, iamConflict("DeleteConflict", "Cannot delete entity, must detach all policies first.")
	}
	delete(c.acct.Roles, strings.ToLower(r.Name))
	if err := s.persistLocked(); err != nil {
		return nil, internalError(err.Error())
	}
	return nil, nil
}

func (s *Server) iamUpdateAssumeRolePolicy(c *iamCall) (any, *apiError) {
	v, e := requiredAll(c.form, "RoleName", "PolicyDocument")
	if e != nil {
		return nil, e
	}
	name, doc := v[0], v[1]
	if e := checkTrustPolicy(doc); e != nil {
		return nil, e
	}
	return nil, s.mutateRole(c, name, func(r *iamRole) *apiError {
		r.TrustPolicy = doc
		return nil
	})
}

// mutateRole applies change to a role under the lock and persists.
func (s *Server) mutateRole(c *iamCall, name string, change func(*iamRole) *apiError) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, e := s.roleLocked(c.acct, name)
	if e != nil {
		return e
	}
	if e := change(r); e != nil {
		return e
	}
	if err := s.persistLocked(); err != nil {
		return internalError(err.Error())
	}
	return nil
}

func (s *Server) iamPutRolePolicy(c *iamCall) (any, *apiError) {
	v, e := requiredAll(c.form, "RoleName", "PolicyName", "PolicyDocument")
	if e != nil {
		return nil, e
	}
	name, pname, doc := v[0], v[1], v[2]
	if e := checkIAMName("PolicyName", pname, 128); e != nil {
		return nil, e
	}
	if e := checkIdentityPolicy(doc); e != nil {
		return nil, e
	}
	return nil, s.mutateRole(c, name, func(r *iamRole) *apiError {
		total := policyChars(doc)
		for n, d := range r.InlinePolicies {
			if n != pname {
				total += policyChars(d)
			}
		}
		if total > maxInlineRolePolicyChars {
			return iamConflict("LimitExceeded", "Maximum policy size of %d bytes exceeded for role %s", maxInlineRolePolicyChars, r.Name)
		}
		r.InlinePolicies[pname] = doc
		return nil
	})
}

func (s *Server) iamGetRolePolicy(c *iamCall) (any, *apiError) {
	v, e := requiredAll(c.form, "RoleName", "PolicyName")
	if e != nil {
		return nil, e
	}
	name, pname := v[0], v[1]
	s.mu.Lock()
	defer s.mu.Unlock()
	r, e := s.roleLocked(c.acct, name)
	if e != nil {
		return nil, e
	}
	doc, ok := r.InlinePolicies[pname]
	if !ok {
		return nil, iamNoSuchEntity("The role policy with name %s cannot be found.", pname)
	}
	return struct {
		RoleName       string `xml:"RoleName"`
		PolicyName     string `xml:"PolicyName"`
		PolicyDocument string `xml:"PolicyDocument"`
	}{r.Name, pname, encodeDocument(doc)}, nil
}

func (s *Server) iamListRolePolicies(c *iamCall) (any, *apiError) {
	name, e := required(c.form, "RoleName")
	if e != nil {
		return nil, e
	}
	start, size, e := pageParams(c.form)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, e := s.roleLocked(c.acct, name)
	if e != nil {
		return nil, e
	}
	names := make([]string, 0, len(r.InlinePolicies))
	for n := range r.InlinePolicies {
		names = append(names, n)
	}
	sort.Strings(names)
	from, to, truncated, marker := pageOf(len(names), start, size)
	return struct {
		PolicyNames []string `xml:"PolicyNames>member"`
		IsTruncated bool     `xml:"IsTruncated"`
		Marker      string   `xml:"Marker,omitempty"`
	}{names[from:to], truncated, marker}, nil
}

func (s *Server) iamDeleteRolePolicy(c *iamCall) (any, *apiError) {
	v, e := requiredAll(c.form, "RoleName", "PolicyName")
	if e != nil {
		return nil, e
	}
	name, pname := v[0], v[1]
	return nil, s.mutateRole(c, name, func(r *iamRole) *apiError {
		if _, ok := r.InlinePolicies[pname]; !ok {
			return iamNoSuchEntity("The role policy with name %s cannot be found.", pname)
		}
		delete(r.InlinePolicies, pname)
		return nil
	})
}

func (s *Server) iamCreatePolicy(c *iamCall) (any, *apiError) {
	v, e := requiredAll(c.form, "PolicyName", "PolicyDocument")
	if e != nil {
		return nil, e
	}
	name, doc := v[0], v[1]
	if e := checkIAMName("PolicyName", name, 128); e != nil {
		return nil, e
	}
	path, e := pathParam(c.form)
	if e != nil {
		return nil, e
	}
	if e := checkIdentityPolicy(doc); e != nil {
		return nil, e
	}
	if policyChars(doc) > maxManagedPolicyChars {
		return nil, iamConflict("LimitExceeded", "Cannot exceed quota for PolicySize: %d", maxManagedPolicyChars)
	}
	desc := c.form.Get("Description")
	if len(desc) > 1000 {
		return nil, iamValidation("Description must be at most 1000 characters")
	}
	tags, e := tagsParam(c.form)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.acct.Policies[strings.ToLower(name)] != nil {
		return nil, iamConflict("EntityAlreadyExists", "A policy called %s already exists. Duplicate names are not allowed.", name)
	}
	if len(c.acct.Policies) >= maxPoliciesPerAccount {
		return nil, iamConflict("LimitExceeded", "Cannot exceed quota for PoliciesPerAccount: %d", maxPoliciesPerAccount)
	}
	now := c.now.Truncate(time.Second)
	p := &managedPolicy{Name: name, ID: newIAMID("ANPA"), Path: path, Description: desc, Document: doc, Tags: tags, CreatedAt: now, UpdatedAt: now}
	c.acct.Policies[strings.ToLower(name)] = p
	if err := s.persistLocked(); err != nil {
		return nil, internalError(err.Error())
	}
	return struct {
		Policy policyXML `xml:"Policy"`
	}{policyXMLOf(c.acct, p, true)}, nil
}

func (s *Server) iamGetPolicy(c *iamCall) (any, *apiError) {
	arn, e := required(c.form, "PolicyArn")
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, e := s.policyLocked(c.acct, arn)
	if e != nil {
		return nil, e
	}
	return struct {
		Policy policyXML `xml:"Policy"`
	}{policyXMLOf(c.acct, p, true)}, nil
}

func (s *Server) iamGetPolicyVersion(c *iamCall) (any, *apiError) {
	v, e := requiredAll(c.form, "PolicyArn", "VersionId")
	if e != nil {
		return nil, e
	}
	arn, version := v[0], v[1]
	s.mu.Lock()
	defer s.mu.Unlock()
	p, e := s.policyLocked(c.acct, arn)
	if e != nil {
		return nil, e
	}
	if version != "v1" {
		return nil, iamNoSuchEntity("Policy %s version %s does not exist or is not attachable.", arn, version)
	}
	type versionXML struct {
		Document         string `xml:"Document"`
		VersionID        string `xml:"VersionId"`
		IsDefaultVersion bool   `xml:"IsDefaultVersion"`
		CreateDate       string `xml:"CreateDate"`
	}
	return struct {
		PolicyVersion versionXML `xml:"PolicyVersion"`
	}{versionXML{encodeDocument(p.Document), "v1", true, iamTime(p.CreatedAt)}}, nil
}

func (s *Server) iamListPolicies(c *iamCall) (any, *apiError) {
	scope := "All"
	if v, ok := c.form["Scope"]; ok {
		scope = v[0]
	}
	if scope != "All" && scope != "AWS" && scope != "Local" {
		return nil, iamValidation("1 validation error detected: Value '%s' at 'scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]", scope)
	}
	onlyAttached := false
	if v, ok := c.form["OnlyAttached"]; ok {
		b, err := strconv.ParseBool(v[0])
		if err != nil {
			return nil, iamValidation("OnlyAttached must be true or false")
		}
		onlyAttached = b
	}
	if v, ok := c.form["PolicyUsageFilter"]; ok && v[0] != "PermissionsPolicy" && v[0] != "PermissionsBoundary" {
		return nil, iamValidation("1 validation error detected: Value '%s' at 'policyUsageFilter' failed to satisfy constraint: Member must satisfy enum value set: [PermissionsPolicy, PermissionsBoundary]", v[0])
	}
	boundaryOnly := c.form.Get("PolicyUsageFilter") == "PermissionsBoundary"
	prefix, e := prefixParam(c.form)
	if e != nil {
		return nil, e
	}
	start, size, e := pageParams(c.form)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var list []policyXML
	if scope != "AWS" && !boundaryOnly { // no AWS managed policies, no boundaries here
		for _, p := range c.acct.Policies {
			x := policyXMLOf(c.acct, p, false)
			if strings.HasPrefix(p.Path, prefix) && (!onlyAttached || x.AttachmentCount > 0) {
				list = append(list, x)
			}
		}
	}
	sort.Slice(list, func(i, j int) bool { return strings.ToLower(list[i].PolicyName) < strings.ToLower(list[j].PolicyName) })
	from, to, truncated, marker := pageOf(len(list), start, size)
	return struct {
		Policies    []policyXML `xml:"Policies>member"`
		IsTruncated bool        `xml:"IsTruncated"`
		Marker      string      `xml:"Marker,omitempty"`
	}{list[from:to], truncated, marker}, nil
}

func (s *Server) iamDeletePolicy(c *iamCall) (any, *apiError) {
	arn, e := required(c.form, "PolicyArn")
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, e := s.policyLocked(c.acct, arn)
	if e != nil {
		return nil, e
	}
	if attachmentsLocked(c.acct, arn) > 0 {
		return nil, iamConflict("DeleteConflict", "Cannot delete a policy attached to entities.")
	}
	delete(c.acct.Policies, strings.ToLower(p.Name))
	if err := s.persistLocked(); err != nil {
		return nil, internalError(err.Error())
	}
	return nil, nil
}

func (s *Server) iamAttachRolePolicy(c *iamCall) (any, *apiError) {
	v, e := requiredAll(c.form, "RoleName", "PolicyArn")
	if e != nil {
		return nil, e
	}
	name, arn := v[0], v[1]
	return nil, s.mutateRole(c, name, func(r *iamRole) *apiError {
		if _, e := s.policyLocked(c.acct, arn); e != nil {
			return e
		}
		if contains(r.Attached, arn) {
			return nil // IAM answers success for an existing attachment
		}
		if len(r.Attached) >= maxAttachedPerRole {
			return iamConflict("LimitExceeded", "Cannot exceed quota for PoliciesPerRole: %d", maxAttachedPerRole)
		}
		r.Attached = append(r.Attached, arn)
		return nil
	})
}

func (s *Server) iamDetachRolePolicy(c *iamCall) (any, *apiError) {
	v, e := requiredAll(c.form, "RoleName", "PolicyArn")
	if e != nil {
		return nil, e
	}
	name, arn := v[0], v[1]
	if !policyArnPattern.MatchString(arn) {
		return nil, iamValidation("ARN %s is not valid.", arn)
	}
	return nil, s.mutateRole(c, name, func(r *iamRole) *apiError {
		for i, a := range r.Attached {
			if a == arn {
				r.Attached = append(r.Attached[:i:i], r.Attached[i+1:]...)
				return nil
			}
		}
		return iamNoSuchEntity("Policy %s was not found.", arn)
	})
}

func (s *Server) iamListAttachedRolePolicies(c *iamCall) (any, *apiError) {
	name, e := required(c.form, "RoleName")
	if e != nil {
		return nil, e
	}
	prefix, e := prefixParam(c.form)
	if e != nil {
		return nil, e
	}
	start, size, e := pageParams(c.form)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, e := s.roleLocked(c.acct, name)
	if e != nil {
		return nil, e
	}
	var list []attachedPolicyXML
	for _, arn := range r.Attached {
		m := policyArnPattern.FindStringSubmatch(arn)
		if strings.HasPrefix(m[2], prefix) {
			list = append(list, attachedPolicyXML{PolicyName: m[3], PolicyArn: arn})
		}
	}
	from, to, truncated, marker := pageOf(len(list), start, size)
	return struct {
		AttachedPolicies []attachedPolicyXML `xml:"AttachedPolicies>member"`
		IsTruncated      bool                `xml:"IsTruncated"`
		Marker           string              `xml:"Marker,omitempty"`
	}{list[from:to], truncated, marker}, nil
}

// writeQueryResult answers an awsquery success:
// <ActionResponse xmlns=ns><ActionResult>…</ActionResult><ResponseMetadata>.
func writeQueryResult(w http.ResponseWriter, ns, action, requestID string, result any) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	start := xml.StartElement{Name: xml.Name{Local: action + "Response"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: ns}}}
	err := enc.EncodeToken(start)
	if err == nil && result != nil {
		err = enc.EncodeElement(result, xml.StartElement{Name: xml.Name{Local: action + "Result"}})
	}
	if err == nil {
		err = enc.EncodeElement(struct {
			RequestID string `xml:"RequestId"`
		}{requestID}, xml.StartElement{Name: xml.Name{Local: "ResponseMetadata"}})
	}
	if err == nil {
		err = enc.EncodeToken(start.End())
	}
	if err == nil {
		err = enc.Flush()
	}
	if err != nil {
		panic(fmt.Sprintf("localaws: marshal %s response: %v", action, err))
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}
