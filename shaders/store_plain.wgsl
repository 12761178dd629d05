// One token's output row (matvec): written as it is (rows past the part skipped).
fn store_row(row: u32, v: f32) { if (row < info.rows) { put(yrow(row).x, v); } }
