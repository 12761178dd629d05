// One token's output row (matvec): written as it is (rows past the part skipped).
fn store_row(row: u32, v: f32) { if (row < info.rows) { put(yrow(row).x, v); } }
fn store_pair(row: u32, v: f32, other: f32) { store_row(row, v); }
