// Where a step's tokens go, batched decode (src/models/llama-batch.ts): each
// token of the step is the next token of its own sequence, so position and
// cache region come per token from `seqs`: seqs[t] = (position, first cache
// slot of the token's sequence). Slot = base + position. The other snippet
// is seq_uniform.wgsl.
@group(0) @binding({{BINDING}}) var<storage, read> seqs: array<vec2u>;
fn tok_pos(t: u32) -> u32 { return seqs[t].x; }
fn tok_base(t: u32) -> u32 { return seqs[t].y; }
