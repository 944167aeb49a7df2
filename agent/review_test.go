package agent_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anchorage-pki/anchorage/agent"
	"github.com/anchorage-pki/anchorage/signer/signertest"
)

// Rekey works with key files only. A TSS2 key named by its plain path (a
// file, recognised by content) is a TPM key too: renewing with rekey must
// refuse, not replace the TPM-bound key with an exportable software key.
func TestRekeyRefusesTSS2KeyFile(t *testing.T) {
	c := shortCA(t, time.Hour)
	tp := signertest.SWTPM(t)
	t.Setenv("TPM_DEVICE", tp.Socket)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "h.crt"), filepath.Join(dir, "h.tss2")
	ctx := context.Background()
	tok, err := os.ReadFile(mintToken(t, c, dir, "tss2-host"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agent.Enroll(ctx, agent.EnrollOptions{CA: c.URL, Root: filepath.Join(c.Dir, "root.crt"),
		Token: string(bytes.TrimSpace(tok)), Cert: cert, Key: "tpm:" + key}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(key)
	_, err = agent.Renew(ctx, agent.RenewOptions{CA: c.URL, Root: filepath.Join(c.Dir, "root.crt"), Cert: cert, Key: key, Rekey: true})
	if err == nil {
		t.Error("rekey of a TSS2 key file succeeded")
	}
	if after, _ := os.ReadFile(key); !bytes.Equal(before, after) {
		t.Fatalf("rekey replaced the TPM key file with:\n%.60s", after)
	}
}
