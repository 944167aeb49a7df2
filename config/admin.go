package config

// AdminCAPaths resolves the admin intermediate's certificate and key,
// defaulting to admin-ca.crt and admin-ca.key in the CA directory: configs
// written before the admin intermediate existed do not name them.
func (c *CA) AdminCAPaths() (cert, key string) {
	cert, key = c.Paths.AdminCACert, c.Paths.AdminCAKey
	if cert == "" {
		cert = "admin-ca.crt"
	}
	if key == "" {
		key = "admin-ca.key"
	}
	return c.Path(cert), c.Path(key)
}

// ServiceCAPaths resolves the service intermediate's certificate and key
// (it signs the API's TLS certificate), defaulting to service-ca.crt and
// service-ca.key in the CA directory: configs written before it existed do
// not name them.
func (c *CA) ServiceCAPaths() (cert, key string) {
	cert, key = c.Paths.ServiceCACert, c.Paths.ServiceCAKey
	if cert == "" {
		cert = "service-ca.crt"
	}
	if key == "" {
		key = "service-ca.key"
	}
	return c.Path(cert), c.Path(key)
}

// TLSPaths resolves the API's TLS key pair: the combined file (default
// tls.pem), and the older separate files when the config still names them.
// A renewal writes the combined file, which then wins.
func (c *CA) TLSPaths() (combined, cert, key string) {
	combined = c.Paths.TLS
	if combined == "" {
		combined = "tls.pem"
	}
	combined = c.Path(combined)
	if c.Paths.TLSCert != "" && c.Paths.TLSKey != "" {
		cert, key = c.Path(c.Paths.TLSCert), c.Path(c.Paths.TLSKey)
	}
	return combined, cert, key
}
