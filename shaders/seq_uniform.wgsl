// Where a step's tokens go (attention, rope and their block-type variants
// include one of two snippets): here every token of the step belongs to ONE
// sequence, token t at position params.pos + t, and that sequence's KV cache
// region starts at cache slot params.base (sequence s of a model loaded with
// several: s · contextLength; 0 for the only one). Slot = base + position.
fn tok_pos(t: u32) -> u32 { return params.pos + t; }
fn tok_base(t: u32) -> u32 { return params.base; }
