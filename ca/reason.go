package ca

import (
	"fmt"
	"strconv"
	"strings"
)

// RFC 5280 §5.3.1 CRLReason names, as used on the command line and API.
var reasons = []string{
	0: "unspecified", 1: "keyCompromise", 2: "cACompromise", 3: "affiliationChanged",
	4: "superseded", 5: "cessationOfOperation", 6: "certificateHold",
	8: "removeFromCRL", 9: "privilegeWithdrawn", 10: "aACompromise",
}

// ParseReason accepts a reason name (case-insensitive) or its code. 7 is
// unused and removeFromCRL only applies to delta CRLs, so both are refused.
func ParseReason(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n >= 0 && n < len(reasons) && reasons[n] != "" && n != 8 {
			return n, nil
		}
		return 0, fmt.Errorf("reason code %d is not usable (RFC 5280 CRLReason 0-10 except 7 and 8)", n)
	}
	for i, name := range reasons {
		if name != "" && i != 8 && strings.EqualFold(name, s) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown revocation reason %q (try keyCompromise, superseded, cessationOfOperation, affiliationChanged)", s)
}

// ReasonName is the RFC 5280 name of a reason code.
func ReasonName(code int) string {
	if code >= 0 && code < len(reasons) && reasons[code] != "" {
		return reasons[code]
	}
	return strconv.Itoa(code)
}
