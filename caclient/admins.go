package caclient

import (
	"context"
	"net/http"

	"github.com/anchorage-pki/anchorage/apiv1"
)

// IssueAdmin asks for an admin client certificate (admin mTLS).
func (c *Client) IssueAdmin(ctx context.Context, r apiv1.AdminRequest) (*apiv1.CertResponse, error) {
	out := new(apiv1.CertResponse)
	return out, c.do(ctx, http.MethodPost, apiv1.PathAdmins, r, out)
}

// Admins lists admin client certificates (admin mTLS).
func (c *Client) Admins(ctx context.Context) (*apiv1.CertList, error) {
	out := new(apiv1.CertList)
	return out, c.do(ctx, http.MethodGet, apiv1.PathAdmins, nil, out)
}
