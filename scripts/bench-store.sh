#!/usr/bin/env bash
# Storage at scale (issue 13 goal 2), run by scripts/bench.sh or alone:
# seed a CA's bbolt database with BENCH_SEED realistic certificates
# (internal/cmd/seedcerts, progress on stderr), then report
#   - bytes on disk per record against its DER (the file, and the records'
#     own bucket alone: internal/cmd/seedcerts/boltstat);
#   - GET /v1/certs page latency by subject, status valid/revoked/expired
#     and unfiltered, first page and 19 more by cursor (internal/cmd/certsbench);
#   - the CA's peak heap (go_memstats_heap_inuse_bytes from /metrics, not
#     the mapped file) under enrollment load on the seeded database;
#   - enrollment rate on the seeded database against an empty one, runs
#     alternating (goal: >= 0.95).
# Environment: BENCH_SEED [1000000], BENCH_QUICK [0] (1: 100000 records),
# STORE_RUNS [2], STORE_N [3000], STORE_C [16], KEEP [0].
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${BENCH_SEED:-1000000}
[ "${BENCH_QUICK:-0}" = 1 ] && SEED=100000
RUNS=${STORE_RUNS:-2} N=${STORE_N:-3000} C=${STORE_C:-16}
go build -o bin/ ./cmd/anchorage-ca ./internal/cmd/enrollload ./internal/cmd/seedcerts ./internal/cmd/seedcerts/boltstat ./internal/cmd/certsbench
out=$(mktemp -d "${TMPDIR:-/tmp}/anchorage-bench-store.XXXXXX")
pid=""
stop_ca() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi; }
cleanup() { stop_ca; [ "${KEEP:-0}" = 1 ] || rm -rf "$out"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
# start_ca DIR: serve DIR/ca (Open checks every page: a big file takes a while).
start_ca() {
  rm -f "$1/ready"
  bin/anchorage-ca serve --dir "$1/ca" --ready-file "$1/ready" 2>>"$1/ca.log" & pid=$!
  for _ in $(seq 1200); do [ -s "$1/ready" ] && break; sleep 0.25; done
  [ -s "$1/ready" ] || { echo "bench-store: CA did not come up; log:" >&2; tail -n 5 "$1/ca.log" >&2; exit 1; }
  sleep 1.1
  url=$(cat "$1/ready")
}

echo "== storage at $SEED certificates (bbolt; seeded by internal/cmd/seedcerts)"
for d in empty seeded; do bin/anchorage-ca init --dir "$out/$d/ca" --name Bench --listen 127.0.0.1:0 >/dev/null; done
bin/seedcerts -db "$out/seeded/ca/anchorage.db" -n "$SEED" 2> >(awk 'NR % 20 == 0' >&2) | tee "$out/seed.txt"
bin/boltstat "$out/seeded/ca/anchorage.db" | tee "$out/boltstat.txt" | grep -E '^(certs|by_|buckets)'
der=$(sed -E 's/.* der_bytes=([0-9]+).*/\1/' "$out/seed.txt")
awk -v der="$der" '/^certs3? / { for (i = 1; i <= NF; i++) if ($i ~ /^inuse=/) { split($i, a, "="); printf "  certs bucket in use / DER %.3f (record alone; goal <= 1.2)\n", a[2] / der } }' "$out/boltstat.txt"
grep -o 'file_per_der=[0-9.]*' "$out/seed.txt" | sed 's/^/  whole file: /'

start_ca "$out/seeded"
echo "== listing pages (GET /v1/certs, limit 100; goal < 50 ms)"
bin/certsbench -dir "$out/seeded/ca" -url "$url" -subject host-7.example.com | tee "$out/list.txt"
stop_ca

echo "== enrollment c=$C n=$N, empty vs seeded database, $RUNS alternating runs; CA heap under the load"
for i in $(seq "$RUNS"); do
  for d in empty seeded; do
    start_ca "$out/$d"
    exec 3> >(bin/certsbench -dir "$out/$d/ca" -url "$url" -heap >> "$out/heap-$d.txt")
    bin/enrollload -dir "$out/$d/ca" -url "$url" -n "$N" -c "$C" -pid "$pid" -label "$d" | tee -a "$out/enroll.txt"
    exec 3>&-
    sleep 0.5
    stop_ca
  done
done
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else print a[int((NR+1)/2)]}'; }
rate() { grep "^$1 " "$out/enroll.txt" | sed -E 's/.* rps=([0-9.]+).*/\1/' | median; }
peak() { sed -E 's/.*peak_mb=([0-9.]+).*/\1/' "$out/heap-$1.txt" | sort -n | tail -1; }
cpu() { grep "^$1 " "$out/enroll.txt" | sed -E 's/.* srv_cpu_us=([0-9.]+).*/\1/' | median; }
e=$(rate empty) s=$(rate seeded) ec=$(cpu empty) sc=$(cpu seeded)
awk -v e="$e" -v s="$s" -v n="$SEED" 'BEGIN { printf "  enrollment rps: empty %s, at %d %s, ratio %.2f (goal >= 0.95)\n", e, n, s, (e > 0 ? s / e : 0) }'
# On a shared machine the rate swings with other load; server CPU per
# certificate does not, and its inverse is the rate one core would give.
awk -v e="$ec" -v s="$sc" 'BEGIN { printf "  server CPU per certificate: empty %s us, seeded %s us, rate-equivalent ratio %.2f\n", e, s, (s > 0 ? e / s : 0) }'
echo "  CA heap peak under load: empty $(peak empty) MB, at $SEED $(peak seeded) MB (goal < 100 MB)"
