#!/usr/bin/env bash
# sql/schema.sql is the current state of schema nudge, generated from the migrations: a
# normalised `pg_dump --schema-only`. Regenerate it whenever a migration is added; scripts/test.sh
# fails when it is stale.
#
# Usage: scripts/schema.sh write        migrate a throwaway database with the built nudge-worker
#                                       and write sql/schema.sql from it
#        scripts/schema.sh check URL    compare sql/schema.sql with the migrated database at URL;
#                                       exit 1 and show the difference when they differ
#        scripts/schema.sh dump URL     print the normalised schema of the database at URL
# Environment knobs: NUDGE_BUILD_DIR (default build), and those of scripts/pg.sh.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"
schema_file="${repo_root}/sql/schema.sql"
pg="${script_dir}/pg.sh"

log() { echo "schema.sh: $*" >&2; }

pg_dump_bin() {
  local bindir
  bindir="$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)"
  if [[ -x "${bindir}/pg_dump" ]]; then echo "${bindir}/pg_dump"; else command -v pg_dump; fi
}

# The dump without what changes from run to run or from machine to machine: the tool's version
# lines, the random key of its \restrict guard (pg_dump 15.14+), session settings, and runs of
# blank lines.
dump() {
  cat <<'HEAD'
-- The current state of schema nudge, generated from sql/migrations by scripts/schema.sh (a
-- normalised pg_dump --schema-only). Do not edit: change the schema with a new migration, then
-- run scripts/schema.sh write. scripts/test.sh fails when this file is stale.
HEAD
  "$(pg_dump_bin)" --schema-only --no-owner --no-privileges --schema=nudge "$1" |
    grep -vE '^(-- Dumped (from|by) |-- PostgreSQL database dump|\\(un)?restrict |SET |SELECT pg_catalog\.set_config)' |
    sed -e '/^--$/d' | cat -s
}

case "${1:-}" in
dump)
  dump "${2:?usage: scripts/schema.sh dump URL}"
  ;;
check)
  url="${2:?usage: scripts/schema.sh check URL}"
  if ! diff -u "${schema_file}" <(dump "${url}") >&2; then
    log "sql/schema.sql does not match the migrations: run scripts/schema.sh write and commit it"
    exit 1
  fi
  ;;
write)
  # It makes its own database; a URL here would be silently ignored, so it is refused.
  (($# == 1)) || {
    log "error: write takes no URL (it migrates a throwaway database of scripts/pg.sh's cluster)"
    exit 2
  }
  worker="${repo_root}/${NUDGE_BUILD_DIR:-build}/bin/nudge-worker"
  [[ -x "${worker}" ]] || {
    log "error: ${worker} is not built (cmake --build build)"
    exit 1
  }
  "${pg}" start >/dev/null
  db="nudge_schema_$$"
  admin="$("${pg}" url postgres)"
  psql -qX -d "${admin}" -c "CREATE DATABASE ${db}" >/dev/null
  trap 'psql -qX -d "${admin}" -c "DROP DATABASE IF EXISTS ${db} WITH (FORCE)" >/dev/null' EXIT
  NUDGE_DATABASE_URL="$("${pg}" url "${db}")" NUDGE_LOG_LEVEL=warn "${worker}" --migrate-only
  dump "$("${pg}" url "${db}")" >"${schema_file}"
  log "wrote sql/schema.sql"
  ;;
*)
  sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
