// A grammar bound to a vocabulary for one generation: which tokens may come next,
// and the state after each sampled token.
//
// Sampling follows llama.cpp's common_sampler: sample from the unconstrained chain,
// check only that token (a walk over its bytes); if the grammar rejects it, set the
// logits of every disallowed token to -Infinity and sample again through the whole
// chain. The full mask walks the vocabulary trie through the grammar's cached
// transitions, pruning a subtree as soon as its prefix is rejected, and is cached on
// the grammar state (a JSON string's body, say, is one state however long it runs).
// End-of-generation tokens are allowed only where the grammar is complete.
import { UsageError } from '../errors.ts';
import { type Cursor, continuationOk, feedToken, type Grammar, type StateSet, startCursor } from './matcher.ts';
import { TOKEN, TOKEN_NOT } from './parse.ts';
import type { TokenVocab } from './vocab.ts';

/** Cached masks per generation, in bytes (oldest dropped first). */
const MASK_CACHE_BYTES = 64 * 2 ** 20;

export interface LogitSampler {
  sample(logits: Float32Array, history: readonly number[]): number;
}

export class GrammarConstraint {
  private cur: Cursor;
  private readonly words: number;
  private readonly cached: StateSet[] = [];
  private scratch: Float32Array | undefined;
  /** The last bytes accepted, for messages. */
  private tail: number[] = [];

  constructor(readonly grammar: Grammar, readonly vocab: TokenVocab) {
    this.cur = startCursor(grammar);
    this.words = (vocab.size + 31) >>> 5;
    for (const s of grammarTokenIds(grammar)) {
      if (s >= vocab.size) throw new UsageError(`grammar token <[${s}]> is outside this model's vocabulary of ${vocab.size} tokens`);
    }
  }

  /** Complete, and nothing else can follow: generation should end here. */
  get done(): boolean {
    return this.cur.set.final && this.cur.rem === 0;
  }

  /** An end-of-generation token may be sampled now. */
  get eogAllowed(): boolean {
    return this.cur.set.complete && this.cur.rem === 0;
  }

  allows(id: number): boolean {
    if (!(id >= 0 && id < this.vocab.size)) return false;
    if (this.vocab.eog[id]) return this.eogAllowed;
    return feedToken(this.grammar, this.cur, id, this.vocab.bytes[id]) !== null;
  }

  /** Moves past a sampled token (an end-of-generation token changes nothing). */
  accept(id: number): void {
    if (id >= 0 && id < this.vocab.size && this.vocab.eog[id]) {
      if (!this.eogAllowed) throw new UsageError(`end-of-generation token ${id} is not allowed before the grammar is complete`);
      return;
    }
    const next = feedToken(this.grammar, this.cur, id, this.vocab.bytes[id]);
    if (!next) throw new UsageError(`token ${id} is not allowed by the grammar after ${this.context()}`);
    this.cur = next;
    const b = this.vocab.bytes[id];
    if (b) this.tail = [...this.tail, ...b].slice(-32);
  }

  /**
   * Samples with the grammar: the sampler's pick if the grammar allows it, else a
   * second draw from logits with every disallowed token at -Infinity.
   */
  sample(sampler: LogitSampler, logits: Float32Array, history: readonly number[]): number {
    const first = sampler.sample(logits, history);
    if (this.allows(first)) return first;
    const m = this.mask();
    if (!this.scratch || this.scratch.length !== logits.length) this.scratch = new Float32Array(logits.length);
    const masked = this.scratch;
    masked.fill(Number.NEGATIVE_INFINITY);
    let any = false;
    for (let w = 0; w < this.words; w++) {
      let bits = m[w];
      while (bits !== 0) {
        const low = bits & -bits;
        const i = (w << 5) + (31 - Math.clz32(low));
        masked[i] = logits[i];
        any = true;
        bits ^= low;
      }
    }
    if (!any) throw new UsageError(`the grammar cannot continue with this model's vocabulary after ${this.context()}: no token spells what it allows next`);
    return sampler.sample(masked, history);
  }

  /** The allowed-token bitset for the current state (bit i of word i >> 5). */
  mask(): Uint32Array {
    const { set, rem } = this.cur;
    if (rem === 0 && set.mask) return set.mask;
    const bits = new Uint32Array(this.words);
    this.walk(bits);
    if (this.eogAllowed) for (let id = 0; id < this.vocab.size; id++) if (this.vocab.eog[id]) bits[id >>> 5] |= 1 << (id & 31);
    if (rem === 0) {
      set.mask = bits;
      this.cached.push(set);
      if (this.cached.length * this.words * 4 > MASK_CACHE_BYTES) this.cached.shift()!.mask = undefined;
    }
    return bits;
  }

  private context(): string {
    const text = new TextDecoder().decode(Uint8Array.from(this.tail));
    return this.tail.length ? JSON.stringify(text) : 'the start';
  }

  /** Marks every token whose bytes the grammar accepts from the current cursor. */
  private walk(bits: Uint32Array): void {
    const g = this.grammar;
    const { byteOf, end, tokStart, toks } = { byteOf: this.vocab.trieByte, end: this.vocab.trieEnd, tokStart: this.vocab.tokStart, toks: this.vocab.toks };
    const visit = (n: number, set: StateSet, value: number, rem: number, len: number): void => {
      for (let c = n + 1; c < end[n]; c = end[c]) {
        const b = byteOf[c];
        let s = set;
        let v: number;
        let r: number;
        let l: number;
        if (rem === 0) {
          if (b < 0x80) {
            s = set.ascii[b] ?? g.step(set, b);
            if (s.dead) continue;
            v = 0; r = 0; l = 0;
          } else if (b >= 0xc2 && b <= 0xdf) { v = b & 0x1f; r = 1; l = 2; }
          else if (b >= 0xe0 && b <= 0xef) { v = b & 0x0f; r = 2; l = 3; }
          else if (b >= 0xf0 && b <= 0xf4) { v = b & 0x07; r = 3; l = 4; }
          else continue;
        } else {
          if (!continuationOk(b, value, rem, len)) continue;
          v = value * 64 + (b & 0x3f);
          r = rem - 1;
          l = len;
          if (r === 0) {
            s = g.step(set, v);
            if (s.dead) continue;
            v = 0; l = 0;
          }
        }
        if (r > 0 && !g.partialOk(s, v, r, l)) continue;
        for (let k = tokStart[c]; k < tokStart[c + 1]; k++) {
          const id = toks[k];
          bits[id >>> 5] |= 1 << (id & 31);
        }
        if (end[c] > c + 1) visit(c, s, v, r, l);
      }
    };
    const { set, value, rem, len } = this.cur;
    visit(0, set, value, rem, len);
    if (rem === 0 && set.tokenStacks.length > 0) this.tokenElements(bits, set);
  }

  /** <[id]> allows that token; !<[id]> every token but it (never an end-of-generation one). */
  private tokenElements(bits: Uint32Array, set: StateSet): void {
    const g = this.grammar;
    const excluded = new Set<number>();
    for (const s of set.tokenStacks) {
      const v = g.values[s.pos];
      if (g.types[s.pos] === TOKEN) {
        if (v >= 0 && v < this.vocab.size && !this.vocab.eog[v]) bits[v >>> 5] |= 1 << (v & 31);
      } else excluded.add(v);
    }
    if (excluded.size === 0) return;
    const keep = excluded.size === 1 ? [...excluded][0] : -1;
    const wasAllowed = keep >= 0 && keep < this.vocab.size && (bits[keep >>> 5] >>> (keep & 31)) & 1;
    for (let id = 0; id < this.vocab.size; id++) if (!this.vocab.eog[id]) bits[id >>> 5] |= 1 << (id & 31);
    if (keep >= 0 && keep < this.vocab.size && !wasAllowed) bits[keep >>> 5] &= ~(1 << (keep & 31));
  }
}

/** Token ids named by <[id]> elements, for the range check. */
function grammarTokenIds(g: Grammar): number[] {
  const out: number[] = [];
  for (let p = 0; p < g.types.length; p++) if ((g.types[p] === TOKEN || g.types[p] === TOKEN_NOT) && g.values[p] >= 0) out.push(g.values[p]);
  return out;
}
