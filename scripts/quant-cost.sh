#!/usr/bin/env bash
# Reproduces README's "How much does quantization cost?" table: perplexity and
# KL divergence of stories260K quantized by llama.cpp (../shared) and by
# `qllm quantize`, against the F32 model, on ../shared/reference/stories260K-sampled.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
S=../shared/models; text=../shared/reference/stories260K-sampled.txt
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
q() { node bin/qllm.mjs "$@" 2>/dev/null; }
q perplexity $S/stories260K.gguf -f $text -c 128 --json --kl-divergence-base $tmp/base.kld > $tmp/base.json
for t in q8_0 q5_1 q5_0 q4_1 q4_0 q4_k_m q3_k_m q2_k; do
  node bin/qllm.mjs quantize $S/stories260K.gguf $tmp/qllm-$t.gguf $t >/dev/null 2>&1
done
echo "| model | made by | size | bits/weight | PPL | PPL ratio | mean KLD | top-1 same |"
echo "|---|---|---|---|---|---|---|---|"
row() { # file label maker
  local info ppl
  info=$(q info "$1" --json); ppl=$(q perplexity "$1" -f $text -c 128 --json --kl-divergence $tmp/base.kld)
  python3 - "$2" "$3" "$info" "$ppl" "$(cat $tmp/base.json)" <<'PY'
import json, sys
label, maker, info, ppl, base = sys.argv[1], sys.argv[2], *map(json.loads, sys.argv[3:])
kld = f"{ppl['kld_mean']:.5f}" if 'kld_mean' in ppl else '0'
top = f"{100*ppl['top1_agreement']:.1f}%" if 'top1_agreement' in ppl else '100%'
print(f"| {label} | {maker} | {info['memory']['weights_stored_bytes']/1024:.0f} KiB | {info['bits_per_weight']:.2f} | {ppl['ppl']:.4f} | {ppl['ppl']/base['ppl']:.4f} | {kld} | {top} |")
PY
}
row $S/stories260K.gguf F32 llama.cpp
for t in q8_0 q4_1 q4_0 q4_k_m; do row $S/stories260K-$t.gguf "${t^^}" llama.cpp; done
for t in q8_0 q5_1 q5_0 q4_1 q4_0 q4_k_m q3_k_m q2_k; do row $tmp/qllm-$t.gguf "${t^^}" "qllm quantize"; done
