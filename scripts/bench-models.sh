#!/usr/bin/env bash
# Reproduces docs/PERFORMANCE.md's qllm rows: makes the synthetic s110m and
# tinyllama models (Q4_0, Q4_K_M, Q8_0) if they are missing, then runs
# `qllm bench` on each and prints one JSON line per model.
# Usage: bash scripts/bench-models.sh [-p 64] [-n 32] [-r 3]   (extra flags go to qllm bench)
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
[ $# -gt 0 ] || set -- -r 3
vocab=../shared/models/ggml-vocab-llama-spm.gguf
[ -f "$vocab" ] && vocabflag=(--vocab "$vocab") || vocabflag=(--vocab 32000)
for preset in s110m tinyllama; do
  for type in q4_0 q4_k_m q8_0; do
    f="models/$preset-$type.gguf"
    [ -f "$f" ] || npx tsx scripts/make-model.ts --preset "$preset" --type "$type" "${vocabflag[@]}" -o "$f" >&2
    node bin/qllm.mjs bench "$f" --json "$@" 2>/dev/null
  done
done
