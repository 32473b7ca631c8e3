// The crash test of issue 3, section 3: a real writer process (crash-writer.ts) appends batches to a
// SQLite store and is killed with SIGKILL at random moments, again and again. Afterwards the store must
// hold every acknowledged entry, no half batch, the same Merkle and patient-index roots as recomputed from
// scratch, pass SQLite's integrity check, and carry on appending. The random delays only spread the kills
// over the write loop; nothing is asserted on time.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { toHex } from "../../src/core/encoding/bytes.ts";
import { MerkleTree } from "../../src/core/merkle/tree.ts";
import { MemoryIndexStore, PatientIndex } from "../../src/core/patient-index/index.ts";
import type { IndexChange } from "../../src/core/patient-index/index.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { openSqliteStore } from "../../src/store/sqlite.ts";
import { MAX_READ_LIMIT } from "../../src/store/types.ts";
import type { EntryRow } from "../../src/store/types.ts";
import { CRASH_PATIENTS, crashPatientKey, parseCrashCheckpoint } from "./crash-writer.ts";
import type { CrashEntry } from "./crash-writer.ts";

const KILLS = 30;
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const WRITER = fileURLToPath(new URL("./crash-writer.ts", import.meta.url));
const sha = (data: Uint8Array): Uint8Array => nodeCrypto.sha256(data);

interface Ack {
  readonly seq: bigint;
  readonly size: bigint;
  readonly root: string;
}

interface Run {
  readonly ready: Ack;
  readonly acks: Ack[];
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

/**
 * Start the writer; once it is READY, wait `killAfterMs` and SIGKILL it (or, with `batches`, let it finish).
 * Lines are parsed only when complete: a line the kill cut short is dropped, never half-read.
 */
function runWriter(db: string, options: { killAfterMs?: number; batches?: number }): Promise<Run> {
  const args = ["--import", "tsx", WRITER, db];
  if (options.batches !== undefined) args.push(String(options.batches));
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let ready: Ack | undefined;
  const acks: Ack[] = [];
  let pending = "";
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    const lines = (pending + chunk).split("\n");
    pending = lines.pop()!;
    for (const line of lines) {
      const m = /^(READY|ACK) (\d+) (\d+) ([0-9a-f]{64})$/.exec(line);
      if (m === null) throw new Error(`unexpected line from the writer: ${line}`);
      const ack = { seq: BigInt(m[2]!), size: BigInt(m[3]!), root: m[4]! };
      if (m[1] === "ACK") {
        acks.push(ack);
      } else {
        ready = ack;
        if (options.killAfterMs !== undefined) setTimeout(() => child.kill("SIGKILL"), options.killAfterMs);
      }
    }
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (ready === undefined) reject(new Error(`the writer never became ready: ${stderr}`));
      else resolve({ ready, acks, code, signal, stderr });
    });
  });
}

/** Every entry row, in seq order. */
function allEntries(store: ReturnType<typeof openSqliteStore>): EntryRow[] {
  const out: EntryRow[] = [];
  for (let page = store.readEntries(0n, MAX_READ_LIMIT); page.length > 0;) {
    out.push(...page);
    page = store.readEntries(page[page.length - 1]!.seq + 1n, MAX_READ_LIMIT);
  }
  return out;
}

/** Audit the store from scratch against the acknowledgements; returns the number of entries. */
function audit(db: string, acks: readonly Ack[]): { entries: number; batches: number } {
  const store = openSqliteStore(db);
  try {
    // 1. Every submission of a committed batch got its entry row in the same transaction.
    const submissions = store.submissionCount();
    assert.equal(store.entryCount(), submissions, "an entry row for every submission");
    const entries = allEntries(store);
    assert.equal(BigInt(entries.length), submissions);

    // 2. No half batch: batches are numbered 0..B-1, each complete, in order, with consecutive seqs.
    const decoded = entries.map((e) => JSON.parse(new TextDecoder().decode(e.bytes)) as CrashEntry);
    let batches = 0;
    for (let at = 0; at < decoded.length; batches++) {
      const first = decoded[at]!;
      assert.equal(first.batch, batches, `batch ${batches} starts at seq ${at}`);
      for (let i = 0; i < first.n; i++) {
        const e = decoded[at + i];
        assert.ok(e !== undefined, `batch ${first.batch} is missing entry ${i} of ${first.n}`);
        assert.deepEqual([e.batch, e.i, e.n], [first.batch, i, first.n], `seq ${at + i}`);
        assert.equal(entries[at + i]!.status, e.reject ? "rejected" : "accepted");
      }
      at += first.n;
    }

    // 3. Every acknowledged seq is present.
    for (const ack of acks) assert.ok(ack.seq < submissions, `acknowledged seq ${ack.seq} is present`);

    // 4. The Merkle tree recomputed from the accepted entries' bytes: the same root as the stored tree,
    //    the last checkpoint and every acknowledgement at its size; every stored leaf hash agrees.
    const accepted = entries.filter((e) => e.status === "accepted");
    const size = store.treeSize();
    assert.equal(BigInt(accepted.length), size);
    accepted.forEach((e, p) => assert.equal(e.position, BigInt(p)));
    const fromScratch = MerkleTree.create(sha);
    fromScratch.appendMany(accepted.map((e) => e.bytes));
    const stored = MerkleTree.open(sha, store.merkleNodes, size);
    assert.equal(toHex(stored.root()), toHex(fromScratch.root()), "stored tree root");
    for (let p = 0n; p < size; p++) {
      assert.equal(toHex(store.merkleNodes.get(0, p)!), toHex(fromScratch.leafHash(p)), `leaf ${p}`);
    }
    const checkpoint = store.latestCheckpoint();
    assert.ok(checkpoint !== undefined);
    const note = parseCrashCheckpoint(checkpoint.note);
    assert.equal(note.size, size, "the last checkpoint covers every accepted entry");
    assert.equal(note.batch, batches - 1);
    assert.equal(note.root, toHex(fromScratch.root()));
    for (const ack of acks) {
      assert.ok(ack.size <= size, `acknowledged size ${ack.size}`);
      assert.equal(toHex(fromScratch.rootAt(ack.size)), ack.root, `acknowledged root at ${ack.size}`);
      assert.equal(toHex(stored.rootAt(ack.size)), ack.root);
    }

    // 5. The patient index recomputed from scratch (head = last accepted id, length = count per patient).
    const chains = new Map<number, { head: Uint8Array; length: number }>();
    accepted.forEach((e, p) => {
      const patient = decoded[Number(e.seq)]!.patient;
      chains.set(patient, { head: sha(accepted[p]!.bytes), length: (chains.get(patient)?.length ?? 0) + 1 });
    });
    const changes: IndexChange[] = [...chains].map(([p, value]) => ({ key: crashPatientKey(p), value }));
    const reference = new PatientIndex(sha, new MemoryIndexStore());
    reference.update(changes);
    const storedIndex = new PatientIndex(sha, store.indexNodes);
    assert.equal(toHex(storedIndex.root), toHex(reference.root), "patient index root");
    assert.equal(note.indexRoot, toHex(reference.root));
    assert.equal(storedIndex.audit(), chains.size);
    for (let p = 0; p < CRASH_PATIENTS; p++) {
      const head = store.patientHead(crashPatientKey(p));
      const chain = chains.get(p);
      assert.deepEqual(
        head === undefined ? undefined : [toHex(head.head), head.length],
        chain === undefined ? undefined : [toHex(chain.head), BigInt(chain.length)],
        `chain head of patient ${p}`,
      );
    }

    // 6. Every blob a committed batch named is there, and is what its hash says.
    for (const e of decoded) {
      if (e.blob === null) continue;
      const blob = store.getBlob(Buffer.from(e.blob, "hex"));
      assert.ok(blob !== undefined, `blob ${e.blob} of batch ${e.batch}`);
      assert.equal(toHex(sha(blob)), e.blob);
    }
    return { entries: entries.length, batches };
  } finally {
    store.close();
  }
}

/** SQLite's own consistency checks of the file. */
function integrity(db: string): void {
  const raw = new Database(db, { readonly: true });
  try {
    assert.equal(raw.pragma("integrity_check", { simple: true }), "ok");
    assert.deepEqual(raw.pragma("foreign_key_check"), []);
  } finally {
    raw.close();
  }
}

describe("crash safety of the SQLite store", () => {
  it(`keeps every acknowledged batch whole through ${KILLS} SIGKILLs during sustained appends`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "medledger-crash-"));
    try {
      const db = join(dir, "ledger.db");
      const acks: Ack[] = [];
      let kills = 0;
      for (let round = 0; round < KILLS; round++) {
        const run = await runWriter(db, { killAfterMs: 100 + Math.floor(Math.random() * 500) });
        assert.equal(run.signal, "SIGKILL", `round ${round}: the writer died on its own: ${run.stderr}`);
        kills++;
        // The restarted writer recovered at least everything acknowledged before the kill.
        const last = acks[acks.length - 1];
        if (last !== undefined) {
          assert.ok(run.ready.seq > last.seq, `round ${round}: acknowledged seq ${last.seq} survived`);
          assert.ok(run.ready.size >= last.size, `round ${round}: acknowledged size ${last.size} survived`);
        }
        acks.push(...run.acks);
      }
      assert.ok(acks.length > KILLS, "the writer acknowledged batches between kills");
      const afterKills = audit(db, acks);
      integrity(db);

      // The stored tree reopens and keeps appending: a last writer runs to completion.
      const final = await runWriter(db, { batches: 5 });
      assert.equal(final.code, 0, final.stderr);
      assert.equal(final.acks.length, 5);
      const atEnd = audit(db, [...acks, ...final.acks]);
      assert.equal(atEnd.batches, afterKills.batches + 5);
      integrity(db);
      t.diagnostic(
        `${kills} kills survived; ${acks.length} batches acknowledged before kills; ` +
          `${atEnd.entries} entries in ${atEnd.batches} batches at the end`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
