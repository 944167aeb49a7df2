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
	// From names where URL came from in messages: "" for the config's
	// key, else the flag that set it (UsePostgres).
	From string `json:"-"`
}

// Origin names where the URL was set, for messages: the flag, or the
// config key.
func (p *Postgres) Origin() string {
	if p.From != "" {
		return p.From
	}
	return "storage.postgres"
}

// UsePostgres points the CA at the PostgreSQL database url, set by flag
// (named in errors), over whatever "storage" the config file says; the
// password file and pool size of a configured "storage.postgres" stay.
// The URL is checked as the config key is; an error never shows its
// password.
func (c *CA) UsePostgres(flag, url string) error {
	p := &Postgres{}
	if c.Storage != nil && c.Storage.Postgres != nil {
		*p = *c.Storage.Postgres
	}
	p.URL, p.From = url, flag
	if err := (&Storage{Postgres: p}).validate(); err != nil {
		// The same checks, named by the flag instead of the key.
		msg := strings.TrimPrefix(err.Error(), `key "storage.postgres.url": `)
		msg = strings.Replace(msg, `key "storage.postgres.passwordFile": the URL has a password already`,
			"the URL has a password and storage.postgres.passwordFile is set", 1)
		return fmt.Errorf("%s: %s", flag, msg)
	}
	c.Storage = &Storage{Postgres: p}
	return nil
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
