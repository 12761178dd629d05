#!/usr/bin/env bash
# System packages qllm's tests need on Debian bookworm (CI, fresh dev machines):
#   - Mesa lavapipe >= 25 from bookworm-backports: a Vulkan WebGPU adapter on the CPU
#     (stock bookworm Mesa 22 has no usable Vulkan for Dawn);
#   - Debian's chromium for the chat-page browser test.
# Idempotent: skips what is already installed. Needs root (or sudo).
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

mesa_ok() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -qE '^(2[5-9]|[3-9][0-9])\.'; }
need=()
mesa_ok || need+=(mesa)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && { echo "setup-system: lavapipe and chromium already installed"; exit 0; }

if ! mesa_ok; then
  # Same mirror as the system's own sources, suite bookworm-backports.
  mirror=$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1 | awk '{print $2}')
  [ -n "$mirror" ] || mirror=$(grep -hoE '^deb +\S+' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}')
  [ -n "$mirror" ] || mirror="http://deb.debian.org/debian"
  echo "deb $mirror bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/qllm-backports.list >/dev/null
fi
$SUDO apt-get update -q
mesa_ok || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -t bookworm-backports mesa-vulkan-drivers
command -v chromium >/dev/null 2>&1 || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
echo "setup-system: mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers), $(chromium --version 2>/dev/null || echo 'no chromium')"
