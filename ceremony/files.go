package ceremony

import "github.com/anchorage-pki/anchorage/config"

// Admin client certificate and key of the first admin, in the CA directory
// (the admin commands' --dir default).
const (
	AdminCertFile = "admin.crt"
	AdminKeyFile  = "admin.key"
)

// FilesFor names the files of a CA directory as cfg lays them out, with
// the first admin's certificate and key beside them.
func FilesFor(cfg *config.CA) Files {
	p := cfg.Path
	adminCACert, adminCAKey := cfg.AdminCAPaths()
	serviceCACert, serviceCAKey := cfg.ServiceCAPaths()
	tlsPair, _, _ := cfg.TLSPaths()
	return Files{Root: p(cfg.Paths.Root), RootKey: p(cfg.Paths.RootKey), CACert: p(cfg.Paths.CACert), CAKey: p(cfg.Paths.CAKey),
		AdminCACert: adminCACert, AdminCAKey: adminCAKey, ServiceCACert: serviceCACert, ServiceCAKey: serviceCAKey, TLS: tlsPair,
		AdminCert: p(AdminCertFile), AdminKey: p(AdminKeyFile), ProvisionerKey: p(cfg.Paths.ProvisionerKey)}
}
