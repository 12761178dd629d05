// Deterministic tokenizer probe strings: a fixed list of known-awkward cases plus
// seeded random concatenations of fragments (unicode scripts, emoji sequences, code,
// whitespace runs, digits, contractions, special-token text). The same seed gives the
// same strings on every machine, so a failure names a reproducible string.
import { rng } from '../gpu/fixture.ts';

export const FIXED_STRINGS: readonly string[] = [
  '', ' ', '  ', '   ', '\t', '\n', '\n\n', '\n\n\n', '\r\n', ' \n ', '\t\t x', 'x   ', '   x', 'a  b   c    d',
  'Hello world', ' Hello world', 'Hello World!', 'HELLO', 'hello\nworld', 'Hello,world', 'Hello.  World.',
  "I'm", "don't", "DON'T", "they'll", "we've", "she's", "it'S", "'s", "'", "''", 'x\'y', 'rock \'n\' roll',
  '0', '7', '12', '123', '1234', '12345', '1234567890', '3.14159', '1,000,000', '-42', '1e-5', '0x1F', '2024-06-01', '12:30:45', '$9.99', '100%',
  'naïve café', 'ßtraße', 'Ωμέγα', 'привет мир', 'مرحبا بالعالم', 'שלום', 'नमस्ते दुनिया', 'สวัสดีครับ', '東京タワーは高い。', '中文测试：我想在apple工作1314151天～',
  '한국어 텍스트', 'e\u0301 vs é', 'ﬁ ﬀ ligatures', 'Å\u00a0nbsp', 'ideographic\u3000space', 'zero\u200bwidth', 'a\u200db',
  '🦙', '🦙🚀', '👨‍👩‍👧‍👦', '🇺🇸🇯🇵', '👍🏽', '❤️', '😶‍🌫️', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', '€100 ✅ ⚠️',
  'def f(x):\n    return x + 1\n', 'if (a && b) {\n\treturn a !== b;\n}', '#include <stdio.h>\nint main(void) { return 0; }',
  'const xs = [1, 2, 3].map((x) => x * 2);', '    indented\n        more\n', '<div class="a">b</div>', '**bold** _it_ `code`', 'https://example.com/a?b=c&d=e#f',
  // case runs (gpt-4o splits upper/lower runs; llama.cpp counts a non-ASCII letter as both)
  'aÉb', 'éCOLE', 'ÉCOLEnormale', 'HTTPServer', 'ÀbcDÉF', "HELLO'S", "Ünïcödé'LL WÖRDS", 'camelCaseÄnd', 'a/\n/\nb', 'x//\r\n', 'SÃO PAULO', 'ZÜRICH', 'LEÓN',
  '<s>', '</s>', '<unk>', '<s>Hello</s>', ' <s> spaced </s> ', '<|im_start|>', '<|im_end|>', '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
  '<|endoftext|>', 'a<|endoftext|>b', '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>', '<|user|>\nHi<|end|>\n<|assistant|>',
  '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hi<|END_OF_TURN_TOKEN|>', '[INST] Hi [/INST]', '<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>', '<pad><mask>',
];

const FRAGMENTS: readonly string[] = [
  // words and contractions
  'the', 'The', 'Hello', 'world', 'HTTP', 'camelCase', 'snake_case', 'ALLCAPS', "don't", "I'M", "'s", "'ll", "'ve", 'x', 'a', 'I',
  // digits (more below, random)
  '0', '00', '1', '42', '2024', '3.5',
  // punctuation
  '.', ',', ';', ':', '!', '?', '-', '--', '...', '(', ')', '[', ']', '{', '}', '<', '>', '/', '\\', '|', '@', '#', '$', '%', '^', '&', '*', '+', '=', '~', '`', '"', "'",
  // whitespace runs
  ' ', ' ', ' ', '  ', '   ', '    ', '\t', '\n', '\n\n', '\r\n', ' \n', '\n ', '\u00a0', '\u3000',
  // other scripts
  'é', 'ñ', 'ü', 'ß', 'Ω', 'Ж', 'привет', 'مرحبا', 'שלום', 'नमस्ते', 'สวัสดี', '東京', '中文', '한국어', 'カタカナ', 'ﬁ', 'e\u0301', 'Å', 'ıİ',
  // emoji sequences
  '🦙', '🚀', '👨‍👩‍👧‍👦', '🇺🇸', '👍🏽', '❤️', '😶‍🌫️', '🤖',
  // special-token text of the families under test
  '<s>', '</s>', '<unk>', '<|im_start|>', '<|im_end|>', '<|endoftext|>', '<|begin_of_text|>', '<|eot_id|>', '<|user|>', '<|end|>',
  '<|START_OF_TURN_TOKEN|>', '[INST]', '<|fim_prefix|>', '<|', '|>',
  // code
  'def f(x):', 'return x+1', 'if (a && b) {', '=>', '!==', '#include <stdio.h>', '0x1F', '1e-5', '//', '/*', '*/', '::', '->', '\tpass',
];

/** `count` strings of 1..12 fragments, sometimes with a random number or a random code point. */
export function randomStrings(count: number, seed = 20260601): string[] {
  const rnd = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const parts: string[] = [];
    const n = 1 + Math.floor(rnd() * 12);
    for (let j = 0; j < n; j++) {
      const r = rnd();
      if (r < 0.1) parts.push(String(Math.floor(rnd() * 10 ** (1 + Math.floor(rnd() * 12)))));
      else if (r < 0.15) parts.push(String.fromCodePoint(randomCodePoint(rnd)));
      else parts.push(pick(FRAGMENTS));
      if (rnd() < 0.3) parts.push(' ');
    }
    out.push(parts.join(''));
  }
  return out;
}

/** A scalar value from a few ranges (Latin-1 .. CJK .. astral), never a lone surrogate. */
function randomCodePoint(rnd: () => number): number {
  const ranges: [number, number][] = [[0x21, 0x7e], [0xa1, 0x24f], [0x370, 0x4ff], [0x600, 0x6ff], [0x900, 0x97f], [0x3040, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0x1f300, 0x1faff]];
  const [lo, hi] = ranges[Math.floor(rnd() * ranges.length)];
  return lo + Math.floor(rnd() * (hi - lo + 1));
}
