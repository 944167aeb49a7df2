#!/usr/bin/env bash
# make dist: the anchorage-ca and anchorage .deb packages in dist/out/,
# built with nfpm (github.com/goreleaser/nfpm, pinned below, run from the
# Go module proxy like any module) from binaries built here, with man
# pages generated from the binaries' own help.
#
# Environment: VERSION (default from git: the newest v* tag, or
# 0.0.0~git<rev>), ARCH (default: go env GOARCH).
set -euo pipefail
cd "$(dirname "$0")/.."
NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2

if [ -z "${VERSION:-}" ]; then
  if tag=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
    VERSION=${tag#v}
  else
    VERSION="0.0.0~git$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  fi
fi
# Debian versions: digits first, no '-' outside the revision.
VERSION=$(printf '%s' "$VERSION" | tr '-' '~')
ARCH=${ARCH:-$(go env GOARCH)}
export VERSION ARCH

rm -rf bin/dist && mkdir -p bin/dist/man/ca bin/dist/man/wl dist/out
ldflags="-s -w -X github.com/anchorage-pki/anchorage/internal/version.override=$VERSION"
CGO_ENABLED=1 GOARCH=$ARCH go build -trimpath -ldflags "$ldflags" -o bin/dist/ ./cmd/anchorage-ca ./cmd/anchorage
bin/dist/anchorage-ca man bin/dist/man/ca
bin/dist/anchorage man bin/dist/man/wl

for p in anchorage-ca anchorage; do
  go run "$NFPM" package --config "dist/nfpm/$p.yaml" --packager deb --target "dist/out/${p}_${VERSION}_${ARCH}.deb"
done
ls -l dist/out/*.deb
