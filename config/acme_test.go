package config

import (
	"strings"
	"testing"
)

func TestACMEValidate(t *testing.T) {
	ok := func() *ACME {
		return &ACME{Provisioners: []ACMEProvisioner{{Name: "acme", Allow: []string{"*.internal", "10.0.0.0/8", "192.0.2.7", "host.example.com"}}}}
	}
	if err := ok().validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for want, mod := range map[string]func(a *ACME){
		`"acme.provisioners"`:         func(a *ACME) { a.Provisioners = nil },
		`"acme.provisioners[0].name"`: func(a *ACME) { a.Provisioners[0].Name = "Bad/Name" },
		`"acme.provisioners[1].name": provisioner "acme" appears twice`: func(a *ACME) { a.Provisioners = append(a.Provisioners, a.Provisioners[0]) },
		`"acme.provisioners[0].allow"`:                                  func(a *ACME) { a.Provisioners[0].Allow = nil },
		`"acme.provisioners[0].allow[0]"`:                               func(a *ACME) { a.Provisioners[0].Allow[0] = "*.*.internal" },
		`"acme.provisioners[0].lifetime"`:                               func(a *ACME) { a.Provisioners[0].Lifetime = Duration(1) },
		`"acme.provisioners[0].challenges[0]"`:                          func(a *ACME) { a.Provisioners[0].Challenges = []string{"dns-02"} },
		`"acme.provisioners[0].validation.http01Port"`:                  func(a *ACME) { a.Provisioners[0].Validation.HTTP01Port = 70000 },
		`"acme.provisioners[0].validation.resolver"`:                    func(a *ACME) { a.Provisioners[0].Validation.Resolver = "10.0.0.2" },
		`"acme.provisioners[0].externalAccountBinding.keysFile"`:        func(a *ACME) { a.Provisioners[0].EAB = &ACMEEAB{} },
		`"acme.db"`:                                     func(a *ACME) { a.DB = "anchorage.db" },
		`"acme.limits.identifiersPerOrder"`:             func(a *ACME) { a.Limits.IdentifiersPerOrder = 5000 },
		`"acme.limits.newOrdersPerIPPerMinute"`:         func(a *ACME) { a.Limits.NewOrdersPerIPPerMinute = -1 },
		`"acme.limits.newAccountsPerMinute"`:            func(a *ACME) { a.Limits.NewAccountsPerMinute = 2_000_000 },
		`"acme.limits.pendingAuthorizationsPerAccount"`: func(a *ACME) { a.Limits.PendingAuthorizationsPerAccount = 50 },
	} {
		a := ok()
		mod(a)
		if err := a.validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error naming %s, got %v", want, err)
		}
	}
}
