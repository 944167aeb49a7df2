#!/usr/bin/env bash
# make bench: anchorage's token enrollment under the same load as step-ca's
# /1.0/sign (../shared/harness/stepca), both measured in this session, with
# figures printed as ratios against step-ca; then the Go benchmarks of CRL
# builds (10k/100k entries) and the in-process enrollment path.
#
# Environment: RUNS [3], N [5000], C [16], N1 [2000], BENCH_STEPCA [1]
# (0 skips the step-ca peer), STEPCA_BIN (reuse a built step-ca), KEEP [0].
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3} N=${N:-5000} C=${C:-16} N1=${N1:-2000}
make -s build
go build -o bin/ ./internal/cmd/enrollload
out=$(mktemp -d "${TMPDIR:-/tmp}/anchorage-bench.XXXXXX")
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; [ "${KEEP:-0}" = 1 ] || rm -rf "$out"; }
trap cleanup EXIT

if [ "${BENCH_STEPCA:-1}" = 1 ]; then
  echo "== step-ca v0.30.2 (../shared/harness/stepca/run.sh, RUNS=$RUNS)"
  RUNS=$RUNS N=$N C=$C N1=$N1 ../shared/harness/stepca/run.sh | tee "$out/stepca.txt"
fi

echo "== anchorage (same n, c, keep-alive HTTPS/1.1, durable bbolt under ${TMPDIR:-/tmp}, log to a file)"
for i in $(seq "$RUNS"); do
  d="$out/run$i"
  # Port 0: tokens are bound to the configured URL, the load goes to the
  # address the server reports.
  bin/anchorage-ca init --dir "$d/ca" --name Bench --listen 127.0.0.1:0 >/dev/null
  bin/anchorage-ca serve --dir "$d/ca" --ready-file "$d/ready" 2>"$d/ca.log" & pid=$!
  for _ in $(seq 100); do [ -s "$d/ready" ] && break; sleep 0.1; done
  sleep 1.1
  url=$(cat "$d/ready")
  bin/enrollload -dir "$d/ca" -url "$url" -n "$N" -c "$C" -pid "$pid" | tee -a "$out/anchorage.txt"
  if [ "$N1" -gt 0 ]; then bin/enrollload -dir "$d/ca" -url "$url" -n "$N1" -c 1 -pid "$pid" | tee -a "$out/anchorage.txt"; fi
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
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
echo "== medians of $RUNS runs (ratio = anchorage / step-ca)"
for m in rps p50 p99 srv_cpu_us rss_mb; do report "$C" "$m"; done
if [ "$N1" -gt 0 ]; then for m in rps p50 p99; do report 1 "$m"; done; fi

echo "== Go benchmarks: CRL build+check at 10k / 100k entries (stops at the size cap), whole re-sign with zlint at 1k / 4k; enrollment core"
go test -run '^$' -bench . -benchtime 5x ./crl
go test -run '^$' -bench 'Enroll' -benchtime 2000x ./caserver
