// Integer and number ranges as GBNF.
//   buildMinMaxInt: a port of llama.cpp's build_min_max_int (common/json-schema-to-grammar.cpp),
//     same text: integers in [min, max] with at most 16 digits, no leading zeros.
//   numberRange: qllm's addition for `type: number` with integer bounds: the integer
//     part's range from buildMinMaxInt, an optional fraction, and the bound itself only
//     with a zero fraction (no exponent when bounded; -0 only where 0 is in range).

const chr = (c: string, d: number) => String.fromCharCode(c.charCodeAt(0) + d);

/** Appends to `out` the GBNF for integers in [min, max] (undefined = unbounded on that side). */
export function buildMinMaxInt(min: number | undefined, max: number | undefined, out: string[], decimalsLeft = 16, topLevel = true): void {
  const digitRange = (from: string, to: string) => {
    out.push('[');
    if (from === to) out.push(from);
    else out.push(from, '-', to);
    out.push(']');
  };
  const moreDigits = (minD: number, maxD: number) => {
    out.push('[0-9]');
    if (minD === maxD && minD === 1) return;
    out.push('{', String(minD));
    if (maxD !== minD) out.push(',', String(maxD));
    out.push('}');
  };
  const uniformRange = (from: string, to: string): void => {
    let i = 0;
    while (i < from.length && i < to.length && from[i] === to[i]) i++;
    if (i > 0) out.push('"', from.slice(0, i), '"');
    if (i < from.length && i < to.length) {
      if (i > 0) out.push(' ');
      const subLen = from.length - i - 1;
      if (subLen > 0) {
        const fromSub = from.slice(i + 1);
        const toSub = to.slice(i + 1);
        const zeros = '0'.repeat(subLen);
        const nines = '9'.repeat(subLen);
        let toReached = false;
        out.push('(');
        if (fromSub === zeros) {
          digitRange(from[i], chr(to[i], -1));
          out.push(' ');
          moreDigits(subLen, subLen);
        } else {
          out.push('[', from[i], '] ', '(');
          uniformRange(fromSub, nines);
          out.push(')');
          if (from.charCodeAt(i) < to.charCodeAt(i) - 1) {
            out.push(' | ');
            if (toSub === nines) {
              digitRange(chr(from[i], 1), to[i]);
              toReached = true;
            } else digitRange(chr(from[i], 1), chr(to[i], -1));
            out.push(' ');
            moreDigits(subLen, subLen);
          }
        }
        if (!toReached) {
          out.push(' | ');
          digitRange(to[i], to[i]);
          out.push(' ');
          uniformRange(zeros, toSub);
        }
        out.push(')');
      } else {
        out.push('[', from[i], '-', to[i], ']');
      }
    }
  };

  if (min !== undefined && max !== undefined) {
    if (min < 0 && max < 0) {
      out.push('"-" (');
      buildMinMaxInt(-max, -min, out, decimalsLeft, true);
      out.push(')');
      return;
    }
    if (min < 0) {
      out.push('"-" (');
      buildMinMaxInt(0, -min, out, decimalsLeft, true);
      out.push(') | ');
      min = 0;
    }
    let minS = String(min);
    const maxS = String(max);
    for (let digits = minS.length; digits < maxS.length; digits++) {
      uniformRange(minS, '9'.repeat(digits));
      minS = `1${'0'.repeat(digits)}`;
      out.push(' | ');
    }
    uniformRange(minS, maxS);
    return;
  }
  const less = Math.max(decimalsLeft - 1, 1);
  if (min !== undefined) {
    if (min < 0) {
      out.push('"-" (');
      buildMinMaxInt(undefined, -min, out, decimalsLeft, false);
      out.push(') | [0] | [1-9] ');
      moreDigits(0, decimalsLeft - 1);
    } else if (min === 0) {
      if (topLevel) {
        out.push('[0] | [1-9] ');
        moreDigits(0, less);
      } else moreDigits(1, decimalsLeft);
    } else if (min <= 9) {
      const c = String(min);
      const start = topLevel ? '1' : '0';
      if (c > start) {
        digitRange(start, chr(c, -1));
        out.push(' ');
        moreDigits(1, less);
        out.push(' | ');
      }
      digitRange(c, '9');
      out.push(' ');
      moreDigits(0, less);
    } else {
      const minS = String(min);
      const len = minS.length;
      const c = minS[0];
      if (c > '1') {
        digitRange(topLevel ? '1' : '0', chr(c, -1));
        out.push(' ');
        moreDigits(len, less);
        out.push(' | ');
      }
      digitRange(c, c);
      out.push(' (');
      buildMinMaxInt(Number(minS.slice(1)), undefined, out, less, false);
      out.push(')');
      if (c < '9') {
        out.push(' | ');
        digitRange(chr(c, 1), '9');
        out.push(' ');
        moreDigits(len - 1, less);
      }
    }
    return;
  }
  if (max !== undefined) {
    if (max >= 0) {
      if (topLevel) {
        out.push('"-" [1-9] ');
        moreDigits(0, less);
        out.push(' | ');
      }
      buildMinMaxInt(0, max, out, decimalsLeft, true);
    } else {
      out.push('"-" (');
      buildMinMaxInt(-max, undefined, out, decimalsLeft, false);
      out.push(')');
    }
    return;
  }
  throw new Error('buildMinMaxInt needs a bound');
}

const intRange = (a: number, b: number | undefined) => {
  const out: string[] = [];
  buildMinMaxInt(a, b, out);
  return out.join('');
};

/**
 * Non-negative numbers m with integer bounds: L < or <= m < or <= H (H undefined =
 * no upper bound). '' when empty.
 */
function magnitude(L: number, lEx: boolean, H: number | undefined, hEx: boolean): string {
  const parts: string[] = [];
  if (lEx && (H === undefined || L < H)) parts.push(`"${L}" "." [0-9]{0,15} [1-9]`);
  const lowAny = lEx ? L + 1 : L;
  const highAny = H === undefined ? undefined : H - 1;
  if (highAny === undefined || lowAny <= highAny) parts.push(`(${intRange(lowAny, highAny)}) ("." [0-9]{1,16})?`);
  if (H !== undefined && !hEx && (lEx ? H > L : H >= L)) parts.push(`"${H}" ("." "0"{1,16})?`);
  return parts.join(' | ');
}

/**
 * A JSON number within integer bounds (undefined = open; ex = exclusive), or ''
 * when no number satisfies them.
 */
export function numberRange(lo: number | undefined, loEx: boolean, hi: number | undefined, hiEx: boolean): string {
  const alts: string[] = [];
  if (hi === undefined || hi > 0 || (hi === 0 && !hiEx)) {
    const nonneg = lo !== undefined && lo >= 0;
    const m = magnitude(nonneg ? lo : 0, nonneg ? loEx : false, hi, hiEx);
    if (m) alts.push(m);
  }
  if (lo === undefined || lo < 0) {
    const neg = hi !== undefined && hi < 0;
    const m = magnitude(neg ? -hi : 0, neg ? hiEx : true, lo === undefined ? undefined : -lo, lo === undefined ? false : loEx);
    if (m) alts.push(`"-" (${m})`);
  }
  return alts.join(' | ');
}
