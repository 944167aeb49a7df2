package anchorsync

import (
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	ra "github.com/aws/aws-sdk-go-v2/service/rolesanywhere"
)

// SDKClients returns a Client builder for Options: one aws-sdk-go-v2
// Roles Anywhere client per anchor, with the anchor's region and endpoint
// and the given credentials. The SDK's own retries are off: the pusher
// paces and retries itself, and records throttling.
func SDKClients(creds aws.CredentialsProvider, hc *http.Client) func(Anchor) (API, error) {
	return func(a Anchor) (API, error) {
		region := a.Region
		if region == "" {
			region = ARNRegion(a.ARN)
		}
		if region == "" {
			return nil, fmt.Errorf("trust anchor %q: no region in the ARN and none configured", a.ARN)
		}
		o := ra.Options{Region: region, Credentials: creds, RetryMaxAttempts: 1}
		if hc != nil {
			o.HTTPClient = hc
		}
		if a.Endpoint != "" {
			o.BaseEndpoint = aws.String(a.Endpoint)
		}
		return ra.New(o), nil
	}
}
