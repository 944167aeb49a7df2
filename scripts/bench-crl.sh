#!/usr/bin/env bash
# The CRL figures of make bench (scripts/bench.sh runs this; it also runs
# alone): build + check at 10k / 100k / 1M entries against the goals
# (100k < 0.3 s, 1M < 2 s, peak heap proportional to the output), the
# whole re-sign at the sizes Roles Anywhere imports, how many revocations
# one CRL at a trust anchor can carry, and revoke -> CreateSession denied
# through localaws (p50/p99 over REVOKE_ROUNDS).
#
# Environment: BENCH_QUICK [0] (1: no 1M build, 5 revoke rounds),
# CRL_BENCH_TIME [5x], REVOKE_ROUNDS [30].
set -euo pipefail
cd "$(dirname "$0")/.."
quick=${BENCH_QUICK:-0}
max=1000000 rounds=${REVOKE_ROUNDS:-30}
if [ "$quick" = 1 ]; then max=100000 rounds=${REVOKE_ROUNDS:-5}; fi
load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "== CRL build + check (crl.Build, then crl.Check: signature, structure, every entry against storage, zlint), $(nproc) cores, load average $(load)"
out=$(CRL_BENCH_MAX=$max go test -run '^$' -bench 'BuildCheck' -benchtime "${CRL_BENCH_TIME:-5x}" ./crl | grep -E '^Benchmark')
echo "$out"
echo "$out" | awk -v load="$(load)" '
  { n = $1; sub(/.*entries=/, "", n); sub(/-[0-9]+$/, "", n)
    for (i = 3; i < NF; i++) { v[$(i+1)] = $i }
    s = v["ns/op"] / 1e9
    goal = (n == 100000) ? 0.3 : (n == 1000000) ? 2 : 0
    verdict = goal ? sprintf("goal < %.1f s: %s (%.2fx of it)", goal, s < goal ? "met" : "MISSED", s / goal) : ""
    printf "  %8d entries  %7.3f s  %8.1f MB allocated  peak heap %7.1f MB  DER %6.1f MB  %s\n", n, s, v["B/op"] / 1048576, v["peak-heap-MB"], v["der-bytes"] / 1048576, verdict }
  END { printf "  (before: 100k 0.76-1.06 s and 237 MB peak, 1M 7.3 s, 2.2 GB peak, 2.4 GB allocated; load average now %s)\n", load }'

echo "== whole CRL re-sign at the sizes Roles Anywhere imports (bbolt read, build, check with zlint, fsynced save)"
go test -run '^$' -bench 'Update' -benchtime 5x ./crl | grep -E '^Benchmark'

echo "== live revocations one CRL at a trust anchor carries (300,000 characters of PEM; 20-octet serials)"
go test -count=1 -run 'TestImportCapacity' -v ./crl | sed -n 's/.*capacity_test.go:[0-9]*: /  /p'

echo "== revoke -> CreateSession denied through localaws, $rounds rounds per mode, load average $(load)"
go test -run '^$' -bench 'RevokeToDenied' -benchtime "${rounds}x" ./e2e | grep -E '^Benchmark' |
  awk '{ for (i = 3; i < NF; i++) v[$(i+1)] = $i; m = $1; sub(/^BenchmarkRevokeToDenied\//, "", m); sub(/-[0-9]+$/, "", m)
         printf "  %-13s p50 %7.1f ms  p99 %7.1f ms  (%d rounds)\n", m, v["p50-ms"], v["p99-ms"], $2 }'
