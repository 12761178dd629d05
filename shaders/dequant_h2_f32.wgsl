// Two f16 in a u32 (low half first) as f32, without the shader-f16 feature.
fn h2(v: u32) -> vec2<f32> { return unpack2x16float(v); }
