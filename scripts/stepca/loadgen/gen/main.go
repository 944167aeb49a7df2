// Command gen writes a step-ca v0.30.x configuration for the sign benchmark,
// the way `step ca init` lays it out, without the step CLI:
//
//	OUT/certs/root_ca.crt          ECDSA P-256 root (10y, MaxPathLen 1)
//	OUT/certs/intermediate_ca.crt  ECDSA P-256 intermediate (10y, MaxPathLen 0)
//	OUT/secrets/root_ca_key        encrypted PEM (password in OUT/secrets/password)
//	OUT/secrets/intermediate_ca_key  encrypted PEM (same password)
//	OUT/secrets/password           passed to step-ca with --password-file
//	OUT/secrets/provisioner_key.json  the JWK provisioner's private key (plain JWK,
//	                               for the load generator's -key)
//	OUT/secrets/provisioner_password  password of the provisioner's encryptedKey
//	OUT/config/ca.json             step-ca config: 127.0.0.1:PORT, bbolt at OUT/db
//	                               (or -db-type postgresql -db-source URL),
//	                               one JWK provisioner (ES256), default cert 24h
//	OUT/config/bench.env           shell assignments (STEPCA_URL, ...) for run.sh
//
// Every path written into ca.json and bench.env is under OUT (made absolute).
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.step.sm/crypto/jose"
	"go.step.sm/crypto/pemutil"
)

func main() {
	out := flag.String("out", "", "output directory (required)")
	port := flag.Int("port", 0, "port step-ca listens on at 127.0.0.1; 0 picks a free one now")
	name := flag.String("name", "bench", "JWK provisioner name (the token's iss)")
	dur := flag.String("duration", "24h", "default (and max) TLS certificate duration")
	dbType := flag.String("db-type", "bbolt", "step-ca database type: bbolt, or postgresql (then -db-source is required)")
	dbSource := flag.String("db-source", "", "step-ca database dataSource (default OUT/db for bbolt); for postgresql a postgresql:// URL whose database step-ca creates if missing")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "gen: -out is required")
		os.Exit(2)
	}
	if *dbType == "bbolt" && *dbSource == "" {
		*dbSource = filepath.Join(*out, "db")
	}
	if *dbType != "bbolt" && *dbSource == "" {
		fmt.Fprintln(os.Stderr, "stepcagen: -db-type", *dbType, "needs -db-source")
		os.Exit(2)
	}
	if err := run(*out, *port, *name, *dur, *dbType, *dbSource); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(out string, port int, name, dur, dbType, dbSource string) error {
	out, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	certs, secrets, config := filepath.Join(out, "certs"), filepath.Join(out, "secrets"), filepath.Join(out, "config")
	for _, d := range []string{certs, config} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		return err
	}

	caPass := randomPassword()
	provPass := randomPassword()

	// Root and intermediate, as pki.GenerateRootCertificate and
	// pki.GenerateIntermediateCertificate in step-ca make them.
	now := time.Now()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	rootTmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "Bench Root CA", Organization: []string{"Bench"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return err
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return err
	}
	intKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	intTmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "Bench Intermediate CA", Organization: []string{"Bench"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	intDER, err := x509.CreateCertificate(rand.Reader, intTmpl, root, &intKey.PublicKey, rootKey)
	if err != nil {
		return err
	}

	rootCrt := filepath.Join(certs, "root_ca.crt")
	intCrt := filepath.Join(certs, "intermediate_ca.crt")
	rootKeyFile := filepath.Join(secrets, "root_ca_key")
	intKeyFile := filepath.Join(secrets, "intermediate_ca_key")
	passFile := filepath.Join(secrets, "password")
	provKeyFile := filepath.Join(secrets, "provisioner_key.json")
	provPassFile := filepath.Join(secrets, "provisioner_password")

	if err := writePEM(rootCrt, &pem.Block{Type: "CERTIFICATE", Bytes: rootDER}, 0o644); err != nil {
		return err
	}
	if err := writePEM(intCrt, &pem.Block{Type: "CERTIFICATE", Bytes: intDER}, 0o644); err != nil {
		return err
	}
	for _, k := range []struct {
		file string
		key  *ecdsa.PrivateKey
	}{{rootKeyFile, rootKey}, {intKeyFile, intKey}} {
		// Same encoding as step-ca's pki.encodePrivateKey.
		b, err := pemutil.Serialize(k.key, pemutil.WithPassword(caPass))
		if err != nil {
			return err
		}
		if err := writePEM(k.file, b, 0o600); err != nil {
			return err
		}
	}
	if err := os.WriteFile(passFile, caPass, 0o600); err != nil {
		return err
	}

	// The JWK provisioner: ES256 key, kid = its SHA-256 thumbprint, and the
	// private key also stored encrypted (PBES2-HS256+A128KW) as encryptedKey,
	// which is what `step ca token` would fetch and decrypt. step-ca itself only
	// needs the public key to verify tokens.
	jwk, err := jose.GenerateJWK("EC", "P-256", "ES256", "sig", "", 0)
	if err != nil {
		return err
	}
	jwe, err := jose.EncryptJWK(jwk, provPass)
	if err != nil {
		return err
	}
	encryptedKey, err := jwe.CompactSerialize()
	if err != nil {
		return err
	}
	privJSON, err := json.MarshalIndent(jwk, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(provKeyFile, append(privJSON, '\n'), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(provPassFile, provPass, 0o600); err != nil {
		return err
	}
	pub := jwk.Public()

	if port == 0 {
		if port, err = freePort(); err != nil {
			return err
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	cfg := map[string]any{
		"root":     rootCrt,
		"crt":      intCrt,
		"key":      intKeyFile,
		"address":  addr,
		"dnsNames": []string{"127.0.0.1", "localhost"},
		"logger":   map[string]any{"format": "text"},
		"db":       map[string]any{"type": dbType, "dataSource": dbSource},
		"authority": map[string]any{
			"claims": map[string]any{
				"defaultTLSCertDuration": dur,
				"maxTLSCertDuration":     dur,
			},
			"provisioners": []any{map[string]any{
				"type":         "JWK",
				"name":         name,
				"key":          &pub,
				"encryptedKey": encryptedKey,
			}},
		},
		// step-ca's DefaultTLSOptions, as `step ca init` writes them.
		"tls": map[string]any{
			"cipherSuites": []string{
				"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
				"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
			},
			"minVersion":    1.2,
			"maxVersion":    1.3,
			"renegotiation": false,
		},
	}
	cfgJSON, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	cfgFile := filepath.Join(config, "ca.json")
	if err := os.WriteFile(cfgFile, append(cfgJSON, '\n'), 0o600); err != nil {
		return err
	}

	sum := sha256.Sum256(root.Raw)
	fp := hex.EncodeToString(sum[:])
	url := "https://" + addr
	env := []struct{ k, v string }{
		{"STEPCA_URL", url},
		{"STEPCA_PORT", fmt.Sprint(port)},
		{"STEPCA_AUD", url + "/1.0/sign"},
		{"STEPCA_ROOT", rootCrt},
		{"STEPCA_FINGERPRINT", fp},
		{"STEPCA_PROVISIONER", name},
		{"STEPCA_KID", jwk.KeyID},
		{"STEPCA_KEY", provKeyFile},
		{"STEPCA_CONFIG", cfgFile},
		{"STEPCA_PASSWORD_FILE", passFile},
		{"STEPCA_DB", dbSource},
	}
	var sb strings.Builder
	for _, e := range env {
		fmt.Fprintf(&sb, "%s=%s\n", e.k, shellQuote(e.v))
	}
	if err := os.WriteFile(filepath.Join(config, "bench.env"), []byte(sb.String()), 0o644); err != nil {
		return err
	}
	fmt.Printf("gen: wrote %s (listen %s, provisioner %q kid %s, root sha256 %s)\n", cfgFile, addr, name, jwk.KeyID, fp)
	return nil
}

func writePEM(file string, b *pem.Block, mode os.FileMode) error {
	return os.WriteFile(file, pem.EncodeToMemory(b), mode)
}

func randomPassword() []byte {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return []byte(base64.RawURLEncoding.EncodeToString(b))
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err)
	}
	return n
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before step-ca binds it; run.sh fails loudly if that happens.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
