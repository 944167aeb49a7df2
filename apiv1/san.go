package apiv1

import (
	"net"
	"strings"
)

// SplitSAN reads one subject alternative name as tokens and requests carry
// it: "DNS:host", "IP:addr", "URI:scheme:...", or untyped, as step-ca's
// tokens and CLI write them — an IP, an absolute URI (a DNS name never
// holds "://"), else a DNS name. typed reports whether s had a prefix. The
// value is not validated here: the CA (ca.ParseSANs) and the workload
// (caclient.NewCSR) each check it their own way.
func SplitSAN(s string) (typ, val string, typed bool) {
	if t, v, ok := strings.Cut(s, ":"); ok && (t == "DNS" || t == "IP" || t == "URI") {
		return t, v, true
	}
	switch {
	case net.ParseIP(s) != nil:
		return "IP", s, false
	case strings.Contains(s, "://"):
		return "URI", s, false
	}
	return "DNS", s, false
}
