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
	// Account is the 12-digit default account (default 123456789012): the
	// one the admin key pair below belongs to.
	Account string
	// AccessKeyID and SecretAccessKey are the default account's admin key
	// pair, accepted on the control plane, by IAM and by STS. Both are
	// required.
	AccessKeyID     string
	SecretAccessKey string
	// Accounts are further accounts, each with its own admin key pair. A
	// signed request's access key selects its account; every resource and
	// ARN belongs to exactly one account.
	Accounts []Account
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

// Account is one AWS account of the server and its admin key pair.
type Account struct {
	ID              string `json:"id"`
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

// RateLimits holds the per-group request rates (requests per second). A zero
// field takes the AWS default quota (§5.6: 1/s for the CRL, trust-anchor,
// profile and subject groups, 10/s for CreateSession); a negative field disables that
// group's limit. Disabled turns every limit off, for tests that need none.
type RateLimits struct {
	CRL           float64
	TrustAnchor   float64
	Profile       float64
	Subject       float64
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
	ids := map[string]bool{c.Account: true}
	keys := map[string]bool{c.AccessKeyID: true}
	for i, a := range c.Accounts {
		switch {
		case !accountPattern.MatchString(a.ID):
			return c, fmt.Errorf("localaws: Accounts[%d].ID %q must be 12 digits", i, a.ID)
		case ids[a.ID]:
			return c, fmt.Errorf("localaws: Accounts[%d].ID %s is listed twice", i, a.ID)
		case a.AccessKeyID == "" || a.SecretAccessKey == "":
			return c, fmt.Errorf("localaws: Accounts[%d] (%s) needs AccessKeyID and SecretAccessKey", i, a.ID)
		case keys[a.AccessKeyID]:
			return c, fmt.Errorf("localaws: Accounts[%d].AccessKeyID %s is used by another account", i, a.AccessKeyID)
		}
		ids[a.ID], keys[a.AccessKeyID] = true, true
	}
	return c, nil
}

// accounts lists every account, the default first.
func (c Config) accounts() []Account {
	return append([]Account{{ID: c.Account, AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey}}, c.Accounts...)
}
