// The server's slots (`qllm serve --parallel N`, default 4): N conversations
// that generate at the same time, each with its own region of the model's KV
// cache (Model.createSession; the model's own session is slot 0). The model's
// scheduler batches their decode steps, so a request joins at the next step
// and leaves when it ends (continuous batching); the FIFO in queue.ts hands
// the slots out.
//
// The prompt cache: a free slot's cache still holds its last conversation, so
// a new request picks, as llama-server does (server-context.cpp
// get_available_slot), the free slot whose cache shares the longest prefix with
// its prompt, if that prefix is more than SIMILARITY of the prompt; else the
// least recently used free slot. The session then feeds only the rest of the
// prompt, and reports the reused tokens (GenerationStats.cachedTokens).
import type { ChatMessage, ChatOptions, GenerateOptions, Generation, Model } from '../api.ts';
import type { Pick } from './queue.ts';

/** llama-server's --slot-prompt-similarity default: the prefix must be more than this fraction of the prompt. */
export const SIMILARITY = 0.1;

export interface Slot {
  readonly id: number;
  generate(prompt: string, opts: GenerateOptions): Generation;
  chat(messages: ChatMessage[], opts: ChatOptions): Generation;
  /** How many leading tokens of `ids` its cache holds (undefined: the model cannot tell). */
  cachedTokens?(ids: number[]): number;
  /** When it last finished a request (performance.now(); 0 never), for the LRU choice. */
  lastUsed: number;
}

/** min(parallel, what the model holds) slots: the model's own session, then sessions it creates. */
export function createSlots(model: Model, parallel: number): Slot[] {
  const n = model.createSession ? Math.max(1, Math.min(parallel, model.info.parallel ?? 1)) : 1;
  const sessions = [model.mainSession ?? model, ...Array.from({ length: n - 1 }, () => model.createSession!())];
  return sessions.map((s, id) => ({
    id,
    generate: (prompt, opts) => s.generate(prompt, opts),
    chat: (messages, opts) => s.chat(messages, opts),
    cachedTokens: 'cachedTokens' in s ? (ids) => s.cachedTokens(ids) : undefined,
    lastUsed: 0,
  }));
}

/** Index into `free` of the slot for a prompt of `ids` (undefined: not known, the LRU one). */
export function chooseSlot(slots: readonly Slot[], free: readonly number[], ids?: readonly number[]): number {
  let best = -1;
  let bestSim = 0;
  if (ids?.length) {
    for (const [i, s] of free.entries()) {
      const sim = (slots[s].cachedTokens?.([...ids]) ?? 0) / ids.length;
      if (sim > bestSim && sim > SIMILARITY) {
        best = i;
        bestSim = sim;
      }
    }
  }
  if (best >= 0) return best;
  let lru = 0;
  for (const [i, s] of free.entries()) if (slots[s].lastUsed < slots[free[lru]].lastUsed) lru = i;
  return lru;
}

/** The queue's pick for a request whose prompt tokenizes to `ids()` (called only when there is a choice). */
export function pickFor(slots: readonly Slot[], ids?: () => number[]): Pick {
  return (free) => {
    if (free.length < 2) return 0;
    let prompt: number[] | undefined;
    try {
      prompt = ids?.();
    } catch {
      prompt = undefined; // the generation reports a prompt it cannot encode; the choice falls back to LRU
    }
    return chooseSlot(slots, free, prompt);
  };
}
