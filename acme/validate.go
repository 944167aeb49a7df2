package acme

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// validator performs challenge validation for one provisioner. Ports and
// resolver come from its config, so a CA on a private network (or a test on
// 127.0.0.1) validates where the clients really are.
type validator struct {
	httpPort, tlsPort int
	resolver          *net.Resolver
	resolverAddr      string // "" = the system's
	timeout           time.Duration
}

func (v *validator) via() string {
	if v.resolverAddr == "" {
		return ""
	}
	return " via " + v.resolverAddr
}

// dnsDetail drops the "on SERVER" of a *net.DNSError: with a configured
// resolver it names the system's server, which was never asked.
func dnsDetail(err error) string {
	var de *net.DNSError
	if errors.As(err, &de) {
		return de.Err
	}
	if err == nil {
		return "no addresses"
	}
	return fmt.Sprint(err)
}

// validate runs challenge i of authorization a in the background and
// records the outcome; the returned channel closes when it is recorded.
func (s *Server) validate(p *provisioner, acct *account, a *authz, i int) <-chan struct{} {
	done := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(done)
		ctx, cancel := context.WithTimeout(s.ctx, p.v.timeout)
		defer cancel()
		c := a.Challenges[i]
		keyAuth := c.Token + "." + acct.Thumbprint
		var err error
		switch c.Type {
		case "http-01":
			err = p.v.http01(ctx, a.Identifier, c.Token, keyAuth)
		case "dns-01":
			err = p.v.dns01(ctx, a.Identifier.Value, keyAuth)
		case "tls-alpn-01":
			err = p.v.tlsALPN01(ctx, a.Identifier, keyAuth)
		default:
			err = &Problem{Type: ErrServerInternal, Detail: "unknown challenge type " + c.Type}
		}
		now := s.now().UTC().Truncate(time.Second)
		var stored json.RawMessage
		if err != nil {
			var pr *Problem
			if !errors.As(err, &pr) {
				pr = &Problem{Type: ErrConnection, Detail: err.Error()}
			}
			pr.Status = http.StatusForbidden
			stored = pr.raw()
		}
		// The result must be recorded even if the CA is shutting down.
		uerr := s.store.UpdateACMEAuthz(context.WithoutCancel(ctx), a.ID, func(cur *authz, o *order, all []*authz) error {
			ch := &cur.Challenges[i]
			if err == nil {
				ch.Status, ch.Validated, cur.Status = statusValid, now, statusValid
			} else {
				ch.Status, ch.Error, cur.Status = statusInvalid, stored, statusInvalid
			}
			settle(o, all)
			return nil
		})
		level := s.log.Info
		if err != nil {
			level = s.log.Warn
		}
		level("ACME challenge validated", "provisioner", p.name, "account", acct.ID, "type", c.Type,
			"identifier", a.Identifier.Value, "ok", err == nil, "err", err)
		if uerr != nil {
			s.log.Error("recording ACME challenge result", "authz", a.ID, "err", uerr)
		}
	}()
	return done
}

// addrs resolves an identifier to the addresses to try, IPv4 first.
func (v *validator) addrs(ctx context.Context, id ident) ([]netip.Addr, error) {
	if id.Type == "ip" {
		return []netip.Addr{netip.MustParseAddr(id.Value)}, nil
	}
	ips, err := v.resolver.LookupNetIP(ctx, "ip", id.Value)
	if err != nil || len(ips) == 0 {
		return nil, &Problem{Type: ErrDNS, Detail: fmt.Sprintf("resolving %s%s: %v", id.Value, v.via(), dnsDetail(err))}
	}
	var v4, v6 []netip.Addr
	for _, ip := range ips {
		if ip = ip.Unmap(); ip.Is4() {
			v4 = append(v4, ip)
		} else {
			v6 = append(v6, ip)
		}
	}
	return append(v4, v6...), nil
}

func (v *validator) dial(ctx context.Context, id ident, port int) (net.Conn, error) {
	ips, err := v.addrs(ctx, id)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	var last error
	for _, ip := range ips {
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip.String(), strconv.Itoa(port)))
		if err == nil {
			return conn, nil
		}
		last = err
	}
	return nil, &Problem{Type: ErrConnection, Detail: fmt.Sprintf("connecting to %s port %d: %v", id.Value, port, last)}
}

// http01 fetches http://NAME/.well-known/acme-challenge/TOKEN from the
// configured port (RFC 8555 §8.3). Redirects are not followed; any content
// type is accepted; surrounding whitespace is ignored. A failure says what
// was wrong — status, redirect, timeout, size, which part of the key
// authorization — without repeating what the server sent, which may be
// anything (an error page, another site's content).
func (v *validator) http01(ctx context.Context, id ident, token, keyAuth string) error {
	host := id.Value
	if id.Type == "ip" && netip.MustParseAddr(id.Value).Is6() {
		host = "[" + host + "]"
	}
	url := "http://" + host + "/.well-known/acme-challenge/" + token
	at := fmt.Sprintf("GET %s (port %d)", url, v.httpPort)
	client := &http.Client{
		Transport: &http.Transport{
			DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return v.dial(ctx, id, v.httpPort) },
			DisableKeepAlives: true,
			Proxy:             nil,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("User-Agent", "anchorage-acme-validator")
	resp, err := client.Do(req)
	if err != nil {
		var pr *Problem
		switch {
		case errors.As(err, &pr):
			return pr
		case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
			return &Problem{Type: ErrConnection, Detail: fmt.Sprintf("%s: no response within %s", at, v.timeout)}
		}
		return &Problem{Type: ErrConnection, Detail: fmt.Sprintf("%s: %v", at, err)}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return &Problem{Type: ErrUnauthorized, Detail: fmt.Sprintf("%s: status %d, a redirect; the validator does not follow redirects, serve the token at this URL", at, resp.StatusCode)}
	case resp.StatusCode != http.StatusOK:
		return &Problem{Type: ErrUnauthorized, Detail: fmt.Sprintf("%s: status %d, want 200", at, resp.StatusCode)}
	}
	const limit = 4096
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err) {
			return &Problem{Type: ErrConnection, Detail: fmt.Sprintf("%s: the body did not arrive within %s", at, v.timeout)}
		}
		return &Problem{Type: ErrConnection, Detail: fmt.Sprintf("%s: reading the body: %v", at, err)}
	}
	if len(body) > limit {
		return &Problem{Type: ErrIncorrectResponse, Detail: fmt.Sprintf("%s: the body is over %d bytes; want the %d-byte key authorization", at, limit, len(keyAuth))}
	}
	got := bytes.TrimSpace(body)
	if subtle.ConstantTimeCompare(got, []byte(keyAuth)) == 1 {
		return nil
	}
	return &Problem{Type: ErrIncorrectResponse, Detail: at + ": " + keyAuthMismatch(got, token, keyAuth)}
}

// keyAuthMismatch says how a response differs from the key authorization
// TOKEN.THUMBPRINT, naming no byte of it.
func keyAuthMismatch(got []byte, token, keyAuth string) string {
	tok, tp, hasDot := strings.Cut(string(got), ".")
	_, wantTP, _ := strings.Cut(keyAuth, ".")
	switch {
	case len(got) == 0:
		return "the body is empty; want the key authorization"
	case hasDot && tok == token && len(tp) == len(wantTP):
		return "the token is right but the account key thumbprint is not: the file was made for another account key"
	case hasDot && tok != token && len(tp) == len(wantTP):
		return "the body is a key authorization for another token (an old challenge?)"
	case len(got) != len(keyAuth):
		return fmt.Sprintf("the body has %d bytes, not the %d-byte key authorization (token.thumbprint)", len(got), len(keyAuth))
	}
	return "the body is not the key authorization (token.thumbprint)"
}

// dns01 looks for the TXT record _acme-challenge.NAME holding the
// base64url SHA-256 of the key authorization (RFC 8555 §8.4).
func (v *validator) dns01(ctx context.Context, name, keyAuth string) error {
	sum := sha256.Sum256([]byte(keyAuth))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	fqdn := "_acme-challenge." + name
	txts, err := v.resolver.LookupTXT(ctx, fqdn)
	if dnsErr := (*net.DNSError)(nil); errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return &Problem{Type: ErrIncorrectResponse, Detail: fmt.Sprintf("no TXT record %s%s", fqdn, v.via())}
	}
	if err != nil {
		return &Problem{Type: ErrDNS, Detail: fmt.Sprintf("TXT %s%s: %v", fqdn, v.via(), dnsDetail(err))}
	}
	for _, t := range txts {
		if t == want {
			return nil
		}
	}
	return &Problem{Type: ErrIncorrectResponse, Detail: fmt.Sprintf("TXT %s: none of %d records is the key authorization digest", fqdn, len(txts))}
}

// idPeACMEIdentifier is the acmeIdentifier extension of RFC 8737.
var idPeACMEIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}

// tlsALPN01 connects with ALPN "acme-tls/1" and SNI = the name (RFC 8737;
// for IPs the reverse-DNS name, RFC 8738) and checks the self-signed
// certificate: that name only, and the critical acmeIdentifier extension
// holding SHA-256 of the key authorization.
func (v *validator) tlsALPN01(ctx context.Context, id ident, keyAuth string) error {
	conn, err := v.dial(ctx, id, v.tlsPort)
	if err != nil {
		return err
	}
	defer conn.Close()
	sni := id.Value
	if id.Type == "ip" {
		sni = reverseName(netip.MustParseAddr(id.Value))
	}
	tc := tls.Client(conn, &tls.Config{
		ServerName: sni, NextProtos: []string{"acme-tls/1"}, MinVersion: tls.VersionTLS12,
		InsecureSkipVerify: true, // the certificate is self-signed by design; checked below
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		return &Problem{Type: ErrTLS, Detail: fmt.Sprintf("TLS handshake with %s port %d: %v", id.Value, v.tlsPort, err)}
	}
	st := tc.ConnectionState()
	if st.NegotiatedProtocol != "acme-tls/1" {
		return &Problem{Type: ErrTLS, Detail: fmt.Sprintf("%s port %d did not negotiate ALPN acme-tls/1", id.Value, v.tlsPort)}
	}
	return checkALPNCert(st.PeerCertificates[0], id, keyAuth)
}

func checkALPNCert(c *x509.Certificate, id ident, keyAuth string) error {
	bad := func(format string, a ...any) error {
		return &Problem{Type: ErrIncorrectResponse, Detail: "tls-alpn-01 certificate: " + fmt.Sprintf(format, a...)}
	}
	switch {
	case id.Type == "dns" && (len(c.DNSNames) != 1 || c.DNSNames[0] != id.Value || len(c.IPAddresses) != 0):
		return bad("must name exactly %s, names %v %v", id.Value, c.DNSNames, c.IPAddresses)
	case id.Type == "ip" && (len(c.IPAddresses) != 1 || c.IPAddresses[0].String() != id.Value || len(c.DNSNames) != 0):
		return bad("must name exactly %s, names %v %v", id.Value, c.DNSNames, c.IPAddresses)
	}
	sum := sha256.Sum256([]byte(keyAuth))
	for _, e := range c.Extensions {
		if !e.Id.Equal(idPeACMEIdentifier) {
			continue
		}
		var got []byte
		if rest, err := asn1.Unmarshal(e.Value, &got); err != nil || len(rest) > 0 {
			return bad("acmeIdentifier is not an OCTET STRING")
		}
		if !e.Critical {
			return bad("acmeIdentifier extension must be critical")
		}
		if subtle.ConstantTimeCompare(got, sum[:]) != 1 {
			return bad("acmeIdentifier does not match the key authorization")
		}
		return nil
	}
	return bad("no acmeIdentifier extension")
}

func reverseName(ip netip.Addr) string {
	var b []byte
	if ip.Is4() {
		a := ip.As4()
		return fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa", a[3], a[2], a[1], a[0])
	}
	a := ip.As16()
	const hex = "0123456789abcdef"
	for i := len(a) - 1; i >= 0; i-- {
		b = append(b, hex[a[i]&0xf], '.', hex[a[i]>>4], '.')
	}
	return string(b) + "ip6.arpa"
}
