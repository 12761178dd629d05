// What the server needs of a model beyond the Model contract of api.ts: the
// file's path and names, the chat template (so /apply-template, /props and chat
// requests render it once, the same way), token pieces as bytes (logprobs,
// /tokenize with_pieces) and an upper bound on the bytes one token covers (to
// refuse a prompt that cannot fit before spending seconds encoding it).
// A loaded QllmModel provides all of it; any other Model (the tests' fake, an
// embedder's own) gets what its public methods allow, plus ServerOptions.meta.
import type { ChatMessage, Model, Tool } from '../api.ts';
import type { TokenizerConfig } from '../config.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { DEFAULT_CHAT_TEMPLATE, renderChat } from '../tokenizer/chat.ts';
import { SPM_SPACE } from '../tokenizer/spm.ts';
import { TokenType, byteLevelBytes, byteTokenValue, utf8 } from '../tokenizer/vocab.ts';

export interface ChatTemplate {
  /** Jinja source (the built-in default when the file has none). */
  source: string;
  usedDefault: boolean;
  bosText: string;
  eosText: string;
  /**
   * The prompt text a chat request feeds the model, and whether BOS goes before it (`tools`: src/tools planTools' render).
   * `generationPrompt` false: without the assistant turn's opening (the system messages alone, for a context shift's keep).
   */
  render(messages: ChatMessage[], maxChars?: number, tools?: { tools?: Tool[]; system?: string[] }, generationPrompt?: boolean): { text: string; addBos: boolean };
}

export interface ModelMeta {
  path: string | undefined;
  /** Names the model is listed under: the file name first, then general.name. Any name is accepted. */
  names: string[];
  template: ChatTemplate | undefined;
  /** The tensor type holding most of the weights (Q4_K, F16, ...), if known. */
  quantization?: string;
  /** Upper bound on the UTF-8 bytes one token covers; Infinity when unknown. */
  maxTokenBytes: number;
  tokenize(text: string, o: { addSpecial: boolean; parseSpecial: boolean }): number[];
  /** Text of ids as /detokenize prints it (control tokens included). */
  detokenize(ids: number[]): string;
  /** The bytes a token stands for (control tokens: their text). */
  piece(id: number): Uint8Array;
}

interface QllmLike extends Model {
  config: { tokenizer?: TokenizerConfig };
  tokenizer: Tokenizer;
  file?: { path: string; tensors?: readonly { type: { name: string }; nBytes: number }[] };
}

const isQllm = (m: Model): m is QllmLike => {
  const q = m as Partial<QllmLike>;
  return typeof q.tokenizer?.encode === 'function' && typeof q.tokenizer?.tokenText === 'function' && !!q.config?.tokenizer;
};

export const fileStem = (path: string) => path.replace(/^.*[\\/]/, '').replace(/\.gguf$/i, '');

export function modelMeta(model: Model, path?: string, over: Partial<ModelMeta> = {}): ModelMeta {
  const names = (p: string | undefined) => [...new Set([...(p ? [fileStem(p)] : []), model.info.name].filter(Boolean))];
  if (!isQllm(model)) {
    return {
      path,
      names: names(path),
      template: undefined,
      maxTokenBytes: Number.POSITIVE_INFINITY,
      tokenize: (text, o) => model.tokenize(text, { addBos: o.addSpecial }),
      detokenize: (ids) => model.detokenize(ids),
      piece: (id) => utf8(model.detokenize([id])),
      ...over,
    };
  }
  const tc = model.config.tokenizer as TokenizerConfig;
  const tok = model.tokenizer;
  const p = path ?? model.file?.path;
  return {
    path: p,
    names: names(p),
    template: templateOf(tc),
    quantization: mainType(model.file?.tensors ?? []),
    maxTokenBytes: maxTokenBytes(tc),
    tokenize: (text, o) => tok.encode(text, { addBos: o.addSpecial, parseSpecial: o.parseSpecial }),
    detokenize: (ids) => tok.decode(ids, { special: true }),
    piece: (id) => pieceOf(tok, id),
    ...over,
  };
}

/** The chat template of a vocabulary, rendered as QllmModel.chat renders it. */
export function templateOf(tc: TokenizerConfig): ChatTemplate {
  const text = (id: number | undefined) => (id !== undefined && id >= 0 && id < tc.tokens.length ? tc.tokens[id] : '');
  const usedDefault = tc.chatTemplate === undefined || tc.chatTemplate.trim() === '';
  return {
    source: usedDefault ? DEFAULT_CHAT_TEMPLATE : (tc.chatTemplate as string),
    usedDefault,
    bosText: text(tc.bosId),
    eosText: text(tc.eosId),
    render: (messages, maxChars, tools, generationPrompt = true) => {
      const r = renderChat(tc, messages, { addGenerationPrompt: generationPrompt, maxChars, tools: tools?.tools, system: tools?.system });
      return { text: r.text, addBos: r.addBos };
    },
  };
}

/**
 * The most bytes of text one token can stand for: a normal token's bytes
 * (SentencePiece's ▁ is one space, a byte-level character one byte), another
 * token's text. Encoding never shrinks text (SentencePiece only adds ▁), so a
 * prompt of more than this × the context's bytes cannot fit. No bound
 * (Infinity) where one token can swallow any length: a SentencePiece vocabulary
 * without all 256 byte tokens merges a run of unknown characters into one
 * <unk>, and Phi-3's special tokens swallow the whitespace after them (rstrip).
 */
export function maxTokenBytes(tc: TokenizerConfig): number {
  const name = ((tc as { modelName?: string }).modelName ?? '').toLowerCase();
  if (name.includes('phi-3') || name.includes('phi3')) return Number.POSITIVE_INFINITY;
  const typed = tc.tokenTypes.length === tc.tokens.length;
  let max = 1;
  let byteTokens = 0;
  tc.tokens.forEach((t, i) => {
    if (byteTokenValue(t) !== undefined) byteTokens++;
    const normal = typed && tc.tokenTypes[i] === TokenType.Normal;
    const n = !normal ? Buffer.byteLength(t, 'utf8')
      : tc.model === 'gpt2' ? byteLevelBytes(t).length
      : Buffer.byteLength(t.replaceAll(SPM_SPACE, ' '), 'utf8');
    if (n > max) max = n;
  });
  if (tc.model === 'llama' && byteTokens < 256 && tc.unkId !== undefined) return Number.POSITIVE_INFINITY;
  return max;
}

function mainType(tensors: readonly { type: { name: string }; nBytes: number }[]): string | undefined {
  const bytes = new Map<string, number>();
  for (const t of tensors) bytes.set(t.type.name, (bytes.get(t.type.name) ?? 0) + t.nBytes);
  return [...bytes].sort((a, b) => b[1] - a[1])[0]?.[0];
}

/** A token's bytes, as the tokenizer's own decoder maps it (Tokenizer.piece is private). */
function pieceOf(tok: Tokenizer, id: number): Uint8Array {
  const text = tok.tokenText(id);
  const type = tok.tokenType(id);
  if (type === TokenType.Byte) {
    const b = byteTokenValue(text);
    return b === undefined ? utf8(text) : Uint8Array.of(b);
  }
  if (type !== TokenType.Normal) return utf8(text);
  return tok.kind === 'spm' ? utf8(text.replaceAll(SPM_SPACE, ' ')) : byteLevelBytes(text);
}
