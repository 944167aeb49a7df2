// Package caclient is the client of the CA's /v1 API, used by the workload
// (enroll, renew) and by the admin commands (revoke, list, CRL). It links
// none of the CA's server code: it shares only the wire types of apiv1.
package caclient

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/anchorage-pki/anchorage/apiv1"
	"github.com/anchorage-pki/anchorage/problem"
)

// Client talks to one CA.
type Client struct {
	base string
	http *http.Client
}

// New returns a client for the CA at baseURL that trusts the roots in
// rootFile and, when cert is non-nil, presents it for mTLS.
func New(baseURL, rootFile string, cert *tls.Certificate) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("CA URL %q: want https://HOST[:PORT]", baseURL)
	}
	pemBytes, err := os.ReadFile(rootFile)
	if err != nil {
		return nil, fmt.Errorf("read root certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("root certificate %s: no PEM certificate found", rootFile)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	tr := &http.Transport{
		TLSClientConfig:     tc,
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), http: &http.Client{Transport: tr, Timeout: 60 * time.Second}}, nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the CA: %w", unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return problem.Read(resp)
	}
	if raw, ok := out.(*[]byte); ok {
		*raw, err = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("CA answered %s with a body that does not decode: %w", resp.Status, err)
	}
	return nil
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// Enroll trades a token and CSR for a certificate.
func (c *Client) Enroll(ctx context.Context, token string, csrPEM []byte) (*apiv1.CertResponse, error) {
	out := new(apiv1.CertResponse)
	return out, c.do(ctx, http.MethodPost, apiv1.PathEnroll, apiv1.EnrollRequest{Token: token, CSR: string(csrPEM)}, out)
}

// Renew asks for a successor of the client certificate.
func (c *Client) Renew(ctx context.Context, csrPEM []byte) (*apiv1.CertResponse, error) {
	out := new(apiv1.CertResponse)
	return out, c.do(ctx, http.MethodPost, apiv1.PathRenew, apiv1.RenewRequest{CSR: string(csrPEM)}, out)
}

// Revoke revokes by serial or subject (admin).
func (c *Client) Revoke(ctx context.Context, r apiv1.RevokeRequest) (*apiv1.RevokeResponse, error) {
	out := new(apiv1.RevokeResponse)
	return out, c.do(ctx, http.MethodPost, apiv1.PathRevoke, r, out)
}

// Certs lists one page of certificates (admin). Empty arguments match
// everything; limit 0 asks for the server's default page size; cursor
// is the Next of the previous page ("" for the first).
func (c *Client) Certs(ctx context.Context, subject, status string, limit int, cursor string) (*apiv1.CertList, error) {
	q := url.Values{}
	if subject != "" {
		q.Set("subject", subject)
	}
	if status != "" {
		q.Set("status", status)
	}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	path := apiv1.PathCerts
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	out := new(apiv1.CertList)
	return out, c.do(ctx, http.MethodGet, path, nil, out)
}

// CRL fetches the current CRL (DER).
func (c *Client) CRL(ctx context.Context) ([]byte, error) {
	var der []byte
	return der, c.do(ctx, http.MethodGet, apiv1.PathCRL, nil, &der)
}

// Health fetches /health.
func (c *Client) Health(ctx context.Context) (*apiv1.Health, error) {
	out := new(apiv1.Health)
	return out, c.do(ctx, http.MethodGet, apiv1.PathHealth, nil, out)
}

// NewCSR makes a PEM PKCS#10 request for cn and sans signed by key. A SAN
// is TYPE:value (DNS:, IP:, URI:) or untyped, as tokens carry them since
// they match step-ca's: an IP, an absolute URI, else a DNS name.
func NewCSR(key crypto.Signer, cn string, sans []string) ([]byte, error) {
	t := &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}
	for _, s := range sans {
		typ, val, typed := apiv1.SplitSAN(s)
		if !typed && typ == "DNS" && (s == "" || strings.ContainsAny(s, ": /")) {
			typ = "" // neither a name nor an address: refused below
		}
		switch typ {
		case "DNS":
			t.DNSNames = append(t.DNSNames, val)
		case "IP":
			ip := net.ParseIP(val)
			if ip == nil {
				return nil, fmt.Errorf("SAN %q: bad IP", s)
			}
			t.IPAddresses = append(t.IPAddresses, ip)
		case "URI":
			u, err := url.Parse(val)
			if err != nil {
				return nil, fmt.Errorf("SAN %q: %w", s, err)
			}
			t.URIs = append(t.URIs, u)
		default:
			return nil, fmt.Errorf("SAN %q: want DNS:, IP: or URI:", s)
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, t, key)
	if err != nil {
		return nil, fmt.Errorf("create CSR: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// Anchors returns the trust-anchor push status (admin).
func (c *Client) Anchors(ctx context.Context) (*apiv1.AnchorList, error) {
	out := new(apiv1.AnchorList)
	return out, c.do(ctx, http.MethodGet, apiv1.PathAnchors, nil, out)
}

// PushAnchors asks the CA to push its CRL now (admin).
func (c *Client) PushAnchors(ctx context.Context) (*apiv1.AnchorList, error) {
	out := new(apiv1.AnchorList)
	return out, c.do(ctx, http.MethodPost, apiv1.PathAnchorsPush, struct{}{}, out)
}
