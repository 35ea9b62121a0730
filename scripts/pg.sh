#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for development and tests.
#
# Usage: scripts/pg.sh start|stop|restart|status|url [DBNAME]|psql [psql args...]
#   start    initdb if needed, (re)write our settings, start the server, create database "nudge".
#            A no-op success when it is already running.
#   stop     fast shutdown; no error when it is not running.
#   restart  fast restart (starts it when it is not running).
#   status   exit 0 and say so when the server is up, exit 3 when it is not.
#   url      print the connection URL of database "nudge" (or of DBNAME when given), e.g.
#            postgresql://postgres@127.0.0.1:55433/nudge
#   psql     run psql against that URL with the remaining arguments.
#
# The server listens on 127.0.0.1 only (no Unix socket), trusts every local connection (user
# postgres, no password), and logs to <datadir>/server.log.
# As root, the data directory is owned by the "postgres" OS user and every server command runs
# as that user. If that user cannot reach the data directory's parent (e.g. the repository is
# under /root), the data directory falls back to /tmp/nudge-pgdata-<port>.
#
# Environment knobs:
#   NUDGE_PG_DIR        data directory (default <repo>/.pgdata)
#   NUDGE_PG_PORT       TCP port (default 55433)
#   NUDGE_PG_BIN        directory holding pg_ctl, initdb, psql (default: pg_config --bindir,
#                       else /usr/lib/postgresql/15/bin)
#   NUDGE_PG_DURABLE=0  start without fsync and synchronous commits (scripts/test.sh: a test
#                       cluster needs no durability); benchmarks and run.sh keep the default 1
#   NUDGE_DATABASE_URL  use this server instead: start/stop/restart do nothing, url prints it
#                       (with the database swapped when DBNAME is given), psql connects to it.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"

port="${NUDGE_PG_PORT:-55433}"
data_dir="${NUDGE_PG_DIR:-${repo_root}/.pgdata}"
if [[ "${data_dir}" != /* ]]; then
  data_dir="${repo_root}/${data_dir}"
fi
external_url="${NUDGE_DATABASE_URL:-}"

log() { echo "pg.sh: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# Hides passwords in URLs (user:secret@host) and key/value strings (password=secret).
mask_url() {
  sed -E -e 's#(://[^/@:]*):[^@/]*@#\1:***@#' -e 's#(password=)[^ &]*#\1***#g' <<<"$1"
}

# Prints URL with its database replaced by $2 (query string kept).
url_with_db() {
  local url="$1" db="$2" base query="" scheme_end rest host_part
  if [[ "${url}" != *://* ]]; then
    # key=value connection string: a later dbname wins.
    printf '%s dbname=%s\n' "${url}" "${db}"
    return
  fi
  base="${url%%\?*}"
  if [[ "${url}" == *\?* ]]; then
    query="?${url#*\?}"
  fi
  scheme_end="${base%%://*}://"
  rest="${base#*://}"
  host_part="${rest%%/*}"
  printf '%s%s/%s%s\n' "${scheme_end}" "${host_part}" "${db}" "${query}"
}

local_url() {
  printf 'postgresql://postgres@127.0.0.1:%s/%s\n' "${port}" "${1:-nudge}"
}

find_bindir() {
  local dir
  if [[ -n "${NUDGE_PG_BIN:-}" ]]; then
    printf '%s\n' "${NUDGE_PG_BIN}"
    return
  fi
  if command -v pg_config >/dev/null 2>&1; then
    dir="$(pg_config --bindir 2>/dev/null || true)"
    if [[ -n "${dir}" && -x "${dir}/pg_ctl" && -x "${dir}/initdb" ]]; then
      printf '%s\n' "${dir}"
      return
    fi
  fi
  printf '%s\n' /usr/lib/postgresql/15/bin
}

bindir="$(find_bindir)"
psql_bin="${bindir}/psql"
if [[ ! -x "${psql_bin}" ]]; then
  psql_bin="$(command -v psql || true)"
fi

# --- running server commands (as postgres when we are root) -----------------------------------

as_root=0
if ((EUID == 0)); then
  as_root=1
fi

# Runs a server-side command from /, as the postgres user when root, without the lock fd
# (pg_ctl's postmaster must not inherit it).
pgrun() {
  if ((as_root)); then
    (cd / && runuser -u postgres -- "$@") 9<&-
  else
    (cd / && "$@") 9<&-
  fi
}

# Applies the fallback rule: as root, the postgres user must be able to traverse the parent.
resolve_data_dir() {
  local parent
  if ((!as_root)); then
    return
  fi
  id -u postgres >/dev/null 2>&1 || die "the postgres OS user does not exist (run scripts/setup.sh)"
  parent="$(dirname "${data_dir}")"
  mkdir -p "${parent}"
  if ! (cd / && runuser -u postgres -- test -x "${parent}"); then
    local fallback="/tmp/nudge-pgdata-${port}"
    if [[ "${1:-}" == "noisy" ]]; then
      log "note: user postgres cannot reach ${parent}; using data dir ${fallback} instead"
    fi
    data_dir="${fallback}"
  fi
}

have_cluster() { [[ -f "${data_dir}/PG_VERSION" ]]; }

is_running() {
  have_cluster || return 1
  pgrun "${bindir}/pg_ctl" -D "${data_dir}" status >/dev/null 2>&1
}

# Serialises start/stop/restart for one port (concurrent run.sh/test.sh invocations).
take_lock() {
  local lock="/tmp/nudge-pg-${port}.lock"
  if [[ ! -e "${lock}" ]]; then
    (umask 000 && : >>"${lock}") 2>/dev/null || true
  fi
  if { exec 9<"${lock}"; } 2>/dev/null; then
    flock -w 180 9 || die "timed out waiting for ${lock}"
  fi
}

check_binaries() {
  local b
  for b in pg_ctl initdb postgres; do
    [[ -x "${bindir}/${b}" ]] || die "${bindir}/${b} not found (run scripts/setup.sh or set NUDGE_PG_BIN)"
  done
  [[ -n "${psql_bin}" ]] || die "psql not found (run scripts/setup.sh)"
}

write_settings() {
  local conf="${data_dir}/postgresql.conf" tmp durable=on
  if [[ "${NUDGE_PG_DURABLE:-1}" == 0 ]]; then durable=off; fi
  tmp="$(mktemp)"
  sed '/^# BEGIN nudge settings/,/^# END nudge settings/d' "${conf}" >"${tmp}"
  cat >>"${tmp}" <<EOF
# BEGIN nudge settings (written by scripts/pg.sh on every start; edits here are overwritten)
port = ${port}
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 300
shared_buffers = 256MB
fsync = ${durable}
synchronous_commit = ${durable}
full_page_writes = ${durable}
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
# END nudge settings
EOF
  cat "${tmp}" >"${conf}"
  rm -f "${tmp}"
}

init_cluster() {
  local locale_args=(--no-locale)
  if locale -a 2>/dev/null | grep -qix 'c\.utf-\?8'; then
    locale_args=(--locale=C.UTF-8)
  fi
  if [[ -e "${data_dir}" && -n "$(ls -A "${data_dir}" 2>/dev/null)" ]]; then
    die "${data_dir} exists, is not empty and holds no cluster; remove it or set NUDGE_PG_DIR"
  fi
  log "initialising a new cluster in ${data_dir}"
  mkdir -p "${data_dir}"
  prepare_dir
  pgrun "${bindir}/initdb" -D "${data_dir}" --auth=trust -U postgres --encoding=UTF8 \
    "${locale_args[@]}" >"/tmp/nudge-initdb-${port}.log" 2>&1 || {
    cat "/tmp/nudge-initdb-${port}.log" >&2
    die "initdb failed"
  }
  rm -f "/tmp/nudge-initdb-${port}.log"
}

prepare_dir() {
  if ((as_root)); then
    if [[ "$(stat -c %U "${data_dir}")" != postgres ]] ||
      find "${data_dir}" ! -user postgres -print -quit | grep -q .; then
      chown -R postgres:postgres "${data_dir}"
    fi
  fi
  chmod 700 "${data_dir}"
}

running_port() {
  sed -n '4p' "${data_dir}/postmaster.pid" 2>/dev/null || true
}

show_log_tail() {
  if [[ -f "${data_dir}/server.log" ]]; then
    log "last lines of ${data_dir}/server.log:"
    tail -n 20 "${data_dir}/server.log" >&2 || true
  fi
}

create_nudge_db() {
  local admin exists
  admin="$(local_url postgres)"
  exists="$("${psql_bin}" -X -q -t -A -v ON_ERROR_STOP=1 -d "${admin}" \
    -c "SELECT 1 FROM pg_database WHERE datname = 'nudge'")"
  if [[ "${exists}" != 1 ]]; then
    "${psql_bin}" -X -q -v ON_ERROR_STOP=1 -d "${admin}" -c 'CREATE DATABASE nudge' >/dev/null
    log "created database nudge"
  fi
}

do_start() {
  check_binaries
  take_lock
  if is_running; then
    local rp
    rp="$(running_port)"
    if [[ -n "${rp}" && "${rp}" != "${port}" ]]; then
      die "the cluster in ${data_dir} already runs on port ${rp}, not ${port}; run 'scripts/pg.sh stop' first"
    fi
    log "already running on 127.0.0.1:${port} (data dir ${data_dir})"
    create_nudge_db
    return 0
  fi
  if ! have_cluster; then
    init_cluster
  fi
  prepare_dir
  write_settings
  if ! pgrun "${bindir}/pg_ctl" -D "${data_dir}" -w -t 60 -l "${data_dir}/server.log" start >/dev/null; then
    show_log_tail
    die "could not start PostgreSQL on 127.0.0.1:${port} (is the port taken?)"
  fi
  log "started PostgreSQL on 127.0.0.1:${port} (data dir ${data_dir}, log ${data_dir}/server.log)"
  create_nudge_db
}

do_stop() {
  take_lock
  if ! is_running; then
    log "not running (data dir ${data_dir})"
    return 0
  fi
  pgrun "${bindir}/pg_ctl" -D "${data_dir}" -w -t 60 -m fast stop >/dev/null || {
    show_log_tail
    die "pg_ctl stop failed"
  }
  log "stopped PostgreSQL on 127.0.0.1:${port}"
}

do_restart() {
  if ! is_running; then
    do_start
    return
  fi
  check_binaries
  take_lock
  write_settings
  if ! pgrun "${bindir}/pg_ctl" -D "${data_dir}" -w -t 60 -m fast -l "${data_dir}/server.log" restart >/dev/null; then
    show_log_tail
    die "pg_ctl restart failed"
  fi
  log "restarted PostgreSQL on 127.0.0.1:${port}"
}

do_status() {
  if [[ -n "${external_url}" ]]; then
    if "${bindir}/pg_isready" -q -d "${external_url}" 2>/dev/null; then
      log "external server $(mask_url "${external_url}") is accepting connections"
      return 0
    fi
    log "external server $(mask_url "${external_url}") is not reachable"
    return 3
  fi
  if is_running; then
    log "running on 127.0.0.1:${port} (data dir ${data_dir}, log ${data_dir}/server.log)"
    return 0
  fi
  log "not running (data dir ${data_dir})"
  return 3
}

usage() {
  sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

cmd="${1:-}"
if [[ $# -gt 0 ]]; then
  shift
fi

case "${cmd}" in
start | stop | restart)
  if [[ -n "${external_url}" ]]; then
    log "NUDGE_DATABASE_URL is set ($(mask_url "${external_url}")); ignoring '${cmd}' (that server is not managed here)"
    exit 0
  fi
  resolve_data_dir noisy
  "do_${cmd}"
  ;;
status)
  resolve_data_dir noisy
  do_status
  ;;
url)
  db="${1:-}"
  if [[ -n "${external_url}" ]]; then
    if [[ -n "${db}" ]]; then
      url_with_db "${external_url}" "${db}"
    else
      printf '%s\n' "${external_url}"
    fi
  else
    local_url "${db:-nudge}"
  fi
  ;;
psql)
  [[ -n "${psql_bin}" ]] || die "psql not found (run scripts/setup.sh)"
  url="${external_url:-$(local_url nudge)}"
  exec "${psql_bin}" -d "${url}" "$@"
  ;;
-h | --help | help)
  usage
  ;;
*)
  usage
  ;;
esac
