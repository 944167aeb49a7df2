#!/usr/bin/env bash
# make demo: the whole anchorage story on loopback, narrated step by step.
# Everything lives in ./demo (recreated on every run); nothing leaves 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin
W=$PWD/demo
PORT=${DEMO_PORT:-18443}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "${*#"$BIN/"}"; "$@"; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_file() { for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done; echo "timed out waiting for $1" >&2; return 1; }

port_free "$PORT" || { echo "port $PORT is busy; set DEMO_PORT" >&2; exit 1; }
rm -rf "$W" && mkdir -p "$W" && cd "$W"
CA=https://localhost:$PORT

step "1. Create the CA (root + issuing CA + API TLS + admin certificate)"
run "$BIN/anchorage-ca" init --dir ca --name "Demo Corp" --listen "127.0.0.1:$PORT"

step "2. Start the CA (HTTPS on 127.0.0.1:$PORT, storage in ca/anchorage.db)"
"$BIN/anchorage-ca" serve --dir ca --ready-file ca.ready 2>ca.log & pids+=($!)
wait_file ca.ready && echo "CA is up at $(cat ca.ready) (log: demo/ca.log)"

step "3. Mint a one-time enrollment token for host web-01"
echo "\$ anchorage-ca token --dir ca --name web-01.demo.internal --san DNS:web-01.demo.internal > web-01.token"
"$BIN/anchorage-ca" token --dir ca --name web-01.demo.internal --san DNS:web-01.demo.internal > web-01.token
echo "token: $(cut -c1-48 web-01.token)... (single use, 10 minutes)"

step "4. The workload enrolls: key made locally (0600), never sent"
run "$BIN/anchorage" enroll --ca "$CA" --root ca/root.crt --token-file web-01.token --cert web-01.crt --key web-01.key
openssl x509 -in web-01.crt -noout -subject -serial -enddate | sed 's/^/    /'

step "5. The same token again is refused"
if "$BIN/anchorage" enroll --ca "$CA" --root ca/root.crt --token-file web-01.token --cert x.crt --key x.key; then
  echo "UNEXPECTED: replay accepted" >&2; exit 1
fi

step "6. Renew over mTLS with the current certificate (new key)"
run "$BIN/anchorage" renew --ca "$CA" --root ca/root.crt --cert web-01.crt --key web-01.key --rekey
SERIAL=$(openssl x509 -in web-01.crt -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')

step "7. Incident: revoke every live certificate of web-01"
run "$BIN/anchorage-ca" revoke --dir ca --subject web-01.demo.internal --reason keyCompromise

step "8. The CRL lists the serial"
run "$BIN/anchorage-ca" crl --dir ca
"$BIN/anchorage-ca" crl --dir ca | grep -q "$SERIAL" && echo "    serial $SERIAL is on the CRL"

step "9. The revoked certificate can no longer renew"
if "$BIN/anchorage" renew --ca "$CA" --root ca/root.crt --cert web-01.crt --key web-01.key; then
  echo "UNEXPECTED: revoked certificate renewed" >&2; exit 1
fi

step "Done. Everything is in ./demo; the CA log is demo/ca.log."
