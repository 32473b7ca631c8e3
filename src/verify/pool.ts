/**
 * The parallel driver of an audit: a pool of worker threads that pre-check signatures (precheck.ts) while
 * the main thread runs the validator, the Merkle tree and the patient index in order. Node-only.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { LedgerError } from "../core/errors.ts";
import type { PrecheckJob, PrecheckVerdicts, SignaturePrechecker } from "./precheck.ts";

/** The most worker threads a pool starts. */
export const MAX_POOL_THREADS = 64;

/** A job waiting for its worker's answer. */
interface Pending {
  readonly resolve: (verdicts: PrecheckVerdicts) => void;
  readonly reject: (err: unknown) => void;
}

/** One worker and what it owes. */
interface Slot {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
  dead: boolean;
}

/** The answer a worker posts. */
interface Answer {
  readonly id: number;
  readonly verdicts: PrecheckVerdicts | null;
}

/** Threads to use by default: one per core the process may use. */
export function defaultThreads(): number {
  return Math.min(MAX_POOL_THREADS, Math.max(1, availableParallelism()));
}

/**
 * The worker's module. From the TypeScript sources (run through tsx) a worker does not inherit the tsx
 * loader, so it is started from a one-line module that registers tsx first; the built JavaScript needs none.
 */
function workerEntry(): URL {
  const self = import.meta.url;
  if (!self.endsWith(".ts")) return new URL("./worker.js", self);
  const target = new URL("./worker.ts", self).href;
  const tsx = import.meta.resolve("tsx/esm/api");
  const code = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(target)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

/** A pool of signature pre-check workers. */
export class SignaturePool implements SignaturePrechecker {
  readonly threads: number;
  readonly #slots: Slot[];
  #next = 0;
  #closed = false;

  private constructor(slots: Slot[]) {
    this.#slots = slots;
    this.threads = slots.length;
  }

  /** Start `threads` workers (1..MAX_POOL_THREADS) that check checkpoints under `logKey`. */
  static start(threads: number, logKey: string): SignaturePool {
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_POOL_THREADS) {
      throw new LedgerError("INVALID_ARGUMENT", `a pool has 1..${MAX_POOL_THREADS} threads`);
    }
    const entry = workerEntry();
    const slots: Slot[] = [];
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(entry, { workerData: { logKey } });
      const slot: Slot = { worker, pending: new Map(), dead: false };
      worker.on("message", (answer: Answer) => {
        const pending = slot.pending.get(answer.id);
        if (pending === undefined) return;
        slot.pending.delete(answer.id);
        if (answer.verdicts === null)
          pending.reject(new LedgerError("INTERNAL", "a worker could not check a chunk"));
        else pending.resolve(answer.verdicts);
      });
      const die = (err: unknown): void => {
        slot.dead = true;
        for (const pending of slot.pending.values()) pending.reject(err);
        slot.pending.clear();
      };
      worker.on("error", die);
      worker.on("exit", () => die(new LedgerError("INTERNAL", "a worker exited")));
      slots.push(slot);
    }
    return new SignaturePool(slots);
  }

  /** Send a job to the live worker with the least work queued. Rejects when no worker is left. */
  check(job: PrecheckJob): Promise<PrecheckVerdicts> {
    const live = this.#slots.filter((s) => !s.dead);
    if (this.#closed || live.length === 0) {
      return Promise.reject(new LedgerError("INTERNAL", "no signature worker is running"));
    }
    let slot = live[0]!;
    for (const s of live) if (s.pending.size < slot.pending.size) slot = s;
    const id = this.#next++;
    return new Promise<PrecheckVerdicts>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ id, job }, [job.data.buffer as ArrayBuffer, job.ends.buffer as ArrayBuffer]);
    });
  }

  /** Stop every worker; pending jobs are rejected. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
  }
}
