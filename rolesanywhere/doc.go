// Package rolesanywhere is the client side of AWS IAM Roles Anywhere: it
// trades an X.509 certificate and its private key for temporary AWS
// credentials, as a drop-in for AWS's aws_signing_helper v1.8.0.
//
// Data moves one way:
//
//	FileSource (cert, key, intermediates; re-read when the files change)
//	  → Identity{crypto.Signer, leaf, chain}
//	  → Client.CreateSession (AWS4-X509 signature, retries)
//	  → Credentials
//	  → one of the three outputs: CredentialProcess (stdout JSON,
//	    shared across processes through a FileCache), Serve (IMDSv2
//	    emulation or, with ECS, the container credentials protocol with
//	    an AuthTokenFile re-read on rotation, backed by a Cache), Update
//	    (shared credentials file).
//
// A Serve (and the agent) also answers CredentialProcess over a unix
// socket (SocketServer) from its Cache; FileCache asks it first, then
// its file, then calls CreateSession.
//
// The signing input is a crypto.Signer so keys held in a PKCS#11 token or
// a TPM plug in through SourceConfig.OpenKey without touching the signer.
// Wire formats follow the AWS helper's behaviour as captured in the
// module's testdata/rolesanywhere; the tests replay those captures.
package rolesanywhere
