package caclient

import (
	"fmt"
	"strings"

	"go.step.sm/crypto/jose"
)

// TokenClaims is what a workload reads from its enrollment token.
type TokenClaims struct {
	Subject  string   `json:"sub"`
	SANs     []string `json:"sans"`
	Audience any      `json:"aud"`
}

// InspectToken decodes a token's claims without verifying it (only the CA
// can), so the workload builds a CSR for exactly what it was granted.
func InspectToken(token string) (*TokenClaims, error) {
	tok, err := jose.ParseSigned(strings.TrimSpace(token))
	if err != nil {
		return nil, fmt.Errorf("token is malformed: %v", err)
	}
	var c TokenClaims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return nil, fmt.Errorf("token is malformed: %v", err)
	}
	if c.Subject == "" {
		return nil, fmt.Errorf("token names no workload (empty sub)")
	}
	return &c, nil
}
