package config

import (
	"strings"
	"testing"
)

func TestEventsValidate(t *testing.T) {
	tests := []struct {
		name string
		e    *Events
		want string // substring of the error; "" = valid
	}{
		{"absent", nil, ""},
		{"file with defaults", &Events{File: "events.jsonl"}, ""},
		{"file rotated", &Events{File: "/var/log/anchorage/events.jsonl", MaxSizeMB: 5, Keep: 3}, ""},
		{"stdout", &Events{Stdout: true}, ""},
		{"neither", &Events{}, `key "events"`},
		{"both", &Events{File: "e", Stdout: true}, `key "events.stdout"`},
		{"negative size", &Events{File: "e", MaxSizeMB: -1}, `key "events.maxSizeMB"`},
		{"negative keep", &Events{File: "e", Keep: -2}, `key "events.keep"`},
		{"stdout rotated", &Events{Stdout: true, MaxSizeMB: 1}, `key "events.maxSizeMB"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.e.validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("validate: %v, want %q", err, tt.want)
			}
		})
	}
	e := &Events{File: "e"}
	if e.validate(); e.MaxBytes() != 100<<20 || e.Keep != 10 {
		t.Errorf("defaults: %+v", e)
	}
}
