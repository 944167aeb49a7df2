package config

import (
	"errors"
	"fmt"
	"strings"
)

// AWS says how the CA authenticates to AWS (for anchorsync's CRL pushes).
type AWS struct {
	// Credentials is "default" (the AWS SDK's default chain: environment,
	// shared config, IMDS, ...) or "rolesanywhere" (the CA's own
	// certificate through IAM Roles Anywhere: no long-lived key).
	Credentials   string         `json:"credentials"`
	RolesAnywhere *RolesAnywhere `json:"rolesAnywhere,omitempty"`
}

// RolesAnywhere is a certificate-based AWS identity, the same inputs as
// `anchorage credential-process`.
type RolesAnywhere struct {
	Certificate     string `json:"certificate"`
	PrivateKey      string `json:"privateKey"`
	Intermediates   string `json:"intermediates,omitempty"`
	TrustAnchorARN  string `json:"trustAnchorArn"`
	ProfileARN      string `json:"profileArn"`
	RoleARN         string `json:"roleArn"`
	Region          string `json:"region,omitempty"`
	Endpoint        string `json:"endpoint,omitempty"`
	SessionDuration int    `json:"sessionDuration,omitempty"`
}

func (a *AWS) validate() error {
	switch a.Credentials {
	case "", "default":
		if a.RolesAnywhere != nil {
			return errors.New(`key "aws.rolesAnywhere": set only with "aws.credentials": "rolesanywhere"`)
		}
	case "rolesanywhere":
		r := a.RolesAnywhere
		if r == nil {
			return errors.New(`key "aws.rolesAnywhere": required when "aws.credentials" is "rolesanywhere"`)
		}
		for k, v := range map[string]string{"certificate": r.Certificate, "privateKey": r.PrivateKey,
			"trustAnchorArn": r.TrustAnchorARN, "profileArn": r.ProfileARN, "roleArn": r.RoleARN} {
			if v == "" {
				return fmt.Errorf(`key "aws.rolesAnywhere.%s": required`, k)
			}
		}
		if !strings.HasPrefix(r.RoleARN, "arn:") {
			return fmt.Errorf(`key "aws.rolesAnywhere.roleArn": want an IAM role ARN, got %q`, r.RoleARN)
		}
	default:
		return fmt.Errorf(`key "aws.credentials": want "default" or "rolesanywhere", got %q`, a.Credentials)
	}
	return nil
}
