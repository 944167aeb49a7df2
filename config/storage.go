package config

import (
	"fmt"
	"net/url"
	"strings"
)

// Storage chooses the record of truth: the bbolt file at paths.db when
// absent, or a shared PostgreSQL database that several CA replicas use.
type Storage struct {
	Postgres *Postgres `json:"postgres,omitempty"`
}

// Postgres is a PostgreSQL database. TLS to the server is what the URL
// says (sslmode, sslrootcert, ...).
type Postgres struct {
	URL string `json:"url"` // postgres://USER@HOST[:PORT]/DB?sslmode=verify-full
	// PasswordFile holds the password (one line), relative to the CA
	// directory unless absolute, so the URL in the config carries none.
	PasswordFile string `json:"passwordFile,omitempty"`
	MaxConns     int32  `json:"maxConns,omitempty"` // pool size; pgx's default when 0
}

func (s *Storage) validate() error {
	if s == nil {
		return nil
	}
	p := s.Postgres
	if p == nil {
		return fmt.Errorf(`key "storage": want "postgres" (or no "storage" for the bbolt file at paths.db)`)
	}
	u, err := url.Parse(p.URL)
	if p.URL == "" || err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf(`key "storage.postgres.url": want postgres://USER@HOST[:PORT]/DATABASE, got %q`, redact(p.URL))
	}
	if _, set := u.User.Password(); set && p.PasswordFile != "" {
		return fmt.Errorf(`key "storage.postgres.passwordFile": the URL has a password already`)
	}
	if p.MaxConns < 0 {
		return fmt.Errorf(`key "storage.postgres.maxConns": must not be negative`)
	}
	return nil
}

// redact hides a password in a URL for an error message.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			return "…" + raw[i:]
		}
		return raw
	}
	if _, set := u.User.Password(); set {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
