// Package agent is the workload side of anchorage: first enrollment with a
// one-time token, renewal over mTLS, and the long-running agent that keeps
// a certificate fresh without anyone looking after it.
//
// Data moves like this:
//
//	tokenFile ──Enroll (first start only)──▶ key (signer.Create: file, PKCS#11, TPM) + cert file
//	cert file + key ──renewWith at ~2/3 of the lifetime ± jitter──▶ new cert file (atomic rename)
//	                                            └─▶ reload hook, status file, /health
//	cert file + key ──rolesanywhere.FileSource (re-read on change)──▶ IMDSv2 on 127.0.0.1, the container
//	                                            credentials endpoint (mode "ecs", token file re-read on change)
//	                                            or the credentials file
//
// # Files a reader can trust
//
// The certificate chain and the key are two files. Each is replaced by
// atomicfile (temp file in the same directory, fsync, rename, fsync of the
// directory), so a reader never sees a half-written file. By default the
// agent never changes the key: renewal replaces only the chain file, and
// every read of the two files, in any order, gives a matching pair. A key
// in a PKCS#11 token or a TPM never changes either.
//
// With rekey (key files only) the new key file is renamed into place
// first and the chain second, and the reload hook runs after both. A
// reader that reads both files during that instant may get a pair that does
// not match. Readers must check the pair and read again on a mismatch:
// tls.LoadX509KeyPair, rolesanywhere.FileSource and aws_signing_helper all
// refuse a mismatched pair, and FileSource retries on its next request.
// A reader that reloads from the hook never sees a mismatch.
//
// # Health
//
// Status (also GET /health on HealthListen and the StatusFile) is "ok"
// until a renewal fails, then "renewal-failing" (still healthy; retried
// with backoff, at most a tenth of the lifetime apart), "unhealthy" from
// UnhealthyAt (default 85 %) of the lifetime, and "expired" or "revoked".
// /health answers 503 from "unhealthy" on, well before the certificate
// lapses. A revoked certificate is logged at ERROR, stops credential
// serving at once and is never retried: the host must be enrolled again.
package agent
