package signer_test

import (
	"context"
	"strings"
	"testing"

	"github.com/anchorage-pki/anchorage/signer"
)

// A PIN must never reach an error message or a log line, whatever the
// shape of the URI: not in a parse error (which quotes the raw URI), and
// not when pin-value appears more than once.
func TestPKCS11ErrorsAndRedactHidePIN(t *testing.T) {
	ctx := context.Background()
	for _, ref := range []string{
		"pkcs11:token=t1;object=x;pin-value=s3cr%et",
		"pkcs11:token=t1;object=x?pin-value=s3cr%et",
		"pkcs11:token=t1;object=x;pin-value=s3cret?pin-value=s3cret",
		"pkcs11:token=t1;pin-value=s3cret;object=x?pin-value=s3cret",
	} {
		_, err := signer.Open(ctx, ref)
		if err == nil || strings.Contains(err.Error(), "s3cr") {
			t.Errorf("Open(%q): %v", signer.Redact(ref), err)
		}
		_, err = signer.Create(ctx, ref, signer.EC)
		if err == nil || strings.Contains(err.Error(), "s3cr") {
			t.Errorf("Create(%q): %v", signer.Redact(ref), err)
		}
		if got := signer.Redact(ref); strings.Contains(got, "s3cr") {
			t.Errorf("Redact(%q) = %q", ref, got)
		}
	}
}
