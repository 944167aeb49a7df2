#!/usr/bin/env bash
# Usage: setup.sh OUTDIR
#
# anchorage's copy of the step-ca peer harness (make bench uses it), with a
# PostgreSQL option added.
#
# Builds step-ca (github.com/smallstep/certificates, $STEPCA_VERSION) and this
# directory's load generator into OUTDIR/bin, then writes a step-ca config into
# OUTDIR the way `step ca init` lays one out (no step CLI needed):
#   ECDSA P-256 root + intermediate (keys encrypted, password in
#   OUTDIR/secrets/password), one JWK provisioner "bench" (ES256, with its
#   encryptedKey), bbolt at OUTDIR/db, listening on 127.0.0.1:$STEPCA_PORT,
#   default and max certificate duration 24h.
# OUTDIR/config/bench.env holds STEPCA_URL, STEPCA_ROOT, STEPCA_KID, STEPCA_KEY,
# STEPCA_AUD, STEPCA_CONFIG, STEPCA_PASSWORD_FILE ... for `. OUTDIR/config/bench.env`.
#
# Environment (defaults in brackets):
#   STEPCA_VERSION [v0.30.2]
#   STEPCA_BIN     an existing step-ca binary to copy instead of building one
#   STEPCA_PORT    [0: a free port picked now]
#   STEPCA_DB_TYPE [bbolt]; postgresql with STEPCA_DB_SOURCE=postgresql://USER@HOST:PORT/DB?sslmode=...
#                  (step-ca creates DB if missing; the password from PGPASSWORD in step-ca's environment)
#
# step-ca is built like its release binaries (.goreleaser.yml): CGO_ENABLED=0,
# -trimpath (with cgo on, its YubiKey support needs libpcsclite headers). The
# build needs the Go module proxy and takes about 1.5 minutes on 2 cores the
# first time (build cache after that).
set -euo pipefail

if [ "$#" -ne 1 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
version=${STEPCA_VERSION:-v0.30.2}
mkdir -p "$1"
out=$(cd "$1" && pwd)
mkdir -p "$out/bin"

if [ -n "${STEPCA_BIN:-}" ]; then
  cp "$STEPCA_BIN" "$out/bin/step-ca"
else
  echo "setup: building step-ca $version into $out/bin" >&2
  CGO_ENABLED=0 GOBIN="$out/bin" go install -trimpath "github.com/smallstep/certificates/cmd/step-ca@$version"
fi
echo "setup: building stepcaload and stepcagen into $out/bin" >&2
go -C "$here/loadgen" build -trimpath -buildvcs=false -o "$out/bin/stepcaload" .
go -C "$here/loadgen" build -trimpath -buildvcs=false -o "$out/bin/stepcagen" ./gen

"$out/bin/stepcagen" -out "$out" -port "${STEPCA_PORT:-0}" -db-type "${STEPCA_DB_TYPE:-bbolt}" -db-source "${STEPCA_DB_SOURCE:-}"

# shellcheck disable=SC1091 # bench.env sets the STEPCA_* variables
. "$out/config/bench.env"
# shellcheck disable=SC2153 # STEPCA_KID comes from bench.env
cat <<EOF
step-ca is set up in $out. Start it (STEPPATH keeps it out of ~/.step):
  STEPPATH='$out/step' '$out/bin/step-ca' '$STEPCA_CONFIG' --password-file '$STEPCA_PASSWORD_FILE' 2>'$out/step-ca.log' &
Then load it:
  '$out/bin/stepcaload' -url '$STEPCA_URL' -root '$STEPCA_ROOT' -key '$STEPCA_KEY' -kid '$STEPCA_KID' \\
    -iss '$STEPCA_PROVISIONER' -aud '$STEPCA_AUD' -n 5000 -c 16 -pid \$! -wait 30s
EOF
