// The hooks of dequant_x_norm.wgsl for the other x loads of a matvec, inert:
// this thread's part of a sum over x, what the dot products are multiplied
// by given the whole sum (1: nothing), and the reset before a row group.
fn x_part() -> f32 { return 0.0; }
fn x_scale(total: f32) -> f32 { return 1.0; }
fn x_begin() {}
