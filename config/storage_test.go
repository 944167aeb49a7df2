package config

import (
	"strings"
	"testing"
)

func TestStorageValidate(t *testing.T) {
	tests := []struct {
		name string
		s    *Storage
		want string // substring of the error; "" = valid
	}{
		{"absent is bbolt", nil, ""},
		{"postgres", &Storage{Postgres: &Postgres{URL: "postgres://ca@db.internal/anchorage?sslmode=verify-full", PasswordFile: "pg.pass", MaxConns: 8}}, ""},
		{"postgresql scheme", &Storage{Postgres: &Postgres{URL: "postgresql://ca@db/anchorage"}}, ""},
		{"empty storage", &Storage{}, `key "storage"`},
		{"no url", &Storage{Postgres: &Postgres{}}, `key "storage.postgres.url"`},
		{"other scheme", &Storage{Postgres: &Postgres{URL: "mysql://db"}}, `key "storage.postgres.url"`},
		{"two passwords", &Storage{Postgres: &Postgres{URL: "postgres://ca:secret@db/x", PasswordFile: "p"}}, `key "storage.postgres.passwordFile"`},
		{"negative pool", &Storage{Postgres: &Postgres{URL: "postgres://db/x", MaxConns: -1}}, `key "storage.postgres.maxConns"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("validate: %v, want %q", err, tt.want)
			}
		})
	}
	// A password never reaches an error message.
	err := (&Storage{Postgres: &Postgres{URL: "mysql://ca:hunter2@db/x"}}).validate()
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error shows the password: %v", err)
	}
}
