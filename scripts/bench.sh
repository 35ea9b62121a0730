#!/usr/bin/env bash
# Benchmarks Nudge and prints one JSON line per figure (per run, then the median of the runs).
# Not a test: the machine is shared and noisy, so quote medians and compare ratios.
#
#   drain     100,000 one_time reminders due now (inserted before the workers start), drained
#             by 1 and by 2 workers: fires per second until every one has its execution.
#   lateness  2,000 one_time reminders spread over the next 20 s on an otherwise idle system,
#             2 workers: p50/p95/p99/max of (delivery time - scheduled time) in ms, taken from
#             the log channel's lines (same machine clock on both sides).
#   scale     the 2-worker drain again with 1,000,000 future ACTIVE reminders in the table.
#   rss       the workers' peak resident memory (VmHWM) during the drain.
#   api       nudge-api creates: 16 keep-alive clients (wrk, 10 s) on an empty table and on one
#             holding 1,000,000 reminders: creates/s, p50/p99 latency; batch creates (1,000 per
#             request, 4 clients): reminders/s; the API's peak RSS.
#   events    POST /v1/events answered by two rules (a reminder from a template and a flag): 16
#             keep-alive clients (wrk, 10 s), events/s and p50/p99 latency; and batches of 1,000
#             events (4 clients): events/s. Run it beside api: the targets are ratios to creates.
#   flags     what stops reminders: PUT /v1/flags/{key} with a new key each time, 16 keep-alive
#             clients (wrk, 10 s): flags/s and p50/p99 latency; then from one SQL session, as an
#             application writes them, 20 statements each inserting 1,000 new flags (INSERT ...
#             ON CONFLICT DO UPDATE) and 20 each updating 1,000 of them: flags/s of each.
#   cron      next-fire computations per second (nudge.cron_next after nudge.cron_parse) over a mix
#             of expressions and zones, 20,000 per run; and the 2-worker drain with every reminder
#             on a cron schedule (each fire computes its next occurrence).
#   connections  1,000 keep-alive clients connect at once (tests/bench/connection_load.cpp); each
#             sends GET /health as soon as it is connected, then stays connected and idle:
#             p50/p99/max of the time to the first answer (from the connect), the time one more
#             client waits with all of them open, and the API's RSS with them open.
#   webhook   the 2-worker drain with every reminder on the webhook channel, delivered to a fast
#             local receiver (tests/bench/webhook_sink.cpp, signed requests), once with every
#             delivery accepted and once with 10% of them failing their first attempt (retried
#             after a 100 ms backoff): fires per second, and the requests the receiver saw
#             against the number it should have seen (reminders + failed first attempts).
#   email     one worker (one claim loop) sending email reminders due now to a local relay
#             (tests/bench/smtp_sink.py, aiosmtpd): 2,000 to a relay that accepts each message at
#             once (emails/s), and 40 to one that accepts each only 2 s after its data (seconds
#             until all are recorded, and how many were delivered: a loop that waited for one
#             relay reply at a time would take 80 s and fail most on their timeouts); the relay's
#             count of messages and of distinct Message-IDs (a resent message shows).
#   words     the parser of schedules in words (POST /v1/schedules/parse without its database
#             round trip), in-process over the test tables' phrases (tests/bench/words_bench.cpp):
#             p50/p99/max microseconds per parse; then the whole route over HTTP, its database
#             round trip included (one keep-alive client, wrk, 10 s, phrases of scripts/wrk/
#             parse.lua): requests/s and p50/p99 latency.
#   stream    the live stream (tests/bench/stream_reader.cpp): the 2-worker drain with nudge-api
#             up and no stream open, then with 10 streams open, one of them timing each fired
#             message from its fire (execution fired_at) to its arrival: fires per second of
#             both, and the latency p50/p99/max; the CPU seconds each drain cost the machine,
#             nudge-api and the readers; then the API's RSS with 100 idle streams open.
#
# Usage: scripts/bench.sh [drain|lateness|scale|api|events|flags|connections|cron|webhook|email|words|stream ...]
#        (default: all)
# Environment knobs:
#   BENCH_REPS        runs per figure (default 3)
#   BENCH_DRAIN_N     reminders per drain (default 100000)
#   BENCH_SCALE_N     future reminders for the scale figure (default 1000000)
#   BENCH_CONNECTIONS clients of the connections figure (default 1000)
#   NUDGE_BUILD_DIR   build directory (default build)
#   NUDGE_BENCH_AUTH  token (default): the api and events figures run nudge-api with auth on,
#                     with a read,write token made by `nudge-api token create` and sent by
#                     every wrk request (its rate limit set too high to refuse any, so the
#                     bucket is still taken); off: without auth, for comparison
#   BENCH_STREAM_CPUS DRAIN:STREAM (e.g. 0:1) runs the stream figure's drain side (the PostgreSQL
#                     server, the workers, this script) on the CPUs DRAIN and its stream side
#                     (nudge-api, its change reader's backend, the bench's readers) on STREAM, in
#                     both drains, so a machine shows what the stream costs the drain when it does
#                     not take the drain's CPUs, as an API host and remote clients would not; needs
#                     the right to set the server's affinity (root, or the server's user)
#   NUDGE_DATABASE_URL  use this server instead of the throwaway cluster (databases
#                     nudge_bench* are created and dropped on it)
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"
cd "${repo_root}"

reps="${BENCH_REPS:-3}"
drain_n="${BENCH_DRAIN_N:-100000}"
scale_n="${BENCH_SCALE_N:-1000000}"
connections_n="${BENCH_CONNECTIONS:-1000}"
build_dir="${NUDGE_BUILD_DIR:-build}"
stream_cpus="${BENCH_STREAM_CPUS:-}"
worker="${build_dir}/bin/nudge-worker"
figures=("$@")
((${#figures[@]} > 0)) || figures=(drain lateness scale api events flags connections cron webhook email words stream)
api_bin="${build_dir}/bin/nudge-api"
api_port="${BENCH_API_PORT:-18089}"
bench_auth="${NUDGE_BENCH_AUTH:-token}"

log() { echo "bench.sh: $*" >&2; }

bash "${script_dir}/setup.sh" >&2
if [[ ! -x "${worker}" ]] || [[ ! -x "${build_dir}/bin/nudge-api" ]] ||
  [[ -n "$(find worker api common sql -newer "${worker}" -type f | head -1)" ]]; then
  cmake -S . -B "${build_dir}" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
  cmake --build "${build_dir}" -j2 --target nudge-worker nudge-api >&2
fi
sink_bin="${build_dir}/bin/nudge-webhook-sink"
sink_port="${BENCH_SINK_PORT:-18090}"
smtp_port="${BENCH_SMTP_PORT:-18092}"
if [[ " ${figures[*]} " == *" webhook "* ]] && [[ ! -x "${sink_bin}" ]]; then
  cmake -S . -B "${build_dir}" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
  cmake --build "${build_dir}" -j2 --target nudge-webhook-sink >&2
fi
sink_pid=
reader_bin="${build_dir}/bin/nudge-stream-reader"
if [[ " ${figures[*]} " == *" stream "* ]] && [[ ! -x "${reader_bin}" ]]; then
  cmake -S . -B "${build_dir}" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
  cmake --build "${build_dir}" -j2 --target nudge-stream-reader >&2
fi
load_bin="${build_dir}/bin/nudge-connection-load"
if [[ " ${figures[*]} " == *" connections "* ]] && [[ ! -x "${load_bin}" ]]; then
  cmake -S . -B "${build_dir}" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
  cmake --build "${build_dir}" -j2 --target nudge-connection-load >&2
fi
words_bin="${build_dir}/bin/nudge-words-bench"
if [[ " ${figures[*]} " == *" words "* ]] && [[ ! -x "${words_bin}" ]]; then
  cmake -S . -B "${build_dir}" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
  cmake --build "${build_dir}" -j2 --target nudge-words-bench >&2
fi

started_pg=0
if [[ -z "${NUDGE_DATABASE_URL:-}" ]]; then
  if ! bash "${script_dir}/pg.sh" status >/dev/null 2>&1; then started_pg=1; fi
  bash "${script_dir}/pg.sh" start >&2
fi
admin_url="$(bash "${script_dir}/pg.sh" url postgres)"
bench_url="$(bash "${script_dir}/pg.sh" url nudge_bench)"
template_url="$(bash "${script_dir}/pg.sh" url nudge_bench_template)"

tmp="$(mktemp -d)"
worker_pids=()
cleanup() {
  for pid in "${worker_pids[@]}" ${sink_pid} ${api_pid:-}; do kill -TERM "${pid}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -q "${admin_url}" -c "DROP DATABASE IF EXISTS nudge_bench WITH (FORCE)" >/dev/null 2>&1 || true
  psql -q "${admin_url}" -c "DROP DATABASE IF EXISTS nudge_bench_template WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "${tmp}"
  if [[ -n "${stream_cpus}" ]]; then pin_server "0-$(($(nproc --all) - 1))" || true; fi
  if ((started_pg)); then bash "${script_dir}/pg.sh" stop >&2 || true; fi
}
trap cleanup EXIT

sql() { psql -qtAX -v ON_ERROR_STOP=1 "${bench_url}" -c "$1"; }

# A migrated template once; each run gets a fresh copy.
psql -q "${admin_url}" -c "DROP DATABASE IF EXISTS nudge_bench_template WITH (FORCE)" >/dev/null
psql -q "${admin_url}" -c "CREATE DATABASE nudge_bench_template" >/dev/null
NUDGE_DATABASE_URL="${template_url}" "${worker}" --migrate-only 2>/dev/null

fresh_db() {
  psql -q "${admin_url}" -c "DROP DATABASE IF EXISTS nudge_bench WITH (FORCE)" >/dev/null
  psql -q "${admin_url}" -c "CREATE DATABASE nudge_bench TEMPLATE nudge_bench_template" >/dev/null
}

# start_workers N OUTPREFIX: N workers against nudge_bench, stdout to OUTPREFIX.N
start_workers() {
  local n="$1" out="$2" i
  worker_pids=()
  for ((i = 1; i <= n; i++)); do
    NUDGE_DATABASE_URL="${bench_url}" NUDGE_LOG_LEVEL=warn "${worker}" >"${out}.${i}" 2>"${out}.${i}.err" &
    worker_pids+=("$!")
  done
}

# Peak RSS in KiB of the running workers (the largest).
peak_rss_kib() {
  local pid max=0 v
  for pid in "${worker_pids[@]}"; do
    v="$(awk '/^VmHWM:/ {print $2}' "/proc/${pid}/status" 2>/dev/null || echo 0)"
    ((v > max)) && max="${v}"
  done
  echo "${max}"
}

stop_workers() {
  local pid
  for pid in "${worker_pids[@]}"; do kill -TERM "${pid}" 2>/dev/null || true; done
  for pid in "${worker_pids[@]}"; do wait "${pid}" 2>/dev/null || true; done
  worker_pids=()
}

wait_for_executions() {
  local want="$1" deadline=$((SECONDS + 600))
  while (($(sql "SELECT count(*) FROM nudge.executions") < want)); do
    ((SECONDS < deadline)) || { log "timed out waiting for ${want} executions"; return 1; }
    sleep 0.05
  done
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# insert_due N [one_time|cron|webhook]: N reminders due now; cron ones fire every minute in
# Berlin, so each fire also computes its next occurrence; webhook ones go to the local sink.
insert_due() {
  if [[ "${2:-one_time}" == webhook ]]; then
    sql "INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, target, payload,
                                    schedule_type, next_run_at)
         SELECT 'bench', g::text, 'drain', 'webhook', 'http://127.0.0.1:${sink_port}/hook',
                '{\"candidate\": \"C-7\"}', 'one_time', now()
           FROM generate_series(1, $1) g"
  elif [[ "${2:-one_time}" == cron ]]; then
    sql "INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type,
                                    next_run_at, cron, timezone, cron_schedule)
         SELECT 'bench', g::text, 'drain', 'log', 'cron', now(), '* * * * *', 'Europe/Berlin',
                nudge.cron_parse('* * * * *')
           FROM generate_series(1, $1) g"
  else
    sql "INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type, next_run_at)
         SELECT 'bench', g::text, 'drain', 'log', 'one_time', now() FROM generate_series(1, $1) g"
  fi
}

insert_future() {
  sql "INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type, next_run_at)
       SELECT 'future', g::text, 'later', 'log', 'one_time', now() + interval '1 day' + g * interval '1 second'
         FROM generate_series(1, $1) g"
}

# drain_once WORKERS FUTURE_ROWS → prints "rate rate_from_first_fire rss_kib wal_bytes_per_fire"
# rate counts from just before the workers start (process start-up included);
# rate_from_first_fire from the first recorded fire, like the peers' jobs_per_s_from_first_job;
# wal_bytes_per_fire is the WAL the drain wrote (the cluster's, so it assumes nothing else writes).
drain_once() {
  local workers="$1" future="$2" kind="${3:-one_time}" start first end rate rate_ff rss lsn wal
  fresh_db
  ((future > 0)) && insert_future "${future}"
  insert_due "${drain_n}" "${kind}"
  sql "VACUUM ANALYZE nudge.reminders" >/dev/null
  # Measure the drain, not the aftermath of loading it: flush the inserts' dirty pages first.
  sql "CHECKPOINT" >/dev/null
  read -r start lsn < <(sql "SELECT extract(epoch FROM clock_timestamp()), pg_current_wal_lsn()" | tr '|' ' ')
  start_workers "${workers}" "${tmp}/drain"
  wait_for_executions "${drain_n}"
  wal="$(sql "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '${lsn}') / ${drain_n})")"
  rss="$(peak_rss_kib)"
  stop_workers
  # The first round only (all due at the insert's time): a cron drain that crosses a minute
  # boundary fires its reminders again.
  read -r first end < <(sql "SELECT extract(epoch FROM min(fired_at)), extract(epoch FROM max(fired_at))
                               FROM nudge.executions WHERE scheduled_for = (SELECT min(scheduled_for) FROM nudge.executions)" | tr '|' ' ')
  rate="$(awk -v n="${drain_n}" -v s="${start}" -v e="${end}" 'BEGIN {printf "%.0f", n / (e - s)}')"
  rate_ff="$(awk -v n="${drain_n}" -v s="${first}" -v e="${end}" 'BEGIN {printf "%.0f", n / (e - s)}')"
  echo "${rate} ${rate_ff} ${rss} ${wal}"
}

bench_drain() {
  local label="$1" workers="$2" future="$3" kind="${4:-one_time}" r rates=() rates_ff=() rsses=()
  local rate rate_ff rss wal wals=()
  for ((r = 1; r <= reps; r++)); do
    read -r rate rate_ff rss wal < <(drain_once "${workers}" "${future}" "${kind}")
    wals+=("${wal}")
    rates+=("${rate}")
    rates_ff+=("${rate_ff}")
    rsses+=("${rss}")
    echo "{\"bench\":\"${label}\",\"workers\":${workers},\"reminders\":${drain_n},\"future_rows\":${future},\"run\":${r},\"fires_per_s\":${rate},\"fires_per_s_from_first_fire\":${rate_ff},\"worker_peak_rss_kib\":${rss},\"wal_bytes_per_fire\":${wal}}"
  done
  echo "{\"bench\":\"${label}\",\"workers\":${workers},\"reminders\":${drain_n},\"future_rows\":${future},\"runs\":${reps},\"median_fires_per_s\":$(printf '%s\n' "${rates[@]}" | median),\"median_fires_per_s_from_first_fire\":$(printf '%s\n' "${rates_ff[@]}" | median),\"median_worker_peak_rss_kib\":$(printf '%s\n' "${rsses[@]}" | median),\"median_wal_bytes_per_fire\":$(printf '%s\n' "${wals[@]}" | median)}"
}

lateness_once() {
  local n=2000
  fresh_db
  start_workers 2 "${tmp}/late"
  sleep 1  # let both workers reach their idle wait: the figure is about an idle system
  sql "INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, schedule_type, next_run_at)
       SELECT 'late', g::text, 'spread', 'log', 'one_time',
              now() + interval '1 second' + (g * 20.0 / ${n}) * interval '1 second'
         FROM generate_series(1, ${n}) g"
  wait_for_executions "${n}"
  stop_workers
  # delivery time (worker clock) minus scheduled time, from the log lines
  cat "${tmp}"/late.[0-9] | python3 -c '
import json, sys
from datetime import datetime
def t(s): return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
lat = sorted((t(d["fired_at"]) - t(d["scheduled_for"])) * 1000 for d in map(json.loads, sys.stdin))
def p(q): return lat[min(len(lat) - 1, int(q * len(lat)))]
print("%.2f %.2f %.2f %.2f %d" % (p(0.50), p(0.95), p(0.99), lat[-1], len(lat)))'
}

bench_lateness() {
  local r out p50s=() p95s=() p99s=() maxs=()
  for ((r = 1; r <= reps; r++)); do
    read -r p50 p95 p99 max n <<<"$(lateness_once)"
    p50s+=("${p50}"); p95s+=("${p95}"); p99s+=("${p99}"); maxs+=("${max}")
    echo "{\"bench\":\"lateness\",\"workers\":2,\"reminders\":${n},\"run\":${r},\"p50_ms\":${p50},\"p95_ms\":${p95},\"p99_ms\":${p99},\"max_ms\":${max}}"
  done
  echo "{\"bench\":\"lateness\",\"workers\":2,\"runs\":${reps},\"median_p50_ms\":$(printf '%s\n' "${p50s[@]}" | median),\"median_p95_ms\":$(printf '%s\n' "${p95s[@]}" | median),\"median_p99_ms\":$(printf '%s\n' "${p99s[@]}" | median),\"median_max_ms\":$(printf '%s\n' "${maxs[@]}" | median)}"
}

# wrk_run LUA CONNECTIONS SECONDS → prints "requests_per_s p50_ms p99_ms non_2xx" (requests/s to
# two decimals: a batch figure is 1,000 times it)
wrk_run() {
  wrk -t "$(($2 < 2 ? $2 : 2))" -c "$2" -d "$3s" --latency -s "${script_dir}/wrk/$1" "http://127.0.0.1:${api_port}" |
    awk '
      function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
      /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
      /^Requests\/sec:/ { rps = $2 } /Non-2xx/ { bad = $NF }
      END { printf "%.2f %.2f %.2f %d\n", rps, p50, p99, bad + 0 }'
}

# start_api: nudge-api on the bench database, in the background (its pid in api_pid), once it
# answers /health.
# With auth on, a token is made in the fresh database first, and wrk sends it (NUDGE_BENCH_TOKEN,
# read by scripts/wrk/*.lua).
start_api() {
  unset NUDGE_BENCH_TOKEN
  if [[ "${bench_auth}" == token ]]; then
    NUDGE_BENCH_TOKEN="$(NUDGE_DATABASE_URL="${bench_url}" "${api_bin}" token create --name bench \
      --scopes read,write)"
    export NUDGE_BENCH_TOKEN
  fi
  NUDGE_DATABASE_URL="${bench_url}" NUDGE_API_PORT="${api_port}" NUDGE_LOG_LEVEL=warn \
    NUDGE_API_AUTH="${bench_auth}" NUDGE_API_RATE_PER_TOKEN=1000000 NUDGE_API_BURST=1000000 \
    NUDGE_API_MAX_STREAMS_PER_TOKEN=1000 "${api_bin}" 2>"${tmp}/api.err" &
  api_pid=$!
  for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:${api_port}/health" >/dev/null && break; sleep 0.05; done
}

# api_once FUTURE_ROWS → prints "creates_per_s p50 p99 non2xx batch_reminders_per_s rss_kib"
api_once() {
  local future="$1" pid single batch rss
  fresh_db
  ((future > 0)) && insert_future "${future}" && sql "VACUUM ANALYZE nudge.reminders" >/dev/null
  sql "CHECKPOINT" >/dev/null
  start_api
  pid="${api_pid}"
  single="$(wrk_run create.lua 16 10)"
  batch="$(wrk_run batch.lua 4 10)"
  rss="$(awk '/^VmHWM:/ {print $2}' "/proc/${pid}/status")"
  kill -TERM "${pid}"; wait "${pid}" || true
  read -r brps _ _ bbad <<<"${batch}"
  ((bbad == 0)) || log "warning: ${bbad} batch requests failed"
  echo "${single} $(awk -v r="${brps}" 'BEGIN {printf "%.0f", r * 1000}') ${rss}"
}

# The two rules every benchmark event runs: nag the interviewer (a reminder rendered from a
# template, first fire in an hour) and set a flag.
add_event_rules() {
  sql "SELECT nudge.create_rule('nag', 'interview_completed', '{\"type\": \"remind\", \"reminder\": {
         \"event_type\": \"feedback_form\", \"channel\": \"email\", \"schedule_type\": \"recurring\",
         \"interval_seconds\": 86400, \"delay_seconds\": 3600, \"target\": \"{{data.email}}\",
         \"stop_condition_type\": \"db_check\", \"stop_condition_value\": \"feedback_submitted:{{entity_id}}\",
         \"payload\": {\"candidate\": \"{{data.candidate}}\"}}}')" >/dev/null
  sql "SELECT nudge.create_rule('seen', 'interview_completed', '{\"type\": \"set_flag\",
         \"flag\": {\"key\": \"interviewed:{{entity_id}}\", \"value\": true}}')" >/dev/null
}

events_once() {
  local pid single batch rps p50 p99 bad brps bbad
  fresh_db
  add_event_rules
  sql "CHECKPOINT" >/dev/null
  start_api
  pid="${api_pid}"
  single="$(wrk_run event.lua 16 10)"
  batch="$(wrk_run event_batch.lua 4 10)"
  kill -TERM "${pid}"; wait "${pid}" || true
  read -r rps p50 p99 bad <<<"${single}"
  read -r brps _ _ bbad <<<"${batch}"
  ((bad == 0 && bbad == 0)) || log "warning: ${bad} single and ${bbad} batch requests failed"
  echo "${rps} ${p50} ${p99} $(awk -v r="${brps}" 'BEGIN {printf "%.0f", r * 1000}')"
}

bench_events() {
  local r rates=() p50s=() p99s=() batches=() rate p50 p99 batch
  for ((r = 1; r <= reps; r++)); do
    read -r rate p50 p99 batch <<<"$(events_once)"
    rates+=("${rate}"); p50s+=("${p50}"); p99s+=("${p99}"); batches+=("${batch}")
    echo "{\"bench\":\"events\",\"clients\":16,\"rules\":2,\"run\":${r},\"events_per_s\":${rate},\"p50_ms\":${p50},\"p99_ms\":${p99},\"batch_events_per_s\":${batch}}"
  done
  echo "{\"bench\":\"events\",\"clients\":16,\"rules\":2,\"runs\":${reps},\"median_events_per_s\":$(printf '%s\n' "${rates[@]}" | median),\"median_p50_ms\":$(printf '%s\n' "${p50s[@]}" | median),\"median_p99_ms\":$(printf '%s\n' "${p99s[@]}" | median),\"median_batch_events_per_s\":$(printf '%s\n' "${batches[@]}" | median)}"
}

# flags_sql_once → prints "inserted_flags_per_s updated_flags_per_s": 20 statements of 1,000
# flags each way, in one session, each statement its own transaction.
flags_sql_once() {
  psql -qtAX -F ' ' -v ON_ERROR_STOP=1 "${bench_url}" <<'SQL'
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
SELECT format('INSERT INTO nudge.status_flags (key, value) SELECT %L || g, true FROM generate_series(1, 1000) g ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value', 'bulk:' || b || ':')
  FROM generate_series(1, 20) b \gexec
SELECT round(20000 / (extract(epoch FROM clock_timestamp()) - :t0)) AS inserted,
       extract(epoch FROM clock_timestamp()) AS t1 \gset
SELECT format('UPDATE nudge.status_flags SET value = false WHERE key = ANY (ARRAY(SELECT %L || g FROM generate_series(1, 1000) g))', 'bulk:' || b || ':')
  FROM generate_series(1, 20) b \gexec
SELECT :inserted, round(20000 / (extract(epoch FROM clock_timestamp()) - :t1));
SQL
}

bench_flags() {
  local r rates=() p50s=() p99s=() ins=() ups=() rps p50 p99 bad i u
  for ((r = 1; r <= reps; r++)); do
    fresh_db
    sql "CHECKPOINT" >/dev/null
    start_api
    read -r rps p50 p99 bad <<<"$(wrk_run flag.lua 16 10)"
    kill -TERM "${api_pid}"; wait "${api_pid}" || true
    ((bad == 0)) || log "warning: ${bad} flag requests failed"
    read -r i u <<<"$(flags_sql_once)"
    rates+=("${rps}"); p50s+=("${p50}"); p99s+=("${p99}"); ins+=("${i}"); ups+=("${u}")
    echo "{\"bench\":\"flags\",\"clients\":16,\"run\":${r},\"flags_per_s\":${rps},\"p50_ms\":${p50},\"p99_ms\":${p99},\"sql_inserted_flags_per_s\":${i},\"sql_updated_flags_per_s\":${u}}"
  done
  echo "{\"bench\":\"flags\",\"clients\":16,\"runs\":${reps},\"median_flags_per_s\":$(printf '%s\n' "${rates[@]}" | median),\"median_p50_ms\":$(printf '%s\n' "${p50s[@]}" | median),\"median_p99_ms\":$(printf '%s\n' "${p99s[@]}" | median),\"median_sql_inserted_flags_per_s\":$(printf '%s\n' "${ins[@]}" | median),\"median_sql_updated_flags_per_s\":$(printf '%s\n' "${ups[@]}" | median)}"
}

bench_api() {
  local label="$1" future="$2" r rates=() p50s=() p99s=() batches=() rsses=() rate p50 p99 bad batch rss
  for ((r = 1; r <= reps; r++)); do
    read -r rate p50 p99 bad batch rss <<<"$(api_once "${future}")"
    rates+=("${rate}"); p50s+=("${p50}"); p99s+=("${p99}"); batches+=("${batch}"); rsses+=("${rss}")
    echo "{\"bench\":\"${label}\",\"clients\":16,\"rows_before\":${future},\"run\":${r},\"creates_per_s\":${rate},\"p50_ms\":${p50},\"p99_ms\":${p99},\"failed_requests\":${bad},\"batch_reminders_per_s\":${batch},\"api_peak_rss_kib\":${rss}}"
  done
  echo "{\"bench\":\"${label}\",\"clients\":16,\"rows_before\":${future},\"runs\":${reps},\"median_creates_per_s\":$(printf '%s\n' "${rates[@]}" | median),\"median_p50_ms\":$(printf '%s\n' "${p50s[@]}" | median),\"median_p99_ms\":$(printf '%s\n' "${p99s[@]}" | median),\"median_batch_reminders_per_s\":$(printf '%s\n' "${batches[@]}" | median),\"median_api_peak_rss_kib\":$(printf '%s\n' "${rsses[@]}" | median)}"
}

# connections_once → prints the load client's JSON object (see tests/bench/connection_load.cpp)
connections_once() {
  local pid out
  fresh_db
  NUDGE_DATABASE_URL="${bench_url}" NUDGE_API_PORT="${api_port}" NUDGE_LOG_LEVEL=warn \
    "${api_bin}" 2>"${tmp}/api.err" &
  pid=$!
  for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:${api_port}/health" >/dev/null && break; sleep 0.05; done
  out="$("${load_bin}" "${api_port}" "${connections_n}" --pid "${pid}")" || log "warning: some clients failed: ${out}"
  kill -TERM "${pid}"; wait "${pid}" || true
  echo "${out}"
}

bench_connections() {
  local r out p50s=() p99s=() lates=() rsses=() p50 p99 max late failed rss
  for ((r = 1; r <= reps; r++)); do
    out="$(connections_once)"
    read -r p50 p99 max late failed rss < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["p50_ms"], d["p99_ms"], d["max_ms"], d["late_client_ms"], d["failed"], d["api_rss_kib"])' "${out}")
    p50s+=("${p50}"); p99s+=("${p99}"); lates+=("${late}"); rsses+=("${rss}")
    echo "{\"bench\":\"connections\",\"clients\":${connections_n},\"run\":${r},\"p50_ms\":${p50},\"p99_ms\":${p99},\"max_ms\":${max},\"late_client_ms\":${late},\"failed\":${failed},\"api_rss_kib\":${rss}}"
  done
  echo "{\"bench\":\"connections\",\"clients\":${connections_n},\"runs\":${reps},\"median_p50_ms\":$(printf '%s\n' "${p50s[@]}" | median),\"median_p99_ms\":$(printf '%s\n' "${p99s[@]}" | median),\"median_late_client_ms\":$(printf '%s\n' "${lates[@]}" | median),\"median_api_rss_kib\":$(printf '%s\n' "${rsses[@]}" | median)}"
}

# bench_webhook FAIL_ONCE_PERCENT
bench_webhook() {
  local fail="$1" r rates=() rate rate_ff rss wal stats requests expected distinct
  for ((r = 1; r <= reps; r++)); do
    "${sink_bin}" "${sink_port}" --fail-once-percent "${fail}" 2>"${tmp}/sink.err" &
    sink_pid=$!
    for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:${sink_port}/stats" >/dev/null && break; sleep 0.05; done
    # The sink listens on loopback, which the SSRF guard refuses unless it is opened.
    read -r rate rate_ff rss wal < <(NUDGE_WEBHOOK_SECRET=whsec_bench_0123456789abcdef \
      NUDGE_WEBHOOK_ALLOW_PRIVATE=127.0.0.0/8 NUDGE_RETRY_BASE_DELAY_MS=100 NUDGE_RETRY_MAX_DELAY_MS=100 drain_once 2 0 webhook)
    stats="$(curl -sf "http://127.0.0.1:${sink_port}/stats")"
    kill -TERM "${sink_pid}"; wait "${sink_pid}" 2>/dev/null || true; sink_pid=""
    requests="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["requests"])' "${stats}")"
    distinct="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["distinct_keys"])' "${stats}")"
    expected="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["failed"] + int(sys.argv[2]))' "${stats}" "${drain_n}")"
    rates+=("${rate}")
    echo "{\"bench\":\"drain_webhook\",\"workers\":2,\"reminders\":${drain_n},\"fail_once_percent\":${fail},\"run\":${r},\"fires_per_s\":${rate},\"fires_per_s_from_first_fire\":${rate_ff},\"receiver_requests\":${requests},\"expected_requests\":${expected},\"distinct_keys\":${distinct},\"worker_peak_rss_kib\":${rss}}"
  done
  echo "{\"bench\":\"drain_webhook\",\"workers\":2,\"reminders\":${drain_n},\"fail_once_percent\":${fail},\"runs\":${reps},\"median_fires_per_s\":$(printf '%s\n' "${rates[@]}" | median)}"
}

bench_cron() {
  local r start end rates=() rate
  fresh_db
  for ((r = 1; r <= reps; r++)); do
    start="$(sql "SELECT extract(epoch FROM clock_timestamp())")"
    sql "SELECT count(nudge.cron_next(nudge.cron_parse(m.e), m.tz, timestamptz '2026-01-01Z' + g * interval '37 minutes'))
           FROM (VALUES ('*/5 * * * *', 'UTC'), ('0 9 * * 1-5', 'America/New_York'),
                        ('30 2 * * *', 'Europe/Berlin'), ('0 0 1 * *', 'UTC'),
                        ('0 0 13 * 5', 'Asia/Kolkata')) m(e, tz),
                generate_series(1, 4000) g" >/dev/null
    end="$(sql "SELECT extract(epoch FROM clock_timestamp())")"
    rate="$(awk -v s="${start}" -v e="${end}" 'BEGIN {printf "%.0f", 20000 / (e - s)}')"
    rates+=("${rate}")
    echo "{\"bench\":\"cron_next\",\"computations\":20000,\"run\":${r},\"per_s\":${rate}}"
  done
  echo "{\"bench\":\"cron_next\",\"runs\":${reps},\"median_per_s\":$(printf '%s\n' "${rates[@]}" | median)}"
}

bench_words() {
  local r out p99s=() p99 pid route rps p50 rp99 bad rates=() p50s=() rp99s=()
  for ((r = 1; r <= reps; r++)); do
    out="$("${words_bin}" 200)"
    echo "${out%\}},\"run\":${r}}"
    p99="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["p99_us"])' "${out}")"
    p99s+=("${p99}")
  done
  echo "{\"bench\":\"parse_words\",\"runs\":${reps},\"median_p99_us\":$(printf '%s\n' "${p99s[@]}" | median)}"
  for ((r = 1; r <= reps; r++)); do
    fresh_db
    start_api
    pid="${api_pid}"
    route="$(wrk_run parse.lua 1 10)"
    kill -TERM "${pid}"; wait "${pid}" || true
    read -r rps p50 rp99 bad <<<"${route}"
    ((bad == 0)) || log "warning: ${bad} parse requests failed"
    rates+=("${rps}"); p50s+=("${p50}"); rp99s+=("${rp99}")
    echo "{\"bench\":\"parse_route\",\"clients\":1,\"run\":${r},\"requests_per_s\":${rps},\"p50_ms\":${p50},\"p99_ms\":${rp99},\"failed_requests\":${bad}}"
  done
  echo "{\"bench\":\"parse_route\",\"clients\":1,\"runs\":${reps},\"median_requests_per_s\":$(printf '%s\n' "${rates[@]}" | median),\"median_p50_ms\":$(printf '%s\n' "${p50s[@]}" | median),\"median_p99_ms\":$(printf '%s\n' "${rp99s[@]}" | median)}"
}

# busy_ticks: the CPU ticks the whole machine has spent on anything but idling (user, nice,
# system, irq, softirq), from /proc/stat.
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
# process_ticks PID: the CPU ticks PID has used (utime + stime).
process_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# seconds_since TICKS_BEFORE TICKS_NOW: the CPU seconds between two tick counts.
seconds_since() { awk -v a="$1" -v b="$2" -v t="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (b - a) / t}'; }

# pin_server CPUS: every process of the PostgreSQL server on CPUS (backends started later inherit
# the postmaster's).
pin_server() {
  local postmaster pid
  postmaster="$(head -1 "$(psql -qtAX "${admin_url}" -c "SHOW data_directory")/postmaster.pid")"
  for pid in "${postmaster}" $(pgrep -P "${postmaster}"); do
    taskset -a -p -c "$1" "${pid}" >/dev/null
  done
}

# split_cpus: with BENCH_STREAM_CPUS, this script, the server and the workers to come on its
# drain CPUs, and the running nudge-api with its change reader's backend on its stream CPUs.
split_cpus() {
  local pid
  taskset -p -c "${stream_cpus%%:*}" $$ >/dev/null
  pin_server "${stream_cpus%%:*}"
  taskset -a -p -c "${stream_cpus##*:}" "${api_pid}" >/dev/null
  for pid in $(sql "SELECT pid FROM pg_stat_activity WHERE application_name LIKE '%/stream'"); do
    taskset -a -p -c "${stream_cpus##*:}" "${pid}" >/dev/null
  done
}

# stream_once STREAMS → prints "rate rate_from_first_fire p50_ms p99_ms max_ms lagged
# machine_cpu_s api_cpu_s reader_cpu_s"
# The 2-worker drain with nudge-api up and STREAMS streams open (0: none). The CPU figures cover
# the drain (from the workers' start to the last execution): where the streams' cost goes
# (nudge-api, the readers, the rest: PostgreSQL and the workers); meaningful on a quiet machine.
stream_once() {
  local streams="$1" start first end rate rate_ff out="${tmp}/reader.out" reader_pid=
  local busy0 api0 machine_cpu api_cpu
  fresh_db
  insert_due "${drain_n}"
  sql "VACUUM ANALYZE nudge.reminders" >/dev/null
  sql "CHECKPOINT" >/dev/null
  start_api
  [[ -z "${stream_cpus}" ]] || split_cpus
  if ((streams > 0)); then
    ${stream_cpus:+taskset -c "${stream_cpus##*:}"} \
      "${reader_bin}" "${api_port}" "${streams}" "${drain_n}" --pid "${api_pid}" >"${out}" &
    reader_pid=$!
    for _ in $(seq 1 200); do grep -q ready "${out}" 2>/dev/null && break; sleep 0.05; done
  fi
  start="$(sql "SELECT extract(epoch FROM clock_timestamp())")"
  busy0="$(busy_ticks)"
  api0="$(process_ticks "${api_pid}")"
  start_workers 2 "${tmp}/drain"
  wait_for_executions "${drain_n}"
  machine_cpu="$(seconds_since "${busy0}" "$(busy_ticks)")"
  api_cpu="$(seconds_since "${api0}" "$(process_ticks "${api_pid}")")"
  stop_workers
  read -r first end < <(sql "SELECT extract(epoch FROM min(fired_at)), extract(epoch FROM max(fired_at)) FROM nudge.executions" | tr '|' ' ')
  rate="$(awk -v n="${drain_n}" -v s="${start}" -v e="${end}" 'BEGIN {printf "%.0f", n / (e - s)}')"
  rate_ff="$(awk -v n="${drain_n}" -v s="${first}" -v e="${end}" 'BEGIN {printf "%.0f", n / (e - s)}')"
  if [[ -n "${reader_pid}" ]]; then
    wait "${reader_pid}" || true
    python3 -c 'import json,sys; d=json.loads(sys.argv[2].splitlines()[-1]); print(sys.argv[1], d["p50_ms"], d["p99_ms"], d["max_ms"], d["lagged"], sys.argv[3], d["reader_cpu_s"])' "${rate} ${rate_ff}" "$(cat "${out}")" "${machine_cpu} ${api_cpu}"
  else
    echo "${rate} ${rate_ff} 0 0 0 0 ${machine_cpu} ${api_cpu} 0"
  fi
  kill -TERM "${api_pid}"; wait "${api_pid}" || true
}

bench_stream() {
  local r rate rate_ff p50 p99 max lagged machine api reader base=() with=() p50s=() p99s=() rss
  for ((r = 1; r <= reps; r++)); do
    read -r rate rate_ff _ _ _ _ machine api _ < <(stream_once 0)
    base+=("${rate}")
    echo "{\"bench\":\"drain_streams\",\"cpus\":\"${stream_cpus:-all}\",\"workers\":2,\"streams\":0,\"run\":${r},\"fires_per_s\":${rate},\"fires_per_s_from_first_fire\":${rate_ff},\"machine_cpu_s\":${machine},\"api_cpu_s\":${api}}"
    read -r rate rate_ff p50 p99 max lagged machine api reader < <(stream_once 10)
    with+=("${rate}"); p50s+=("${p50}"); p99s+=("${p99}")
    echo "{\"bench\":\"drain_streams\",\"cpus\":\"${stream_cpus:-all}\",\"workers\":2,\"streams\":10,\"run\":${r},\"fires_per_s\":${rate},\"fires_per_s_from_first_fire\":${rate_ff},\"latency_p50_ms\":${p50},\"latency_p99_ms\":${p99},\"latency_max_ms\":${max},\"lagged\":${lagged},\"machine_cpu_s\":${machine},\"api_cpu_s\":${api},\"reader_cpu_s\":${reader}}"
  done
  if [[ -n "${stream_cpus}" ]]; then
    taskset -p -c "0-$(($(nproc --all) - 1))" $$ >/dev/null
    pin_server "0-$(($(nproc --all) - 1))"
  fi
  fresh_db
  start_api
  rss="$("${reader_bin}" "${api_port}" 100 0 --pid "${api_pid}" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[0])["api_rss_kib"])')"
  kill -TERM "${api_pid}"; wait "${api_pid}" || true
  echo "{\"bench\":\"stream\",\"cpus\":\"${stream_cpus:-all}\",\"workers\":2,\"reminders\":${drain_n},\"runs\":${reps},\"median_fires_per_s_no_stream\":$(printf '%s\n' "${base[@]}" | median),\"median_fires_per_s_10_streams\":$(printf '%s\n' "${with[@]}" | median),\"median_latency_p50_ms\":$(printf '%s\n' "${p50s[@]}" | median),\"median_latency_p99_ms\":$(printf '%s\n' "${p99s[@]}" | median),\"api_rss_kib_100_streams\":${rss}}"
}

# bench_email DELAY_S N: N email reminders due now, one attempt each, one worker with one claim
# loop, sent to tests/bench/smtp_sink.py, which accepts each message DELAY_S seconds after its
# data.
bench_email() {
  local delay="$1" n="$2" r start end secs rate delivered accepted distinct values=()
  for ((r = 1; r <= reps; r++)); do
    fresh_db
    : >"${tmp}/mail"
    /usr/bin/python3 "${repo_root}/tests/bench/smtp_sink.py" "${smtp_port}" "${delay}" "${tmp}/mail" \
      2>"${tmp}/smtp.err" &
    sink_pid=$!
    for _ in $(seq 1 200); do (: <"/dev/tcp/127.0.0.1/${smtp_port}") 2>/dev/null && break; sleep 0.05; done
    sql "INSERT INTO nudge.reminders (entity_type, entity_id, event_type, channel, target,
                                    schedule_type, next_run_at, max_attempts)
         SELECT 'bench', g::text, 'mail', 'email', 'user' || g || '@example.com', 'one_time',
                now(), 1
           FROM generate_series(1, ${n}) g"
    start="$(sql "SELECT extract(epoch FROM clock_timestamp())")"
    NUDGE_EMAIL_SMTP_URL="smtp://127.0.0.1:${smtp_port}" NUDGE_WORKER_CONCURRENCY=1 \
      start_workers 1 "${tmp}/email"
    wait_for_executions "${n}"
    stop_workers
    read -r end delivered < <(sql "SELECT extract(epoch FROM max(fired_at)),
                                          count(*) FILTER (WHERE outcome = 'delivered')
                                     FROM nudge.executions" | tr '|' ' ')
    kill -TERM "${sink_pid}" 2>/dev/null || true
    wait "${sink_pid}" 2>/dev/null || true
    sink_pid=
    accepted="$(wc -l <"${tmp}/mail")"
    distinct="$(sort -u "${tmp}/mail" | wc -l)"
    secs="$(awk -v s="${start}" -v e="${end}" 'BEGIN {printf "%.2f", e - s}')"
    rate="$(awk -v n="${n}" -v s="${start}" -v e="${end}" 'BEGIN {printf "%.0f", n / (e - s)}')"
    values+=("$( ((delay > 0)) && echo "${secs}" || echo "${rate}")")
    echo "{\"bench\":\"email\",\"relay_delay_s\":${delay},\"reminders\":${n},\"run\":${r},\"seconds\":${secs},\"emails_per_s\":${rate},\"delivered\":${delivered},\"relay_messages\":${accepted},\"relay_distinct_message_ids\":${distinct}}"
  done
  if ((delay > 0)); then
    echo "{\"bench\":\"email\",\"relay_delay_s\":${delay},\"reminders\":${n},\"runs\":${reps},\"median_seconds\":$(printf '%s\n' "${values[@]}" | median)}"
  else
    echo "{\"bench\":\"email\",\"relay_delay_s\":${delay},\"reminders\":${n},\"runs\":${reps},\"median_emails_per_s\":$(printf '%s\n' "${values[@]}" | median)}"
  fi
}

for f in "${figures[@]}"; do
  case "${f}" in
    drain) bench_drain drain 1 0; bench_drain drain 2 0 ;;
    lateness) bench_lateness ;;
    scale) bench_drain scale 2 "${scale_n}" ;;
    api) bench_api api 0; bench_api api_scale "${scale_n}" ;;
    events) bench_events ;;
    flags) bench_flags ;;
    connections) bench_connections ;;
    cron) bench_cron; bench_drain drain_cron 2 0 cron ;;
    webhook) bench_webhook 0; bench_webhook 10 ;;
    email) bench_email 0 2000; bench_email 2 40 ;;
    words) bench_words ;;
    stream) bench_stream ;;
    *) log "unknown figure ${f} (drain|lateness|scale|api|events|flags|connections|cron|webhook|email|words|stream)"; exit 2 ;;
  esac
done
