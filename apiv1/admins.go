package apiv1

// PathAdmins issues (POST) and lists (GET) admin client certificates.
const PathAdmins = "/v1/admins"

// AdminRequest asks for an admin client certificate for a CSR the admin
// made: the private key never crosses the wire.
type AdminRequest struct {
	Name     string `json:"name"`               // who: becomes the subject CN
	CSR      string `json:"csr"`                // PEM PKCS#10
	Lifetime string `json:"lifetime,omitempty"` // Go duration, e.g. "720h"; default 30 days
}
