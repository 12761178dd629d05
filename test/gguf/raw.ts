// A byte-level GGUF builder for hand-made (often deliberately broken) files:
// unlike the writer it checks nothing, so tests can write any field value.
export class Raw {
  private parts: number[] = [];
  u8(v: number) { this.parts.push(v & 255); return this; }
  u32(v: number) { for (let i = 0; i < 4; i++) this.parts.push((v >>> (8 * i)) & 255); return this; }
  u64(v: number | bigint) {
    let b = BigInt(v);
    for (let i = 0; i < 8; i++) { this.parts.push(Number(b & 255n)); b >>= 8n; }
    return this;
  }
  f32(v: number) { const b = new Uint8Array(new Float32Array([v]).buffer); this.parts.push(...b); return this; }
  bytes(b: ArrayLike<number>) { for (let i = 0; i < b.length; i++) this.parts.push(b[i]!); return this; }
  str(s: string) { const b = new TextEncoder().encode(s); return this.u64(b.length).bytes(b); }
  header(nTensors: number, nKv: number, version = 3) { return this.bytes([0x47, 0x47, 0x55, 0x46]).u32(version).u64(nTensors).u64(nKv); }
  kvU32(key: string, v: number) { return this.str(key).u32(4).u32(v); }
  kvStr(key: string, v: string) { return this.str(key).u32(8).str(v); }
  tensor(name: string, dims: (number | bigint)[], type: number, offset: number | bigint) {
    this.str(name).u32(dims.length);
    for (const d of dims) this.u64(d);
    return this.u32(type).u64(offset);
  }
  get length() { return this.parts.length; }
  padTo(align: number) { while (this.parts.length % align) this.parts.push(0); return this; }
  zeros(n: number) { for (let i = 0; i < n; i++) this.parts.push(0); return this; }
  done(): Uint8Array { return Uint8Array.from(this.parts); }
}
