/**
 * A signature pre-check worker (docs/verify.md, "Parallel design"): it receives chunks of entries and
 * checkpoint notes, verifies every Ed25519 signature in them with node:crypto, and answers with the
 * verdicts keyed by triple digest. It holds no state and trusts nothing it is sent.
 */
import { parentPort, workerData } from "node:worker_threads";
import { parseNoteVerifierKey, type NoteVerifier } from "../core/note/signed-note.ts";
import { nodeCrypto } from "../platform/node-crypto.ts";
import { KeyInterner, precheckJob, type PrecheckJob } from "./precheck.ts";

/** A request from the pool. */
interface Request {
  readonly id: number;
  readonly job: PrecheckJob;
}

function logKeyOf(data: unknown): NoteVerifier | null {
  const vkey = (data as { logKey?: unknown } | null)?.logKey;
  if (typeof vkey !== "string") return null;
  try {
    return parseNoteVerifierKey(nodeCrypto, vkey);
  } catch {
    // The main thread reports a bad key; here it only means checkpoints are verified inline.
    return null;
  }
}

const port = parentPort;
if (port !== null) {
  const logKey = logKeyOf(workerData);
  // Kept across jobs: the same org and patient keys sign entry after entry.
  const keys = new KeyInterner();
  port.on("message", (request: Request) => {
    precheckJob(nodeCrypto, request.job, logKey, keys).then(
      (verdicts) =>
        port.postMessage({ id: request.id, verdicts }, [
          verdicts.digests.buffer as ArrayBuffer,
          verdicts.valid.buffer as ArrayBuffer,
        ]),
      () => port.postMessage({ id: request.id, verdicts: null }),
    );
  });
}
