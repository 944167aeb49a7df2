package main

import "github.com/anchorage-pki/anchorage/internal/manhelp"

// manual is anchorage-ca's man-style help: a DESCRIPTION and EXAMPLES for
// every command, shown by --help and written as man pages into the .deb.
// Exit status everywhere: 0 on success, 1 with one line on stderr
// otherwise (revoke --wait and anchors push: 1 names the anchors that did
// not get there in time).
var manual = map[string]manhelp.Page{
	"anchorage-ca": {
		Long: `anchorage-ca is the certificate authority of anchorage, an internal PKI for IAM Roles
Anywhere: it creates the CA (init), serves enrollment, renewal, revocation and CRLs
(serve), keeps every configured trust anchor's CRL current, and answers the admin
commands an incident responder uses (revoke, certs, anchors, admin).

Admin commands take --dir DIR on the CA host (config.json, root.crt, admin.crt and
admin.key from there), or --ca URL --root root.crt --admin-cert F --admin-key F from
anywhere. Errors are one line on stderr and exit status 1.`,
		Example: `anchorage-ca init --dir /var/lib/anchorage-ca --name "Example Corp" --dns ca.internal --listen 0.0.0.0:8443
anchorage-ca serve --dir /var/lib/anchorage-ca
anchorage-ca token --dir /var/lib/anchorage-ca --name web-01.internal
anchorage-ca revoke --dir /var/lib/anchorage-ca --subject web-01.internal --reason keyCompromise --wait`,
	},
	"anchorage-ca init": {
		Long: `Create a new CA in DIR: an offline-able root (root.crt, root.key), the issuing CA that
Roles Anywhere trusts (ca.crt, ca.key: ECDSA P-256, pathlen 0), the admin intermediate
(admin-ca.crt/key, never a trust anchor), the service intermediate (service-ca.crt/key,
never a trust anchor: it signs the API's TLS key and chain, tls.pem), the first
admin certificate (admin.crt/key, 30 days), the token-signing key (provisioner.key) and
config.json. Keys are written 0600. Records go to DIR/anchorage.db (bbolt), or with
--postgres into an empty PostgreSQL database. init refuses a directory that already
holds a CA, and never starts a database afresh over an existing one.`,
		Example: `anchorage-ca init --dir /var/lib/anchorage-ca --name "Example Corp" --dns ca.internal --listen 0.0.0.0:8443
anchorage-ca init --dir ca --name Example --postgres 'postgres://anchorage@db.internal/anchorage?sslmode=verify-full' --postgres-password-file pgpass
anchorage-ca init --dir ca --name Example --ca-key 'pkcs11:token=ca;object=issuing?pin-source=/etc/anchorage/pin'`,
	},
	"anchorage-ca serve": {
		Long: `Serve the CA's HTTPS API (enrollment with one-time tokens, ACME, mTLS renewal, admin
calls, /crl, /health, /metrics) and run the CRL updater and the anchor pusher. With
PostgreSQL several replicas may serve one database: any replica issues, renews and
revokes; the holder of lease "crl" signs CRLs and the holder of lease "push" pushes them
to the trust anchors. SIGHUP reloads admins and trust anchors from config.json;
SIGTERM drains and exits. A missing, empty or damaged database is refused, never
recreated.`,
		Example: `anchorage-ca serve --dir /var/lib/anchorage-ca
anchorage-ca serve --dir ca --listen 127.0.0.1:8443 --ready-file ready --log-format json`,
	},
	"anchorage-ca token": {
		Long: `Print a one-time enrollment token for one workload name. The token is bound to the
name and SANs given here and to the CA's URL, expires after --ttl, and is refused on
its second use on every replica.`,
		Example: `anchorage-ca token --dir /var/lib/anchorage-ca --name web-01.internal --san DNS:web-01.internal --ttl 10m > token`,
	},
	"anchorage-ca revoke": {
		Long: `Revoke one certificate (--serial) or every live certificate of a host (--subject), with
their whole lineages, durably, and publish a new CRL. With --wait, wait until every
trust anchor holds a CRL that carries the revocation, printing when each did, and exit
1 naming the anchors that did not before --timeout. A revoked identity never renews.`,
		Example: `anchorage-ca revoke --dir /var/lib/anchorage-ca --subject web-01.internal --reason keyCompromise --wait
anchorage-ca revoke --ca https://ca.internal:8443 --root root.crt --admin-cert me.crt --admin-key me.key --serial 5A:F3:01`,
	},
	"anchorage-ca service-ca": {
		Long: `Make the service intermediate (service-ca.crt/key, under the root, never a trust
anchor) for a CA made before init wrote it, with root.key in DIR. Until then the API's
TLS certificate is signed by the issuing CA, so its key is an AWS identity wherever
that CA is a trust anchor (serve warns in its log and on /health). It writes two files
and needs no database: a running serve re-issues tls.pem from it on SIGHUP, its daily
check or its next start. An existing service intermediate is left as it is.`,
		Example: `anchorage-ca service-ca --dir /var/lib/anchorage-ca && systemctl reload anchorage-ca`,
	},
	"anchorage-ca crl": {
		Long:    `Print the CA's current CRL (DER on stdout, or PEM with --pem), as served on /crl.`,
		Example: `anchorage-ca crl --dir /var/lib/anchorage-ca --pem | openssl crl -noout -text`,
	},
	"anchorage-ca certs": {
		Long: `List issued certificates, newest first: serial, subject, status (valid, revoked,
expired, superseded), lineage and expiry. Filter by --subject and --status.`,
		Example: `anchorage-ca certs --dir /var/lib/anchorage-ca --subject web-01.internal
anchorage-ca certs --dir /var/lib/anchorage-ca --status revoked --limit 50`,
	},
	"anchorage-ca anchors": {
		Long:    `Manage and inspect the IAM Roles Anywhere trust anchors that receive this CA's CRL.`,
		Example: `anchorage-ca anchors status --dir /var/lib/anchorage-ca`,
	},
	"anchorage-ca anchors status": {
		Long: `Show, per trust anchor, which CRL number it holds, whether that is current, when it
was last pushed and checked, and the last error.`,
		Example: `anchorage-ca anchors status --dir /var/lib/anchorage-ca`,
	},
	"anchorage-ca anchors push": {
		Long:    `Push the current CRL to every trust anchor now and wait until each holds it.`,
		Example: `anchorage-ca anchors push --dir /var/lib/anchorage-ca --timeout 60s`,
	},
	"anchorage-ca anchors add": {
		Long: `Add an existing trust anchor to config.json. A running serve picks it up on SIGHUP
and pushes the CRL to it.`,
		Example: `anchorage-ca anchors add --dir /var/lib/anchorage-ca --arn arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/ID
kill -HUP "$(pidof anchorage-ca)"`,
	},
	"anchorage-ca anchors create": {
		Long: `Register the issuing CA (ca.crt) as a new Roles Anywhere trust anchor with
CreateTrustAnchor, using AWS credentials from the environment, and add it to
config.json.`,
		Example: `anchorage-ca anchors create --dir /var/lib/anchorage-ca --region eu-west-1 --name anchorage`,
	},
	"anchorage-ca admin": {
		Long:    `Issue and list the admin client certificates the admin API accepts.`,
		Example: `anchorage-ca admin list --dir /var/lib/anchorage-ca`,
	},
	"anchorage-ca admin issue": {
		Long: `Make a key here and have the running CA sign an admin client certificate for a person
or a tool (default 30 days, at most 90). The key is never sent. With --local on the CA
host, sign and record directly from the directory (when serve is stopped and no admin
certificate is left).`,
		Example: `anchorage-ca admin issue --dir /var/lib/anchorage-ca --name alice --out-cert alice.crt --out-key alice.key
anchorage-ca admin issue --dir /var/lib/anchorage-ca --name recovery --local`,
	},
	"anchorage-ca admin list": {
		Long:    `List admin certificates: serial, name, status, expiry and who issued each.`,
		Example: `anchorage-ca admin list --dir /var/lib/anchorage-ca`,
	},
	"anchorage-ca localaws": {
		// Long: the constructor's, which documents --accounts.
		Example: `AWS_ACCESS_KEY_ID=AKIDLOCAL AWS_SECRET_ACCESS_KEY=local anchorage-ca localaws --listen 127.0.0.1:9443 --state aws-state.json --ready-file aws.ready`,
	},
	"anchorage-ca audit": {
		Long: `Report which live certificate of this CA can become which AWS role, with what
permissions, and what looks wrong. The audit reads the certificates from the CA's
database (bbolt: stop serve first, it holds the file; PostgreSQL: any time) and, in
every account of "audit.accounts" in config.json (default: the accounts and regions of
"trustAnchors", with the default credential chain), the Roles Anywhere trust anchors,
profiles (attribute mappings, session and managed policies), CRLs and subjects, and
through IAM every role a profile names with its trust, inline and attached policies.

It prints the map certificate → anchor → profile → role (each role's trust policy
evaluated on that certificate's session tags), a blast-radius score per certificate
traced to policy statements, and findings with an id and a severity: profiles
without a session policy or with a wildcard or admin one, trust policies without a
subject/SAN condition or without aws:SourceArn, anchors without an enabled CRL, with
an expired or nearly full CRL or with other CAs, certificates over the lifetime
policy or sharing a key, subjects this CA never issued, one certificate on several
hosts, failed-attempt bursts, and subjects new since the previous audit, whose
snapshot it keeps in the database (--no-save leaves it). Progress goes to stderr.

Exit status 0; 1 with one line on stderr on an error, or with --fail-on when a finding
at or above that severity exists ("audit: N findings at severity high or above",
after the report).`,
		Example: `anchorage-ca audit --dir /var/lib/anchorage-ca
anchorage-ca audit --dir ca --json > audit.json
anchorage-ca audit --dir ca --html audit.html --fail-on high
anchorage-ca audit --dir ca --format dot | dot -Tsvg > audit.svg
anchorage-ca audit --dir ca --endpoint http://127.0.0.1:9000 --no-subjects`,
	},
	"anchorage-ca migrate": {
		Long: `Copy a stopped CA's bbolt database (certificates, lineages, revocations, used token ids,
CRL number, anchor status, ACME state, admins) into an empty PostgreSQL database, print
progress, and verify counts and the newest CRL number. A non-empty target is refused.`,
		Example: `anchorage-ca migrate --from /var/lib/anchorage-ca/anchorage.db --to 'postgres://anchorage@db.internal/anchorage?sslmode=verify-full' --to-password-file pgpass`,
	},
	"anchorage-ca compact": {
		Long: `Rewrite a stopped CA's bbolt database into a new file with every page filled, then
put it in place of the old one with an atomic rename, fsynced: a crash leaves the old
file or the new one, whole. A database written before serials were time ordered (before
this release) has pages about two-thirds full and free pages it may never reuse; its
copy is often half the size. The CA must be stopped: compact holds the database's lock
throughout and refuses while anchorage-ca serve holds it. It needs free space for the
copy beside the file.`,
		Example: `systemctl stop anchorage-ca
anchorage-ca compact --dir /var/lib/anchorage-ca
systemctl start anchorage-ca`,
	},
	"anchorage-ca events": {
		Long: `Work with the CA's audit event stream: one JSON line per issuance, renewal, revocation,
admin action, token mint, anchor push and refusal of note, each carrying the SHA-256 of
the line before it (config "events": {"file", "maxSizeMB", "keep"} or {"stdout": true}).`,
		Example: `anchorage-ca events verify /var/lib/anchorage-ca/events.jsonl.2 /var/lib/anchorage-ca/events.jsonl.1 /var/lib/anchorage-ca/events.jsonl`,
	},
	"anchorage-ca events verify": {
		Long: `Check the hash chain of one or more event files, oldest first (rotated files continue
the chain). Prints the number of events on success; on a break names the file and line,
the hash expected and the one found, and exits 1. An edit to the last line or a cut-off
end cannot be seen from the file alone: keep the newest hash elsewhere for that.`,
		Example: `anchorage-ca events verify events.jsonl.1 events.jsonl`,
	},
}
