// Two f16 in a u32 (low half first) as f32, through the shader-f16 type.
fn h2(v: u32) -> vec2<f32> { return vec2<f32>(bitcast<vec2<f16>>(v)); }
