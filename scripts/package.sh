#!/usr/bin/env bash
# Builds the Debian package of Nudge: installs missing packages (setup.sh), builds nudge-api and
# nudge-worker (Release) in the build directory, and packs them with CPack into
# nudge_<version>_<arch>.deb: the stripped programs, /etc/nudge/nudge.toml (a conffile), the
# systemd units nudge-api.service and nudge-worker@.service, and maintainer scripts that create
# the `nudge` user. Its Depends come from dpkg-shlibdeps. The path of the .deb is the one line
# on stdout (progress goes to stderr), so deb="$(scripts/package.sh)" works. What goes in is
# decided by cmake/packaging.cmake.
#
# Usage: scripts/package.sh [--no-build]
#   --no-build   pack what the build directory already holds (configured, programs built);
#                tests use it to pack the tree they run from without touching it
#
# Environment knobs:
#   NUDGE_BUILD_DIR     Release build directory (default build, the one test.sh and run.sh use)
#   NUDGE_PACKAGE_DIR   where the .deb goes (default <build directory>/package)
#   NUDGE_BUILD_JOBS    parallel compile jobs (default 2)
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/.." && pwd)"
cd "${repo_root}"

build_dir="${NUDGE_BUILD_DIR:-build}"
package_dir="${NUDGE_PACKAGE_DIR:-${build_dir}/package}"
no_build=0

log() { echo "package.sh: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

for arg in "$@"; do
  case "${arg}" in
    --no-build) no_build=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument '${arg}' (see --help)" ;;
  esac
done

if ((no_build)); then
  [[ -f "${build_dir}/CPackConfig.cmake" ]] || die "${build_dir} is not a configured build directory"
  for program in nudge-api nudge-worker; do
    [[ -x "${build_dir}/bin/${program}" ]] || die "${build_dir}/bin/${program} is not built"
  done
else
  "${script_dir}/setup.sh" >&2
  log "building nudge-api and nudge-worker (Release) in ${build_dir}"
  cmake -S . -B "${build_dir}" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNUDGE_SANITIZE=OFF >/dev/null
  cmake --build "${build_dir}" -j"${NUDGE_BUILD_JOBS:-2}" --target nudge-api nudge-worker >&2
fi
if ! grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "${build_dir}/CMakeCache.txt"; then
  die "${build_dir} is not a Release build"
fi

mkdir -p "${package_dir}"
package_dir="$(cd "${package_dir}" && pwd)"
log "packing into ${package_dir}"
# cpack's staging tree (_CPack_Packages) goes there too, not into the build directory.
cpack --config "${build_dir}/CPackConfig.cmake" -B "${package_dir}" >"${package_dir}/cpack.log" 2>&1 || {
  cat "${package_dir}/cpack.log" >&2
  die "cpack failed"
}
deb="$(sed -n 's/^CPack: - package: \(.*\.deb\) generated\.$/\1/p' "${package_dir}/cpack.log" | tail -n 1)"
[[ -n "${deb}" && -f "${deb}" ]] || {
  cat "${package_dir}/cpack.log" >&2
  die "cpack named no .deb"
}
log "$(du -h "${deb}" | cut -f1) $(basename "${deb}")"
echo "${deb}"
