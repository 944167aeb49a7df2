package rolesanywhere

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Provider adapts a Cache to aws.CredentialsProvider, so any aws-sdk-go-v2
// client (the CA's anchorsync, say) runs on credentials obtained with an
// X.509 certificate instead of a long-lived key.
type Provider struct {
	Cache *Cache
}

// Retrieve implements aws.CredentialsProvider.
func (p Provider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, _, err := p.Cache.Credentials(ctx)
	if err != nil && c.AccessKeyID == "" {
		return aws.Credentials{}, err
	}
	return aws.Credentials{
		AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		Source: "anchorage-rolesanywhere", CanExpire: !c.Expires.IsZero(), Expires: c.Expires,
	}, nil
}
