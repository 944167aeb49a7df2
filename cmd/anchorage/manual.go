package main

import "github.com/anchorage-pki/anchorage/internal/manhelp"

// manual is anchorage's man-style help: a DESCRIPTION and EXAMPLES for
// every command, shown by --help and written as man pages into the .deb.
// Exit status: 0 on success, 1 with one line on stderr otherwise; the agent
// exits 3 when its certificate was revoked (restarting cannot help).
var manual = map[string]manhelp.Page{
	"anchorage": {
		Long: `anchorage is the workload side of anchorage: it enrolls with the CA using a one-time
token, renews its certificate over mTLS, and trades it for short-lived AWS credentials
through IAM Roles Anywhere. credential-process, serve and update take the same flags as
AWS's aws_signing_helper, so it is a drop-in. Keys live in files (0600), PKCS#11 tokens
(pkcs11: URIs) or a TPM (handle: or tpm: keys).`,
		Example: `anchorage enroll --ca https://ca.internal:8443 --root root.crt --token-file token --cert host.crt --key host.key
anchorage credential-process --certificate host.crt --private-key host.key --trust-anchor-arn ARN --profile-arn ARN --role-arn ARN`,
	},
	"anchorage enroll": {
		Long: `Make a key (or use one in a PKCS#11 token or TPM) and get this workload's first
certificate with a one-time token. The certificate and key are written atomically; an
existing certificate is kept unless --force.`,
		Example: `anchorage enroll --ca https://ca.internal:8443 --root root.crt --token-file token --cert host.crt --key host.key
anchorage enroll --ca https://ca.internal:8443 --root root.crt --token-file token --cert host.crt --key 'pkcs11:token=host;object=aws?pin-source=/etc/anchorage/pin'`,
	},
	"anchorage renew": {
		Long: `Renew this workload's certificate over mTLS with the current one, keeping the key or
(--rekey) making a new one that is kept beside the old until the renewal lands. A
revoked or superseded certificate is refused by the CA.`,
		Example: `anchorage renew --ca https://ca.internal:8443 --root root.crt --cert host.crt --key host.key
anchorage renew --ca https://ca.internal:8443 --root root.crt --cert host.crt --key host.key --rekey`,
	},
	"anchorage credential-process": {
		Long: `Print AWS credentials for the AWS CLI's and SDKs' credential_process: a signed
CreateSession at IAM Roles Anywhere with this certificate, printed as the credential
process JSON (Version 1). Runs share the credentials through a 0600 file under
$XDG_RUNTIME_DIR/anchorage (or ~/.cache/anchorage) until 5 minutes before they expire,
and runs started together make one CreateSession; a new certificate is a new session.
Before the file, a running serve or agent for the same identity and user is asked over
its unix socket in that directory (200 ms to connect, 2 s to answer), which costs no
CreateSession. --no-cache calls CreateSession every time.`,
		Example: `# ~/.aws/config
[profile workload]
credential_process = anchorage credential-process --certificate /etc/anchorage/host.crt --private-key /etc/anchorage/host.key --trust-anchor-arn ARN --profile-arn ARN --role-arn ARN`,
	},
	"anchorage serve": {
		Long: `Serve IAM Roles Anywhere credentials on a local IMDSv2-style endpoint (127.0.0.1), refreshed
ahead of expiry, for SDKs that read the instance metadata service. With --ecs, serve the
container credentials protocol instead (AWS_CONTAINER_CREDENTIALS_FULL_URI), answering
only requests whose Authorization header is the token in --auth-token-file (0600, no
newline). The token file is checked again whenever it changes, so a token is rotated by
replacing the file, without a restart; while a rotated file fails a check every request
is refused. An --address off this host needs --allow-non-loopback: anyone who can reach
it gets the role's credentials. credential-process runs of the same user and identity
get these credentials over a 0600 unix socket in $XDG_RUNTIME_DIR/anchorage instead of
calling CreateSession; --no-socket turns that off.`,
		Example: `anchorage serve --certificate host.crt --private-key host.key --trust-anchor-arn ARN --profile-arn ARN --role-arn ARN --port 9911
AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:9911/ aws sts get-caller-identity
anchorage serve --ecs --auth-token-file /run/anchorage/token --certificate host.crt --private-key host.key --trust-anchor-arn ARN --profile-arn ARN --role-arn ARN
AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:9911/v1/credentials AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/run/anchorage/token aws sts get-caller-identity`,
	},
	"anchorage update": {
		Long: `Keep IAM Roles Anywhere credentials fresh in the shared credentials file
(~/.aws/credentials) under --profile, rewriting it atomically ahead of expiry.`,
		Example: `anchorage update --certificate host.crt --private-key host.key --trust-anchor-arn ARN --profile-arn ARN --role-arn ARN --profile default`,
	},
	"anchorage agent": {
		Long: `Keep this workload's certificate renewed until stopped: enroll with the token file on
first start, renew at two thirds of the lifetime (with jitter), retry with backoff, run
the reload hook after each renewal, report health, and optionally serve AWS
credentials from the renewed certificate: "credentials": {"mode": "serve"} is the
IMDSv2 endpoint of serve, "mode": "ecs" the container credentials endpoint of
serve --ecs (with "authTokenFile", "address", "allowNonLoopback"; the token file is
checked at start and picked up again when rotated), "mode": "update" the credentials
file of update. In serve and ecs modes credential-process runs of the same user and
identity are answered over a unix socket ("noSocket": true turns it off). Exits 3
when the certificate was revoked.`,
		Example: `anchorage agent --config /etc/anchorage/agent.json
anchorage agent --config /usr/share/doc/anchorage/examples/agent-ecs.json
AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:9911/v1/credentials AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/etc/anchorage/ecs-token aws sts get-caller-identity
systemctl enable --now anchorage-agent`,
	},
}
