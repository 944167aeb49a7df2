package rolesanywhere

import (
	"errors"
	"fmt"
	"strings"
)

// ARN is the part of an Amazon Resource Name this package needs.
type ARN struct {
	Partition, Service, Region, Account, Resource string
}

// ParseARN splits arn:partition:service:region:account:resource.
func ParseARN(s string) (ARN, error) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return ARN{}, errors.New("arn: invalid prefix")
	}
	if parts[1] == "" || parts[2] == "" || parts[5] == "" {
		return ARN{}, fmt.Errorf("arn: missing partition, service or resource in %q", s)
	}
	return ARN{Partition: parts[1], Service: parts[2], Region: parts[3], Account: parts[4], Resource: parts[5]}, nil
}

// resolveRegion picks the signing region the helper's way: --region when
// given, else the trust anchor's. The trust anchor and profile must agree
// even with --region, because the service rejects a mismatch anyway and
// failing locally gives a clearer message.
func resolveRegion(trustAnchorARN, profileARN, override string) (region, partition string, err error) {
	ta, err := ParseARN(trustAnchorARN)
	if err != nil {
		return "", "", fmt.Errorf("failed to parse trust anchor arn: %w", err)
	}
	p, err := ParseARN(profileARN)
	if err != nil {
		return "", "", fmt.Errorf("failed to parse profile arn: %w", err)
	}
	if ta.Region != p.Region {
		return "", "", errors.New("trust anchor and profile regions don't match")
	}
	region = ta.Region
	if override != "" {
		region = override
	}
	if region == "" {
		return "", "", errors.New("no region: the trust anchor ARN has none and --region is not set")
	}
	return region, ta.Partition, nil
}

// defaultEndpoint is the public endpoint for a region.
func defaultEndpoint(region, partition string) string {
	suffix := "amazonaws.com"
	if partition == "aws-cn" || strings.HasPrefix(region, "cn-") {
		suffix = "amazonaws.com.cn"
	}
	return "https://rolesanywhere." + region + "." + suffix
}
