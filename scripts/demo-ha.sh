#!/usr/bin/env bash
# make demo-ha: two CA replicas on one PostgreSQL database, narrated step by
# step: a private PostgreSQL, `init --postgres`, two `serve` replicas on
# loopback, the local Roles Anywhere endpoint, enrollment and AWS
# credentials, a revocation through the replica that does not push, then
# kill -9 of the replica that does, a second revocation through the
# survivor, and the survivor taking the push lease and pushing, with the
# measured kill→enforced time.
# Everything lives in ./demo-ha (recreated on every run); nothing leaves
# 127.0.0.1. Exits non-zero if any step fails; every child (replicas,
# localaws, PostgreSQL by its PID) is stopped on the way out.
#
# Environment: DEMO_HA_PORT [18543] (replica A), DEMO_HA_PORT_B [the next port],
# DEMO_HA_PG_PORT [18549], DEMO_HA_DIR [./demo-ha], DEMO_BIN [./bin],
# PG_BIN (PostgreSQL binaries; default the newest /usr/lib/postgresql/*/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${DEMO_BIN:-$ROOT/bin}
W=${DEMO_HA_DIR:-$ROOT/demo-ha}
PA=${DEMO_HA_PORT:-18543}
PB=${DEMO_HA_PORT_B:-$((PA + 1))}
PGPORT=${DEMO_HA_PG_PORT:-18549}
# shellcheck source=scripts/pg.sh
. "$ROOT/scripts/pg.sh"

bold() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; }
run() { show "${*#"$BIN/"}"; "$@"; }
fail() { echo "demo-ha: FAILED: $*" >&2; exit 1; }
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pg_stop
  [ "$rc" = 0 ] || echo "demo-ha: exit $rc; logs in ${W#"$ROOT/"}/ (ca-a.log, ca-b.log, aws.log, pg/log or pg.log)" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_file() { for _ in $(seq 150); do [ -s "$1" ] && return 0; sleep 0.1; done; fail "timed out waiting for $1"; }
now_ms() { date +%s%3N; }
# holder LEASE PORT: the listen address of the replica holding LEASE, as
# the replica on PORT reports it in /health ("" while nobody holds it).
holder() {
  curl -sS --max-time 5 --cacert ca/root.crt "https://localhost:$2/health" 2>/dev/null |
    tr '\n' ' ' | sed -n 's/.*"name": *"'"$1"'", *"holder": *"[^"]* listen \([^"]*\)".*/\1/p' || true
}
T0=$(now_ms)

for p in "$PA" "$PB" "$PGPORT"; do port_free "$p" || fail "port $p is busy; set DEMO_HA_PORT / DEMO_HA_PG_PORT"; done
command -v curl >/dev/null || fail "curl is needed (.ci/install-deps installs it)"
rm -rf "$W" && mkdir -p "$W" && cd "$W"
export AWS_ACCESS_KEY_ID=AKIDANCHORAGEDEMO001 AWS_SECRET_ACCESS_KEY=demo/secret/not/real/000000000000000000 AWS_REGION=us-east-1
export AWS_CONFIG_FILE=$W/no-aws-config AWS_SHARED_CREDENTIALS_FILE=$W/no-aws-credentials
# credential-process's cache and serve's socket live in the demo directory, not
# in the user's runtime directory.
export XDG_RUNTIME_DIR=$W/run && mkdir -m 0700 "$XDG_RUNTIME_DIR"

bold "1. Start a private PostgreSQL on 127.0.0.1:$PGPORT (initdb into demo-ha/pg, password auth)"
# A fresh random password for this run, kept out of the config and the URL.
(umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >pg.pass)
pg_start "$W/pg" "$PGPORT" pg.pass || fail "PostgreSQL did not start"
PGURL="postgres://anchorage@127.0.0.1:$PGPORT/anchorage?sslmode=disable"
echo "PostgreSQL $(basename "$(dirname "$(pg_bin)")") is up, postmaster PID $PG_PID$([ "$(id -u)" = 0 ] && echo ", running as nobody"); database: $PGURL"
echo "(sslmode=disable: loopback only; across hosts use sslmode=verify-full)"

bold "2. Create the CA with its records in PostgreSQL"
run "$BIN/anchorage-ca" init --dir ca --name "Demo Corp" --listen "127.0.0.1:$PA" \
  --postgres "$PGURL" --postgres-password-file ../pg.pass
show "grep -A2 storage ca/config.json"
grep -A2 '"storage"' ca/config.json

bold "3. Start the local IAM Roles Anywhere + STS endpoint (the stand-in for AWS)"
"$BIN/anchorage-ca" localaws --listen 127.0.0.1:0 --state aws-state.json --ready-file aws.ready 2>aws.log & pids+=($!)
wait_file aws.ready; AWS=$(cat aws.ready); echo "endpoint: $AWS (log: demo-ha/aws.log)"

bold "4. Register the issuing CA as a trust anchor, the workload's IAM role, and a profile for it"
show "anchorage-ca anchors create --dir ca --region us-east-1 --endpoint $AWS"
ANCHOR=$("$BIN/anchorage-ca" anchors create --dir ca --region us-east-1 --endpoint "$AWS")
echo "trust anchor: $ANCHOR (added to ca/config.json)"
ROLE=$("$BIN/awsdemo" create-role --endpoint "$AWS" --role-name demo-workload --trust-anchor-arn "$ANCHOR")
echo "IAM role:     $ROLE (trust policy: Roles Anywhere, only through this anchor)"
PROFILE=$("$BIN/awsdemo" create-profile --endpoint "$AWS" --role-arn "$ROLE")
echo "profile:      $PROFILE (allows $ROLE)"

bold "5. Two replicas: the same CA directory copied, one database, two ports"
run cp -a ca ca-b
show "anchorage-ca serve --dir ca   --listen 127.0.0.1:$PA &   # replica A"
"$BIN/anchorage-ca" serve --dir ca --ready-file a.ready 2>ca-a.log & PID_A=$!; pids+=("$PID_A")
wait_file a.ready
# A starts first, so it takes both leases; B then waits for them.
for _ in $(seq 100); do [ -n "$(holder push "$PA")" ] && break; sleep 0.1; done
show "anchorage-ca serve --dir ca-b --listen 127.0.0.1:$PB &   # replica B"
"$BIN/anchorage-ca" serve --dir ca-b --listen "127.0.0.1:$PB" --ready-file b.ready 2>ca-b.log & PID_B=$!; pids+=("$PID_B")
wait_file b.ready
echo "replica A: https://localhost:$PA (PID $PID_A, log demo-ha/ca-a.log)"
echo "replica B: https://localhost:$PB (PID $PID_B, log demo-ha/ca-b.log)"
echo "Tokens carry the configured URL ($(sed -n 's/.*"url": "\(https[^"]*\)".*/\1/p' ca/config.json)) as audience on both;"
echo "in production both sit behind that one name (DNS or a load balancer)."
for _ in $(seq 100); do "$BIN/anchorage-ca" anchors status --dir ca --ca "https://localhost:$PB" 2>/dev/null | grep -q current && break; sleep 0.2; done
show "curl --cacert ca/root.crt https://localhost:$PB/health     # asked of B: the leases are in the database"
curl -sS --max-time 5 --cacert ca/root.crt "https://localhost:$PB/health"; echo
PUSHER=$(holder push "$PB")
case "$PUSHER" in
  "127.0.0.1:$PA") PUSH_PID=$PID_A PUSH_NAME=A OTHER_PORT=$PB OTHER_NAME=B ;;
  "127.0.0.1:$PB") PUSH_PID=$PID_B PUSH_NAME=B OTHER_PORT=$PA OTHER_NAME=A ;;
  *) fail "no replica holds the push lease (health says \"$PUSHER\")" ;;
esac
echo "push lease (anchorsync): replica $PUSH_NAME; crl lease (CRL signer): $(holder crl "$PB")"
run "$BIN/anchorage-ca" anchors status --dir ca --ca "https://localhost:$OTHER_PORT"

bold "6. Enroll a workload through replica $OTHER_NAME and trade its certificate for AWS credentials"
"$BIN/anchorage-ca" token --dir ca --name web-1.demo.internal >web-1.token
run "$BIN/anchorage" enroll --ca "https://localhost:$OTHER_PORT" --root ca/root.crt --token-file web-1.token --cert web-1.crt --key web-1.key
cp_of() { echo "$BIN/anchorage" credential-process --certificate "$1.crt" --private-key "$1.key" \
  --trust-anchor-arn "$ANCHOR" --profile-arn "$PROFILE" --role-arn "$ROLE" --endpoint "$AWS" --no-cache; }
show "awsdemo whoami --endpoint $AWS --credential-process 'anchorage credential-process --certificate web-1.crt ...'"
"$BIN/awsdemo" whoami --endpoint "$AWS" --credential-process "$(cp_of web-1)"
# denied NAME: waits (at most 10 s) for NAME's next CreateSession to fail.
denied() {
  local cmd
  read -r -a cmd <<<"$(cp_of "$1")"
  for _ in $(seq 100); do
    if ! "${cmd[@]}" >"$1.cp.out" 2>"$1.cp.err" && grep -q "revoked" "$1.cp.err"; then
      [ -s "$1.cp.out" ] && fail "credential-process failed but printed credentials"
      show "anchorage credential-process --certificate $1.crt ..."; cat "$1.cp.err"
      return 0
    fi
    sleep 0.1
  done
  cat "$1.cp.err" >&2
  fail "$1 is not denied as revoked"
}

bold "7. Revoke it through replica $OTHER_NAME, which does NOT hold the push lease"
echo "($OTHER_NAME commits the revocation; the crl-lease holder signs the CRL, replica $PUSH_NAME pushes it; $OTHER_NAME waits on the stored anchor status)"
START=$(now_ms)
run "$BIN/anchorage-ca" revoke --dir ca --ca "https://localhost:$OTHER_PORT" --subject web-1.demo.internal --reason keyCompromise --wait --timeout 60s
denied web-1
echo "revoke → denied: $(($(now_ms) - START)) ms"

bold "8. A second workload, enrolled through the replica that will survive"
"$BIN/anchorage-ca" token --dir ca --name web-2.demo.internal >web-2.token
run "$BIN/anchorage" enroll --ca "https://localhost:$OTHER_PORT" --root ca/root.crt --token-file web-2.token --cert web-2.crt --key web-2.key
show "awsdemo whoami ... --credential-process 'anchorage credential-process --certificate web-2.crt ...'"
"$BIN/awsdemo" whoami --endpoint "$AWS" --credential-process "$(cp_of web-2)"

bold "9. Failure: kill -9 replica $PUSH_NAME (PID $PUSH_PID), the push-lease holder; revoke web-2 through $OTHER_NAME"
KILL=$(now_ms)
run kill -9 "$PUSH_PID"
wait "$PUSH_PID" 2>/dev/null || true
# Watch, meanwhile, when the survivor reports holding the push lease.
(for _ in $(seq 300); do
  if [ "$(holder push "$OTHER_PORT")" = "127.0.0.1:$OTHER_PORT" ]; then now_ms >lease.taken; exit 0; fi
  sleep 0.1
done) & LEASE_WATCH=$!; pids+=("$LEASE_WATCH")
run "$BIN/anchorage-ca" revoke --dir ca --ca "https://localhost:$OTHER_PORT" --subject web-2.demo.internal --reason keyCompromise --wait --timeout 60s
HELD=$(now_ms)
denied web-2
DENIED=$(now_ms)
wait "$LEASE_WATCH" 2>/dev/null || true
[ -s lease.taken ] || fail "replica $OTHER_NAME never reported holding the push lease"

bold "10. The survivor holds both leases now"
show "curl --cacert ca/root.crt https://localhost:$OTHER_PORT/health"
curl -sS --max-time 5 --cacert ca/root.crt "https://localhost:$OTHER_PORT/health"; echo
show "curl -s https://localhost:$OTHER_PORT/metrics | grep anchorage_lease"
curl -sS --max-time 5 --cacert ca/root.crt "https://localhost:$OTHER_PORT/metrics" | grep '^anchorage_lease' || fail "no lease metrics"
[ "$(holder crl "$OTHER_PORT")" = "127.0.0.1:$OTHER_PORT" ] || fail "replica $OTHER_NAME does not hold the crl lease"
run "$BIN/anchorage-ca" anchors status --dir ca --ca "https://localhost:$OTHER_PORT"
echo
printf 'kill -9 → survivor %s holds the push lease:  %5d ms\n' "$OTHER_NAME" $(($(cat lease.taken) - KILL))
printf 'kill -9 → the anchor holds the new CRL:       %5d ms  (revoke --wait through %s returned)\n' $((HELD - KILL)) "$OTHER_NAME"
printf 'kill -9 → web-2 denied at CreateSession:      %5d ms\n' $((DENIED - KILL))
echo "(PostgreSQL drops a dead replica's advisory locks with its session; a standby asks every second;"
echo " the new pusher reads the anchor's CRL back before its first push, and calls are spaced for AWS's 1 request/s quota)"

bold "Done in $((($(now_ms) - T0) / 1000))s. Everything is in ${W#"$ROOT/"}; logs: ca-a.log, ca-b.log, aws.log, $([ -L pg ] && echo pg.log || echo pg/log)."
