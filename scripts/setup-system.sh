#!/usr/bin/env bash
# System packages for qllm on Debian/Ubuntu.
#   bash scripts/setup-system.sh          what a user needs: a WebGPU adapter without a GPU,
#                                         Mesa lavapipe >= 25 (Vulkan on the CPU; bookworm's
#                                         own Mesa 22 has none that Dawn can use)
#   bash scripts/setup-system.sh --tests  that, and Chromium for the browser tests
#                                         (the chat page, the browser bundle)
# Debian bookworm gets Mesa from bookworm-backports; a release whose own Mesa is
# new enough (Debian trixie, Ubuntu 25.04, ...) gets it from its own archive;
# anything else is told, in one line, what to install.
# Idempotent: skips what is already installed. Runs as root, or through sudo when
# that exists.
set -euo pipefail

tests=0
for a in "$@"; do
  case "$a" in
    --tests) tests=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup-system: unknown option '$a': use --tests for the test dependencies too" >&2; exit 2 ;;
  esac
done

say() { echo "setup-system: $*"; }
die() { echo "setup-system: $*" >&2; exit 1; }

# Root containers have no sudo; elsewhere sudo is how to become root.
if [ "$(id -u)" -eq 0 ]; then SUDO=()
elif command -v sudo >/dev/null 2>&1; then SUDO=(sudo)
else die "needs root to install packages: run it as root, or install sudo"; fi

# shellcheck disable=SC1091
[ -r /etc/os-release ] && . /etc/os-release
distro="${ID:-unknown} ${VERSION_CODENAME:-${VERSION_ID:-}}"
for_tests=""; [ "$tests" -eq 1 ] && for_tests=", and Chromium for the tests (QLLM_CHROMIUM=/path/to/it)"
command -v apt-get >/dev/null 2>&1 ||
  die "$distro is not Debian/Ubuntu: install Mesa >= 25 with its Vulkan lavapipe driver yourself (Fedora: dnf install mesa-vulkan-drivers; Arch: pacman -S vulkan-swrast)$for_tests, then check with 'npx qllm gpu'"

mesa_at_least_25() { grep -qE '^([0-9]+:)?(2[5-9]|[3-9][0-9])\.'; }
mesa_ok() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | mesa_at_least_25; }
chromium_ok() { command -v chromium >/dev/null 2>&1 || [ -x "${QLLM_CHROMIUM:-/nonexistent}" ]; }

need_mesa=0; mesa_ok || need_mesa=1
need_chromium=0; [ "$tests" -eq 1 ] && ! chromium_ok && need_chromium=1
if [ "$need_mesa" -eq 0 ] && [ "$need_chromium" -eq 0 ]; then
  say "already installed: mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)$([ "$tests" -eq 1 ] && echo ", $(chromium --version 2>/dev/null || echo "Chromium at $QLLM_CHROMIUM")")"
  exit 0
fi

apt_install() { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"; }
"${SUDO[@]}" apt-get update -q

if [ "$need_mesa" -eq 1 ]; then
  candidate=$(apt-cache policy mesa-vulkan-drivers 2>/dev/null | awk '/Candidate:/ {print $2}')
  if echo "$candidate" | mesa_at_least_25; then
    apt_install mesa-vulkan-drivers
  elif [ "${ID:-}" = debian ] && [ "${VERSION_CODENAME:-}" = bookworm ]; then
    # Same mirror as the system's own sources, suite bookworm-backports.
    mirror=$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1 | awk '{print $2}' || true)
    [ -n "$mirror" ] || mirror=$(grep -hoE '^deb +\S+' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}' || true)
    [ -n "$mirror" ] || mirror="http://deb.debian.org/debian"
    echo "deb $mirror bookworm-backports main" | "${SUDO[@]}" tee /etc/apt/sources.list.d/qllm-backports.list >/dev/null
    "${SUDO[@]}" apt-get update -q
    apt_install -t bookworm-backports mesa-vulkan-drivers
  else
    die "$distro offers mesa-vulkan-drivers ${candidate:-(none)}, and qllm needs Mesa >= 25 for lavapipe: install a newer Mesa (Ubuntu: the kisak-mesa PPA; Debian: its backports), or use a machine with a GPU driver, then check with 'npx qllm gpu'"
  fi
fi

if [ "$need_chromium" -eq 1 ]; then
  # Ubuntu's chromium package is a snap wrapper, which does not run in containers.
  if [ "${ID:-}" = ubuntu ]; then
    die "Ubuntu packages Chromium as a snap: install Chromium or Google Chrome another way and set QLLM_CHROMIUM=/path/to/it for the browser tests"
  fi
  apt_install chromium
fi
say "mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)$([ "$tests" -eq 1 ] && echo ", $(chromium --version 2>/dev/null || echo "Chromium at ${QLLM_CHROMIUM:-?}")")"
