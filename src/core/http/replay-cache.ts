/**
 * The replay cache of request authentication: the (keyid, nonce) pairs of the signed requests a node
 * accepted, each kept until the moment its signature stops being acceptable, so that a request can be
 * accepted once and only once.
 *
 * It is bounded and fails closed: at its cap it refuses new pairs (AUTH_REPLAY_CACHE_FULL) rather than
 * forgetting a pair early, because a forgotten pair is a replay that would be accepted. Entries leave
 * only when they expire, in expiry order (a binary heap). Time is whatever the caller passes, in Unix
 * seconds; the cache keeps the highest time it was given and never lets time go backwards, so a clock
 * stepped back cannot bring back a signature whose pair was already dropped (docs/http-auth.md).
 */
import { LedgerError } from "../errors.ts";

/**
 * Default cap on entries: 500,000 pairs, about 120 to 155 MB at the 240 to 310 bytes per entry measured
 * on Node 20, enough for about 1,600 signed requests a second with a 300 s window (docs/http-auth.md).
 */
export const DEFAULT_MAX_REPLAY_ENTRIES = 500_000;

interface Entry {
  readonly key: string;
  readonly expiresAt: number;
}

/** A bounded set of (keyid, nonce) pairs, each with an expiry time. */
export class ReplayCache {
  readonly maxEntries: number;
  readonly #expiry = new Map<string, number>();
  readonly #heap: Entry[] = [];
  #now = -Infinity;

  constructor(maxEntries: number = DEFAULT_MAX_REPLAY_ENTRIES) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new LedgerError("INVALID_ARGUMENT", "the replay cache cap must be a positive integer");
    }
    this.maxEntries = maxEntries;
  }

  /** Number of pairs held. */
  get size(): number {
    return this.#expiry.size;
  }

  /**
   * Move the cache's time forward to `now` (Unix seconds; a time earlier than one already seen is
   * ignored), drop the pairs that expired before it, and return the cache's time.
   */
  advance(now: number): number {
    if (!Number.isFinite(now))
      throw new LedgerError("INVALID_ARGUMENT", "the clock returned a non-finite time");
    if (now > this.#now) this.#now = now;
    const heap = this.#heap;
    while (heap.length > 0 && heap[0]!.expiresAt < this.#now) {
      const top = popHeap(heap);
      if (this.#expiry.get(top.key) === top.expiresAt) this.#expiry.delete(top.key);
    }
    return this.#now;
  }

  /** True when the pair is held (and not expired at the cache's time). */
  has(keyid: string, nonce: string): boolean {
    const expiresAt = this.#expiry.get(pairKey(keyid, nonce));
    return expiresAt !== undefined && expiresAt >= this.#now;
  }

  /**
   * Record the pair until `expiresAt` (Unix seconds, inclusive), in one step with the check: AUTH_REPLAYED
   * when the pair is already held, AUTH_REPLAY_CACHE_FULL when the cache is at its cap.
   */
  add(keyid: string, nonce: string, expiresAt: number): void {
    const key = pairKey(keyid, nonce);
    const held = this.#expiry.get(key);
    if (held !== undefined && held >= this.#now) {
      throw new LedgerError(
        "AUTH_REPLAYED",
        `nonce already used with keyid ${keyid}: this request was replayed; sign every request with a fresh nonce`,
      );
    }
    if (this.#expiry.size >= this.maxEntries) {
      throw new LedgerError(
        "AUTH_REPLAY_CACHE_FULL",
        `the node's replay cache is full (${this.maxEntries} recent requests): retry in a few seconds; if this persists the node's operator must raise the cap`,
      );
    }
    this.#expiry.set(key, expiresAt);
    pushHeap(this.#heap, { key, expiresAt });
  }
}

/** An unambiguous key for the pair: the keyid's length, then both strings. */
function pairKey(keyid: string, nonce: string): string {
  return `${keyid.length}:${keyid}${nonce}`;
}

function pushHeap(heap: Entry[], entry: Entry): void {
  heap.push(entry);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent]!.expiresAt <= entry.expiresAt) break;
    heap[i] = heap[parent]!;
    i = parent;
  }
  heap[i] = entry;
}

function popHeap(heap: Entry[]): Entry {
  const top = heap[0]!;
  const last = heap.pop()!;
  if (heap.length > 0) {
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right]!.expiresAt < heap[left]!.expiresAt ? right : left;
      if (heap[child]!.expiresAt >= last.expiresAt) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
  }
  return top;
}
