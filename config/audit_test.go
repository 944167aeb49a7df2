package config

import (
	"strings"
	"testing"
	"time"
)

func TestAuditValidate(t *testing.T) {
	ok := AuditAccount{Name: "prod", Region: "eu-west-1"}
	tests := []struct {
		name string
		a    *Audit
		want string // substring of the error; "" = valid
	}{
		{"absent", nil, ""},
		{"empty", &Audit{}, ""},
		{"two accounts", &Audit{MaxLifetime: Duration(48 * time.Hour), Accounts: []AuditAccount{ok, {Name: "dev", Region: "us-east-1", Endpoint: "http://127.0.0.1:9000", Profile: "dev"}}}, ""},
		{"negative lifetime", &Audit{MaxLifetime: -1}, `key "audit.maxLifetime"`},
		{"no name", &Audit{Accounts: []AuditAccount{{Region: "us-east-1"}}}, `key "audit.accounts[0].name"`},
		{"same name twice", &Audit{Accounts: []AuditAccount{ok, ok}}, `key "audit.accounts[1].name"`},
		{"bad region", &Audit{Accounts: []AuditAccount{ok, {Name: "x", Region: "Europe"}}}, `key "audit.accounts[1].region"`},
		{"bad endpoint", &Audit{Accounts: []AuditAccount{{Name: "x", Region: "us-east-1", Endpoint: "localhost:9000"}}}, `key "audit.accounts[0].endpoint"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.a.validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("validate: %v, want %q", err, tt.want)
			}
		})
	}
}
