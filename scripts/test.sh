#!/usr/bin/env bash
# Builds and tests Nudge: installs missing packages (setup.sh); builds Release with tests into
# build/; checks formatting with clang-format; starts the throwaway PostgreSQL cluster (pg.sh;
# when this script starts it: without fsync, as tests need no durability, and with its data in
# /dev/shm when that is a tmpfs with room and NUDGE_PG_DIR is not set); creates and migrates the
# template database nudge_template (dropping it and leftover nudge_t_* test databases first) and
# checks that sql/schema.sql matches it; runs the SQL, package and browser suites on the Release
# build while it builds the ASan/UBSan tree in build-asan/ with Clang; then runs the suites that
# execute Nudge's C++ under it: the process and API suites against its nudge-worker and
# nudge-api, and the unit and channel tests built there. Each suite runs once (with NUDGE_TEST_SKIP_ASAN=1, all
# on the Release build). Every step always runs; the exit status is non-zero if anything failed.
# The last line printed is "N passed, M failed" (summed over the passes). The cluster is stopped
# at the end only if this script started it.
#
# The quick loop for one suite, Release only:
#   NUDGE_TEST_SKIP_ASAN=1 NUDGE_TEST_LABEL=sql scripts/test.sh
# Suites (ctest labels): unit, channel, sql, process, api, package (the .deb of this build, Release
# pass only). Or run one binary directly, e.g.
#   build/bin/nudge-sql-tests --gtest_filter='Cron*'   (after one scripts/test.sh run).
#
# Environment knobs:
#   NUDGE_TEST_SKIP_ASAN=1   skip the sanitizer build and its ctest pass
#   NUDGE_TEST_LABEL=REGEX   only run suites whose label matches REGEX (ctest -L)
#   NUDGE_TEST_FILTER=REGEX  only run tests whose name matches REGEX (ctest -R)
#   NUDGE_TEST_JOBS          tests run at once (default 3: most of their time is spent waiting)
#   NUDGE_BUILD_DIR          Release build directory (default build)
#   NUDGE_ASAN_BUILD_DIR     sanitizer build directory (default build-asan)
#   NUDGE_DATABASE_URL       use this server instead of a local cluster (it must allow
#                            CREATE/DROP DATABASE; PostgreSQL-restart tests cannot restart it)
#   NUDGE_PG_PORT, NUDGE_PG_DIR   passed on to scripts/pg.sh (and to the tests through it);
#                            NUDGE_PG_DIR keeps a cluster this script starts on disk, there
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"
cd "${repo_root}"

pg="${script_dir}/pg.sh"
build_dir="${NUDGE_BUILD_DIR:-build}"
asan_dir="${NUDGE_ASAN_BUILD_DIR:-build-asan}"
skip_asan="${NUDGE_TEST_SKIP_ASAN:-0}"
filter="${NUDGE_TEST_FILTER:-}"
label="${NUDGE_TEST_LABEL:-}"
jobs="${NUDGE_TEST_JOBS:-3}"
template_db=nudge_template

log() { echo "test.sh: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

started_pg=0
work_dir="$(mktemp -d)"
# kill_tree PID: the process and everything it started (the background sanitizer build).
# shellcheck disable=SC2317  # invoked by on_exit
kill_tree() {
  local child
  for child in $(pgrep -P "$1"); do kill_tree "${child}"; done
  kill "$1" 2>/dev/null || true
}

# The cluster kept in memory (memory_dir below), once stopped: it holds RAM.
# shellcheck disable=SC2317  # invoked by on_exit
remove_memory_pg_dir() {
  if [[ -n "${memory_pg_dir:-}" ]] && ! "${pg}" status >/dev/null 2>&1; then
    rm -rf "${memory_pg_dir}"
  fi
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "${asan_build_pid:-}" ]]; then kill_tree "${asan_build_pid}"; fi
  if ((started_pg)); then
    env -u NUDGE_DATABASE_URL "${pg}" stop || log "warning: could not stop the PostgreSQL cluster"
  fi
  remove_memory_pg_dir
  rm -rf "${work_dir}"
  exit "${rc}"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"${script_dir}/setup.sh"

# --- builds ------------------------------------------------------------------------------------
build() {
  local dir="$1"
  shift
  # A build directory configured with another generator or compiler cannot be reused as is.
  local compiler="${CXX:-c++}" arg
  for arg in "$@"; do
    if [[ "${arg}" == -DCMAKE_CXX_COMPILER=* ]]; then compiler="${arg#*=}"; fi
  done
  compiler="$(readlink -f "$(command -v "${compiler}")")"
  if [[ -f "${dir}/CMakeCache.txt" ]] &&
    { ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "${dir}/CMakeCache.txt" ||
      [[ "$(readlink -f "$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "${dir}/CMakeCache.txt")")" != "${compiler}" ]]; }; then
    log "${dir} was configured with another generator or compiler; resetting its CMake cache"
    rm -rf "${dir}/CMakeCache.txt" "${dir}/CMakeFiles"
  fi
  log "configuring ${dir} ($*)"
  cmake -S . -B "${dir}" -G Ninja "$@" >"${work_dir}/configure.log" 2>&1 || {
    cat "${work_dir}/configure.log" >&2
    die "cmake configure of ${dir} failed"
  }
  log "building ${dir}${BUILD_TARGETS:+ (${BUILD_TARGETS})}"
  # shellcheck disable=SC2086 # a list of target names
  cmake --build "${dir}" -j2 ${BUILD_TARGETS:+--target ${BUILD_TARGETS}} ||
    die "build in ${dir} failed"
}

# A whole run builds first only what the Release suites run (sql, package, browser); the Release
# test programs that run against the sanitizer programs (process, api) build while those suites
# run, which mostly wait, and the unit and channel programs only in the sanitizer tree (~1 of 12
# minutes).
release_rest_pid=""
if [[ "${skip_asan}" != 1 && -z "${label}" ]]; then
  BUILD_TARGETS="nudge-api nudge-worker nudge-sql-tests nudge-package-tests" \
    build "${build_dir}" -DCMAKE_BUILD_TYPE=Release -DNUDGE_BUILD_TESTS=ON -DNUDGE_SANITIZE=OFF
  (
    renice -n 10 "${BASHPID}" >/dev/null
    cmake --build "${build_dir}" -j2 --target nudge-api-tests nudge-process-tests
  ) >"${work_dir}/build-release-rest.log" 2>&1 &
  release_rest_pid=$!
else
  build "${build_dir}" -DCMAKE_BUILD_TYPE=Release -DNUDGE_BUILD_TESTS=ON -DNUDGE_SANITIZE=OFF
fi

# --- formatting --------------------------------------------------------------------------------
format_failed=0
if command -v clang-format >/dev/null 2>&1; then
  files=()
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked files plus new files not yet added (but not git-ignored ones).
    mapfile -t candidates < <(git ls-files --cached --others --exclude-standard -- common worker api tests |
      grep -E '\.(cpp|hpp)$' | sort -u)
  else
    mapfile -t candidates < <(find common worker api tests -type f \( -name '*.cpp' -o -name '*.hpp' \) 2>/dev/null | sort)
  fi
  for f in "${candidates[@]}"; do
    if [[ -f "${f}" ]]; then files+=("${f}"); fi
  done
  if ((${#files[@]} > 0)); then
    log "checking formatting of ${#files[@]} files"
    if ! clang-format --dry-run --Werror "${files[@]}"; then
      format_failed=1
      log "FAILED: formatting (fix with: clang-format -i <files>)"
    fi
  fi
else
  log "note: clang-format not installed; skipping the formatting check"
fi

# --- database ----------------------------------------------------------------------------------
# memory_dir: a tmpfs directory with room for a test cluster (2 GiB free), if there is one.
memory_dir() {
  local dir=/dev/shm
  [[ -d "${dir}" && -w "${dir}" && "$(stat -f -c %T "${dir}" 2>/dev/null)" == tmpfs ]] || return 1
  (($(df --output=avail -k "${dir}" | tail -n 1) >= 2 * 1024 * 1024)) || return 1
  echo "${dir}"
}

memory_pg_dir=""
if [[ -z "${NUDGE_DATABASE_URL:-}" ]]; then
  if ! "${pg}" status >/dev/null 2>&1; then
    started_pg=1
    # A cluster of this run's own lives in memory where there is room: each test creates and
    # drops a database, and on ext4 that cost 0.5 s of CPU apiece once a hundred had been (the
    # kernel's inode allocation passes over recently deleted inodes), 0.06 s on tmpfs; about a
    # fifth of a whole run's CPU. It is removed at the end.
    if [[ -z "${NUDGE_PG_DIR:-}" ]] && dir="$(memory_dir)"; then
      memory_pg_dir="${dir}/nudge-test-pgdata-${NUDGE_PG_PORT:-55433}"
      export NUDGE_PG_DIR="${memory_pg_dir}"
    fi
  fi
  # A throwaway cluster for tests needs no durability: without fsync, creating a database
  # per test costs a fraction. (A cluster that already runs is used as it is.)
  NUDGE_PG_DURABLE=0 "${pg}" start
fi
admin_url="$("${pg}" url postgres)"
template_url="$("${pg}" url "${template_db}")"

admin_psql() {
  PGOPTIONS="-c client_min_messages=warning" NUDGE_DATABASE_URL="${admin_url}" \
    "${pg}" psql -X -q -v ON_ERROR_STOP=1 "$@"
}

mapfile -t leftovers < <(admin_psql -At -c \
  "SELECT datname FROM pg_database WHERE datname LIKE 'nudge\\_t\\_%'")
for db in "${leftovers[@]}"; do
  [[ -n "${db}" ]] || continue
  admin_psql -c "DROP DATABASE IF EXISTS \"${db}\" WITH (FORCE)"
done
if ((${#leftovers[@]} > 0)); then
  log "dropped ${#leftovers[@]} leftover test databases"
fi
admin_psql -c "DROP DATABASE IF EXISTS ${template_db} WITH (FORCE)"
admin_psql -c "CREATE DATABASE ${template_db}"
log "migrating ${template_db}"
NUDGE_DATABASE_URL="${template_url}" NUDGE_LOG_LEVEL=warn "${build_dir}/bin/nudge-worker" \
  --migrate-only || die "migrating ${template_db} failed"
schema_stale=0
if ! "${script_dir}/schema.sh" check "${template_url}"; then
  schema_stale=1
  log "FAILED: sql/schema.sql is stale"
fi

# --- tests -------------------------------------------------------------------------------------
total_passed=0
total_failed=0
any_failed=0
failed_names=()
filter_args=()
if [[ -n "${filter}" ]]; then
  filter_args+=(-R "${filter}")
fi

# run_ctest NAME DIR LABELS [VAR=VALUE...]: the suites of DIR whose label matches LABELS (and
# NUDGE_TEST_LABEL), with the variables set.
run_ctest() {
  local name="$1" dir="$2" labels="$3"
  shift 3
  local out="${work_dir}/ctest-${name}.log" rc line failed total
  local label_args=(-L "${labels}")
  if [[ -n "${label}" ]]; then label_args+=(-L "${label}"); fi
  log "running tests (${name}: ${labels}, ${dir})"
  rm -rf "${dir}/shard-reports"
  set +e
  env "$@" \
    NUDGE_TEST_ADMIN_URL="${admin_url}" \
    NUDGE_TEST_TEMPLATE="${template_db}" \
    NUDGE_PG_SCRIPT="${script_dir}/pg.sh" \
    ctest --test-dir "${dir}" --output-on-failure -j"${jobs}" "${label_args[@]}" \
    "${filter_args[@]}" 2>&1 | tee "${out}"
  rc="${PIPESTATUS[0]}"
  set -e
  if grep -q '^No tests were found' "${out}"; then return 0; fi
  line="$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "${out}" | tail -n 1 || true)"
  if [[ "${line}" =~ ^[0-9]+%\ tests\ passed,\ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
    failed="${BASH_REMATCH[1]}"
    total="${BASH_REMATCH[2]}"
    # Sharded suites (the sanitizer tree): count the tests their shards ran, not the shards.
    if ((failed == 0)) && [[ -d "${dir}/shard-reports" ]]; then
      total="$(awk -F'"' '/<testsuites tests=/ { n += $2 } END { print n + 0 }' \
        "${dir}"/shard-reports/*.xml)"
    fi
    total_passed=$((total_passed + total - failed))
    total_failed=$((total_failed + failed))
  elif ((rc != 0)); then
    log "ctest (${name}) exited with status ${rc} without a test summary"
  fi
  if ((rc != 0)); then
    any_failed=1
    log "FAILED: ctest (${name}) exited with status ${rc}"
  fi
  # ctest lists them after "The following tests FAILED:"; kept for the end, where a CI tail shows them.
  local test_name
  while IFS= read -r test_name; do
    failed_names+=("${name}: ${test_name}")
  done < <(sed -n '/^The following tests FAILED:/,$p' "${out}" | sed -nE 's/^[[:space:]]+[0-9]+ - (.*)$/\1/p')
}

# The sanitizer tree: only the suites that link Nudge's C++ (tests/CMakeLists.txt); the process
# and API suites of the Release tree run against its programs. Built with Clang: it compiles
# this tree in half the CPU GCC takes (its tree was the longest wait of a run), and its warnings
# are errors too, so each build checks the code with a second compiler. Unoptimised (-O0): the
# sanitizers check the same, the tree compiles in about 30% less time, and the tests that run it
# spend their time waiting, not computing. It builds while the Release suites run, which mostly wait too (on
# PostgreSQL, on the timeouts they test), at a lower priority so their deadlines keep theirs. Its
# two programs come first: the process and API suites run against them while the rest (the unit
# and channel suites) builds, instead of after it (~2 of 12 minutes).
asan_build_pid=""
asan_programs_built="${work_dir}/asan-programs-built"
if [[ "${skip_asan}" != 1 ]]; then
  (
    renice -n 10 "${BASHPID}" >/dev/null
    BUILD_TARGETS="nudge-api nudge-worker" build "${asan_dir}" -DCMAKE_CXX_COMPILER=clang++ \
      -DCMAKE_BUILD_TYPE=Debug \
      '-DCMAKE_CXX_FLAGS_DEBUG=-O0 -g1' -DNUDGE_BUILD_TESTS=ON -DNUDGE_SANITIZE=ON
    touch "${asan_programs_built}"
    log "building ${asan_dir}"
    cmake --build "${asan_dir}" -j2 || die "build in ${asan_dir} failed"
  ) >"${work_dir}/build-asan.log" 2>&1 &
  asan_build_pid=$!
fi

# wait_for_asan_build [PROGRAMS]: until the sanitizer tree (or, with PROGRAMS, its programs) is
# built; dies with the build's log if it failed.
wait_for_asan_build() {
  log "waiting for the sanitizer build${1:+ of the programs} (${work_dir}/build-asan.log)"
  if [[ -n "${1:-}" ]]; then
    while [[ ! -e "${asan_programs_built}" ]] && kill -0 "${asan_build_pid}" 2>/dev/null; do
      sleep 1
    done
    [[ -e "${asan_programs_built}" ]] && return 0
  fi
  if ! wait "${asan_build_pid}"; then
    tail -n 50 "${work_dir}/build-asan.log" >&2
    die "the sanitizer build failed"
  fi
  asan_build_pid=""
}

# Each suite runs once. The process and API suites ran on the Release programs too, which made
# the run 15 minutes of a 12-minute budget on the 2-core CI machine; the Release programs still
# run in the browser and package suites (and in scripts/bench.sh).
if [[ "${skip_asan}" != 1 ]]; then
  run_ctest release "${build_dir}" 'sql|package|browser'
else
  run_ctest release "${build_dir}" '.*'
fi

if [[ "${skip_asan}" != 1 ]]; then
  sanitizer_env=(
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    LSAN_OPTIONS="suppressions=${repo_root}/tests/lsan.supp:print_suppressions=0"
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  )
  wait_for_asan_build programs
  if [[ -n "${release_rest_pid}" ]] && ! wait "${release_rest_pid}"; then
    tail -n 50 "${work_dir}/build-release-rest.log" >&2
    die "the build of the Release test programs failed"
  fi
  run_ctest asan-programs "${build_dir}" 'process|api' "${sanitizer_env[@]}" \
    NUDGE_TEST_BIN_DIR="$(cd "${asan_dir}" && pwd)/bin"
  wait_for_asan_build
  run_ctest asan-in-process "${asan_dir}" 'unit|channel' "${sanitizer_env[@]}"
else
  log "NUDGE_TEST_SKIP_ASAN=1: skipping the sanitizer build and its tests"
fi

if ((format_failed)); then
  any_failed=1
  log "FAILED: formatting check"
fi
if ((schema_stale)); then
  any_failed=1
  log "FAILED: sql/schema.sql is stale (scripts/schema.sh write)"
fi
# Stop the cluster now (not in the exit trap) so that the summary really is the last line.
if ((started_pg)); then
  started_pg=0
  env -u NUDGE_DATABASE_URL "${pg}" stop || log "warning: could not stop the PostgreSQL cluster"
  remove_memory_pg_dir
fi
for test_name in "${failed_names[@]}"; do
  log "FAILED test (${test_name})"
done
echo "${total_passed} passed, ${total_failed} failed"
exit "${any_failed}"
