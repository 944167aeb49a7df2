#!/usr/bin/env bash
# acme-client.sh runs one real ACME client, unmodified, through one issuance
# against the ACME server of acme/clients_test.go, with a fresh account, a
# fresh P-256 key and a deadline on every wait.
#
# usage: acme-client.sh CLIENT DIRECTORY_URL DOMAIN OUTDIR
#   CLIENT  certbot | lego (Debian packages; .ci/install-deps installs them)
#   DOMAIN  one DNS name, or *.NAME for a wildcard (dns-01)
#
# OUTDIR gets cert.pem (the chain, leaf first) and key.pem, whose key is
# checked to be the leaf's; OUTDIR/client.log gets everything the client
# printed. The caller checks the chain and its names. On failure the last
# line on stderr says what went wrong.
#
# Environment:
#   CHALLENGE       http-01 (default) | tls-alpn-01 (lego only) | dns-01
#   HTTP01_PORT     port the client answers http-01 on, where the server's
#                   validator connects [5002]
#   TLSALPN01_PORT  the same for tls-alpn-01 [5001]
#   DNS01_MGMT_URL  the test DNS server's API, as pebble-challtestsrv's:
#                   POST /set-txt {"host":FQDN,"value":V}, POST /clear-txt {"host":FQDN}
#   DNS01_RESOLVER  HOST:PORT of that DNS server; lego looks for its record there
#   ACME_CA_BUNDLE  PEM file of the roots trusted for the server's HTTPS
#   ACME_TIMEOUT    seconds the client may run in all [120]; it is then
#                   killed. Each HTTP request and DNS check has a shorter limit.
set -euo pipefail

if [ "$#" -ne 4 ]; then
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
  exit 2
fi
client=$1 directory=$2 domain=$3 outdir=$4
challenge=${CHALLENGE:-http-01}
limit=${ACME_TIMEOUT:-120}

die() {
  echo "acme-client: $client $challenge $domain: $*" >&2
  exit 1
}

[[ $limit =~ ^[1-9][0-9]*$ ]] || die "ACME_TIMEOUT must be a whole number of seconds, not '$limit'"
if [ -n "${ACME_CA_BUNDLE:-}" ] && [ ! -r "$ACME_CA_BUNDLE" ]; then
  die "ACME_CA_BUNDLE $ACME_CA_BUNDLE cannot be read"
fi
command -v "$client" >/dev/null || die "$client is not installed (make deps)"
command -v openssl >/dev/null || die "openssl is not installed (make deps)"

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
rm -f "$outdir/cert.pem" "$outdir/key.pem"
log=$outdir/client.log
: >"$log"

# Account, state and the clients' temporary files live here and go at exit,
# so every run starts as a new user would.
work=$(mktemp -d "${TMPDIR:-/tmp}/acme-client.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/tmp"
export TMPDIR=$work/tmp

# write_dns_hook writes $work/dns-hook, which both clients call to publish
# and withdraw the _acme-challenge TXT record. It runs in the client's
# environment, so it reads DNS01_MGMT_URL and certbot's CERTBOT_* itself.
write_dns_hook() {
  [ -n "${DNS01_MGMT_URL:-}" ] || die "dns-01 needs DNS01_MGMT_URL"
  command -v curl >/dev/null || die "dns-01 needs curl (make deps)"
  export DNS01_MGMT_URL
  cat >"$work/dns-hook" <<'EOF'
#!/bin/sh
# dns-hook certbot-auth | certbot-cleanup    (certbot: CERTBOT_DOMAIN, CERTBOT_VALIDATION)
# dns-hook present | cleanup FQDN VALUE      (lego's exec provider)
set -eu
post() { curl --silent --show-error --fail --max-time 10 --data "$2" "$DNS01_MGMT_URL/$1"; }
# certbot's calls become lego's; a wildcard's record sits at its base name.
case "$1" in
  certbot-auth) set -- present "_acme-challenge.${CERTBOT_DOMAIN#\*.}." "$CERTBOT_VALIDATION" ;;
  certbot-cleanup) set -- cleanup "_acme-challenge.${CERTBOT_DOMAIN#\*.}." ;;
esac
case "$1" in
  present) post set-txt "{\"host\":\"$2\",\"value\":\"$3\"}" ;;
  cleanup) post clear-txt "{\"host\":\"$2\"}" ;;
  *) echo "dns-hook: unknown step '$1'" >&2; exit 2 ;;
esac
EOF
  chmod +x "$work/dns-hook"
}

# run CMD... runs the client with the deadline, its output in the log.
run() {
  echo "+ $*" >>"$log"
  local rc=0
  timeout --kill-after=10 "$limit" "$@" >>"$log" 2>&1 || rc=$?
  case $rc in
    0) ;;
    124 | 137) die "$client did not finish within ${limit}s (ACME_TIMEOUT); see $log" ;;
    *) die "$client exited $rc; see $log" ;;
  esac
}

certbot_issue() {
  local -a args=(certonly --non-interactive --agree-tos --register-unsafely-without-email
    --server "$directory" --domain "$domain" --cert-name acme-client
    --key-type ecdsa --elliptic-curve secp256r1
    --config-dir "$work/config" --work-dir "$work/work" --logs-dir "$work/logs")
  case $challenge in
    http-01) args+=(--standalone --preferred-challenges http-01 --http-01-port "${HTTP01_PORT:-5002}") ;;
    dns-01)
      write_dns_hook
      # certbot splits a hook at white space to find its program, and
      # refuses quotes around it.
      [[ $work != *[[:space:]]* ]] || die "certbot hooks cannot live in '$work' (white space); set TMPDIR"
      args+=(--manual --preferred-challenges dns-01
        --manual-auth-hook "$work/dns-hook certbot-auth"
        --manual-cleanup-hook "$work/dns-hook certbot-cleanup") ;;
    *) die "certbot does http-01 and dns-01, not $challenge" ;;
  esac
  if [ -n "${ACME_CA_BUNDLE:-}" ]; then export REQUESTS_CA_BUNDLE=$ACME_CA_BUNDLE; fi
  # certbot's own log says more than its output: append it to ours whatever
  # happens, so run's exit on failure happens in a subshell.
  local rc=0
  (run certbot "${args[@]}") || rc=$?
  if [ -r "$work/logs/letsencrypt.log" ]; then
    { echo "----- certbot's letsencrypt.log"; cat "$work/logs/letsencrypt.log"; } >>"$log"
  fi
  [ "$rc" -eq 0 ] || exit "$rc"
  cp -L "$work/config/live/acme-client/fullchain.pem" "$outdir/cert.pem"
  cp -L "$work/config/live/acme-client/privkey.pem" "$outdir/key.pem"
}

lego_issue() {
  # --http-timeout: lego's default is to wait on the server for ever.
  local -a args=(--server "$directory" --accept-tos --email acme-client@example.org
    --path "$work/lego" --domains "$domain" --key-type ec256 --http-timeout 30)
  case $challenge in
    http-01) args+=(--http --http.port ":${HTTP01_PORT:-5002}") ;;
    tls-alpn-01) args+=(--tls --tls.port ":${TLSALPN01_PORT:-5001}") ;;
    dns-01)
      write_dns_hook
      [ -n "${DNS01_RESOLVER:-}" ] || die "dns-01 needs DNS01_RESOLVER"
      # The test DNS server is the only authority: ask it, once a second,
      # and give up well before the overall deadline.
      export EXEC_PATH=$work/dns-hook EXEC_POLLING_INTERVAL=1 EXEC_PROPAGATION_TIMEOUT=$((limit / 2))
      args+=(--dns exec --dns.resolvers "$DNS01_RESOLVER" --dns.disable-cp --dns-timeout 5) ;;
    *) die "lego does http-01, tls-alpn-01 and dns-01, not $challenge" ;;
  esac
  if [ -n "${ACME_CA_BUNDLE:-}" ]; then export LEGO_CA_CERTIFICATES=$ACME_CA_BUNDLE; fi
  run lego "${args[@]}" run
  # lego names its files after the domain, with the wildcard's * as _.
  local base=$work/lego/certificates/${domain//\*/_}
  cp "$base.crt" "$outdir/cert.pem"
  cp "$base.key" "$outdir/key.pem"
}

case $client in
  certbot) certbot_issue ;;
  lego) lego_issue ;;
  *) die "CLIENT must be certbot or lego" ;;
esac

[ -s "$outdir/cert.pem" ] && [ -s "$outdir/key.pem" ] || die "$client wrote no certificate or key"
leaf_pub=$(openssl x509 -in "$outdir/cert.pem" -noout -pubkey 2>&1) || die "cert.pem: $leaf_pub"
key_pub=$(openssl pkey -in "$outdir/key.pem" -pubout 2>&1) || die "key.pem: $key_pub"
[ "$leaf_pub" = "$key_pub" ] || die "key.pem is not the key of the leaf in cert.pem"
echo "acme-client: $client $challenge $domain: $(grep -c -- '-----BEGIN CERTIFICATE-----' "$outdir/cert.pem") certificates in $outdir/cert.pem"
