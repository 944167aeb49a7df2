#!/usr/bin/env bash
# make demo: the whole anchorage story on loopback, narrated step by step:
# a CA, the local Roles Anywhere endpoint, enrollment, AWS credentials,
# GetCallerIdentity through the AWS SDK, revocation pushed to the trust
# anchor, and the denial that follows, with the measured revoke→denied time.
# Everything lives in ./demo (recreated on every run); nothing leaves 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin
W=$PWD/demo
PORT=${DEMO_PORT:-18443}

bold() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; }
run() { show "${*#"$BIN/"}"; "$@"; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_file() { for _ in $(seq 150); do [ -s "$1" ] && return 0; sleep 0.1; done; echo "timed out waiting for $1" >&2; return 1; }
now_ms() { date +%s%3N; }
T0=$(now_ms)

port_free "$PORT" || { echo "port $PORT is busy; set DEMO_PORT" >&2; exit 1; }
rm -rf "$W" && mkdir -p "$W" && cd "$W"
CA=https://localhost:$PORT
# The local endpoint's admin key pair (demo only). The CA's anchorsync uses
# the same pair through the AWS SDK's default credential chain.
export AWS_ACCESS_KEY_ID=AKIDANCHORAGEDEMO001 AWS_SECRET_ACCESS_KEY=demo/secret/not/real/000000000000000000 AWS_REGION=us-east-1
export AWS_CONFIG_FILE=$W/no-aws-config AWS_SHARED_CREDENTIALS_FILE=$W/no-aws-credentials

bold "1. Create the CA (root + issuing CA + API TLS + admin certificate)"
run "$BIN/anchorage-ca" init --dir ca --name "Demo Corp" --listen "127.0.0.1:$PORT"

bold "2. Start the local IAM Roles Anywhere + STS endpoint (the stand-in for AWS)"
show "anchorage-ca localaws --listen 127.0.0.1:0 --state aws-state.json &"
"$BIN/anchorage-ca" localaws --listen 127.0.0.1:0 --state aws-state.json --ready-file aws.ready 2>aws.log & pids+=($!)
wait_file aws.ready; AWS=$(cat aws.ready); echo "endpoint: $AWS (log: demo/aws.log)"

bold "3. Register the issuing CA as a trust anchor, the workload's IAM role, and a profile for it"
show "anchorage-ca anchors create --dir ca --region us-east-1 --endpoint $AWS"
ANCHOR=$("$BIN/anchorage-ca" anchors create --dir ca --region us-east-1 --endpoint "$AWS")
echo "trust anchor: $ANCHOR (added to ca/config.json)"
ROLE=$("$BIN/awsdemo" create-role --endpoint "$AWS" --role-name demo-workload --trust-anchor-arn "$ANCHOR" --cn ci-runner-7.demo.internal)
echo "IAM role:     $ROLE"
echo "              trust policy: rolesanywhere.amazonaws.com may AssumeRole, TagSession, SetSourceIdentity"
echo "              when aws:SourceArn is the anchor AND aws:PrincipalTag/x509Subject/CN is ci-runner-7.demo.internal"
PROFILE=$("$BIN/awsdemo" create-profile --endpoint "$AWS" --role-arn "$ROLE")
echo "profile:      $PROFILE (allows $ROLE)"

bold "4. Start the CA: HTTPS API on 127.0.0.1:$PORT, bbolt storage, CRL pushed to the anchor"
"$BIN/anchorage-ca" serve --dir ca --ready-file ca.ready 2>ca.log & pids+=($!)
wait_file ca.ready && echo "CA is up at $(cat ca.ready) (log: demo/ca.log)"
for _ in $(seq 50); do "$BIN/anchorage-ca" anchors status --dir ca | grep -q current && break; sleep 0.2; done
run "$BIN/anchorage-ca" anchors status --dir ca

bold "5. Enroll a workload with a one-time token (key made on the host, never sent)"
show "anchorage-ca token --dir ca --name ci-runner-7.demo.internal > runner.token"
"$BIN/anchorage-ca" token --dir ca --name ci-runner-7.demo.internal > runner.token
run "$BIN/anchorage" enroll --ca "$CA" --root ca/root.crt --token-file runner.token --cert runner.crt --key runner.key

bold "6. Trade the certificate for AWS credentials (aws_signing_helper-compatible credential-process)"
CP=("$BIN/anchorage" credential-process --certificate runner.crt --private-key runner.key
    --trust-anchor-arn "$ANCHOR" --profile-arn "$PROFILE" --role-arn "$ROLE" --endpoint "$AWS")
show "anchorage credential-process --certificate runner.crt --private-key runner.key --trust-anchor-arn ... --profile-arn ... --role-arn $ROLE --endpoint $AWS"
"${CP[@]}" | sed -E 's/("SecretAccessKey":")[^"]{6}[^"]*/\1******/; s/("SessionToken":")[^"]{12}[^"]*/\1...redacted.../'; echo

bold "7. An AWS SDK application uses them: STS GetCallerIdentity via credential_process in ~/.aws/config"
show "awsdemo whoami --endpoint $AWS --credential-process 'anchorage credential-process ...'"
"$BIN/awsdemo" whoami --endpoint "$AWS" --credential-process "${CP[*]}"

bold "7b. Another workload of the same CA, another CN: the role's trust policy refuses it"
show "anchorage-ca token --dir ca --name build-box-2.demo.internal > other.token"
"$BIN/anchorage-ca" token --dir ca --name build-box-2.demo.internal > other.token
run "$BIN/anchorage" enroll --ca "$CA" --root ca/root.crt --token-file other.token --cert other.crt --key other.key
show "anchorage credential-process --certificate other.crt --private-key other.key ... --role-arn $ROLE"
if "$BIN/anchorage" credential-process --certificate other.crt --private-key other.key \
    --trust-anchor-arn "$ANCHOR" --profile-arn "$PROFILE" --role-arn "$ROLE" --endpoint "$AWS" >other.out 2>other.err; then
  echo "UNEXPECTED: build-box-2 got credentials for a role that names ci-runner-7 only" >&2; exit 1
fi
cat other.err
grep -q "AccessDenied" other.err || { echo "UNEXPECTED: refused, but not by AccessDenied" >&2; exit 1; }
echo "denied at CreateSession: same CA, same anchor, same profile, but the trust policy names another CN"

bold "8. Incident: revoke the runner and wait until every trust anchor enforces it"
START=$(now_ms)
run "$BIN/anchorage-ca" revoke --dir ca --subject ci-runner-7.demo.internal --reason keyCompromise --wait

bold "9. The runner's next CreateSession is denied"
echo "(credential-process caches sessions across processes until 5 minutes before they expire; a session"
echo " already issued lives until then, as at AWS. --no-cache makes each call a new CreateSession:)"
for _ in $(seq 100); do
  if ! "${CP[@]}" --no-cache >cp.out 2>cp.err; then break; fi
  sleep 0.1
done
DENIED=$(now_ms)
if [ -s cp.out ]; then echo "UNEXPECTED: credentials still issued" >&2; exit 1; fi
show "anchorage credential-process --no-cache ..."; cat cp.err
echo "revoke → denied: $((DENIED - START)) ms (request to first denied CreateSession)"
echo "(anchorsync spaces its calls to stay under AWS's 1 request/s CRL quota; the anchor got its first CRL moments ago, so part of this is that spacing)"
run "$BIN/anchorage-ca" crl --dir ca

bold "10. Posture: which certificate can become which role, and what looks wrong (anchorage-ca audit)"
echo "(bbolt is one process's file: the CA stops so the audit can read its inventory and keep its snapshot;"
echo " on PostgreSQL the audit runs beside the replicas)"
kill "${pids[1]}" 2>/dev/null || true; wait "${pids[1]}" 2>/dev/null || true
show "anchorage-ca audit --dir ca --endpoint $AWS --html audit.html"
"$BIN/anchorage-ca" audit --dir ca --endpoint "$AWS" --html audit.html >audit.txt 2>audit.err || { cat audit.err >&2; exit 1; }
cat audit.txt
[ -s audit.html ] || { echo "UNEXPECTED: no audit page" >&2; cat audit.err >&2; exit 1; }
echo "the picture: demo/audit.html (CA → anchor → profile → role → permissions, findings marked)"

bold "Done in $(( ($(now_ms) - T0) / 1000 ))s. Everything is in ./demo; logs: demo/ca.log, demo/aws.log."
