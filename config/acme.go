package config

// ACME configures the ACME (RFC 8555) front end: one entry per provisioner,
// served at /acme/{name}/directory. Owned by package acme; see its doc.
type ACME struct {
	Provisioners []ACMEProvisioner `json:"provisioners"`
}

// ACMEProvisioner is one ACME provisioner's policy.
type ACMEProvisioner struct {
	Name string `json:"name"`
}

func (a *ACME) validate() error { return nil }
