#!/usr/bin/env bash
# make bench: anchorage's token enrollment under the same load as step-ca's
# /1.0/sign (scripts/stepca, our copy of the peer harness), both measured
# in this session, with figures printed as ratios against step-ca; then
# the same on PostgreSQL: one anchorage replica, and 2 and 3 replicas on one
# database with the requests spread across them, against step-ca on
# PostgreSQL; then the Go benchmarks of CRL builds (10k/100k entries) and
# the in-process enrollment path.
#
# Environment: RUNS [3], N [5000], C [16], N1 [2000], BENCH_STEPCA [1]
# (0 skips the step-ca peer), STEPCA_BIN (reuse a built step-ca), KEEP [0],
# BENCH_PG [1] (0 skips PostgreSQL), REPLICAS ["2 3"] (replica counts
# besides 1), BENCH_PG_PORT [18559], PG_BIN (see scripts/pg.sh), BENCH_HA [1]
# (0 skips the failover figures), HA_KILLS [10], BENCH_GO [1] (0 skips the
# Go benchmarks).
#
# BENCH_QUICK=1: a run of about two minutes (with STEPCA_BIN set or step-ca
# cached): RUNS=1, N=1000, N1=300, PostgreSQL with one replica only, no
# failover, CRL benchmarks at their smallest sizes, fewer Go iterations.
# Explicit RUNS/N/N1/REPLICAS/BENCH_HA still win.
# RAH: path to a built aws_signing_helper; adds credential-process cold,
# anchorage vs AWS's helper (e2e BenchmarkCredentialProcess), as a ratio.
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- BENCH_QUICK (enrollment perf) -------------------------------------
BENCH_QUICK=${BENCH_QUICK:-0}
FLOOR_BENCHTIME=3000x CRL_BENCH=. CRL_BENCHTIME=5x ENROLL_BENCHTIME=2000x
if [ "$BENCH_QUICK" = 1 ]; then
  RUNS=${RUNS:-1} N=${N:-1000} N1=${N1:-300} BENCH_HA=${BENCH_HA:-0}
  # A blank (not empty) REPLICAS survives the "2 3" default below: one replica.
  REPLICAS=${REPLICAS:- }
  FLOOR_BENCHTIME=1000x CRL_BENCH='Build/entries=10000$|Update/entries=1000$' CRL_BENCHTIME=2x ENROLL_BENCHTIME=300x
fi
# ---- end BENCH_QUICK ----------------------------------------------------
RUNS=${RUNS:-3} N=${N:-5000} C=${C:-16} N1=${N1:-2000}
BENCH_PG=${BENCH_PG:-1} REPLICAS=${REPLICAS:-2 3} PGPORT=${BENCH_PG_PORT:-18559}
STEPCA_VERSION=${STEPCA_VERSION:-v0.30.2}
# shellcheck source=scripts/pg.sh
. ./scripts/pg.sh
make -s build
go build -o bin/ ./internal/cmd/enrollload
out=$(mktemp -d "${TMPDIR:-/tmp}/anchorage-bench.XXXXXX")
pids=()
stop_servers() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done; pids=(); }
cleanup() { stop_servers; pg_stop; [ "${KEEP:-0}" = 1 ] || rm -rf "$out"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
# wait_ready FILE...: each file names a serving CA (at most 20 s).
wait_ready() {
  local f
  for f in "$@"; do
    for _ in $(seq 200); do [ -s "$f" ] && break; sleep 0.1; done
    [ -s "$f" ] || { echo "bench: no CA came up (${f%/*}); log:" >&2; tail -n 5 "${f%.ready}.log" >&2; exit 1; }
  done
}

if [ "${BENCH_STEPCA:-1}" = 1 ]; then
  if [ -z "${STEPCA_BIN:-}" ]; then
    echo "== building step-ca $STEPCA_VERSION (once for every run below)"
    CGO_ENABLED=0 GOBIN="$out/stepca-bin" go install -trimpath "github.com/smallstep/certificates/cmd/step-ca@$STEPCA_VERSION"
    STEPCA_BIN=$out/stepca-bin/step-ca
  fi
  export STEPCA_BIN STEPCA_VERSION
fi

# step-ca and anchorage alternate, run by run, so that whatever else the
# machine does in a minute (another tenant, a CPU clocked down) falls on
# both: ratios come from neighbouring runs, not from two blocks of runs
# minutes apart.
echo "== step-ca $STEPCA_VERSION (scripts/stepca/run.sh) and anchorage (same n, c, keep-alive HTTPS/1.1, durable bbolt under ${TMPDIR:-/tmp}, log to a file), alternating, $RUNS runs each"
for i in $(seq "$RUNS"); do
  if [ "${BENCH_STEPCA:-1}" = 1 ]; then
    RUNS=1 N=$N C=$C N1=$N1 ./scripts/stepca/run.sh | grep -E '^stepca ' | tee -a "$out/stepca.txt"
  fi
  d="$out/run$i"
  # Port 0: tokens are bound to the configured URL, the load goes to the
  # address the server reports.
  bin/anchorage-ca init --dir "$d/ca" --name Bench --listen 127.0.0.1:0 >/dev/null
  bin/anchorage-ca serve --dir "$d/ca" --ready-file "$d/ca.ready" 2>"$d/ca.log" & pids+=($!)
  wait_ready "$d/ca.ready"
  sleep 1.1
  url=$(cat "$d/ca.ready")
  bin/enrollload -dir "$d/ca" -url "$url" -n "$N" -c "$C" -pid "${pids[0]}" | tee -a "$out/anchorage.txt"
  if [ "$N1" -gt 0 ]; then bin/enrollload -dir "$d/ca" -url "$url" -n "$N1" -c 1 -pid "${pids[0]}" | tee -a "$out/anchorage.txt"; fi
  stop_servers
done

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else print a[int((NR+1)/2)]}'; }
field() { grep -E "^$1 c=$2 n=" "$3" | sed -E "s/.* $4=([0-9.]+).*/\1/"; }
report() {
  local c=$1 metric=$2
  local a s
  a=$(field anchorage "$c" "$out/anchorage.txt" "$metric" | median)
  if [ -f "$out/stepca.txt" ]; then
    s=$(field stepca "$c" "$out/stepca.txt" "$metric" | median)
    awk -v a="$a" -v s="$s" -v m="$metric" -v c="$c" 'BEGIN { printf "  c=%-2s %-10s anchorage %9s  step-ca %9s  ratio %.2f\n", c, m, a, s, (s>0 ? a/s : 0) }'
  else
    printf "  c=%-2s %-10s anchorage %9s\n" "$c" "$metric" "$a"
  fi
}
# pairs C METRIC: anchorage/step-ca of each alternating pair of runs, and
# their median: the ratio least moved by the machine's drift.
pairs() {
  [ -f "$out/stepca.txt" ] || return 0
  local r
  r=$(paste <(field anchorage "$1" "$out/anchorage.txt" "$2") <(field stepca "$1" "$out/stepca.txt" "$2") |
    awk '$2 > 0 { printf "%.2f\n", $1 / $2 }')
  [ -n "$r" ] || return 0
  printf '  c=%-2s %-10s run by run %s  median of pairs %s\n' "$1" "$2" "$(echo $r)" "$(echo "$r" | median)"
}
# ---- floor (enrollment perf): 1 P-256 sign + 2 verifies, this machine now --
floor=$(go test -run '^$' -bench '^BenchmarkFloor$' -benchtime "$FLOOR_BENCHTIME" -cpu 1 ./caserver |
  sed -nE 's/.* ([0-9.]+) cpu_us\/op.*/\1/p' | head -n 1)
# ---- end floor ----------------------------------------------------------
echo "== medians of $RUNS runs (ratio = anchorage / step-ca)"
for m in rps p50 p99 srv_cpu_us rss_mb; do report "$C" "$m"; done
pairs "$C" rps
# ---- floor (enrollment perf) --------------------------------------------
if [ -n "$floor" ]; then
  fa=$(field anchorage "$C" "$out/anchorage.txt" srv_cpu_us | median)
  fs=nan; [ -f "$out/stepca.txt" ] && fs=$(field stepca "$C" "$out/stepca.txt" srv_cpu_us | median)
  awk -v f="$floor" -v a="$fa" -v s="$fs" -v c="$C" 'BEGIN {
    printf "  c=%-2s %-10s floor %9.1f  (1 P-256 sign + 2 verifies, CPU us, BenchmarkFloor)  anchorage/floor %.2f", c, "cpu/cert", f, a/f
    if (s+0 > 0) printf "  step-ca/floor %.2f", s/f
    printf "\n" }'
fi
# ---- end floor ----------------------------------------------------------
if [ "$N1" -gt 0 ]; then for m in rps p50 p99; do report 1 "$m"; done; pairs 1 rps; fi

if [ "$BENCH_PG" = 1 ]; then
  port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
  port_free "$PGPORT" || { echo "bench: port $PGPORT is busy; set BENCH_PG_PORT" >&2; exit 1; }
  (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$out/pg.pass")
  pg_start "$out/pg" "$PGPORT" "$out/pg.pass" >/dev/null
  pgurl() { echo "postgres://anchorage@127.0.0.1:$PGPORT/$1?sslmode=disable"; }
  echo "== anchorage on PostgreSQL $(basename "$(dirname "$(pg_bin)")") (private cluster on 127.0.0.1:$PGPORT, TCP, SCRAM; fsync and synchronous_commit on, data under ${TMPDIR:-/tmp}); replicas: 1 $REPLICAS"
  echo "   (srv_cpu_us and rss_mb: the anchorage replicas only, added up; PostgreSQL's own CPU is not counted)"
  [ "${BENCH_STEPCA:-1}" = 1 ] && echo "   step-ca $STEPCA_VERSION on the same PostgreSQL (\"db\": {\"type\": \"postgresql\"}, a fresh database per run) runs before each round"
  stepca_pg=${BENCH_STEPCA:-1}
  for i in $(seq "$RUNS"); do
    if [ "$stepca_pg" = 1 ]; then
      if ! PGPASSWORD=$(cat "$out/pg.pass") STEPCA_DB_TYPE=postgresql STEPCA_DB_SOURCE="postgresql://anchorage@127.0.0.1:$PGPORT/stepca_r$i?sslmode=disable" \
          STEPCA_LABEL=stepca-pg RUNS=1 N=$N C=$C N1=$N1 ./scripts/stepca/run.sh | grep -E '^stepca-pg ' | tee -a "$out/stepca-pg.txt"; then
        echo "step-ca on PostgreSQL failed (above); its PostgreSQL figures are left out" >&2
        rm -f "$out/stepca-pg.txt"
        stepca_pg=0
      fi
    fi
    for k in 1 $REPLICAS; do
      d="$out/pg-run$i-x$k"
      db="anchorage_r${i}_x$k"
      pg_createdb "$db"
      bin/anchorage-ca init --dir "$d/ca1" --name Bench --listen 127.0.0.1:0 \
        --postgres "$(pgurl "$db")" --postgres-password-file "$out/pg.pass" >/dev/null
      urls="" plist="" ready=()
      for j in $(seq "$k"); do
        [ "$j" = 1 ] || cp -a "$d/ca1" "$d/ca$j"
        bin/anchorage-ca serve --dir "$d/ca$j" --ready-file "$d/ca$j.ready" 2>"$d/ca$j.log" & pids+=($!)
        ready+=("$d/ca$j.ready")
      done
      wait_ready "${ready[@]}"
      sleep 1.1
      for j in $(seq "$k"); do urls+="${urls:+,}$(cat "$d/ca$j.ready")"; done
      plist=$(IFS=,; echo "${pids[*]}")
      bin/enrollload -dir "$d/ca1" -url "$urls" -n "$N" -c "$C" -pid "$plist" -label "anchorage-pg$k" | tee -a "$out/anchorage-pg.txt"
      if [ "$N1" -gt 0 ]; then bin/enrollload -dir "$d/ca1" -url "$urls" -n "$N1" -c 1 -pid "$plist" -label "anchorage-pg$k" | tee -a "$out/anchorage-pg.txt"; fi
      stop_servers
    done
  done
  pg_stop

  # One table: every figure as a ratio against step-ca on bbolt (the
  # harness's baseline), and the PostgreSQL ones also against step-ca on
  # PostgreSQL.
  med() { [ -f "$2" ] && field "$1" "$3" "$2" "$4" | median || echo nan; }
  echo "== by store, medians of $RUNS runs (x/sb = ratio to step-ca on bbolt, x/sp = ratio to step-ca on PostgreSQL)"
  for c in "$C" $([ "$N1" -gt 0 ] && echo 1); do
    for m in rps p50 p99; do
      sb=$(med stepca "$out/stepca.txt" "$c" "$m")
      sp=$(med stepca-pg "$out/stepca-pg.txt" "$c" "$m")
      printf '  c=%-2s %-4s step-ca bbolt %8s  step-ca pg %8s\n' "$c" "$m" "$sb" "$sp"
      rows=("anchorage bbolt:anchorage:$out/anchorage.txt" "anchorage pg x1:anchorage-pg1:$out/anchorage-pg.txt")
      for k in $REPLICAS; do rows+=("anchorage pg x$k:anchorage-pg$k:$out/anchorage-pg.txt"); done
      for row in "${rows[@]}"; do
        IFS=: read -r name label file <<<"$row"
        v=$(med "$label" "$file" "$c" "$m")
        awk -v n="$name" -v v="$v" -v sb="$sb" -v sp="$sp" 'BEGIN {
          r1 = (sb+0 > 0 && v != "nan") ? sprintf("%.2f", v/sb) : "-"
          r2 = (sp+0 > 0 && v != "nan" && n ~ /pg/) ? sprintf("%.2f", v/sp) : "-"
          printf "         %-16s %8s  x/sb %5s  x/sp %5s\n", n, v, r1, r2 }'
      done
    done
  done
fi

if [ "$BENCH_PG" = 1 ] && [ "${BENCH_HA:-1}" = 1 ]; then
  echo "== Lease failover over ${HA_KILLS:-10} real kill -9 of the push-lease holder (3 replicas on PostgreSQL), and revoke through a replica holding no lease -> CreateSession denied at localaws"
  HA_KILLS=${HA_KILLS:-10} go test -run '^$' -bench Failover -benchtime 1x ./e2e/ha
fi

# ---- credential-process cold vs aws_signing_helper (RAH) -----------------
if [ -n "${RAH:-}" ]; then
  echo "== credential-process cold (new process, file reads, sign, CreateSession on localaws): anchorage vs aws_signing_helper ($RAH)"
  RAH=$(realpath "$RAH") go test -run '^$' -bench '^BenchmarkCredentialProcess$' -benchtime "${RAH_BENCHTIME:-20x}" ./e2e | tee "$out/rah.txt"
  awk '/^BenchmarkCredentialProcess\/anchorage/ {a=$3} /^BenchmarkCredentialProcess\/aws_signing_helper/ {h=$3}
    END { if (a > 0 && h > 0) printf "  credential-process cold  anchorage %.1f ms  aws_signing_helper %.1f ms  ratio %.2f (time, lower is faster)\n", a/1e6, h/1e6, a/h }' "$out/rah.txt"
else
  echo "== credential-process vs aws_signing_helper: skipped (RAH=path of a built aws_signing_helper adds it)"
fi
# ---- end credential-process ---------------------------------------------

# Storage at a million certificates: its own script (BENCH_STORE=0 skips it).
if [ "${BENCH_STORE:-1}" = 1 ]; then ./scripts/bench-store.sh; fi

[ "${BENCH_GO:-1}" = 1 ] || exit 0
# CRL figures and revoke -> denied: their own script (BENCH_QUICK=1 skips 1M).
./scripts/bench-crl.sh
echo "== Go benchmarks: enrollment core"
go test -run '^$' -bench 'Enroll' -benchtime "$ENROLL_BENCHTIME" ./caserver
