#!/usr/bin/env bash
# Runs Nudge locally: installs missing packages (setup.sh), builds Release, starts the throwaway
# PostgreSQL cluster (pg.sh), applies migrations, then starts two workers and, when it has been
# built, the HTTP API. Waits in the foreground; Ctrl-C / SIGTERM stops everything it started
# (including the cluster, but only if this script started it). If any started process dies,
# the rest are stopped and the script exits non-zero.
#
# Usage: scripts/run.sh          build, start, wait
#        scripts/run.sh stop     stop what a detached run left behind (.run/*.pid, and the cluster
#                                if that run started it)
#
# Environment knobs:
#   NUDGE_BUILD_DIR      build directory (default build)
#   NUDGE_CONFIG         config file passed to the programs (default config/nudge.toml)
#   NUDGE_RUN_DETACH=1   start everything, print how to stop it, exit 0 leaving it running
#   NUDGE_API_PORT       only used to print the API URL (default 8080)
#   NUDGE_API_AUTH       the API's auth (default off here: it listens on 127.0.0.1, and nudge-api
#                        refuses "off" on any other address); token to try tokens locally
#   NUDGE_RUN_STOP_TIMEOUT  seconds to wait after SIGTERM before SIGKILL (default 30)
#   NUDGE_DATABASE_URL   use this server; no local cluster is started or stopped
#   NUDGE_PG_PORT, NUDGE_PG_DIR   passed on to scripts/pg.sh
#   NUDGE_EMAIL_SMTP_URL your SMTP relay; when unset, a local mail catcher (aiosmtpd on
#                        127.0.0.1:NUDGE_RUN_SMTP_PORT, default 2525) keeps every email the
#                        workers send in .run/mail/ (a Maildir) instead of sending it anywhere
#   NUDGE_WEBHOOK_ALLOW_PRIVATE  networks webhooks may reach although private (default
#                        127.0.0.0/8,::1/128, so receivers on this machine work; set it empty
#                        to try the SSRF guard as a production setup has it)
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"
cd "${repo_root}"

pg="${script_dir}/pg.sh"
run_dir="${repo_root}/.run"
build_dir="${NUDGE_BUILD_DIR:-build}"
config="${NUDGE_CONFIG:-config/nudge.toml}"
api_port="${NUDGE_API_PORT:-8080}"
detach="${NUDGE_RUN_DETACH:-0}"
pg_marker="${run_dir}/pg-started-by-run"
stop_timeout="${NUDGE_RUN_STOP_TIMEOUT:-30}"

log() { echo "run.sh: $*" >&2; }

mask_url() {
  sed -E -e 's#(://[^/@:]*):[^@/]*@#\1:***@#' -e 's#(password=)[^ &]*#\1***#g' <<<"$1"
}

# True while PID exists and is not a zombie.
alive() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ -n "${state}" && "${state}" != Z* ]]
}

# SIGTERMs the given PIDs, waits up to $stop_timeout s, then SIGKILLs what is left.
terminate() {
  local pid deadline left
  (($# > 0)) || return 0
  for pid in "$@"; do
    kill -TERM "${pid}" 2>/dev/null || true
  done
  deadline=$((SECONDS + stop_timeout))
  while :; do
    left=()
    for pid in "$@"; do
      if alive "${pid}"; then left+=("${pid}"); fi
    done
    ((${#left[@]} > 0)) || break
    if ((SECONDS >= deadline)); then
      log "still running after ${stop_timeout}s, sending SIGKILL: ${left[*]}"
      kill -KILL "${left[@]}" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
}

# Stops the local cluster; NUDGE_DATABASE_URL is removed so pg.sh does not ignore the request.
stop_cluster() {
  env -u NUDGE_DATABASE_URL "${pg}" stop || log "warning: could not stop the PostgreSQL cluster"
}

# `run.sh stop`: stop the processes recorded by a detached run.
stop_detached() {
  local f pid pids=() args
  shopt -s nullglob
  for f in "${run_dir}"/*.pid; do
    pid="$(<"${f}")"
    args="$(ps -o args= -p "${pid}" 2>/dev/null || true)"
    if [[ "${pid}" =~ ^[0-9]+$ && ("${args}" == *nudge-* || "${args}" == *aiosmtpd*) ]] && alive "${pid}"; then
      log "stopping $(basename "${f}" .pid) (pid ${pid})"
      pids+=("${pid}")
    fi
    rm -f "${f}"
  done
  shopt -u nullglob
  if ((${#pids[@]} == 0)); then
    log "no Nudge processes recorded in .run/ are running"
  fi
  terminate "${pids[@]}"
  if [[ -f "${pg_marker}" ]]; then
    rm -f "${pg_marker}"
    stop_cluster
  fi
}

if [[ "${1:-}" == stop ]]; then
  stop_detached
  exit 0
elif [[ $# -gt 0 ]]; then
  echo "usage: scripts/run.sh [stop]" >&2
  exit 2
fi

mkdir -p "${run_dir}"

# Refuse to start a second set next to a detached run that is still alive.
shopt -s nullglob
for f in "${run_dir}"/*.pid; do
  pid="$(<"${f}")"
  if [[ "${pid}" =~ ^[0-9]+$ ]] && alive "${pid}" &&
    [[ "$(ps -o args= -p "${pid}" 2>/dev/null || true)" == *nudge-* ]]; then
    log "error: $(basename "${f}" .pid) from an earlier run is still running (pid ${pid});" \
      "stop it with scripts/run.sh stop"
    exit 1
  fi
  rm -f "${f}"
done
shopt -u nullglob

"${script_dir}/setup.sh"

log "building (Release) in ${build_dir}"
# In a process group of its own, stopped with this script: a SIGTERM to it alone (kill PID)
# left cmake and ninja building; Ctrl-C reached them only because it signals the whole group.
setsid bash -c 'cmake -S . -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNUDGE_BUILD_TESTS=OFF \
  >/dev/null && cmake --build "$1" -j2' build "${build_dir}" &
build_group=$!
trap 'kill -TERM -- "-${build_group}" 2>/dev/null; exit 130' INT
trap 'kill -TERM -- "-${build_group}" 2>/dev/null; exit 143' TERM
wait "${build_group}"
trap - INT TERM

worker_bin="${build_dir}/bin/nudge-worker"
api_bin="${build_dir}/bin/nudge-api"
[[ -x "${worker_bin}" ]] || {
  log "error: ${worker_bin} was not built"
  exit 1
}
[[ -f "${config}" ]] || {
  log "error: config file ${config} not found (set NUDGE_CONFIG)"
  exit 1
}

# --- database ----------------------------------------------------------------------------------
started_pg=0
own_cluster=0
rm -f "${pg_marker}"
if [[ -z "${NUDGE_DATABASE_URL:-}" ]]; then
  own_cluster=1
  if ! "${pg}" status >/dev/null 2>&1; then
    started_pg=1
  fi
  "${pg}" start
  if ((started_pg)); then
    : >"${pg_marker}"
  fi
fi
NUDGE_DATABASE_URL="$("${pg}" url)"
export NUDGE_DATABASE_URL
# A local run delivers to receivers on this machine; the SSRF guard refuses loopback otherwise.
export NUDGE_WEBHOOK_ALLOW_PRIVATE="${NUDGE_WEBHOOK_ALLOW_PRIVATE-127.0.0.0/8,::1/128}"

# --- processes ---------------------------------------------------------------------------------
names=()
pids=()
logs=()
shutting_down=0

cleanup() {
  local rc="${1:-0}" i
  ((shutting_down)) && return 0
  shutting_down=1
  # Ignore further signals (a second Ctrl-C, or a supervisor repeating SIGTERM): dying halfway
  # through would orphan the programs and the cluster. terminate() escalates to SIGKILL itself.
  trap '' INT TERM
  if ((${#pids[@]} > 0)); then
    log "stopping ${names[*]}"
    terminate "${pids[@]}"
    wait "${pids[@]}" 2>/dev/null || true
  fi
  rm -f "${run_dir}"/worker-*.pid "${run_dir}/api.pid" "${run_dir}/mail.pid"
  if ((started_pg)); then
    rm -f "${pg_marker}"
    stop_cluster
  fi
  exit "${rc}"
}

# Until the processes are up, a failure or signal also stops what was started so far.
trap 'cleanup 130' INT
trap 'cleanup 143' TERM
trap 'rc=$?; if ((rc != 0 && !shutting_down)); then cleanup "${rc}"; fi' EXIT

log "migrating $(mask_url "${NUDGE_DATABASE_URL}")"
"${worker_bin}" --config "${config}" --migrate-only
if ((own_cluster)); then
  # Nudge lives in schema nudge. In this throwaway database, plain names (status_flags,
  # reminders) find it, as they would for an application that adds nudge to its search_path.
  "${pg}" psql -X -q -v ON_ERROR_STOP=1 \
    -c 'ALTER DATABASE nudge SET search_path = "$user", public, nudge' >/dev/null
fi

# Starts "$@" in its own session (so a terminal Ctrl-C reaches only this script, which then
# stops the programs in order) with output appended to .run/NAME.log (a restart keeps what the
# last run wrote: the log channel's lines are a record of fires).
launch() {
  local name="$1"
  shift
  local logfile="${run_dir}/${name}.log"
  setsid "$@" </dev/null >>"${logfile}" 2>&1 &
  local pid=$!
  echo "${pid}" >"${run_dir}/${name}.pid"
  names+=("${name}")
  pids+=("${pid}")
  logs+=("${logfile}")
}

mail_catcher=0
if [[ -z "${NUDGE_EMAIL_SMTP_URL:-}" ]]; then
  smtp_port="${NUDGE_RUN_SMTP_PORT:-2525}"
  # A Maildir: aiosmtpd writes into tmp/ and moves each message to new/.
  mkdir -p "${run_dir}/mail/cur" "${run_dir}/mail/new" "${run_dir}/mail/tmp"
  # Debian's python3 (setup.sh installs python3-aiosmtpd for it), not one earlier on PATH.
  launch mail /usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:${smtp_port}" \
    -c aiosmtpd.handlers.Mailbox "${run_dir}/mail"
  export NUDGE_EMAIL_SMTP_URL="smtp://127.0.0.1:${smtp_port}"
  mail_catcher=1
fi
launch worker-1 "${worker_bin}" --config "${config}"
launch worker-2 "${worker_bin}" --config "${config}"
api_started=0
if [[ -x "${api_bin}" ]]; then
  # As before tokens: open, on loopback only (nudge-api refuses to start otherwise).
  NUDGE_API_AUTH="${NUDGE_API_AUTH:-off}" launch api "${api_bin}" --config "${config}"
  api_started=1
fi

# Give the programs a moment so that an immediate failure (bad config, port taken) shows here.
sleep 1
for i in "${!pids[@]}"; do
  if ! alive "${pids[i]}"; then
    log "error: ${names[i]} (pid ${pids[i]}) exited at once; last lines of ${logs[i]}:"
    tail -n 20 "${logs[i]}" >&2 || true
    cleanup 1
  fi
done

echo
echo "Nudge is running:"
for i in "${!names[@]}"; do
  printf '  %-9s pid %-8s log %s\n' "${names[i]}" "${pids[i]}" "${logs[i]#"${repo_root}/"}"
done
echo "  database  $(mask_url "${NUDGE_DATABASE_URL}")"
if ((api_started)); then
  echo "  API       http://127.0.0.1:${api_port}"
  echo "  dashboard http://127.0.0.1:${api_port}/   (API docs: /docs)"
fi
if ((mail_catcher)); then
  echo "  email     ${NUDGE_EMAIL_SMTP_URL}: a local catcher; messages land in .run/mail/new/"
fi
echo "SQL prompt: scripts/pg.sh psql   (e.g. scripts/pg.sh psql -c '\\dt')"

if [[ "${detach}" == 1 ]]; then
  trap - INT TERM EXIT
  echo "Detached. Stop everything with: scripts/run.sh stop"
  exit 0
fi
echo "Press Ctrl-C to stop."

trap 'cleanup 0' INT TERM
while :; do
  died=""
  status=0
  wait -n -p died "${pids[@]}" || status=$?
  if ((shutting_down)); then
    break
  fi
  if [[ -n "${died}" ]]; then
    for i in "${!pids[@]}"; do
      if [[ "${pids[i]}" == "${died}" ]]; then
        log "error: ${names[i]} (pid ${died}) exited with status ${status}; last lines of ${logs[i]}:"
        tail -n 20 "${logs[i]}" >&2 || true
        rm -f "${run_dir}/${names[i]}.pid"
        # Already reaped: never signal that PID again.
        unset 'pids[i]' 'names[i]' 'logs[i]'
      fi
    done
    pids=("${pids[@]}")
    names=("${names[@]}")
    logs=("${logs[@]}")
    cleanup 1
  fi
done
