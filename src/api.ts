// Public types of the library API (`import { loadModel } from 'qllm'`).
// The implementation lives in src/model-api.ts; this file is the contract that the
// CLI, the server (src/serve) and embedding apps program against.

export interface LoadOptions {
  /** KV-cache length in tokens; capped by the model's context length. Default min(model, 2048). */
  contextLength?: number;
  /** Called while weights upload: fraction 0..1 and a short label. */
  onProgress?: (fraction: number, label: string) => void;
  /** Refuse to load if GPU bytes needed exceed this (bytes). */
  memoryBudget?: number;
  signal?: AbortSignal;
  /** Force the f32 path even when the adapter has shader-f16. */
  noF16?: boolean;
  /**
   * KV cache type: 'f16' (default; 'f32' where the adapter lacks shader-f16 or
   * with noF16), 'f32', or llama.cpp's block types 'q8_0' (0.53× f16's bytes)
   * and 'q4_0' (0.28×), which need nKvHeads × headDim to be a multiple of 32.
   */
  kvType?: 'f16' | 'f32' | 'q8_0' | 'q4_0';
  /** Disable subgroup kernels even when the adapter has them. */
  noSubgroups?: boolean;
  /**
   * Conversations that can generate at the same time (default 1, at most 64):
   * the KV cache holds this many sequences of contextLength positions each
   * (parallel × the cache memory). The model's own generate()/chat() use the
   * first; createSession() hands out the others. Concurrent generations share
   * each decode step (one batched forward pass for all of them).
   */
  parallel?: number;
}

export interface SamplerOptions {
  /** 0 = greedy. Default 0.8. */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repeatPenalty?: number;
  /** Tokens of history the repetition penalty looks at. Default 64. */
  repeatLastN?: number;
  seed?: number;
}

export interface GenerateOptions extends SamplerOptions {
  /** Maximum new tokens. Default 256 (capped by the context). */
  maxTokens?: number;
  /** Stop strings; the text stops before the first match. */
  stop?: string[];
  signal?: AbortSignal;
  /** Add BOS per the model's metadata. Default true for generate(), per template for chat(). */
  addBos?: boolean;
  /**
   * Report each generated token's log-probability (Token.logprob) and this many
   * most likely alternatives (Token.topLogprobs, 0..20): log-softmax of the
   * model's logits before repetition penalty, temperature and filters. Reading
   * the logits back costs a little per token (greedy decoding otherwise picks on the GPU).
   */
  logprobs?: number;
  /**
   * Constrain the output to a GBNF grammar (llama.cpp's format, start rule `root`):
   * only tokens the grammar can still accept are sampled, end-of-generation only
   * where it is complete, and generation ends when nothing else can follow. A bad
   * grammar is a UsageError before generation. Not together with jsonSchema.
   */
  grammar?: string;
  /**
   * Constrain the output to JSON valid under this JSON Schema (an object or its JSON
   * text), compiled to a grammar as llama.cpp's json-schema-to-grammar does; `{}` is
   * any JSON object. Keywords a grammar cannot enforce are a UsageError.
   */
  jsonSchema?: object | string | boolean;
  /**
   * When the context is full, keep going as llama.cpp's context shift does: keep
   * the first `keepTokens`, drop half of the rest (the oldest), and recompute
   * the kept tokens' K/V at their new positions. A prompt longer than the
   * context is cut the same way instead of refused. maxTokens then bounds the
   * reply instead of the context. Default true for chat(), false for generate().
   */
  contextShift?: boolean;
  /**
   * Tokens at the start never dropped by a context shift (at most half the
   * context); -1 keeps the whole prompt, as llama.cpp's n_keep -1. Default:
   * chat(): the system prompt's (with the tools it shows); generate(): the BOS.
   */
  keepTokens?: number;
}

export interface EmbedOptions {
  /** How token states become one vector. Default: the file's pooling_type; 'last' for a model without one. */
  pooling?: 'mean' | 'cls' | 'last';
  /** Scale each vector to unit length (default true, as llama-server does). */
  normalize?: boolean;
  /** Add BOS/EOS per the model's metadata (default true). */
  addSpecial?: boolean;
}

export interface Embedding {
  /** [dim] */
  embedding: number[];
  /** Tokens the text took. */
  tokens: number;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  /** The text ('' for an assistant turn that only made tool calls). */
  content: string;
  /** assistant: the tool calls this turn made (as Generation.message returned them). */
  toolCalls?: ToolCall[];
  /** tool: the id of the call this message answers. */
  toolCallId?: string;
  /** tool: the function's name (some templates show it). */
  name?: string;
  /**
   * assistant: the thinking before the answer (a reasoning model's, as chat()
   * split it). The template gets it as reasoning_content (gpt-oss's as thinking)
   * and decides whether to show it; most drop it from earlier turns.
   */
  reasoning?: string;
}

/** A function the model may call (OpenAI's shape). */
export interface Tool {
  type: 'function';
  function: {
    name: string;
    description?: string;
    /** JSON Schema of the arguments object. Default: any object. */
    parameters?: object;
  };
}

/** A call the model made. */
export interface ToolCall {
  /** Unique per call; pass it back as the tool message's toolCallId. */
  id: string;
  name: string;
  /**
   * JSON text of the arguments object, as the model wrote it. With toolChoice
   * 'required' or a named function it always parses and validates against the
   * function's parameters (the call is grammar-constrained); with 'auto' check it.
   */
  arguments: string;
}

/**
 * 'auto' (default): the model decides; 'none': no tools are shown, no calls parsed;
 * 'required': it must call one (or more, with parallelToolCalls); or one named function.
 */
export type ToolChoice = 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } };

/**
 * chat() options. With `tools`, the tools go to the model's chat template (or, for a
 * template that cannot show them, into the system prompt with llama.cpp's generic
 * JSON call format), and Generation.message splits the reply into text and calls
 * in the syntax the template's family uses (Llama 3.x JSON, Qwen/Hermes
 * <tool_call>, Mistral [TOOL_CALLS], Granite <|tool_call|>, or generic JSON).
 * The streamed Token.text shows the call syntax as generated.
 */
export interface ChatOptions extends GenerateOptions {
  tools?: Tool[];
  toolChoice?: ToolChoice;
  /** Allow several calls in one reply. Default false (as llama.cpp's server). */
  parallelToolCalls?: boolean;
  /**
   * A reasoning model's thinking (gpt-oss's analysis channel, a <think> block):
   * 'auto' (default) splits it from the answer, so Token.text and the message's
   * content hold the answer and Token.reasoning / message.reasoning the thinking;
   * 'none' leaves the reply as generated. Other models are not affected.
   */
  reasoningFormat?: 'auto' | 'none';
}

export interface GpuBytes { weights: number; kv: number; activations: number; other: number; total: number }

export interface GenerationStats {
  promptTokens: number;
  generatedTokens: number;
  /** ms from the call to the first generated token (prefill included). */
  ttftMs: number;
  prefillTokPerS: number;
  decodeTokPerS: number;
  stopReason: 'eos' | 'stop' | 'length' | 'abort';
  /** Prompt tokens whose K/V were reused from the previous generation (not run again). */
  cachedTokens?: number;
  /** Context shifts this generation made (GenerateOptions.contextShift), and prompt tokens cut to fit. */
  contextShifts?: number;
  droppedPromptTokens?: number;
}

export interface TokenLogprob { tokenId: number; logprob: number }

export interface Token {
  text: string;
  /** -1 for text flushed at the end that belongs to no single token. */
  tokenId: number;
  /** With GenerateOptions.logprobs: this token's log-probability. */
  logprob?: number;
  /** With GenerateOptions.logprobs: the most likely tokens at this step, most likely first (ties: lower id first). */
  topLogprobs?: TokenLogprob[];
  /**
   * chat() on a reasoning model: the part of the thinking this token completed
   * (absent when none); `text` is then only the answer's part. A tag such as
   * </think> is held back until the next token shows whether it is one, so a
   * token's share may be '' and the last may come with tokenId -1.
   */
  reasoning?: string;
}

/** An async iterable of tokens that exposes the final stats once iteration ends. */
export interface Generation extends AsyncIterable<Token> {
  /** Resolves when generation ends. */
  readonly stats: Promise<GenerationStats>;
  /** Token ids of the prompt as fed to the model. */
  readonly promptIds: Promise<number[]>;
  /**
   * Resolves when generation ends: the reply as an assistant message, ready to
   * append to the conversation. After chat() with tools its content is the text
   * outside the calls and toolCalls the calls made (absent when none); otherwise
   * content is the whole text. A reasoning model's thinking is apart, in reasoning
   * (ChatOptions.reasoningFormat).
   */
  readonly message: Promise<ChatMessage>;
}

export interface ModelInfo {
  name: string;
  architecture: string;
  contextLength: number;
  vocabSize: number;
  fileBytes: number;
  /** Bytes of the weights if stored as f16, for the memory comparison. */
  f16WeightBytes: number;
  /** The KV cache's type (LoadOptions.kvType as resolved) and its bytes were it f16, for the same comparison. */
  kvType?: string;
  kvF16Bytes?: number;
  adapter: string;
  /** Sequences the KV cache holds (LoadOptions.parallel): at most this many sessions generate at once. */
  parallel?: number;
}

/**
 * A conversation with its own region of the KV cache (Model.createSession()):
 * generate()/chat() as the model's, with the same one-at-a-time rule within
 * the session, while other sessions generate concurrently. Sampling options,
 * seeds, grammars and logprobs stay per request.
 */
export interface ModelSession {
  generate(prompt: string, opts?: GenerateOptions): Generation;
  chat(messages: ChatMessage[], opts?: ChatOptions): Generation;
  /** How many leading tokens of `ids` this session's cache holds (what a prompt starting with them would not recompute). */
  cachedTokens(ids: number[]): number;
  /** Forgets the cache. */
  reset(): void;
  /** Hands the sequence back to the model (createSession() can give it out again); the model's own session ignores it. */
  dispose(): void;
}

export interface Model {
  readonly info: ModelInfo;
  /**
   * Streams a completion. A model runs one generation at a time, and the newest
   * wins: when a generation takes its first token, an older one still unfinished
   * is superseded. Its stats resolve at once (stopReason 'abort') and its next
   * next() throws a UsageError saying so; the newer one waits only for a step
   * already running on the GPU. So an iterator dropped without return() never
   * blocks the model. To run several requests, queue them, or load with
   * LoadOptions.parallel and give each its own createSession() (as `qllm serve` does).
   */
  generate(prompt: string, opts?: GenerateOptions): Generation;
  /**
   * Like generate(), on the model's chat template; the same one-at-a-time rule.
   * With opts.tools the model can call functions: run each of (await gen.message).toolCalls,
   * append that message and a { role: 'tool', toolCallId, content } per call, and chat again.
   */
  chat(messages: ChatMessage[], opts?: ChatOptions): Generation;
  tokenize(text: string, opts?: { addBos?: boolean }): number[];
  detokenize(ids: number[]): string;
  /**
   * One unit-length vector per text, from the final-normed hidden states pooled
   * as the file says (embedding models such as Qwen3-Embedding; a chat model
   * pools its last token). Supersedes a generation in progress, as generate() does.
   */
  embed(texts: string | string[], opts?: EmbedOptions): Promise<Embedding[]>;
  memory(): GpuBytes;
  dispose(): void;
  /**
   * Another conversation that generates concurrently with the model's own and
   * the other sessions (a model loaded with LoadOptions.parallel N has N−1 to
   * give out; a UsageError when none is free). Concurrent generations are
   * batched into shared decode steps.
   */
  createSession?(): ModelSession;
  /** The model's own generate()/chat() as a session (the first sequence). */
  readonly mainSession?: ModelSession;
}
