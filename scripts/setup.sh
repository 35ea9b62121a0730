#!/usr/bin/env bash
# Installs the Debian 12 packages Nudge needs to build, test and run (compiler, CMake, Ninja,
# libpqxx, cpp-httplib, nlohmann-json, toml++, GoogleTest, PostgreSQL 15, aiosmtpd, wrk,
# prometheus (whose promtool and server the metrics tests run), what package.sh and its test
# use: dpkg-dev for dpkg-shlibdeps, file, systemd for systemd-analyze; and for the browser tests
# chromium, Node.js with npm, and the npm packages pinned in tests/browser/package-lock.json,
# installed there with `npm ci` when missing).
# Only packages that are missing are installed; when everything is present it returns at once.
# Must run as root to install; as an ordinary user it prints the apt-get command and exits 1
# if something is missing.
#
# Environment knobs:
#   NUDGE_SETUP_EXTRA   extra package names (space separated) to require as well.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libpqxx-dev libpq-dev libcpp-httplib-dev nlohmann-json3-dev libtomlplusplus-dev
  libgtest-dev googletest libcurl4-openssl-dev libssl-dev
  postgresql-15 postgresql-client-15
  python3 python3-aiosmtpd wrk procps util-linux clang clang-format prometheus
  dpkg-dev file systemd
  chromium fonts-dejavu-core nodejs
)
# Debian's npm, unless a Node.js that brings its own npm (NodeSource's) is installed: the two
# packages conflict.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(npm)
fi
if [[ -n "${NUDGE_SETUP_EXTRA:-}" ]]; then
  read -r -a extra <<<"${NUDGE_SETUP_EXTRA}"
  packages+=("${extra[@]}")
fi

# One dpkg-query call for all packages (same test as
# `dpkg-query -W -f='${Status}' PKG | grep -q 'install ok installed'`, but faster).
declare -A installed=()
while read -r name status; do
  if [[ "${status}" == "install ok installed" ]]; then
    installed["${name}"]=1
  fi
done < <(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" 2>/dev/null || true)

missing=()
for pkg in "${packages[@]}"; do
  if [[ -z "${installed[${pkg}]:-}" ]]; then
    missing+=("${pkg}")
  fi
done

# The browser tests' npm packages (playwright-core, axe-core), exactly as locked; a copy of the
# lock file in node_modules says which lock they were installed from.
browser_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/browser"
install_browser_packages() {
  local lock="${browser_dir}/package-lock.json" stamp="${browser_dir}/node_modules/.nudge-lock.json"
  if [[ -f "${lock}" ]] && ! cmp -s "${lock}" "${stamp}"; then
    echo "setup.sh: npm ci in tests/browser" >&2
    (cd "${browser_dir}" && npm ci --no-audit --no-fund --loglevel=error) >&2
    cp "${lock}" "${stamp}"
  fi
}

if ((${#missing[@]} == 0)); then
  install_browser_packages
  exit 0
fi

echo "setup.sh: missing packages: ${missing[*]}" >&2
if ((EUID != 0)); then
  echo "setup.sh: not root; install them with:" >&2
  echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
echo "setup.sh: installed ${missing[*]}" >&2
install_browser_packages
