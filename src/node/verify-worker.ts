/**
 * A pre-check worker (src/node/verifier.ts): for each job it is sent, it claims chunks of entries from the
 * front, pre-checks each entry (strict decoding and signature verification: precheckEntry), writes the
 * answers into the job's shared memory and marks the chunk done. It never judges an entry: the validator on
 * the main thread does, in order, and uses these answers only for bytes with the same SHA-256.
 */
import { parentPort, workerData } from "node:worker_threads";
import { precheckEntry } from "../core/ledger/precheck.ts";
import { nodeCrypto } from "../platform/node-crypto.ts";
import {
  CHUNK_DONE,
  CHUNK_FREE,
  CHUNK_WORKER,
  DIGEST_BYTES,
  WORKER_READY,
  type JobMessage,
  type SharedJob,
} from "./verifier.ts";

const index = (workerData as { index?: unknown } | null)?.index;
const me = CHUNK_WORKER + (typeof index === "number" ? index : 0);

/** Pre-check every chunk of a job that no other thread has claimed. */
async function work(job: SharedJob): Promise<void> {
  const { data, ends, chunk, state, digests, verified, decoded } = job;
  for (let k = 0; k < state.length; k++) {
    if (Atomics.compareExchange(state, k, CHUNK_FREE, me) !== CHUNK_FREE) continue;
    const end = Math.min((k + 1) * chunk, ends.length);
    for (let i = k * chunk; i < end; i++) {
      // A private copy: shared memory is not for TextDecoder, and nothing may change under the decoder.
      const bytes = data.slice(i === 0 ? 0 : ends[i - 1], ends[i]);
      let result = null;
      try {
        result = await precheckEntry(nodeCrypto, bytes);
      } catch {
        // Left undecoded: the validator finds out for itself.
      }
      if (result !== null) {
        digests.set(result.digest, i * DIGEST_BYTES);
        verified[i] = result.verified;
        decoded[i] = 1;
      }
    }
    // The answers above are written before the chunk is marked done (Atomics are sequentially consistent).
    Atomics.store(state, k, CHUNK_DONE);
    Atomics.notify(state, k);
  }
}

let queue = Promise.resolve();
parentPort?.on("message", (message: JobMessage) => {
  queue = queue.then(() => work(message.job)).catch(() => undefined);
});
parentPort?.postMessage(WORKER_READY);
