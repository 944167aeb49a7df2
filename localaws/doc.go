// Package localaws is anchorage's one stand-in for AWS: a strict, local IAM
// Roles Anywhere endpoint (CreateSession and the control plane) plus the STS
// GetCallerIdentity call, served by one http.Handler on one address.
//
// It exists so the rest of the product can be proven without reaching AWS, so
// it errs on the side of refusing: every CreateSession is verified as the
// real service verifies it (AWS4-X509 signature rebuilt from the
// wire bytes, chain to an enabled trust anchor, certificate rules, imported
// CRLs, profile and role checks), and every control-plane or STS call must
// carry a valid AWS4-HMAC-SHA256 signature made with the configured admin key
// pair or with session credentials this server issued.
//
// Data flow: ServeHTTP reads the body once (the signature covers its exact
// bytes), routes by path and credential scope, authenticates (x509sig.go for
// CreateSession, sigv4.go for everything else), applies the per-group rate
// limit, and then runs the operation against the in-memory state (state.go),
// which is written atomically to Config.StateFile after every mutation.
// Errors are answered in the calling protocol's shape (apierror.go): REST-JSON
// with x-amzn-ErrorType for Roles Anywhere, awsquery XML for STS.
package localaws
