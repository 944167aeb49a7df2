package localaws

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"
)

// Config configures a Server. The zero value of every field except the admin
// key pair has a usable default.
type Config struct {
	// Region is the only region this endpoint answers for (default us-east-1):
	// credential scopes and ARNs naming any other region are refused.
	Region string
	// Account is the 12-digit account that owns every resource (default
	// 123456789012).
	Account string
	// AccessKeyID and SecretAccessKey are the admin key pair accepted on the
	// control plane and by STS. Both are required.
	AccessKeyID     string
	SecretAccessKey string
	// StateFile, when set, is loaded at start and rewritten atomically after
	// every mutation, so a restart keeps anchors, profiles, CRLs and issued
	// credentials.
	StateFile string
	// Now is the clock used for signature skew, certificate validity and
	// credential expiry (default time.Now). Rate limiting always uses real
	// time, so a frozen test clock cannot starve a bucket forever.
	Now func() time.Time
	// Logger receives one record per decision (default slog.Default()).
	Logger *slog.Logger
	// RateLimits sets requests per second per API group; see RateLimits.
	RateLimits RateLimits
}

// RateLimits holds the per-group request rates (requests per second). A zero
// field takes the AWS default quota (§5.6: 1/s for the CRL, trust-anchor and
// profile groups, 10/s for CreateSession); a negative field disables that
// group's limit. Disabled turns every limit off, for tests that need none.
type RateLimits struct {
	CRL           float64
	TrustAnchor   float64
	Profile       float64
	CreateSession float64
	Disabled      bool
}

// NoRateLimits is the RateLimits value that turns every limit off.
var NoRateLimits = RateLimits{Disabled: true}

const (
	defaultRegion  = "us-east-1"
	defaultAccount = "123456789012"
)

var (
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)
	accountPattern = regexp.MustCompile(`^\d{12}$`)
)

// withDefaults validates c and fills in defaults; messages name the field.
func (c Config) withDefaults() (Config, error) {
	if c.Region == "" {
		c.Region = defaultRegion
	}
	if c.Account == "" {
		c.Account = defaultAccount
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if !regionPattern.MatchString(c.Region) {
		return c, fmt.Errorf("localaws: Region %q is not a region name", c.Region)
	}
	if !accountPattern.MatchString(c.Account) {
		return c, fmt.Errorf("localaws: Account %q must be 12 digits", c.Account)
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return c, errors.New("localaws: AccessKeyID and SecretAccessKey (the admin key pair) are required")
	}
	return c, nil
}
