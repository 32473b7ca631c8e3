/**
 * Signature pre-verification on other cores. Ed25519 verification is most of a record's validation cost
 * (two signatures per record), and the validator runs on one thread because its verdicts depend on order.
 * Signatures do not: whether a signature verifies is a property of (key, message, signature) alone. So a
 * batch's entries are sent to worker threads, which verify every signature they carry and answer with a
 * digest of each one that verified; the validator then asks the crypto suite as usual, and the suite
 * answers "valid" for a known digest without verifying again, and verifies anything else itself.
 *
 * Only positive answers are cached, and a digest binds the key, the exact message and the signature, so
 * the verdicts are the same with or without workers: a worker that is slow, wrong about a failure, or
 * gone only costs time.
 */
import { Worker } from "node:worker_threads";
import { concatBytes, toHex } from "../core/encoding/bytes.ts";
import type { CryptoSuite } from "../core/crypto/suite.ts";

/** Batches smaller than this are verified on the main thread: a round trip would cost more. */
export const MIN_WORKER_BATCH = 16;

/** SHA-256(key || signature || message): what a pre-verified signature is known by. */
export function signatureDigest(
  crypto: Pick<CryptoSuite, "sha256">,
  key: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): Uint8Array {
  return crypto.sha256(concatBytes(key, signature, message));
}

/** Start a worker from the same kind of file as this module: .js once built, .ts under tsx. */
function startWorker(): Worker {
  const here = import.meta.url;
  if (!here.endsWith(".ts")) return new Worker(new URL("./verify-worker.js", here));
  // A worker does not inherit the tsx loader of its parent (Node 20): register it before importing.
  const api = JSON.stringify(import.meta.resolve("tsx/esm/api"));
  const file = JSON.stringify(new URL("./verify-worker.ts", here).href);
  return new Worker(`import(${api}).then((m) => { m.register(); return import(${file}); });`, { eval: true });
}

interface Pending {
  readonly resolve: (digests: Uint8Array[]) => void;
}

/** A pool of verification workers; each batch is split evenly between them. */
export class SignatureVerifier {
  readonly #workers: Worker[] = [];
  readonly #pending = new Map<number, Pending>();
  #next = 0;
  #closed = false;

  /** Start `count` workers (0: every batch is verified on the main thread). */
  constructor(count: number) {
    for (let i = 0; i < count; i++) {
      const worker = startWorker();
      // The pool must not keep a stopped node's process alive.
      worker.unref();
      worker.on("message", (reply: { id: number; digests: Uint8Array[] }) => {
        this.#pending.get(reply.id)?.resolve(reply.digests);
        this.#pending.delete(reply.id);
      });
      worker.on("error", () => this.#drop(worker));
      worker.on("exit", () => this.#drop(worker));
      this.#workers.push(worker);
    }
  }

  /**
   * Send a batch to the workers in chunks of `chunk` entries, round robin; returns one promise per chunk
   * with the hex digests of its signatures that verified (empty without workers or for a small batch).
   * The caller awaits chunk k before judging its entries, while the workers verify the chunks after it.
   */
  verifyChunks(entries: readonly Uint8Array[], chunk: number): Promise<string[]>[] {
    const workers = this.#workers;
    const chunks = Math.ceil(entries.length / chunk);
    if (this.#closed || workers.length === 0 || entries.length < MIN_WORKER_BATCH) {
      return Array.from({ length: chunks }, () => Promise.resolve([]));
    }
    return Array.from({ length: chunks }, (_, k) => {
      const worker = workers[k % workers.length]!;
      const id = this.#next++;
      return new Promise<string[]>((resolve) => {
        this.#pending.set(id, { resolve: (digests) => resolve(digests.map(toHex)) });
        worker.postMessage({ id, entries: entries.slice(k * chunk, (k + 1) * chunk) });
      });
    });
  }

  /** Stop the workers; pending requests resolve empty (the main thread verifies instead). */
  async close(): Promise<void> {
    this.#closed = true;
    const workers = this.#workers.splice(0);
    this.#resolveAll();
    await Promise.all(workers.map((w) => w.terminate()));
  }

  #drop(worker: Worker): void {
    const i = this.#workers.indexOf(worker);
    if (i >= 0) this.#workers.splice(i, 1);
    // Requests to the dead worker get no answer: release them all (the main thread verifies).
    this.#resolveAll();
  }

  #resolveAll(): void {
    for (const pending of this.#pending.values()) pending.resolve([]);
    this.#pending.clear();
  }
}
