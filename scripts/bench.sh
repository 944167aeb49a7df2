#!/usr/bin/env bash
# make bench: anchorage's Go benchmarks (enrollment core and over HTTPS, CRL
# builds at 10k and 100k entries). With BENCH_STEPCA=1 the step-ca peer from
# ../shared/harness/stepca runs in the same session first.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${BENCH_STEPCA:-0}" = 1 ]; then
  echo "== step-ca peer (../shared/harness/stepca/run.sh, RUNS=${RUNS:-3})"
  RUNS=${RUNS:-3} ../shared/harness/stepca/run.sh
fi
echo "== anchorage"
go test -run '^$' -bench 'Enroll' -benchtime "${N:-5000}x" -count "${RUNS:-3}" ./caserver
go test -run '^$' -bench . -benchtime 5x ./crl
