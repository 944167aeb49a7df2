package audit

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	ra "github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
	"github.com/aws/aws-sdk-go-v2/service/rolesanywhere/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/anchorage-pki/anchorage/crl"
)

// Target names one account and region to read.
type Target struct {
	Name     string
	Region   string
	Endpoint string // Roles Anywhere, IAM and STS base URL; AWS's when empty
	Profile  string // shared-config profile; the default chain when empty
}

// Source fetches one account. Analyze never calls it: the command fetches
// every account first, so the analysis runs on a fixed world.
type Source interface {
	Account(ctx context.Context, t Target) (*Account, error)
}

// AWSSource reads AWS (or localaws) through aws-sdk-go-v2.
type AWSSource struct {
	// Progress, when set, is told what is being read (one line each).
	Progress func(format string, args ...any)
	// Subjects turns off ListSubjects/GetSubject when false: they cost
	// one call per subject under a 1 request/s quota.
	Subjects bool
	// Concurrency bounds IAM reads in flight (default 4).
	Concurrency int
	// SubjectRate paces ListSubjects/GetSubject to this many calls per
	// second (default 1, the service's quota), so reading many subjects
	// waits its turn instead of being throttled into backoff.
	SubjectRate float64
	// Configure, when set, adjusts the loaded SDK config (tests: static
	// credentials).
	Configure func(*aws.Config)

	pace *pacer // shared by every account read: they are read one by one
}

// pacer spaces calls at least interval apart.
type pacer struct {
	interval time.Duration
	next     time.Time
}

func (p *pacer) wait(ctx context.Context) error {
	now := time.Now()
	if d := p.next.Sub(now); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		now = p.next
	}
	p.next = now.Add(p.interval)
	return nil
}

// NewAWSSource returns a source reading subjects too.
func NewAWSSource() *AWSSource { return &AWSSource{Subjects: true} }

func (s *AWSSource) progress(format string, args ...any) {
	if s.Progress != nil {
		s.Progress(format, args...)
	}
}

// Account reads one account: trust anchors, profiles (ListProfiles carries
// each profile's whole detail, attribute mappings and session policy
// included, so no GetProfile per profile is spent on the 1/s quota), CRLs,
// subjects, and from IAM every role a profile names, with its trust policy
// and its inline and attached policies, and the profiles' managed session
// policies.
func (s *AWSSource) Account(ctx context.Context, t Target) (*Account, error) {
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(t.Region),
		// Control-plane quotas are 1 request/s per API group: wait out
		// throttling patiently instead of failing the audit, and never run
		// out of the client-side retry budget.
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 10
				o.MaxBackoff = 5 * time.Second
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if t.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(t.Profile))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("account %s: AWS config: %w", t.Name, err)
	}
	if s.Configure != nil {
		s.Configure(&cfg)
	}
	rac := ra.NewFromConfig(cfg, func(o *ra.Options) {
		if t.Endpoint != "" {
			o.BaseEndpoint = aws.String(t.Endpoint)
		}
	})
	iamc := iam.NewFromConfig(cfg, func(o *iam.Options) {
		if t.Endpoint != "" {
			o.BaseEndpoint = aws.String(t.Endpoint)
		}
	})
	stsc := sts.NewFromConfig(cfg, func(o *sts.Options) {
		if t.Endpoint != "" {
			o.BaseEndpoint = aws.String(t.Endpoint)
		}
	})
	a := &Account{Name: t.Name, Region: t.Region, Roles: map[string]*Role{}}
	// Who the credentials are, and whether the endpoint answers at all:
	// tried twice only, so an unreachable endpoint fails in seconds, not
	// after the patient retries the control plane gets.
	id, err := stsc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}, func(o *sts.Options) {
		o.Retryer = retry.AddWithMaxAttempts(o.Retryer, 2)
	})
	if err != nil {
		return nil, fmt.Errorf("account %s: sts GetCallerIdentity: %w", t.Name, err)
	}
	a.ID = aws.ToString(id.Account)
	s.progress("account %s (%s, %s): reading Roles Anywhere", t.Name, a.ID, t.Region)
	if err := s.readRolesAnywhere(ctx, rac, a); err != nil {
		return nil, fmt.Errorf("account %s: %w", t.Name, err)
	}
	s.progress("account %s: %d anchors, %d profiles, %d CRLs, %d subjects; reading IAM", t.Name, len(a.Anchors), len(a.Profiles), len(a.CRLs), len(a.Subjects))
	if err := s.readIAM(ctx, iamc, a); err != nil {
		return nil, fmt.Errorf("account %s: %w", t.Name, err)
	}
	s.progress("account %s: %d roles read", t.Name, len(a.Roles))
	return a, nil
}

func (s *AWSSource) readRolesAnywhere(ctx context.Context, c *ra.Client, a *Account) error {
	tp := ra.NewListTrustAnchorsPaginator(c, &ra.ListTrustAnchorsInput{})
	for tp.HasMorePages() {
		page, err := tp.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("ListTrustAnchors: %w", err)
		}
		for _, ta := range page.TrustAnchors {
			an := Anchor{ARN: aws.ToString(ta.TrustAnchorArn), ID: aws.ToString(ta.TrustAnchorId),
				Name: aws.ToString(ta.Name), Enabled: aws.ToBool(ta.Enabled)}
			if ta.Source != nil {
				an.SourceType = string(ta.Source.SourceType)
				if d, ok := ta.Source.SourceData.(*types.SourceDataMemberX509CertificateData); ok {
					an.Bundle = parseBundle(d.Value)
				}
			}
			a.Anchors = append(a.Anchors, an)
		}
	}
	pp := ra.NewListProfilesPaginator(c, &ra.ListProfilesInput{})
	for pp.HasMorePages() {
		page, err := pp.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("ListProfiles: %w", err)
		}
		for _, p := range page.Profiles {
			pr := Profile{ARN: aws.ToString(p.ProfileArn), ID: aws.ToString(p.ProfileId), Name: aws.ToString(p.Name),
				Enabled: aws.ToBool(p.Enabled), RoleARNs: p.RoleArns, SessionPolicy: aws.ToString(p.SessionPolicy),
				ManagedPolicyARNs: p.ManagedPolicyArns, DurationSeconds: int(aws.ToInt32(p.DurationSeconds)),
				RequireInstanceProperties: aws.ToBool(p.RequireInstanceProperties)}
			if p.AttributeMappings != nil {
				pr.Mappings = []Mapping{}
				for _, m := range p.AttributeMappings {
					mm := Mapping{Field: string(m.CertificateField)}
					for _, r := range m.MappingRules {
						mm.Specifiers = append(mm.Specifiers, aws.ToString(r.Specifier))
					}
					pr.Mappings = append(pr.Mappings, mm)
				}
			}
			a.Profiles = append(a.Profiles, pr)
		}
	}
	cp := ra.NewListCrlsPaginator(c, &ra.ListCrlsInput{})
	for cp.HasMorePages() {
		page, err := cp.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("ListCrls: %w", err)
		}
		for _, cr := range page.Crls {
			r := CRL{ARN: aws.ToString(cr.CrlArn), ID: aws.ToString(cr.CrlId), Name: aws.ToString(cr.Name),
				AnchorARN: aws.ToString(cr.TrustAnchorArn), Enabled: aws.ToBool(cr.Enabled), Size: len(cr.CrlData)}
			if l, _, err := crl.Parse(cr.CrlData); err == nil {
				r.NextUpdate = l.NextUpdate
				if l.Number != nil {
					r.Number = l.Number.String()
				}
			}
			a.CRLs = append(a.CRLs, r)
		}
	}
	if !s.Subjects {
		return nil
	}
	a.SubjectsRead = true
	rate := s.SubjectRate
	if rate <= 0 {
		rate = 1
	}
	// A tenth over the quota's interval: a call landing exactly on the
	// refill boundary is throttled and then waits out a whole backoff.
	if s.pace == nil {
		s.pace = &pacer{interval: time.Duration(1.1 * float64(time.Second) / rate)}
	}
	pace := s.pace
	sp := ra.NewListSubjectsPaginator(c, &ra.ListSubjectsInput{})
	var ids []string
	for sp.HasMorePages() {
		if err := pace.wait(ctx); err != nil {
			return err
		}
		page, err := sp.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("ListSubjects: %w", err)
		}
		for _, su := range page.Subjects {
			ids = append(ids, aws.ToString(su.SubjectId))
		}
	}
	for i, id := range ids {
		if i > 0 && i%100 == 0 {
			s.progress("account %s: %d/%d subjects read", a.Name, i, len(ids))
		}
		if err := pace.wait(ctx); err != nil {
			return err
		}
		out, err := c.GetSubject(ctx, &ra.GetSubjectInput{SubjectId: aws.String(id)})
		if err != nil {
			return fmt.Errorf("GetSubject %s: %w", id, err)
		}
		a.Subjects = append(a.Subjects, subjectOf(out.Subject))
	}
	return nil
}

func subjectOf(d *types.SubjectDetail) Subject {
	su := Subject{ID: aws.ToString(d.SubjectId), ARN: aws.ToString(d.SubjectArn), X509Subject: aws.ToString(d.X509Subject),
		Enabled: aws.ToBool(d.Enabled), CreatedAt: aws.ToTime(d.CreatedAt), LastSeenAt: aws.ToTime(d.LastSeenAt)}
	for _, c := range d.Credentials {
		sc := SubjectCredential{Serial: aws.ToString(c.SerialNumber), Issuer: aws.ToString(c.Issuer),
			SeenAt: aws.ToTime(c.SeenAt), Failed: aws.ToBool(c.Failed)}
		if data := aws.ToString(c.X509CertificateData); data != "" {
			sc.DER = decodeCertData(data)
		}
		su.Credentials = append(su.Credentials, sc)
	}
	for _, ip := range d.InstanceProperties {
		su.Instances = append(su.Instances, InstanceProperties{Properties: ip.Properties, SeenAt: aws.ToTime(ip.SeenAt), Failed: aws.ToBool(ip.Failed)})
	}
	return su
}

// decodeCertData reads x509CertificateData: PEM, or base64 of the DER.
func decodeCertData(s string) []byte {
	if b, _ := pem.Decode([]byte(s)); b != nil {
		return b.Bytes
	}
	if der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s)); err == nil {
		return der
	}
	return nil
}

// parseBundle parses every CERTIFICATE block of an anchor's PEM bundle.
func parseBundle(data string) []*x509.Certificate {
	var out []*x509.Certificate
	rest := []byte(data)
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return out
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

// readIAM reads every role the profiles name that lives in this account,
// and the profiles' managed session policies, a few at a time.
func (s *AWSSource) readIAM(ctx context.Context, c *iam.Client, a *Account) error {
	var arns []string
	seen := map[string]bool{}
	for _, p := range a.Profiles {
		for _, r := range p.RoleARNs {
			if !seen[r] {
				seen[r] = true
				arns = append(arns, r)
			}
		}
	}
	sort.Strings(arns)
	n := s.Concurrency
	if n <= 0 {
		n = 4
	}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		sem      = make(chan struct{}, n)
		policies = &policyCache{c: c, docs: map[string]*policyResult{}}
	)
	for _, arn := range arns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := readRole(ctx, c, policies, a.ID, arn)
			mu.Lock()
			a.Roles[arn] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	for i := range a.Profiles {
		p := &a.Profiles[i]
		for _, arn := range p.ManagedPolicyARNs {
			np, err := policies.get(ctx, arn)
			if err != nil {
				return fmt.Errorf("profile %s managed policy: %w", p.Name, err)
			}
			p.ManagedPolicies = append(p.ManagedPolicies, np)
		}
	}
	return ctx.Err()
}

// readRole reads one role; a role that cannot be read is recorded with its
// error (a profile naming a deleted role is a finding, not a failed audit).
func readRole(ctx context.Context, c *iam.Client, pc *policyCache, account, arn string) *Role {
	name := arn[strings.LastIndex(arn, "/")+1:]
	r := &Role{ARN: arn, Name: name}
	if parts := strings.Split(arn, ":"); len(parts) < 6 || parts[4] != account {
		// GetRole takes a name: reading it here would read this
		// account's role of that name, not the one the profile names.
		r.Err = fmt.Errorf("role %s is not in account %s, whose credentials the audit has", arn, account)
		return r
	}
	out, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	if err != nil {
		r.Err = fmt.Errorf("GetRole %s: %w", name, err)
		return r
	}
	r.TrustPolicy = unescape(aws.ToString(out.Role.AssumeRolePolicyDocument))
	ip := iam.NewListRolePoliciesPaginator(c, &iam.ListRolePoliciesInput{RoleName: aws.String(name)})
	for ip.HasMorePages() {
		page, err := ip.NextPage(ctx)
		if err != nil {
			r.Err = fmt.Errorf("ListRolePolicies %s: %w", name, err)
			return r
		}
		for _, pn := range page.PolicyNames {
			g, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pn)})
			if err != nil {
				r.Err = fmt.Errorf("GetRolePolicy %s/%s: %w", name, pn, err)
				return r
			}
			r.Policies = append(r.Policies, NamedPolicy{Name: pn, Document: unescape(aws.ToString(g.PolicyDocument))})
		}
	}
	ap := iam.NewListAttachedRolePoliciesPaginator(c, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name)})
	for ap.HasMorePages() {
		page, err := ap.NextPage(ctx)
		if err != nil {
			r.Err = fmt.Errorf("ListAttachedRolePolicies %s: %w", name, err)
			return r
		}
		for _, p := range page.AttachedPolicies {
			np, err := pc.get(ctx, aws.ToString(p.PolicyArn))
			if err != nil {
				r.Err = fmt.Errorf("role %s: %w", name, err)
				return r
			}
			r.Policies = append(r.Policies, np)
		}
	}
	return r
}

// policyCache reads each managed policy's default version once, however
// many roles attach it.
type policyCache struct {
	c    *iam.Client
	mu   sync.Mutex
	docs map[string]*policyResult
}

type policyResult struct {
	once sync.Once
	np   NamedPolicy
	err  error
}

func (pc *policyCache) get(ctx context.Context, arn string) (NamedPolicy, error) {
	pc.mu.Lock()
	r := pc.docs[arn]
	if r == nil {
		r = &policyResult{}
		pc.docs[arn] = r
	}
	pc.mu.Unlock()
	r.once.Do(func() {
		p, err := pc.c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)})
		if err != nil {
			r.err = fmt.Errorf("GetPolicy %s: %w", arn, err)
			return
		}
		v, err := pc.c.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(arn), VersionId: p.Policy.DefaultVersionId})
		if err != nil {
			r.err = fmt.Errorf("GetPolicyVersion %s: %w", arn, err)
			return
		}
		r.np = NamedPolicy{Name: aws.ToString(p.Policy.PolicyName), ARN: arn, Document: unescape(aws.ToString(v.PolicyVersion.Document))}
	})
	return r.np, r.err
}

// unescape decodes the URL-encoding IAM puts on policy documents in
// GetRole, GetRolePolicy and GetPolicyVersion answers (RFC 3986; a '+'
// stays a '+').
func unescape(doc string) string {
	if strings.HasPrefix(strings.TrimSpace(doc), "{") {
		return doc // not encoded (a lenient endpoint)
	}
	if out, err := url.PathUnescape(doc); err == nil {
		return out
	}
	return doc
}

// ErrNoAccounts is returned when there is nothing to read.
var ErrNoAccounts = errors.New("no AWS accounts to audit")
