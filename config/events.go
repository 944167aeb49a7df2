package config

import "errors"

// Events configures the audit event stream (package events): a file,
// rotated by size, or stdout.
type Events struct {
	File      string `json:"file,omitempty"`      // relative to the CA directory
	MaxSizeMB int    `json:"maxSizeMB,omitempty"` // rotate past this size (default 100)
	Keep      int    `json:"keep,omitempty"`      // rotated files kept (default 10)
	Stdout    bool   `json:"stdout,omitempty"`
}

// MaxBytes is the rotation size in bytes.
func (e *Events) MaxBytes() int64 { return int64(e.MaxSizeMB) << 20 }

func (e *Events) validate() error {
	if e == nil {
		return nil
	}
	switch {
	case e.File == "" && !e.Stdout:
		return errors.New(`key "events": give "file" or "stdout": true`)
	case e.File != "" && e.Stdout:
		return errors.New(`key "events.stdout": give either "file" or "stdout", not both`)
	case e.MaxSizeMB < 0:
		return errors.New(`key "events.maxSizeMB": must not be negative`)
	case e.Keep < 0:
		return errors.New(`key "events.keep": must not be negative`)
	case e.Stdout && (e.MaxSizeMB != 0 || e.Keep != 0):
		return errors.New(`key "events.maxSizeMB": rotation applies to "file" only`)
	}
	if e.File != "" {
		if e.MaxSizeMB == 0 {
			e.MaxSizeMB = 100
		}
		if e.Keep == 0 {
			e.Keep = 10
		}
	}
	return nil
}
