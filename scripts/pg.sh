# shellcheck shell=bash
# Sourced by demo-ha.sh and bench.sh: a private PostgreSQL cluster from
# Debian's postgresql package, listening only on a loopback port, with
# password (SCRAM) authentication, stopped by its postmaster's PID.
#
#   pg_start DIR PORT PASSFILE   initdb into DIR/data (user anchorage, the
#                                password in PASSFILE), start, create the
#                                database "anchorage"; sets PG_PID
#   pg_createdb NAME             another database on the running cluster
#   pg_stop                      fast shutdown by PID, SIGKILL after 20 s
#
# As root the cluster runs as the user nobody (initdb and postgres refuse
# root). nobody must be able to reach DIR: when DIR sits under a private
# directory (a clone in /root), the cluster goes to a fresh directory under
# /tmp instead, DIR becomes a symlink to it, and pg_stop removes both
# (keeping the server log as DIR.log).
# PG_BIN overrides the binaries' directory (default: the newest
# /usr/lib/postgresql/*/bin).

PG_PID="" PG_DIR="" PG_TMP="" PG_LINK="" PG_PORT="" PG_PASSFILE=""

pg_bin() {
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  local d
  d=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n1)
  if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
    echo "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin: install the postgresql package (.ci/install-deps does) or set PG_BIN" >&2
    return 1
  fi
  echo "$d"
}

# pg_as runs a command as the cluster's user, in the cluster's directory
# (nobody may not be able to enter the caller's working directory).
pg_as() {
  if [ "$(id -u)" = 0 ]; then
    (cd "$PG_DIR" && runuser -u nobody -- "$@")
  else
    (cd "$PG_DIR" && "$@")
  fi
}

pg_start() {
  local dir=$1 port=$2 passfile=$3 bin
  bin=$(pg_bin) || return 1
  PG_PORT=$port PG_PASSFILE=$passfile
  rm -rf "$dir"
  if [ "$(id -u)" = 0 ]; then
    mkdir -p "$dir"
    chown nobody: "$dir"
    if ! runuser -u nobody -- test -w "$dir" 2>/dev/null; then
      rmdir "$dir"
      PG_TMP=$(mktemp -d /tmp/anchorage-pg.XXXXXX)
      chown nobody: "$PG_TMP"
      ln -s "$PG_TMP" "$dir"
      PG_LINK=$dir
      echo "(user nobody cannot reach $dir: the cluster lives in $PG_TMP, linked from there)"
    fi
  else
    mkdir -p "$dir"
  fi
  PG_DIR=$(cd "$dir" && pwd -P)
  chmod 700 "$PG_DIR"
  # initdb reads the password from a file the cluster's user can read;
  # it is removed right after.
  install -m 600 "$passfile" "$PG_DIR/pwfile"
  [ "$(id -u)" = 0 ] && chown nobody: "$PG_DIR/pwfile"
  if ! pg_as "$bin/initdb" -D "$PG_DIR/data" -U anchorage --pwfile="$PG_DIR/pwfile" --auth=scram-sha-256 \
      -E UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1; then
    cat "$PG_DIR/initdb.log" >&2
    rm -f "$PG_DIR/pwfile"
    return 1
  fi
  rm -f "$PG_DIR/pwfile"
  # Loopback TCP only: no unix socket (its path must fit in 107 bytes,
  # which a deep checkout may not), nothing on other interfaces.
  cat >>"$PG_DIR/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
max_connections = 200
EOF
  if ! pg_as "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 30 start >/dev/null; then
    cat "$PG_DIR/log" >&2
    PG_PID=$(head -n1 "$PG_DIR/data/postmaster.pid" 2>/dev/null || true)
    pg_stop
    return 1
  fi
  PG_PID=$(head -n1 "$PG_DIR/data/postmaster.pid")
  pg_createdb anchorage
}

pg_createdb() {
  PGPASSWORD=$(cat "$PG_PASSFILE") "$(pg_bin)/createdb" -h 127.0.0.1 -p "$PG_PORT" -U anchorage "$1"
}

pg_stop() {
  # Interrupted between pg_ctl start and reading the PID: read it now.
  if [ -z "$PG_PID" ] && [ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ]; then
    PG_PID=$(head -n1 "$PG_DIR/data/postmaster.pid")
  fi
  if [ -n "$PG_PID" ] && kill -0 "$PG_PID" 2>/dev/null; then
    kill -INT "$PG_PID" 2>/dev/null || true # fast shutdown
    for _ in $(seq 200); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$PG_PID" 2>/dev/null; then
      pkill -KILL -P "$PG_PID" 2>/dev/null || true
      kill -KILL "$PG_PID" 2>/dev/null || true
    fi
  fi
  PG_PID=""
  if [ -n "$PG_TMP" ]; then
    # Keep the server log beside the link, which now points nowhere.
    [ -f "$PG_TMP/log" ] && cp "$PG_TMP/log" "$PG_LINK.log"
    rm -rf "$PG_TMP"
    rm -f "$PG_LINK"
    PG_TMP="" PG_LINK=""
  fi
}
