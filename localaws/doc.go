// Package localaws is anchorage's one stand-in for AWS: a strict, local IAM
// Roles Anywhere endpoint (CreateSession and the control plane, including
// attribute mappings and subjects), the part of IAM that CreateSession
// depends on (roles and trust policies, inline and managed role policies),
// and STS GetCallerIdentity, served by one http.Handler on one address for
// one region and any number of accounts.
//
// It exists so the rest of the product can be proven without reaching AWS, so
// it errs on the side of refusing: every CreateSession is verified as the
// real service verifies it (AWS4-X509 signature rebuilt from the
// wire bytes, chain to an enabled trust anchor, certificate rules, imported
// CRLs, profile and role checks, then the role's trust policy evaluated by
// package iampolicy for sts:AssumeRole, sts:TagSession and
// sts:SetSourceIdentity with the certificate's principal tags), and every
// control-plane, IAM or STS call must carry a valid AWS4-HMAC-SHA256
// signature made with an account's admin key pair or with session
// credentials this server issued.
//
// Accounts: Config.Account/AccessKeyID/SecretAccessKey is the default
// account, Config.Accounts adds more. A SigV4 request's access key selects
// its account; CreateSession, which carries no key, takes the account from
// its trust anchor ARN, and profile and role must be in that same account
// (AWS: "all resources must be in the same account").
//
// Data flow: ServeHTTP reads the body once (the signature covers its exact
// bytes), routes by path and credential scope (CreateSession by path, IAM
// by scope service "iam" signed for us-east-1, STS by scope "sts", the rest
// is the Roles Anywhere control plane), authenticates (x509sig.go for
// CreateSession, sigv4.go for everything else), applies the per-group rate
// limit, and then runs the operation against the in-memory state (state.go:
// per-account resources, issued credentials), which is written atomically
// to Config.StateFile after every mutation. Errors are answered in the
// calling protocol's shape (apierror.go): REST-JSON with x-amzn-ErrorType
// for Roles Anywhere, awsquery XML for IAM and STS.
//
// What is not modelled: IAM users, groups, instance profiles, permissions
// boundaries (refused), policy versions other than v1, AWS managed
// policies; identity policies are not enforced on calls made to localaws
// itself with session credentials (Server.SessionPolicy exposes a session's
// effective policy for the audit instead).
package localaws
