#!/usr/bin/env bash
# Usage: run.sh
#
# anchorage's copy of the step-ca peer harness (make bench uses it).
#
# Measures step-ca's certificate issuance through its one-time-token sign API
# (POST /1.0/sign, JWK provisioner token + CSR) on this machine. For each of
# $RUNS runs: sets up a fresh step-ca in a mktemp dir (setup.sh), starts it,
# runs the load generator with -n $N -c $C and then -n $N1 -c 1, and stops the
# server by its PID. Prints `uptime` before each run and one summary line per
# load-generator run:
#   stepca c=16 n=5000 rps=... p50=...ms p99=...ms errors=0 rss_mb=... srv_cpu_us=... cli_cpu_us=... load1=...
# and, with RUNS>1, min/median/max of rps, p50 and p99 per concurrency.
# rss_mb: the server's peak RSS (VmHWM) so far; srv_cpu_us / cli_cpu_us: CPU
# time of the server / load generator per request in the timed phase.
#
# Environment (defaults in brackets):
#   RUNS [1]  N [5000]  C [16]  N1 [2000] (requests of the -c 1 latency run; 0 skips it)
#   STEPCA_BIN      use this step-ca binary instead of building $STEPCA_VERSION
#   STEPCA_VERSION  [v0.30.2]
#   VERBOSE [0]     1: show the load generator's detail blocks (stderr)
#   KEEP [0]        1: keep the work dir (configs, step-ca.log, loadgen.log)
#   STEPCA_DB_TYPE, STEPCA_DB_SOURCE  the database (setup.sh; default bbolt)
#   STEPCA_LABEL [stepca]  first word of each summary line
# The first run builds step-ca (about 1.5 min on 2 cores, cached after that);
# later runs reuse that binary. Needs the Go toolchain and the Go module proxy.
set -euo pipefail

if [ "$#" -ne 0 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
runs=${RUNS:-1} n=${N:-5000} c=${C:-16} n1=${N1:-2000}

work=$(mktemp -d "${TMPDIR:-/tmp}/stepca-bench.XXXXXX")
pid=""
stop_server() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
  fi
}
cleanup() {
  stop_server
  if [ "${KEEP:-0}" = 1 ]; then echo "run: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bin=${STEPCA_BIN:-}
for i in $(seq 1 "$runs"); do
  dir="$work/run$i"
  if ! STEPCA_BIN="$bin" "$here/setup.sh" "$dir" >"$work/setup$i.log" 2>&1; then
    cat "$work/setup$i.log" >&2
    exit 1
  fi
  bin=${bin:-$dir/bin/step-ca}
  # shellcheck disable=SC1091 # bench.env sets the STEPCA_* variables
  . "$dir/config/bench.env"
  STEPPATH="$dir/step" "$dir/bin/step-ca" "$STEPCA_CONFIG" --password-file "$STEPCA_PASSWORD_FILE" \
    >"$dir/step-ca.log" 2>&1 &
  pid=$!

  # shellcheck disable=SC2153 # STEPCA_* come from bench.env
  load() {
    local rc=0
    if [ "${VERBOSE:-0}" = 1 ]; then
      "$dir/bin/stepcaload" -url "$STEPCA_URL" -root "$STEPCA_ROOT" -key "$STEPCA_KEY" -kid "$STEPCA_KID" \
        -iss "$STEPCA_PROVISIONER" -aud "$STEPCA_AUD" -pid "$pid" -label "${STEPCA_LABEL:-stepca}" "$@" 2> >(tee -a "$dir/loadgen.log" >&2) || rc=$?
    else
      "$dir/bin/stepcaload" -url "$STEPCA_URL" -root "$STEPCA_ROOT" -key "$STEPCA_KEY" -kid "$STEPCA_KID" \
        -iss "$STEPCA_PROVISIONER" -aud "$STEPCA_AUD" -pid "$pid" -label "${STEPCA_LABEL:-stepca}" "$@" 2>>"$dir/loadgen.log" || rc=$?
    fi
    if [ "$rc" -ne 0 ]; then
      echo "run: stepcaload $* failed (rc $rc); its log:" >&2
      tail -n 20 "$dir/loadgen.log" >&2
      echo "run: step-ca log tail:" >&2
      tail -n 5 "$dir/step-ca.log" | cut -c1-400 >&2
      exit 1
    fi
  }

  if [ "$i" = 1 ]; then
    echo "# step-ca ${STEPCA_VERSION:-v0.30.2}$([ -n "${STEPCA_BIN:-}" ] && echo " (binary $STEPCA_BIN)"), $(go env GOVERSION), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  fi
  echo "# run $i/$runs:$(uptime)"
  load -n 0 -wait 30s
  load -n "$n" -c "$c" | tee -a "$work/summary"
  if [ "$n1" -gt 0 ]; then
    load -n "$n1" -c 1 | tee -a "$work/summary"
  fi
  stop_server
  sync # the next run should not pay for this one's writeback
done

if [ "$runs" -gt 1 ]; then
  echo "# over $runs runs: min / median / max"
  # shellcheck disable=SC2013 # one number per line
  for cc in $(awk '{for(i=1;i<=NF;i++) if ($i ~ /^c=/) print substr($i,3)}' "$work/summary" | sort -un); do
    for key in rps p50 p99 rss_mb srv_cpu_us; do
      vals=$(awk -v cc="c=$cc" -v k="$key=" '$2==cc {for(i=1;i<=NF;i++) if (index($i,k)==1) {v=substr($i,length(k)+1); sub(/ms$/,"",v); print v}}' "$work/summary" | sort -g)
      [ -n "$vals" ] || continue
      cnt=$(printf '%s\n' "$vals" | wc -l)
      min=$(printf '%s\n' "$vals" | head -n1)
      max=$(printf '%s\n' "$vals" | tail -n1)
      med=$(printf '%s\n' "$vals" | awk -v n="$cnt" '{a[NR]=$1} END {if (n%2) print a[(n+1)/2]; else printf "%g\n", (a[n/2]+a[n/2+1])/2}')
      printf '%s c=%s %s min=%s median=%s max=%s\n' "${STEPCA_LABEL:-stepca}" "$cc" "$key" "$min" "$med" "$max"
    done
  done
fi
