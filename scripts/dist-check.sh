#!/usr/bin/env bash
# make dist-check (CI): build the .debs, install them on this machine, run
# the installed binaries, check the units with systemd-analyze verify, and
# remove the packages again (the CA's state directory is never touched).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
./scripts/dist.sh
ca=$(ls -t dist/out/anchorage-ca_*.deb | head -1)
wl=$(ls -t dist/out/anchorage_*.deb | head -1)
cleanup() { $SUDO dpkg -r anchorage-ca anchorage >/dev/null 2>&1 || true; }
trap cleanup EXIT
$SUDO dpkg -i "$ca" "$wl"
want=$(dpkg-deb -f "$ca" Version)
for b in anchorage-ca anchorage; do
  got=$(/usr/bin/$b --version)
  echo "$got"
  case "$got" in *"$want"*) ;; *) echo "dist-check: /usr/bin/$b --version says '$got', the package is $want" >&2; exit 1 ;; esac
done
getent passwd anchorage-ca >/dev/null || { echo "dist-check: the anchorage-ca user was not created" >&2; exit 1; }
[ "$(stat -c %a /etc/anchorage)" = 700 ] || { echo "dist-check: /etc/anchorage is not 0700" >&2; exit 1; }
man -w anchorage-ca-revoke >/dev/null 2>&1 || [ -f /usr/share/man/man1/anchorage-ca-revoke.1 ] || { echo "dist-check: no man page for anchorage-ca revoke" >&2; exit 1; }
# The documented first step, as the package's user: init in a directory it owns.
tmp=$(mktemp -d)
trap 'cleanup; $SUDO rm -rf "$tmp"' EXIT
$SUDO chown anchorage-ca:anchorage-ca "$tmp"
$SUDO chmod 0700 "$tmp"
$SUDO runuser -u anchorage-ca -- /usr/bin/anchorage-ca init --dir "$tmp/ca" --name DistCheck --listen 127.0.0.1:0 >/dev/null
mode=$($SUDO stat -c %a "$tmp/ca/ca.key")
[ "$mode" = 600 ] || { echo "dist-check: ca.key is $mode, want 600" >&2; exit 1; }
echo "init as anchorage-ca: ok (keys 0600)"
if command -v systemd-analyze >/dev/null; then
  # verify checks syntax, that ExecStart exists, and the hardening directives.
  out=$(systemd-analyze verify /lib/systemd/system/anchorage-ca.service /lib/systemd/system/anchorage-agent.service 2>&1) || { echo "$out" >&2; exit 1; }
  if [ -n "$out" ]; then echo "$out" >&2; echo "dist-check: systemd-analyze verify printed warnings" >&2; exit 1; fi
  echo "systemd-analyze verify: both units clean"
else
  echo "dist-check: systemd-analyze not present; units not verified"
fi
echo "dist-check: ok ($want)"
