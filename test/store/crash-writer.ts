// The child process of the crash test (crash.test.ts): a node's append loop, cut down to the store.
//
//   node --import tsx test/store/crash-writer.ts DB_PATH [BATCHES]
//
// It opens the SQLite store, reopens the Merkle tree and the patient index from it, checks them against
// the last checkpoint, prints "READY <seq count> <tree size> <root hex>", then appends batches of 1 to 200
// synthetic entries (BATCHES of them, or until killed). Each batch is ONE transaction: the submissions, an
// entry row per submission (a few rejected), the Merkle leaves, the patient-index update, sometimes a blob,
// and a checkpoint row. Only after the commit returns does it print "ACK <last seq> <tree size> <root hex>":
// what the parent may hold the store to after a SIGKILL.
import { randomBytes, randomInt } from "node:crypto";
import { pathToFileURL } from "node:url";
import { toHex } from "../../src/core/encoding/bytes.ts";
import { MerkleTree } from "../../src/core/merkle/tree.ts";
import { PatientIndex, patientIndexKey } from "../../src/core/patient-index/index.ts";
import type { IndexChange } from "../../src/core/patient-index/index.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { openSqliteStore } from "../../src/store/sqlite.ts";
import type { NewEntry } from "../../src/store/types.ts";

/** Patients the synthetic entries are about. */
export const CRASH_PATIENTS = 40;

/** The checkpoint-like note the writer stores with each batch. */
export interface CrashCheckpoint {
  readonly batch: number;
  readonly size: bigint;
  readonly root: string;
  readonly indexRoot: string;
}

/** Write the note: an origin line, the batch number, the size, the Merkle root and the index root. */
export function formatCrashCheckpoint(c: CrashCheckpoint): string {
  return `crash-test\n${c.batch}\n${c.size}\n${c.root}\n${c.indexRoot}\n`;
}

/** Read the note back; throws on anything else. */
export function parseCrashCheckpoint(note: string): CrashCheckpoint {
  const m = /^crash-test\n(\d+)\n(\d+)\n([0-9a-f]{64})\n([0-9a-f]{64})\n$/.exec(note);
  if (m === null) throw new Error(`not a crash-test checkpoint: ${JSON.stringify(note)}`);
  return { batch: Number(m[1]), size: BigInt(m[2]!), root: m[3]!, indexRoot: m[4]! };
}

/** One synthetic entry as the writer encodes it (fixed member order, so the bytes are deterministic). */
export interface CrashEntry {
  readonly batch: number;
  readonly i: number;
  readonly n: number;
  readonly patient: number;
  readonly reject: boolean;
  readonly blob: string | null;
  readonly nonce: string;
}

/** The patient-index key of synthetic patient p. */
export function crashPatientKey(p: number): Uint8Array {
  return patientIndexKey((data) => nodeCrypto.sha256(data), `crash-patient-${p}`);
}

function main(): void {
  const [path, batchesArg] = process.argv.slice(2);
  if (path === undefined) throw new Error("usage: crash-writer.ts DB_PATH [BATCHES]");
  const batches = batchesArg === undefined ? Infinity : Number(batchesArg);
  const sha = (data: Uint8Array): Uint8Array => nodeCrypto.sha256(data);
  const store = openSqliteStore(path);

  // Recovery: the tree reopens from the stored size, the index from its stored root, and both must agree
  // with the last checkpoint, which was written in the same transaction as the last batch.
  const tree = MerkleTree.open(sha, store.merkleNodes, store.treeSize());
  const index = new PatientIndex(sha, store.indexNodes);
  const latest = store.latestCheckpoint();
  let batch = 0;
  if (latest !== undefined) {
    const c = parseCrashCheckpoint(latest.note);
    if (c.size !== tree.size || c.root !== toHex(tree.root()) || c.indexRoot !== toHex(index.root)) {
      throw new Error(`recovered state disagrees with checkpoint ${latest.note}`);
    }
    batch = c.batch + 1;
  } else if (tree.size !== 0n || store.submissionCount() !== 0n) {
    throw new Error("entries without a checkpoint");
  }
  const keys = Array.from({ length: CRASH_PATIENTS }, (_, p) => crashPatientKey(p));
  process.stdout.write(`READY ${store.submissionCount()} ${tree.size} ${toHex(tree.root())}\n`);

  for (let done = 0; done < batches; done++, batch++) {
    const n = randomInt(1, 201);
    const blob = batch % 5 === 0 ? randomBytes(randomInt(0, 32 * 1024)) : null;
    const blobHash = blob === null ? null : toHex(sha(blob));
    const entries: CrashEntry[] = Array.from({ length: n }, (_, i) => ({
      batch,
      i,
      n,
      patient: randomInt(CRASH_PATIENTS),
      reject: randomInt(20) === 0,
      blob: i === 0 ? blobHash : null,
      nonce: randomBytes(8).toString("hex"),
    }));
    const bytes = entries.map((e) => new TextEncoder().encode(JSON.stringify(e)));
    const lastSeq = store.transaction(() => {
      if (blob !== null) store.putBlob(blob);
      const first = store.appendSubmissions(bytes);
      const heads = new Map<number, IndexChange>();
      entries.forEach((e, i) => {
        const id = sha(bytes[i]!);
        const accepted = !e.reject;
        const entry: NewEntry = {
          seq: first + BigInt(i),
          position: accepted ? tree.size : null,
          id,
          status: accepted ? "accepted" : "rejected",
          reason: accepted ? null : "SYNTHETIC_REJECT",
          patient: keys[e.patient]!,
          clinicalTime: "2024-03",
        };
        store.putEntry(entry);
        if (!accepted) return;
        tree.append(bytes[i]!);
        const key = keys[e.patient]!;
        const length = heads.get(e.patient)?.value?.length ?? index.get(key)?.length ?? 0;
        heads.set(e.patient, { key, value: { head: id, length: length + 1 } });
      });
      index.update(heads.values());
      store.putCheckpoint(
        tree.size,
        formatCrashCheckpoint({
          batch,
          size: tree.size,
          root: toHex(tree.root()),
          indexRoot: toHex(index.root),
        }),
      );
      return first + BigInt(n) - 1n;
    });
    // After the commit returned: the batch is durable, so it may be acknowledged.
    process.stdout.write(`ACK ${lastSeq} ${tree.size} ${toHex(tree.root())}\n`);
  }
  store.close();
}

// Run only as the child process, not when the test imports the helpers above.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
