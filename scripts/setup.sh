#!/usr/bin/env bash
# Installs the Debian 12 packages Nudge needs to build, test and run (compiler, CMake, Ninja,
# libpqxx, cpp-httplib, nlohmann-json, toml++, GoogleTest, PostgreSQL 15, aiosmtpd, wrk,
# prometheus (whose promtool and server the metrics tests run), and what package.sh and its test
# use: dpkg-dev for dpkg-shlibdeps, file, systemd for systemd-analyze).
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
  python3 python3-aiosmtpd wrk procps util-linux clang-format prometheus
  dpkg-dev file systemd
)
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

if ((${#missing[@]} == 0)); then
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
