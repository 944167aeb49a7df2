package signer_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anchorage-pki/anchorage/signer"
	"github.com/anchorage-pki/anchorage/signer/signertest"
)

func hsm(t testing.TB, label string) *signertest.HSM { return signertest.Token(t, label) }

func checkSigns(t *testing.T, s crypto.Signer) {
	t.Helper()
	sum := sha256.Sum256([]byte("anchorage"))
	sig, err := s.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	switch pub := s.Public().(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, sum[:], sig) {
			t.Fatal("ECDSA signature does not verify")
		}
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
			t.Fatalf("RSA signature does not verify: %v", err)
		}
	default:
		t.Fatalf("unexpected key %T", pub)
	}
}

func TestFileCreateOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "k.pem")
	p, err := signer.Create(ctx, path, signer.EC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("Create wrote the key before Save")
	}
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	s, err := signer.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	checkSigns(t, s)
	if _, err := signer.Create(ctx, path, signer.EC); !errors.Is(err, signer.ErrExists) {
		t.Fatalf("Create over an existing file: %v", err)
	}
	// A directory joined in front of a URI (config.Path) is undone.
	if got := signer.KindOf("pkcs11:token=x"); got != signer.KindPKCS11 {
		t.Fatal(got)
	}
}

func TestPKCS11(t *testing.T) {
	ctx := context.Background()
	h := hsm(t, "t1")
	fresh := hsm(t, "t2") // never logged in: a wrong PIN is only seen at login
	for _, kt := range []signer.KeyType{signer.EC, signer.P384, signer.RSA} {
		t.Run(string(kt), func(t *testing.T) {
			ref := h.URI("key-" + string(kt))
			p, err := signer.Create(ctx, ref, kt)
			if err != nil {
				t.Fatal(err)
			}
			checkSigns(t, p)
			if err := p.Save(); err != nil {
				t.Fatal(err)
			}
			s, err := signer.Open(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			checkSigns(t, s)
			if !s.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(p.Public()) {
				t.Fatal("reopened key differs")
			}
			if _, err := signer.Create(ctx, ref, kt); !errors.Is(err, signer.ErrExists) {
				t.Fatalf("second Create: %v", err)
			}
		})
	}

	t.Run("pin-source and --pkcs11-lib", func(t *testing.T) {
		ref := "pkcs11:token=" + h.Token + ";object=key-ec?pin-source=" + h.PINFile
		s, err := signer.Open(ctx, ref, signer.WithPKCS11Module(h.Module))
		if err != nil {
			t.Fatal(err)
		}
		checkSigns(t, s)
	})

	t.Run("discard", func(t *testing.T) {
		ref := h.URI("discarded")
		p, err := signer.Create(ctx, ref, signer.EC)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Discard(); err != nil {
			t.Fatal(err)
		}
		if _, err := signer.Open(ctx, ref); err == nil || !strings.Contains(err.Error(), "no private key") {
			t.Fatalf("open after discard: %v", err)
		}
	})

	errs := []struct {
		name, ref, want string
	}{
		{"wrong PIN", strings.Replace(fresh.URI("x"), "pin-value=1234", "pin-value=9999", 1), "wrong PIN"},
		{"missing token", strings.Replace(h.URI("x"), "token=t1", "token=nosuch", 1), "no PKCS#11 token matches token=nosuch"},
		{"missing object", h.URI("nosuch"), "no private key object=nosuch in PKCS#11 token token=t1"},
		{"missing module", "pkcs11:module-path=/nonexistent/lib.so;token=t1;object=x?pin-value=1", "PKCS#11 module /nonexistent/lib.so not found"},
		{"no token", "pkcs11:object=x?pin-value=1", "names no token"},
		{"unreadable pin-source", "pkcs11:module-path=" + h.Module + ";token=t1;object=x?pin-source=/nonexistent/pin", "cannot read pin-source"},
	}
	for _, e := range errs {
		t.Run(e.name, func(t *testing.T) {
			_, err := signer.Open(ctx, e.ref)
			if err == nil || !strings.Contains(err.Error(), e.want) {
				t.Fatalf("got %v, want %q", err, e.want)
			}
			if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "pin-value=9999") {
				t.Fatalf("error is not one clean line: %q", err)
			}
		})
	}
}

func TestTPM(t *testing.T) {
	ctx := context.Background()
	tp := signertest.SWTPM(t)
	t.Setenv("TPM_DEVICE", tp.Socket)
	dir := t.TempDir()

	for _, kt := range []signer.KeyType{signer.EC, signer.RSA} {
		t.Run("tss2-"+string(kt), func(t *testing.T) {
			path := filepath.Join(dir, string(kt)+".tss2")
			p, err := signer.Create(ctx, "tpm:"+path, kt)
			if err != nil {
				t.Fatal(err)
			}
			checkSigns(t, p)
			if _, err := os.Stat(path); err == nil {
				t.Fatal("written before Save")
			}
			if err := p.Save(); err != nil {
				t.Fatal(err)
			}
			for _, ref := range []string{"tpm:" + path, path} {
				s, err := signer.Open(ctx, ref)
				if err != nil {
					t.Fatal(err)
				}
				checkSigns(t, s)
			}
		})
	}

	t.Run("handle", func(t *testing.T) {
		p, err := signer.Create(ctx, "handle:0x81000010", signer.EC)
		if err != nil {
			t.Fatal(err)
		}
		checkSigns(t, p)
		if err := p.Save(); err != nil {
			t.Fatal(err)
		}
		s, err := signer.Open(ctx, "handle:0x81000010")
		if err != nil {
			t.Fatal(err)
		}
		checkSigns(t, s)
		if _, err := signer.Create(ctx, "handle:0x81000010", signer.EC); !errors.Is(err, signer.ErrExists) {
			t.Fatalf("second create: %v", err)
		}
		p2, err := signer.Create(ctx, "handle:0x81000011", signer.EC)
		if err != nil {
			t.Fatal(err)
		}
		if err := p2.Discard(); err != nil {
			t.Fatal(err)
		}
		if _, err := signer.Open(ctx, "handle:0x81000011"); err == nil || !strings.Contains(err.Error(), "no key at TPM handle 0x81000011") {
			t.Fatalf("open discarded handle: %v", err)
		}
	})

	t.Run("tpm2-tools key", func(t *testing.T) {
		// A key made as the vector's was (tpm2-tools, TSS2 PEM via
		// tpm2_encodeobject) opens and signs: the SRK template matches.
		for _, tool := range []string{"tpm2_createprimary", "tpm2_create", "tpm2_encodeobject"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Fatalf("%s missing: apt-get install -y tpm2-tools libtss2-tcti-swtpm0", tool)
			}
		}
		d := t.TempDir()
		env := append(os.Environ(), "TPM2TOOLS_TCTI=swtpm:path="+tp.Socket)
		run := func(args ...string) {
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Env, cmd.Dir = env, d
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %v\n%s", args, err, out)
			}
		}
		run("tpm2_createprimary", "-C", "o", "-g", "sha256", "-G", "ecc256:aes128cfb", "-c", "primary.ctx",
			"-a", "restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda")
		run("tpm2_create", "-C", "primary.ctx", "-G", "ecc256:ecdsa-sha256", "-u", "key.pub", "-r", "key.priv")
		run("tpm2_flushcontext", "-t")
		run("tpm2_encodeobject", "-C", "primary.ctx", "-u", "key.pub", "-r", "key.priv", "-p", "-o", "key.pem")
		s, err := signer.Open(ctx, filepath.Join(d, "key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		checkSigns(t, s)
	})

	t.Run("unreachable", func(t *testing.T) {
		_, err := signer.Open(ctx, "handle:0x81000010", signer.WithTPMDevice(filepath.Join(dir, "nosuch.sock")))
		if err == nil || !strings.Contains(err.Error(), "TPM unreachable") {
			t.Fatalf("got %v", err)
		}
		_, err = signer.Create(ctx, "tpm:"+filepath.Join(dir, "x.tss2"), signer.EC, signer.WithTPMDevice(filepath.Join(dir, "nosuch.sock")))
		if err == nil || !strings.Contains(err.Error(), "TPM unreachable") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("bad handle", func(t *testing.T) {
		if _, err := signer.Open(ctx, "handle:0x40000001"); err == nil || !strings.Contains(err.Error(), "persistent handle") {
			t.Fatalf("got %v", err)
		}
	})
}
