/**
 * The server's bounds (docs/api.md section 1): body sizes, page sizes, a per-caller token bucket and a
 * global cap on requests in flight. Over a rate or the cap: 429 RATE_LIMITED with retry-after.
 */
import { LedgerError } from "../core/errors.ts";
import { DEFAULT_MAX_REPLAY_ENTRIES } from "../core/http/replay-cache.ts";
import { MAX_BLOB_BYTES } from "../store/types.ts";
import { HttpError } from "./errors.ts";

/** Every bound the server enforces; createServer takes any subset. */
export interface ServerLimits {
  /** JSON bodies of POST /v1/entries (default 2 MiB). */
  readonly entriesBodyBytes: number;
  /** Every other JSON or text body (default 64 KiB). */
  readonly bodyBytes: number;
  /** A blob (default MAX_BLOB_BYTES, 64 MiB). */
  readonly blobBytes: number;
  /** Entries per submission (default 100). */
  readonly entriesPerSubmission: number;
  /** Items per page of a paged read (default 500). */
  readonly pageItems: number;
  /** Sustained requests per second per caller (default 50). */
  readonly ratePerSecond: number;
  /** Burst per caller (default 200). */
  readonly rateBurst: number;
  /** Requests in flight over all callers (default 256). */
  readonly maxInFlight: number;
  /** Callers whose buckets are remembered (default 100,000; the fullest are forgotten first). */
  readonly maxBuckets: number;
  /** Clock window of request signatures, seconds (default 300). */
  readonly skewSeconds: number;
  /** Signed requests remembered against replay (default DEFAULT_MAX_REPLAY_ENTRIES of src/core/http). */
  readonly replayCacheEntries: number;
}

/** The defaults of docs/api.md. */
export const DEFAULT_LIMITS: ServerLimits = {
  entriesBodyBytes: 2 * 1024 * 1024,
  bodyBytes: 64 * 1024,
  blobBytes: MAX_BLOB_BYTES,
  entriesPerSubmission: 100,
  pageItems: 500,
  ratePerSecond: 50,
  rateBurst: 200,
  maxInFlight: 256,
  maxBuckets: 100_000,
  skewSeconds: 300,
  replayCacheEntries: DEFAULT_MAX_REPLAY_ENTRIES,
};

/** The defaults with the given bounds in place, each checked. */
export function resolveLimits(given: Partial<ServerLimits> | undefined): ServerLimits {
  const limits = { ...DEFAULT_LIMITS, ...given };
  for (const [name, value] of Object.entries(limits)) {
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      throw new LedgerError("INVALID_ARGUMENT", `limit ${name} must be a non-negative number`);
    }
  }
  if (limits.blobBytes > MAX_BLOB_BYTES) {
    throw new LedgerError("INVALID_ARGUMENT", `blobBytes cannot exceed the store's ${MAX_BLOB_BYTES}`);
  }
  if (limits.entriesPerSubmission < 1 || limits.pageItems < 1 || limits.maxInFlight < 1) {
    throw new LedgerError("INVALID_ARGUMENT", "entriesPerSubmission, pageItems and maxInFlight must be >= 1");
  }
  return limits;
}

interface Bucket {
  tokens: number;
  /** Milliseconds of the last refill. */
  at: number;
}

/**
 * Token buckets by caller (RFC-less, the classic algorithm): each caller's bucket holds up to `burst`
 * tokens and refills at `rate` per second; a request takes one. The map is bounded: past `maxBuckets`,
 * the least recently used buckets are forgotten (a forgotten caller starts again with a full bucket,
 * which errs on the side of serving).
 */
export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #rate: number;
  readonly #burst: number;
  readonly #max: number;
  readonly #clock: () => number;

  constructor(rate: number, burst: number, maxBuckets: number, clock: () => number) {
    this.#rate = rate;
    this.#burst = Math.max(1, burst);
    this.#max = Math.max(1, maxBuckets);
    this.#clock = clock;
  }

  /** Take a token for `who`, or throw 429 RATE_LIMITED with the seconds until one is back. */
  take(who: string): void {
    const now = this.#clock();
    let bucket = this.#buckets.get(who);
    if (bucket === undefined) {
      bucket = { tokens: this.#burst, at: now };
      if (this.#buckets.size >= this.#max) {
        const oldest = this.#buckets.keys().next();
        if (oldest.done !== true) this.#buckets.delete(oldest.value);
      }
    } else {
      // Most recently used last, so the first key is the least recently used.
      this.#buckets.delete(who);
      const elapsed = Math.max(0, now - bucket.at) / 1000;
      bucket.tokens = Math.min(this.#burst, bucket.tokens + elapsed * this.#rate);
      bucket.at = now;
    }
    this.#buckets.set(who, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return;
    }
    const wait = this.#rate > 0 ? Math.ceil((1 - bucket.tokens) / this.#rate) : 60;
    throw rateLimited(`too many requests from this caller: wait ${wait} s`, wait);
  }
}

/** The 429 error, with retry-after in whole seconds (at least 1). */
export function rateLimited(message: string, seconds: number): HttpError {
  const wait = Math.max(1, Math.ceil(seconds));
  return new HttpError("RATE_LIMITED", message, { headers: { "retry-after": String(wait) } });
}
