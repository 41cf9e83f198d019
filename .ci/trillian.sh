#!/usr/bin/env bash
# A real Trillian log on loopback, for Spoor's integration tests and
# benchmarks: PostgreSQL from the machine's packages, Trillian's schema from
# the module cache at go.mod's version, trillian_log_server and
# trillian_log_signer built with the Go toolchain at that version, and one
# PREORDERED_LOG tree made with createtree.
#
# Use it sourced (this is how .ci/run uses it):
#
#   source .ci/trillian.sh && trillian_start
#   go test ./ledger/trillianlog/
#   trillian_stop
#
# or run a command with it:   bash .ci/trillian.sh run go test ./ledger/trillianlog/
#
# trillian_start exports:
#   TRILLIAN_ADDR       the log server's gRPC address (host:port), also its admin API
#   TRILLIAN_TREE_ID    the PREORDERED_LOG tree it created
#   TRILLIAN_BIN_DIR    where trillian_log_server, trillian_log_signer and createtree are
#   TRILLIAN_PG_URI     the storage URI, for a second log server on the same database
#   TRILLIAN_WORK       the temporary folder with the database, sockets and logs
# and installs an EXIT trap that calls trillian_stop (which is idempotent).
#
# Knobs (environment): TRILLIAN_BIN_DIR (default: GOPATH/bin),
# TRILLIAN_SEQUENCER_INTERVAL (100ms), TRILLIAN_BATCH_SIZE (1000), PG_BIN (the
# newest /usr/lib/postgresql/*/bin), TRILLIAN_KEEP=1 keeps TRILLIAN_WORK.

_trillian_log() { echo "trillian: $*" >&2; }

# _trillian_free_port VAR sets VAR to a loopback TCP port that nobody
# listens on and that this shell has not handed out before (the servers bind
# later, so two calls must not pick the same one).
_trillian_free_port() {
  local p i lo=32768
  # Below the kernel's ephemeral range, so that no outgoing connection's
  # local port can be holding it.
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  for i in $(seq 1 200); do
    p=$((10000 + RANDOM % (lo - 10000)))
    case " ${_TRILLIAN_PORTS:-} " in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      _TRILLIAN_PORTS="${_TRILLIAN_PORTS:-} $p"
      printf -v "$1" '%s' "$p"
      return 0
    fi
  done
  _trillian_log "no free port found"
  return 1
}

# _trillian_wait_port PORT PID NAME waits until PORT accepts connections,
# failing early if PID dies.
_trillian_wait_port() {
  local port=$1 pid=$2 name=$3 i
  for i in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      _trillian_log "$name exited; its log:"
      tail -n 30 "$TRILLIAN_WORK/$name.log" >&2 || true
      return 1
    fi
    sleep 0.1
  done
  _trillian_log "$name did not listen on $port within 30s; its log:"
  tail -n 30 "$TRILLIAN_WORK/$name.log" >&2 || true
  return 1
}

# _trillian_as_pg runs a command as the postgres user when we are root
# (PostgreSQL refuses to run as root), as ourselves otherwise.
_trillian_as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

_trillian_pg_bin() {
  if [ -n "${PG_BIN:-}" ]; then
    echo "$PG_BIN"
    return 0
  fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$d" ]; then
    _trillian_log "PostgreSQL is not installed; installing it from the machine's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >/dev/null
    # The package starts a cluster of its own on a fresh machine; ours is separate.
    d=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  echo "$d"
}

# _trillian_binaries installs the three commands at go.mod's Trillian
# version into TRILLIAN_BIN_DIR, unless they are there at that version.
_trillian_binaries() {
  local version=$1 bin cmd ok=1
  for cmd in trillian_log_server trillian_log_signer createtree; do
    bin="$TRILLIAN_BIN_DIR/$cmd"
    if [ ! -x "$bin" ] || ! go version -m "$bin" 2>/dev/null | grep -q "mod[[:space:]]*github.com/google/trillian[[:space:]]*$version"; then
      ok=0
    fi
  done
  if [ "$ok" = 1 ]; then
    return 0
  fi
  _trillian_log "building Trillian $version commands into $TRILLIAN_BIN_DIR (1.3 minutes or more, cold)"
  mkdir -p "$TRILLIAN_BIN_DIR"
  # Outside the module, so that Trillian's own go.mod decides its dependencies.
  (cd "$TRILLIAN_WORK" && GOBIN="$TRILLIAN_BIN_DIR" GOFLAGS= go install \
    "github.com/google/trillian/cmd/trillian_log_server@$version" \
    "github.com/google/trillian/cmd/trillian_log_signer@$version" \
    "github.com/google/trillian/cmd/createtree@$version")
}

trillian_start() {
  local repo version moddir pgbin pgport rpc http srpc shttp
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  version=$(cd "$repo" && go list -m -f '{{.Version}}' github.com/google/trillian) || return 1
  (cd "$repo" && go mod download github.com/google/trillian) || return 1
  moddir=$(cd "$repo" && go list -m -f '{{.Dir}}' github.com/google/trillian) || return 1

  TRILLIAN_WORK=$(mktemp -d "${TMPDIR:-/tmp}/spoor-trillian.XXXXXX")
  export TRILLIAN_WORK
  chmod 755 "$TRILLIAN_WORK"
  export TRILLIAN_BIN_DIR="${TRILLIAN_BIN_DIR:-$(go env GOPATH)/bin}"
  _trillian_install_trap
  _trillian_binaries "$version" || return 1

  pgbin=$(_trillian_pg_bin) || return 1
  _trillian_free_port pgport || return 1
  mkdir -p "$TRILLIAN_WORK/pgdata" "$TRILLIAN_WORK/pgsock"
  chmod 700 "$TRILLIAN_WORK/pgdata"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$TRILLIAN_WORK/pgdata" "$TRILLIAN_WORK/pgsock"
    touch "$TRILLIAN_WORK/postgres.log"
    chown postgres: "$TRILLIAN_WORK/postgres.log"
  fi
  _trillian_as_pg "$pgbin/initdb" -D "$TRILLIAN_WORK/pgdata" -U postgres --auth=trust -E UTF8 >"$TRILLIAN_WORK/initdb.log" 2>&1 || {
    _trillian_log "initdb failed:"; cat "$TRILLIAN_WORK/initdb.log" >&2; return 1; }
  _trillian_as_pg "$pgbin/pg_ctl" -D "$TRILLIAN_WORK/pgdata" -l "$TRILLIAN_WORK/postgres.log" \
    -o "-p $pgport -k $TRILLIAN_WORK/pgsock -c listen_addresses=127.0.0.1" -w start >/dev/null || {
    _trillian_log "PostgreSQL did not start:"; tail -n 30 "$TRILLIAN_WORK/postgres.log" >&2; return 1; }
  echo "$pgbin" >"$TRILLIAN_WORK/pgbin"
  "$pgbin/createdb" -h 127.0.0.1 -p "$pgport" -U postgres trillian || return 1
  "$pgbin/psql" -h 127.0.0.1 -p "$pgport" -U postgres -d trillian -q -v ON_ERROR_STOP=1 \
    -f "$moddir/storage/postgresql/schema/storage.sql" >"$TRILLIAN_WORK/schema.log" 2>&1 || {
    _trillian_log "loading Trillian's schema failed:"; cat "$TRILLIAN_WORK/schema.log" >&2; return 1; }
  export TRILLIAN_PG_URI="postgresql:///trillian?host=127.0.0.1&port=$pgport&user=postgres"

  _trillian_free_port rpc && _trillian_free_port http || return 1
  "$TRILLIAN_BIN_DIR/trillian_log_server" --storage_system=postgresql --postgresql_uri="$TRILLIAN_PG_URI" \
    --quota_system=noop --rpc_endpoint="127.0.0.1:$rpc" --http_endpoint="127.0.0.1:$http" \
    >"$TRILLIAN_WORK/trillian_log_server.log" 2>&1 &
  echo $! >"$TRILLIAN_WORK/trillian_log_server.pid"
  disown $!
  _trillian_wait_port "$rpc" "$(cat "$TRILLIAN_WORK/trillian_log_server.pid")" trillian_log_server || return 1

  _trillian_free_port srpc && _trillian_free_port shttp || return 1
  "$TRILLIAN_BIN_DIR/trillian_log_signer" --storage_system=postgresql --postgresql_uri="$TRILLIAN_PG_URI" \
    --quota_system=noop --election_system=noop --force_master \
    --sequencer_interval="${TRILLIAN_SEQUENCER_INTERVAL:-100ms}" --batch_size="${TRILLIAN_BATCH_SIZE:-1000}" \
    --rpc_endpoint="127.0.0.1:$srpc" --http_endpoint="127.0.0.1:$shttp" \
    >"$TRILLIAN_WORK/trillian_log_signer.log" 2>&1 &
  echo $! >"$TRILLIAN_WORK/trillian_log_signer.pid"
  disown $!
  _trillian_wait_port "$srpc" "$(cat "$TRILLIAN_WORK/trillian_log_signer.pid")" trillian_log_signer || return 1

  export TRILLIAN_ADDR="127.0.0.1:$rpc"
  TRILLIAN_TREE_ID=$("$TRILLIAN_BIN_DIR/createtree" --admin_server="$TRILLIAN_ADDR" \
    --tree_type=PREORDERED_LOG --display_name=spoor-ci 2>"$TRILLIAN_WORK/createtree.log") || {
    _trillian_log "createtree failed:"; cat "$TRILLIAN_WORK/createtree.log" >&2; return 1; }
  export TRILLIAN_TREE_ID
  echo "TRILLIAN_ADDR=$TRILLIAN_ADDR"
  echo "TRILLIAN_TREE_ID=$TRILLIAN_TREE_ID"
  echo "TRILLIAN_BIN_DIR=$TRILLIAN_BIN_DIR"
  echo "TRILLIAN_PG_URI=$TRILLIAN_PG_URI"
  echo "TRILLIAN_WORK=$TRILLIAN_WORK"
}

# _trillian_install_trap adds trillian_stop to the shell's EXIT trap,
# keeping whatever trap was there.
_trillian_install_trap() {
  local old
  old=$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")
  case "$old" in
    *trillian_stop*) return 0 ;;
  esac
  if [ -n "$old" ]; then
    # shellcheck disable=SC2064
    trap "$old; trillian_stop" EXIT
  else
    trap trillian_stop EXIT
  fi
}

# trillian_stop stops the signer, the server and PostgreSQL started by
# trillian_start, by their recorded process ids, and removes TRILLIAN_WORK.
trillian_stop() {
  local w="${TRILLIAN_WORK:-}" name pid i
  if [ -z "$w" ] || [ ! -d "$w" ]; then
    return 0
  fi
  # SIGKILL: their state is all in PostgreSQL (stopped cleanly below), and
  # a graceful stop of each takes 5 to 10 seconds of built-in waiting.
  for name in trillian_log_signer trillian_log_server; do
    if [ -f "$w/$name.pid" ]; then
      pid=$(cat "$w/$name.pid")
      kill -9 "$pid" 2>/dev/null || true
      for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      rm -f "$w/$name.pid"
    fi
  done
  if [ -f "$w/pgbin" ] && [ -f "$w/pgdata/postmaster.pid" ]; then
    _trillian_as_pg "$(cat "$w/pgbin")/pg_ctl" -D "$w/pgdata" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [ "${TRILLIAN_KEEP:-}" = 1 ]; then
    _trillian_log "kept $w"
  else
    rm -rf "$w"
  fi
  unset TRILLIAN_WORK
  return 0
}

# Run directly: bash .ci/trillian.sh run CMD [ARGS...]
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    run)
      shift
      [ $# -gt 0 ] || { echo "usage: $0 run CMD [ARGS...]" >&2; exit 2; }
      trillian_start
      "$@"
      ;;
    *)
      echo "usage: source $0 && trillian_start ... trillian_stop" >&2
      echo "   or: $0 run CMD [ARGS...]" >&2
      exit 2
      ;;
  esac
fi
