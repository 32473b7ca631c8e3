// The one conformance suite of the LedgerStore interface, run against every adapter (as Hono runs one
// router suite against every router): every method, every refusal and its code, atomicity of transactions,
// and persistence across a reopen for durable adapters. An adapter passes this file or it is not done.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { isLedgerError } from "../../src/core/errors.ts";
import type { ErrorCode } from "../../src/core/errors.ts";
import { MerkleTree } from "../../src/core/merkle/tree.ts";
import { verifyInclusion } from "../../src/core/merkle/proofs.ts";
import {
  EMPTY_HASH,
  LEAF_BODY_SIZE,
  MemoryIndexStore,
  NODE_BODY_SIZE,
  PatientIndex,
} from "../../src/core/patient-index/index.ts";
import {
  MAX_APPEND_BATCH,
  MAX_BLOB_BYTES,
  MAX_CHECKPOINT_CHARS,
  MAX_ENTRY_BYTES,
  MAX_META_VALUE_CHARS,
  MAX_READ_BYTES,
  MAX_READ_LIMIT,
  MAX_STORE_INTEGER,
  SCHEMA_VERSION,
} from "../../src/store/types.ts";
import type { EntryRow, LedgerStore, NewEntry } from "../../src/store/types.ts";

/** How the suite gets stores of one adapter. */
export interface StoreHarness {
  /** A fresh, empty store. The harness closes and removes what it made when its tests end. */
  open(): LedgerStore;
  /** Close `store` and open the same data again; only for durable adapters. */
  reopen?: (store: LedgerStore) => LedgerStore;
}

/** SHA-256 from node:crypto, independent of the code under test. */
export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}

/** UTF-8 bytes of a string. */
export function text(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** A 32-byte value derived from a label. */
export function labelled(label: string): Uint8Array {
  return sha256(text(label));
}

/** Lower-case hex, for messages and comparisons. */
export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

/** Assert that fn throws a LedgerError with this code. */
export function refuses(fn: () => unknown, code: ErrorCode, message?: string): void {
  assert.throws(
    fn,
    (err: unknown) => {
      if (isLedgerError(err, code)) return true;
      assert.fail(`${message ?? "call"}: expected LedgerError ${code}, got ${String(err)}`);
    },
    message,
  );
}

/** What a store's decision about the next submission looks like, with defaults for the test. */
export function decide(
  store: LedgerStore,
  options: {
    readonly status?: "accepted" | "rejected";
    readonly patient?: Uint8Array | null;
    readonly clinicalTime?: string | null;
    readonly reason?: string;
  } = {},
): NewEntry {
  const seq = store.entryCount();
  const [submission] = store.readSubmissions(seq, 1);
  assert.ok(submission !== undefined, `submission ${seq} exists`);
  const accepted = (options.status ?? "accepted") === "accepted";
  return {
    seq,
    position: accepted ? store.treeSize() : null,
    id: sha256(submission.bytes),
    status: accepted ? "accepted" : "rejected",
    reason: accepted ? null : (options.reason ?? "CHAIN_BROKEN"),
    patient: options.patient ?? null,
    clinicalTime: options.clinicalTime ?? null,
  };
}

/** Append submissions and record each as accepted (with a leaf in `tree` when given); returns the rows. */
export function acceptAll(
  store: LedgerStore,
  entries: readonly Uint8Array[],
  patient: Uint8Array | null = null,
  tree?: MerkleTree,
): NewEntry[] {
  return store.transaction(() => {
    store.appendSubmissions(entries);
    return entries.map((bytes) => {
      const entry = decide(store, { patient });
      store.putEntry(entry);
      tree?.append(bytes);
      return entry;
    });
  });
}

/** The entry row a store should return for a decision over `bytes`. */
function rowOf(entry: NewEntry, bytes: Uint8Array): EntryRow {
  return { ...entry, bytes };
}

/** Rows as plain objects (fresh Uint8Arrays compare by content under deepEqual). */
function plain(row: EntryRow | undefined): unknown {
  if (row === undefined) return undefined;
  return {
    seq: row.seq,
    position: row.position,
    id: hex(row.id),
    status: row.status,
    reason: row.reason,
    patient: row.patient === null ? null : hex(row.patient),
    clinicalTime: row.clinicalTime,
    bytes: hex(row.bytes),
  };
}

/**
 * Everything observable through the interface, as plain data: for the persistence and differential tests.
 * `probes` lists the Merkle node keys, index node hashes, patients, meta keys and checkpoint sizes to look up
 * (the interface has no enumeration of those, on purpose).
 */
export function snapshot(
  store: LedgerStore,
  probes: {
    readonly merkle?: readonly (readonly [number, bigint])[];
    readonly indexHashes?: readonly Uint8Array[];
    readonly patients?: readonly Uint8Array[];
    readonly metaKeys?: readonly string[];
  } = {},
): unknown {
  const all = <T>(read: (from: bigint) => T[], next: (last: T) => bigint): T[] => {
    const out: T[] = [];
    for (let page = read(0n); page.length > 0; page = read(next(page[page.length - 1]!))) out.push(...page);
    return out;
  };
  const submissions = all(
    (from) => store.readSubmissions(from, 7),
    (s) => s.seq + 1n,
  );
  const entries = all(
    (from) => store.readEntries(from, 7),
    (e) => e.seq + 1n,
  );
  const treeSize = store.treeSize();
  const blobs: string[] = [];
  for (
    let page = store.listBlobs(null, 3);
    page.length > 0;
    page = store.listBlobs(page[page.length - 1]!, 3)
  ) {
    for (const hash of page) blobs.push(`${hex(hash)}:${hex(store.getBlob(hash) ?? new Uint8Array())}`);
  }
  const checkpoints: unknown[] = [];
  for (let size = 0n; size <= treeSize + 1n; size++) checkpoints.push(store.checkpointAt(size) ?? null);
  return {
    submissionCount: store.submissionCount(),
    entryCount: store.entryCount(),
    treeSize,
    submissions: submissions.map((s) => [s.seq, hex(s.bytes)]),
    entries: entries.map(plain),
    byPosition: Array.from({ length: Number(treeSize) }, (_, p) => plain(store.entryByPosition(BigInt(p)))),
    byId: entries.map((e) => plain(store.entryById(e.id))),
    patients: (probes.patients ?? []).map((p) => ({
      entries: all(
        (from) => store.patientEntries(p, from, 2),
        (e) => e.position! + 1n,
      ).map(plain),
      head: ((h) => (h === undefined ? null : [hex(h.head), h.length]))(store.patientHead(p)),
    })),
    merkle: (probes.merkle ?? []).map(([level, index]) => {
      const h = store.merkleNodes.get(level, index);
      return h === undefined ? null : hex(h);
    }),
    index: (probes.indexHashes ?? []).map((h) => {
      const body = store.indexNodes.get(h);
      return body === undefined ? null : hex(body);
    }),
    indexRoot: ((r) => (r === undefined ? null : hex(r)))(store.indexNodes.currentRoot()),
    latestCheckpoint: store.latestCheckpoint() ?? null,
    checkpoints,
    blobs,
    meta: ["schema_version", ...(probes.metaKeys ?? [])].map((k) => store.getMeta(k) ?? null),
  };
}

/** A content-addressed index node write: a well-sized body under its own SHA-256, as PatientIndex writes. */
function indexNode(i: number): { hash: Uint8Array; body: Uint8Array } {
  const body = new Uint8Array(i % 3 === 0 ? LEAF_BODY_SIZE : NODE_BODY_SIZE);
  body[0] = i % 3 === 0 ? 2 : 3;
  body.set(labelled(`body-${i}`), 1);
  return { hash: sha256(body), body };
}

/** Run the whole suite against one adapter. */
export function runStoreConformance(name: string, harness: StoreHarness): void {
  const open = () => harness.open();

  describe(`store conformance: ${name}`, () => {
    describe("a new store", () => {
      it("is empty and knows its schema version", () => {
        const store = open();
        assert.equal(store.submissionCount(), 0n);
        assert.equal(store.entryCount(), 0n);
        assert.equal(store.treeSize(), 0n);
        assert.deepEqual(store.readSubmissions(0n, 10), []);
        assert.deepEqual(store.readEntries(0n, 10), []);
        assert.equal(store.entryBySeq(0n), undefined);
        assert.equal(store.entryByPosition(0n), undefined);
        assert.equal(store.entryById(labelled("x")), undefined);
        assert.deepEqual(store.patientEntries(labelled("p"), 0n, 10), []);
        assert.equal(store.patientHead(labelled("p")), undefined);
        assert.equal(store.latestCheckpoint(), undefined);
        assert.equal(store.checkpointAt(0n), undefined);
        assert.equal(store.merkleNodes.get(0, 0n), undefined);
        assert.equal(store.indexNodes.currentRoot(), undefined);
        assert.equal(store.indexNodes.get(labelled("x")), undefined);
        assert.deepEqual(store.listBlobs(null, 10), []);
        assert.equal(store.getMeta("schema_version"), String(SCHEMA_VERSION));
        assert.equal(store.getMeta("origin"), undefined);
        assert.equal(typeof store.kind, "string");
      });
    });

    describe("the ordering stream", () => {
      it("numbers submissions from 0 without gaps and reads them back in pages", () => {
        const store = open();
        assert.equal(store.appendSubmissions([text("a"), text("b"), text("c")]), 0n);
        assert.equal(store.appendSubmissions([text("d")]), 3n);
        assert.equal(store.submissionCount(), 4n);
        const page = store.readSubmissions(1n, 2);
        assert.deepEqual(
          page.map((s) => [s.seq, new TextDecoder().decode(s.bytes)]),
          [
            [1n, "b"],
            [2n, "c"],
          ],
        );
        assert.deepEqual(
          store.readSubmissions(3n, MAX_READ_LIMIT).map((s) => s.seq),
          [3n],
        );
        assert.deepEqual(store.readSubmissions(4n, 1), []);
        assert.deepEqual(store.readSubmissions(MAX_STORE_INTEGER, 1), []);
      });

      it("keeps its own copies: changing a returned or a given array changes nothing stored", () => {
        const store = open();
        const given = text("original");
        store.appendSubmissions([given]);
        given[0] = 0x58;
        const [read] = store.readSubmissions(0n, 1);
        assert.deepEqual(read!.bytes, text("original"));
        read!.bytes[0] = 0x58;
        assert.deepEqual(store.readSubmissions(0n, 1)[0]!.bytes, text("original"));
      });

      it("takes submissions up to 1 MiB and batches up to the bound; refuses the rest whole", () => {
        const store = open();
        const max = new Uint8Array(MAX_ENTRY_BYTES).fill(7);
        assert.equal(store.appendSubmissions([max]), 0n);
        const good = text("good");
        const bad: [unknown, ErrorCode][] = [
          [[], "INVALID_ARGUMENT"],
          [[good, new Uint8Array(0)], "INVALID_ARGUMENT"],
          [[good, new Uint8Array(MAX_ENTRY_BYTES + 1)], "TOO_LARGE"],
          [[good, "text"], "INVALID_ARGUMENT"],
          [[good, null], "INVALID_ARGUMENT"],
          [Array.from({ length: MAX_APPEND_BATCH + 1 }, () => good), "INVALID_ARGUMENT"],
          ["not an array", "INVALID_ARGUMENT"],
          [null, "INVALID_ARGUMENT"],
        ];
        for (const [batch, code] of bad) {
          refuses(() => store.appendSubmissions(batch as Uint8Array[]), code, `batch ${String(batch)}`);
        }
        assert.equal(store.submissionCount(), 1n);
        assert.equal(store.appendSubmissions(Array.from({ length: MAX_APPEND_BATCH }, () => good)), 1n);
        assert.equal(store.submissionCount(), BigInt(1 + MAX_APPEND_BATCH));
      });

      it("refuses bad read arguments", () => {
        const store = open();
        store.appendSubmissions([text("a")]);
        for (const limit of [0, -1, MAX_READ_LIMIT + 1, 1.5, NaN, Infinity, "1", 1n]) {
          refuses(
            () => store.readSubmissions(0n, limit as number),
            "INVALID_ARGUMENT",
            `limit ${String(limit)}`,
          );
          refuses(() => store.readEntries(0n, limit as number), "INVALID_ARGUMENT", `limit ${String(limit)}`);
        }
        for (const from of [-1n, 0, 1, MAX_STORE_INTEGER + 1n, "0", null]) {
          refuses(() => store.readSubmissions(from as bigint, 1), "INVALID_ARGUMENT", `from ${String(from)}`);
          refuses(() => store.readEntries(from as bigint, 1), "INVALID_ARGUMENT", `from ${String(from)}`);
          refuses(() => store.entryBySeq(from as bigint), "INVALID_ARGUMENT", `seq ${String(from)}`);
          refuses(
            () => store.entryByPosition(from as bigint),
            "INVALID_ARGUMENT",
            `position ${String(from)}`,
          );
        }
      });

      it("stops a read at the byte budget and goes on from there", () => {
        const store = open();
        const mib = new Uint8Array(MAX_ENTRY_BYTES);
        for (let i = 0; i < 20; i++) {
          mib[0] = i + 1;
          store.appendSubmissions([mib]);
        }
        const perPage = MAX_READ_BYTES / MAX_ENTRY_BYTES;
        const first = store.readSubmissions(0n, 100);
        assert.equal(first.length, perPage);
        const rest = store.readSubmissions(BigInt(perPage), 100);
        assert.deepEqual(
          [...first, ...rest].map((s) => s.bytes[0]),
          Array.from({ length: 20 }, (_, i) => i + 1),
        );
      });
    });

    describe("entries", () => {
      it("records accepted and rejected entries and finds them by seq, position and id", () => {
        const store = open();
        const patient = labelled("patient-ana");
        const bytes = [text('{"n":0}'), text('{"n":1}'), text('{"n":2}')];
        store.appendSubmissions(bytes);
        const e0 = decide(store, { patient, clinicalTime: "2024-03" });
        store.putEntry(e0);
        const e1 = decide(store, { status: "rejected", reason: "SIGNATURE_INVALID", patient });
        store.putEntry(e1);
        const e2 = decide(store, { clinicalTime: "2023-11-30" });
        store.putEntry(e2);
        assert.deepEqual(e0.position, 0n);
        assert.deepEqual(e1.position, null);
        assert.deepEqual(e2.position, 1n);
        assert.equal(store.entryCount(), 3n);
        assert.equal(store.treeSize(), 2n);
        assert.deepEqual(plain(store.entryBySeq(0n)), plain(rowOf(e0, bytes[0]!)));
        assert.deepEqual(plain(store.entryBySeq(1n)), plain(rowOf(e1, bytes[1]!)));
        assert.deepEqual(plain(store.entryByPosition(1n)), plain(rowOf(e2, bytes[2]!)));
        assert.equal(store.entryByPosition(2n), undefined);
        assert.deepEqual(plain(store.entryById(e1.id)), plain(rowOf(e1, bytes[1]!)));
        assert.deepEqual(
          store.readEntries(1n, 10).map((e) => e.seq),
          [1n, 2n],
        );
        // The row handed out is a copy.
        store.entryBySeq(0n)!.bytes[0] = 0;
        store.entryBySeq(0n)!.id.fill(0);
        assert.deepEqual(plain(store.entryBySeq(0n)), plain(rowOf(e0, bytes[0]!)));
        // Only accepted entries are in a patient's chain.
        assert.deepEqual(
          store.patientEntries(patient, 0n, 10).map((e) => e.seq),
          [0n],
        );
        assert.deepEqual(store.patientHead(patient), { head: e0.id, length: 1n });
      });

      it("refuses an entry that is not the next one, or whose position is not the tree size", () => {
        const store = open();
        store.appendSubmissions([text("a"), text("b")]);
        const next = decide(store);
        refuses(() => store.putEntry({ ...next, seq: 1n }), "CONFLICT", "seq ahead");
        refuses(() => store.putEntry({ ...next, position: 1n }), "CONFLICT", "position ahead");
        store.putEntry(next);
        refuses(() => store.putEntry(next), "CONFLICT", "seq again");
        const second = decide(store);
        refuses(() => store.putEntry({ ...second, position: 0n }), "CONFLICT", "position again");
        store.putEntry(second);
        // No submission 2 yet.
        refuses(
          () => store.putEntry({ ...second, seq: 2n, position: 2n, id: labelled("none") }),
          "CONFLICT",
          "no submission",
        );
        assert.equal(store.entryCount(), 2n);
      });

      it("refuses an id that is not the SHA-256 of the submission", () => {
        const store = open();
        store.appendSubmissions([text("a")]);
        refuses(() => store.putEntry({ ...decide(store), id: labelled("b") }), "INVALID_ARGUMENT");
        assert.equal(store.entryCount(), 0n);
      });

      it("refuses to accept an id twice, but records a duplicate as rejected", () => {
        const store = open();
        const same = text('{"same":true}');
        store.appendSubmissions([same, same, same]);
        const rejectedFirst = decide(store, { status: "rejected", reason: "PATIENT_UNKNOWN" });
        store.putEntry(rejectedFirst);
        assert.deepEqual(store.entryById(sha256(same))?.seq, 0n);
        store.putEntry(decide(store));
        assert.deepEqual(store.entryById(sha256(same))?.seq, 1n, "the accepted one wins");
        refuses(() => store.putEntry(decide(store)), "CONFLICT", "accepted twice");
        store.putEntry(decide(store, { status: "rejected", reason: "DUPLICATE_ID" }));
        assert.deepEqual(store.entryById(sha256(same))?.seq, 1n);
        assert.equal(store.treeSize(), 1n);
        assert.equal(store.entryCount(), 3n);
      });

      it("refuses malformed rows with INVALID_ARGUMENT and writes nothing", () => {
        const store = open();
        store.appendSubmissions([text("a")]);
        const ok = decide(store);
        const bad: unknown[] = [
          null,
          "entry",
          { ...ok, seq: 0 },
          { ...ok, seq: -1n },
          { ...ok, position: null },
          { ...ok, position: 0 },
          { ...ok, position: MAX_STORE_INTEGER + 1n },
          { ...ok, id: ok.id.subarray(1) },
          { ...ok, id: hex(ok.id) },
          { ...ok, status: "pending" },
          { ...ok, status: undefined },
          { ...ok, reason: "CHAIN_BROKEN" },
          { ...ok, status: "rejected", position: null, reason: null },
          { ...ok, status: "rejected", position: 0n, reason: "CHAIN_BROKEN" },
          { ...ok, status: "rejected", position: null, reason: "chain broken" },
          { ...ok, status: "rejected", position: null, reason: "" },
          { ...ok, status: "rejected", position: null, reason: "A".repeat(65) },
          { ...ok, patient: new Uint8Array(31) },
          { ...ok, patient: undefined },
          { ...ok, clinicalTime: "" },
          { ...ok, clinicalTime: "2024 03" },
          { ...ok, clinicalTime: "2024-03\n" },
          { ...ok, clinicalTime: "x".repeat(33) },
          { ...ok, clinicalTime: "2024-03-é" },
          { ...ok, clinicalTime: 2024 },
          { ...ok, clinicalTime: undefined },
        ];
        for (const entry of bad) {
          refuses(
            () => store.putEntry(entry as NewEntry),
            "INVALID_ARGUMENT",
            JSON.stringify(entry, (_, v: unknown) => (typeof v === "bigint" ? `${v}n` : v)),
          );
        }
        assert.equal(store.entryCount(), 0n);
        store.putEntry({ ...ok, clinicalTime: "2024-03-15T10:00Z".slice(0, 32) });
        assert.equal(store.entryCount(), 1n);
      });

      it("pages a patient's accepted entries in ledger order and derives the chain head", () => {
        const store = open();
        const ana = labelled("ana");
        const ben = labelled("ben");
        const anaIds: Uint8Array[] = [];
        store.transaction(() => {
          for (let i = 0; i < 40; i++) {
            store.appendSubmissions([text(`{"i":${i}}`)]);
            const who = i % 3 === 0 ? ben : ana;
            const entry = decide(store, { patient: who, status: i % 7 === 6 ? "rejected" : "accepted" });
            store.putEntry(entry);
            if (who === ana && entry.status === "accepted") anaIds.push(entry.id);
          }
        });
        const pages: EntryRow[][] = [];
        for (let from = 0n; ;) {
          const page = store.patientEntries(ana, from, 10);
          if (page.length === 0) break;
          pages.push(page);
          from = page[page.length - 1]!.position! + 1n;
        }
        assert.deepEqual(
          pages.map((p) => p.length),
          [10, 10, 3],
        );
        const flat = pages.flat();
        assert.deepEqual(
          flat.map((e) => hex(e.id)),
          anaIds.map(hex),
        );
        assert.ok(flat.every((e, i) => i === 0 || e.position! > flat[i - 1]!.position!));
        assert.ok(flat.every((e) => e.status === "accepted" && hex(e.patient!) === hex(ana)));
        // A page from a middle position starts at the first of the patient's entries at or after it.
        const k = flat.findIndex((e, i) => i > 0 && e.position! > flat[i - 1]!.position! + 1n);
        assert.ok(k > 0, "ben's entries leave gaps between ana's positions");
        assert.deepEqual(store.patientEntries(ana, flat[k]!.position!, 1)[0]?.seq, flat[k]!.seq);
        assert.deepEqual(store.patientEntries(ana, flat[k - 1]!.position! + 1n, 1)[0]?.seq, flat[k]!.seq);
        assert.deepEqual(store.patientEntries(ana, store.treeSize(), 10), []);
        assert.equal(anaIds.length, 23);
        assert.deepEqual(store.patientHead(ana), { head: anaIds[22], length: 23n });
        assert.equal(store.patientHead(labelled("nobody")), undefined);
        refuses(() => store.patientEntries(ana.subarray(1), 0n, 1), "INVALID_ARGUMENT");
        refuses(() => store.patientEntries(ana, -1n, 1), "INVALID_ARGUMENT");
        refuses(() => store.patientEntries(ana, 0n, 0), "INVALID_ARGUMENT");
        refuses(() => store.patientHead(new Uint8Array(33)), "INVALID_ARGUMENT");
        refuses(() => store.entryById(new Uint8Array(0)), "INVALID_ARGUMENT");
      });
    });

    describe("Merkle nodes", () => {
      it("stores nodes once, keyed by level and a bigint index far beyond 2^32", () => {
        const store = open();
        const nodes = store.merkleNodes;
        const keys: [number, bigint][] = [
          [0, 0n],
          [0, 1n],
          [0, 2n ** 32n],
          [0, 2n ** 32n + 1n],
          [0, 2n ** 53n + 1n],
          [0, MAX_STORE_INTEGER],
          [5, 2n ** 40n],
          [63, 0n],
        ];
        keys.forEach(([level, index], i) => nodes.put(level, index, labelled(`n${i}`)));
        keys.forEach(([level, index], i) => assert.deepEqual(nodes.get(level, index), labelled(`n${i}`)));
        assert.equal(nodes.get(0, 2n ** 32n + 2n), undefined);
        assert.equal(nodes.get(1, 2n ** 32n), undefined);
        // Same hash again: a no-op. A different one: the tree would change under its readers.
        nodes.put(0, 2n ** 32n, labelled("n2"));
        refuses(() => nodes.put(0, 2n ** 32n, labelled("other")), "INCONSISTENT_TREE");
        assert.deepEqual(nodes.get(0, 2n ** 32n), labelled("n2"));
        // A returned hash is a copy.
        nodes.get(0, 0n)!.fill(0);
        assert.deepEqual(nodes.get(0, 0n), labelled("n0"));
      });

      it("refuses bad node keys and hashes, and answers undefined to bad lookups", () => {
        const nodes = open().merkleNodes;
        for (const level of [-1, 64, 1.5, NaN, "0"]) {
          refuses(() => nodes.put(level as number, 0n, labelled("x")), "INVALID_ARGUMENT", `level ${level}`);
          assert.equal(nodes.get(level as number, 0n), undefined);
        }
        for (const index of [-1n, MAX_STORE_INTEGER + 1n, 0, "0"]) {
          refuses(() => nodes.put(0, index as bigint, labelled("x")), "INVALID_ARGUMENT", `index ${index}`);
          assert.equal(nodes.get(0, index as bigint), undefined);
        }
        for (const hash of [new Uint8Array(31), new Uint8Array(33), "hash", null]) {
          refuses(() => nodes.put(0, 0n, hash as Uint8Array), "MALFORMED_INPUT");
        }
        assert.equal(nodes.get(0, 0n), undefined);
      });

      it("carries a durable MerkleTree: same roots and proofs as in memory, and reopens from its size", () => {
        const store = open();
        const durable = MerkleTree.create(sha256, store.merkleNodes);
        const reference = MerkleTree.create(sha256);
        const leaves = Array.from({ length: 77 }, (_, i) => text(`leaf ${i}`));
        acceptAll(store, leaves.slice(0, 40), null, durable);
        acceptAll(store, leaves.slice(40), null, durable);
        reference.appendMany(leaves);
        assert.deepEqual(durable.root(), reference.root());
        const reopened = MerkleTree.open(sha256, store.merkleNodes, store.treeSize());
        assert.deepEqual(reopened.root(), reference.root());
        assert.deepEqual(reopened.rootAt(13n), reference.rootAt(13n));
        const proof = reopened.inclusionProof(29n);
        verifyInclusion(sha256, {
          index: 29n,
          size: 77n,
          leafHash: durable.leafHash(29n),
          proof,
          root: reference.root(),
        });
        assert.deepEqual(reopened.consistencyProof(10n), reference.consistencyProof(10n));
      });

      it("answers a leaf of an accepted entry with its RFC 9162 leaf hash, and refuses another hash there", () => {
        const store = open();
        const leaves = [text("leaf a"), text("leaf b"), text("leaf c")];
        acceptAll(store, leaves.slice(0, 2));
        // SHA-256(0x00 || entry), computed here independently of the store.
        const leafOf = (bytes: Uint8Array) => sha256(Uint8Array.of(0, ...bytes));
        assert.deepEqual(store.merkleNodes.get(0, 0n), leafOf(leaves[0]!));
        assert.deepEqual(store.merkleNodes.get(0, 1n), leafOf(leaves[1]!));
        assert.equal(store.merkleNodes.get(0, 2n), undefined);
        store.merkleNodes.put(0, 1n, leafOf(leaves[1]!));
        refuses(() => store.merkleNodes.put(0, 0n, labelled("not the leaf")), "INCONSISTENT_TREE");
        // A leaf written before its entry is accepted is a stored node like any other.
        store.merkleNodes.put(0, 2n, leafOf(leaves[2]!));
        acceptAll(store, leaves.slice(2));
        assert.deepEqual(store.merkleNodes.get(0, 2n), leafOf(leaves[2]!));
        // A rejected entry has no leaf.
        store.appendSubmissions([text("rejected")]);
        store.putEntry(decide(store, { status: "rejected", reason: "BAD_SIGNATURE" }));
        assert.equal(store.merkleNodes.get(0, 3n), undefined);
      });
    });

    describe("patient index nodes", () => {
      it("returns every body written, over many batches, and undefined for unknown hashes", () => {
        const store = open();
        const index = store.indexNodes;
        const records = Array.from({ length: 12_000 }, (_, i) => indexNode(i));
        for (let start = 0; start < records.length; start += 3_000) {
          const nodes = records.slice(start, start + 3_000);
          index.writeBatch({ nodes, root: nodes[0]!.hash });
        }
        const wrong = records.filter(
          ({ hash, body }) => hex(index.get(hash) ?? new Uint8Array()) !== hex(body),
        );
        assert.equal(wrong.length, 0);
        assert.equal(index.get(labelled("never written")), undefined);
        assert.equal(index.get(new Uint8Array(31)), undefined);
        assert.equal(index.get("hash" as unknown as Uint8Array), undefined);
        assert.deepEqual(index.currentRoot(), records[9_000]!.hash);
      });

      it("writing a node again is a no-op, the root follows the last batch, and roots are copies", () => {
        const index = open().indexNodes;
        const node = indexNode(1);
        index.writeBatch({ nodes: [node], root: node.hash });
        index.writeBatch({ nodes: [node, node], root: EMPTY_HASH });
        assert.deepEqual(index.get(node.hash), node.body);
        assert.deepEqual(index.currentRoot(), EMPTY_HASH);
        index.currentRoot()![0] = 1;
        assert.deepEqual(index.currentRoot(), EMPTY_HASH);
      });

      it("a batch with one bad node or a bad root writes nothing", () => {
        const index = open().indexNodes;
        const good = indexNode(1);
        const bads: unknown[] = [
          { nodes: [good, { hash: labelled("bad"), body: new Uint8Array(64) }], root: good.hash },
          // Not content-addressed: a store may keep only a prefix of the hash and recompute the rest.
          { nodes: [good, { hash: labelled("bad"), body: indexNode(2).body }], root: good.hash },
          { nodes: [good, { hash: new Uint8Array(31), body: good.body }], root: good.hash },
          { nodes: [good, null], root: good.hash },
          { nodes: [good], root: new Uint8Array(31) },
          { nodes: "nodes", root: good.hash },
          null,
        ];
        for (const batch of bads) refuses(() => index.writeBatch(batch as never), "INVALID_ARGUMENT");
        assert.equal(index.get(good.hash), undefined);
        assert.equal(index.currentRoot(), undefined);
      });

      it("gives back leaves whose value is the chain head of an accepted entry, across a reopen", () => {
        let store = open();
        const patient = labelled("patient p");
        const rows = acceptAll(store, [text("enrol p"), text("record p")], patient);
        // A leaf as PatientIndex writes it: 0x02 || key || head id || length (big-endian 64 bits).
        const leafFor = (head: Uint8Array, length: number) => {
          const body = new Uint8Array(LEAF_BODY_SIZE);
          body[0] = 2;
          body.set(patient, 1);
          body.set(head, 33);
          new DataView(body.buffer).setBigUint64(65, BigInt(length));
          return { hash: sha256(body), body };
        };
        const first = leafFor(rows[0]!.id, 1);
        const second = leafFor(rows[1]!.id, 2);
        const stray = leafFor(labelled("no such entry"), 3);
        store.indexNodes.writeBatch({ nodes: [first], root: first.hash });
        store.transaction(() => {
          const more = acceptAll(store, [text("another p")], patient);
          const third = leafFor(more[0]!.id, 3);
          store.indexNodes.writeBatch({ nodes: [second, third, stray, second], root: third.hash });
          assert.deepEqual(store.indexNodes.get(third.hash), third.body);
        });
        for (const node of [first, second, stray])
          assert.deepEqual(store.indexNodes.get(node.hash), node.body);
        if (harness.reopen !== undefined) {
          store = harness.reopen(store);
          for (const node of [first, second, stray])
            assert.deepEqual(store.indexNodes.get(node.hash), node.body);
        }
        assert.equal(store.indexNodes.get(leafFor(rows[1]!.id, 7).hash), undefined);
      });

      it("carries the real PatientIndex: same roots as over the memory index store", () => {
        const store = open();
        const durable = new PatientIndex(sha256, store.indexNodes);
        const reference = new PatientIndex(sha256, new MemoryIndexStore());
        for (let round = 0; round < 5; round++) {
          const changes = Array.from({ length: 30 }, (_, i) => ({
            key: labelled(`patient-${(i * 7 + round) % 45}`),
            value: { head: labelled(`head-${round}-${i}`), length: round + 1 },
          }));
          durable.update(changes);
          reference.update(changes);
          assert.deepEqual(durable.root, reference.root);
        }
        const reopened = new PatientIndex(sha256, store.indexNodes);
        assert.deepEqual(reopened.root, reference.root);
        assert.equal(reopened.audit(), 45);
      });
    });

    describe("checkpoints", () => {
      it("stores notes by size up to the tree size, replaces a note at the same size, finds the latest", () => {
        const store = open();
        store.putCheckpoint(0n, "origin\n0\nroot0\n");
        refuses(() => store.putCheckpoint(1n, "origin\n1\n"), "CONFLICT");
        acceptAll(store, [text("a"), text("b"), text("c")]);
        store.putCheckpoint(3n, "origin\n3\nroot3\n\n— sig\n");
        store.putCheckpoint(2n, "origin\n2\nroot2\n");
        assert.deepEqual(store.latestCheckpoint(), { size: 3n, note: "origin\n3\nroot3\n\n— sig\n" });
        store.putCheckpoint(3n, "origin\n3\nroot3\n\n— sig\n— witness\n");
        assert.equal(store.checkpointAt(3n), "origin\n3\nroot3\n\n— sig\n— witness\n");
        assert.equal(store.checkpointAt(2n), "origin\n2\nroot2\n");
        assert.equal(store.checkpointAt(1n), undefined);
        assert.equal(store.checkpointAt(0n), "origin\n0\nroot0\n");
        refuses(() => store.putCheckpoint(4n, "ahead"), "CONFLICT");
      });

      it("refuses bad sizes and notes", () => {
        const store = open();
        const cases: [unknown, unknown, ErrorCode][] = [
          [-1n, "n", "INVALID_ARGUMENT"],
          [0, "n", "INVALID_ARGUMENT"],
          [MAX_STORE_INTEGER + 1n, "n", "INVALID_ARGUMENT"],
          [0n, "", "INVALID_ARGUMENT"],
          [0n, null, "INVALID_ARGUMENT"],
          [0n, new Uint8Array(3), "INVALID_ARGUMENT"],
          [0n, "x".repeat(MAX_CHECKPOINT_CHARS + 1), "TOO_LARGE"],
          [0n, "lone \ud800 surrogate", "INVALID_STRING"],
        ];
        for (const [size, note, code] of cases) {
          refuses(() => store.putCheckpoint(size as bigint, note as string), code, String(size));
        }
        refuses(() => store.checkpointAt(-1n), "INVALID_ARGUMENT");
        assert.equal(store.latestCheckpoint(), undefined);
        store.putCheckpoint(0n, "x".repeat(MAX_CHECKPOINT_CHARS));
        assert.equal(store.checkpointAt(0n)?.length, MAX_CHECKPOINT_CHARS);
      });
    });

    describe("blobs", () => {
      it("are content-addressed by SHA-256, idempotent, deletable, and listed in byte order", () => {
        const store = open();
        const a = text("ciphertext a");
        const hash = store.putBlob(a);
        assert.deepEqual(hash, sha256(a));
        assert.deepEqual(store.putBlob(a), hash, "a second put is a no-op");
        assert.equal(store.hasBlob(hash), true);
        assert.deepEqual(store.getBlob(hash), a);
        store.getBlob(hash)![0] = 0;
        assert.deepEqual(store.getBlob(hash), a, "a returned blob is a copy");
        const empty = store.putBlob(new Uint8Array(0));
        assert.deepEqual(store.getBlob(empty), new Uint8Array(0));
        const hashes = [hash, empty];
        for (let i = 0; i < 7; i++) hashes.push(store.putBlob(text(`blob ${i}`)));
        const sorted = hashes.map(hex).sort();
        assert.deepEqual(store.listBlobs(null, 100).map(hex), sorted);
        assert.deepEqual(store.listBlobs(null, 4).map(hex), sorted.slice(0, 4));
        assert.deepEqual(store.listBlobs(Buffer.from(sorted[3]!, "hex"), 4).map(hex), sorted.slice(4, 8));
        assert.deepEqual(store.listBlobs(new Uint8Array(32).fill(0xff), 4), []);
        assert.equal(store.deleteBlob(hash), true);
        assert.equal(store.deleteBlob(hash), false);
        assert.equal(store.hasBlob(hash), false);
        assert.equal(store.getBlob(hash), undefined);
        assert.equal(store.listBlobs(null, 100).length, 8);
        assert.deepEqual(store.putBlob(a), hash, "a deleted blob can be stored again");
        assert.equal(store.hasBlob(labelled("unknown")), false);
        assert.equal(store.getBlob(labelled("unknown")), undefined);
        assert.equal(store.deleteBlob(labelled("unknown")), false);
      });

      it("take up to 64 MiB and refuse more, and bad hashes", () => {
        const store = open();
        const big = new Uint8Array(MAX_BLOB_BYTES);
        big[MAX_BLOB_BYTES - 1] = 1;
        const hash = store.putBlob(big);
        assert.equal(store.getBlob(hash)?.length, MAX_BLOB_BYTES);
        refuses(() => store.putBlob(new Uint8Array(MAX_BLOB_BYTES + 1)), "TOO_LARGE");
        refuses(() => store.putBlob("blob" as unknown as Uint8Array), "INVALID_ARGUMENT");
        for (const bad of [new Uint8Array(31), new Uint8Array(33), hex(hash), null]) {
          const h = bad as Uint8Array;
          refuses(() => store.getBlob(h), "INVALID_ARGUMENT");
          refuses(() => store.hasBlob(h), "INVALID_ARGUMENT");
          refuses(() => store.deleteBlob(h), "INVALID_ARGUMENT");
          if (bad !== null) refuses(() => store.listBlobs(h, 1), "INVALID_ARGUMENT");
        }
        refuses(() => store.listBlobs(null, 0), "INVALID_ARGUMENT");
      });
    });

    describe("metadata", () => {
      it("keeps small key/values, refuses reserved and malformed keys and oversized values", () => {
        const store = open();
        store.setMeta("origin", "medledger.example/region-1");
        store.setMeta("node.key_id", "abc");
        store.setMeta("origin", "medledger.example/region-2");
        assert.equal(store.getMeta("origin"), "medledger.example/region-2");
        assert.equal(store.getMeta("node.key_id"), "abc");
        store.setMeta("empty", "");
        assert.equal(store.getMeta("empty"), "");
        store.setMeta("long", "v".repeat(MAX_META_VALUE_CHARS));
        refuses(() => store.setMeta("schema_version", "2"), "INVALID_ARGUMENT");
        for (const key of ["", "Origin", "1st", "a b", "x".repeat(65), "é", null]) {
          refuses(() => store.setMeta(key as string, "v"), "INVALID_ARGUMENT", `key ${key}`);
          refuses(() => store.getMeta(key as string), "INVALID_ARGUMENT", `key ${key}`);
        }
        refuses(() => store.setMeta("k", "v".repeat(MAX_META_VALUE_CHARS + 1)), "TOO_LARGE");
        refuses(() => store.setMeta("k", "\udc00"), "INVALID_STRING");
        refuses(() => store.setMeta("k", 1 as unknown as string), "INVALID_ARGUMENT");
        assert.equal(store.getMeta("k"), undefined);
        assert.equal(store.getMeta("schema_version"), String(SCHEMA_VERSION));
      });
    });

    describe("transactions", () => {
      /** Write one of everything. */
      const writeAll = (store: LedgerStore, tree: MerkleTree, index: PatientIndex, tag: string) => {
        const patient = labelled(`patient ${tag}`);
        const bytes = [text(`${tag} 1`), text(`${tag} 2`)];
        acceptAll(store, bytes, patient, tree);
        index.set(patient, { head: sha256(bytes[1]!), length: 2 });
        store.putCheckpoint(tree.size, `cp ${tag}`);
        store.putBlob(text(`blob ${tag}`));
        store.setMeta("tag", tag);
      };

      it("commit everything together, and a throw mid-batch leaves nothing visible at all", () => {
        const store = open();
        const tree = MerkleTree.create(sha256, store.merkleNodes);
        const index = new PatientIndex(sha256, store.indexNodes);
        store.transaction(() => writeAll(store, tree, index, "first"));
        const probes = {
          merkle: [
            [0, 0n],
            [0, 1n],
            [0, 2n],
            [0, 3n],
            [1, 0n],
            [1, 1n],
            [2, 0n],
          ] as [number, bigint][],
          patients: [labelled("patient first"), labelled("patient second")],
          metaKeys: ["tag"],
        };
        const before = snapshot(store, probes);
        const indexRoot = index.root;
        const failure = new Error("disk on fire");
        assert.throws(
          () =>
            store.transaction(() => {
              writeAll(store, tree, index, "second");
              store.deleteBlob(sha256(text("blob first")));
              throw failure;
            }),
          (err) => err === failure,
        );
        assert.deepEqual(snapshot(store, probes), before);
        assert.equal(store.merkleNodes.get(0, 2n), undefined, "no Merkle node of the failed batch");
        assert.deepEqual(store.indexNodes.currentRoot(), indexRoot, "the index root is the old one");
        assert.equal(store.hasBlob(sha256(text("blob second"))), false);
        assert.equal(store.hasBlob(sha256(text("blob first"))), true);
        // The in-memory tree and index ran ahead; reopened from the store they carry on from the old state.
        const reopened = MerkleTree.open(sha256, store.merkleNodes, store.treeSize());
        const freshIndex = new PatientIndex(sha256, store.indexNodes);
        assert.deepEqual(freshIndex.root, indexRoot);
        store.transaction(() => writeAll(store, reopened, freshIndex, "third"));
        const reference = MerkleTree.create(sha256);
        reference.appendMany([text("first 1"), text("first 2"), text("third 1"), text("third 2")]);
        assert.deepEqual(reopened.root(), reference.root());
        assert.equal(freshIndex.audit(), 2);
      });

      it("a refused write inside a transaction undoes the whole transaction when it propagates", () => {
        const store = open();
        refuses(
          () =>
            store.transaction(() => {
              store.appendSubmissions([text("a")]);
              const entry = decide(store);
              store.putEntry(entry);
              store.putEntry(entry); // not the next seq any more
            }),
          "CONFLICT",
        );
        assert.equal(store.submissionCount(), 0n);
        assert.equal(store.entryCount(), 0n);
      });

      it("nested calls join the outer one; a nested throw undoes only its own writes", () => {
        const store = open();
        const result = store.transaction(() => {
          store.setMeta("outer", "1");
          const inner = store.transaction(() => {
            store.setMeta("inner", "1");
            return 42;
          });
          assert.throws(() =>
            store.transaction(() => {
              store.setMeta("undone", "1");
              store.appendSubmissions([text("undone")]);
              store.transaction(() => store.setMeta("deep", "1"));
              throw new Error("inner failure");
            }),
          );
          assert.equal(store.getMeta("undone"), undefined, "visible inside: already undone");
          assert.equal(store.getMeta("deep"), undefined);
          return inner;
        });
        assert.equal(result, 42);
        assert.equal(store.getMeta("outer"), "1");
        assert.equal(store.getMeta("inner"), "1");
        assert.equal(store.getMeta("undone"), undefined);
        assert.equal(store.submissionCount(), 0n);
        // An outer throw after a nested success undoes both.
        assert.throws(() =>
          store.transaction(() => {
            store.transaction(() => store.setMeta("inner2", "1"));
            throw new Error("outer failure");
          }),
        );
        assert.equal(store.getMeta("inner2"), undefined);
      });

      it("refuses an async function and writes nothing, and refuses a non-function", () => {
        const store = open();
        refuses(
          () =>
            store.transaction(() => {
              store.setMeta("sync_part", "1");
              return Promise.resolve(1);
            }),
          "INVALID_ARGUMENT",
        );
        assert.equal(store.getMeta("sync_part"), undefined);
        refuses(() => store.transaction("fn" as unknown as () => void), "INVALID_ARGUMENT");
      });

      it("flush resolves once commits are durable", async () => {
        const store = open();
        store.setMeta("k", "v");
        await store.flush();
        assert.equal(store.getMeta("k"), "v");
      });
    });

    describe("closing", () => {
      it("refuses every call after close, tolerates a second close, refuses close inside a transaction", async () => {
        const store = open();
        refuses(() => store.transaction(() => store.close()), "CONFLICT");
        store.setMeta("still", "open");
        store.close();
        store.close();
        const calls: (() => unknown)[] = [
          () => store.submissionCount(),
          () => store.appendSubmissions([text("a")]),
          () => store.readSubmissions(0n, 1),
          () => store.entryBySeq(0n),
          () => store.treeSize(),
          () => store.getMeta("still"),
          () => store.setMeta("k", "v"),
          () => store.putBlob(text("b")),
          () => store.getBlob(labelled("b")),
          () => store.latestCheckpoint(),
          () => store.merkleNodes.get(0, 0n),
          () => store.merkleNodes.put(0, 0n, labelled("n")),
          () => store.indexNodes.get(labelled("n")),
          () => store.indexNodes.currentRoot(),
          () => store.indexNodes.writeBatch({ nodes: [], root: EMPTY_HASH }),
          () => store.transaction(() => 1),
        ];
        for (const call of calls) refuses(call, "CONFLICT", call.toString());
        await assert.rejects(store.flush(), (err) => isLedgerError(err, "CONFLICT"));
      });
    });

    if (harness.reopen !== undefined) {
      const reopen = harness.reopen;
      describe("persistence", () => {
        it("keeps everything across a close and a reopen, and carries on from there", () => {
          let store = open();
          const tree = MerkleTree.create(sha256, store.merkleNodes);
          const index = new PatientIndex(sha256, store.indexNodes);
          const patient = labelled("persisted patient");
          store.transaction(() => {
            acceptAll(store, [text("p1"), text("p2"), text("p3")], patient, tree);
            store.appendSubmissions([text("p4")]);
            store.putEntry(decide(store, { status: "rejected", reason: "ROLE_MISSING", patient }));
            index.set(patient, { head: sha256(text("p3")), length: 3 });
            store.putCheckpoint(3n, "persisted checkpoint\n");
            store.merkleNodes.put(0, 2n ** 40n, labelled("far"));
            store.putBlob(text("persisted blob"));
            store.setMeta("origin", "persisted");
          });
          const probes = {
            merkle: [
              [0, 0n],
              [1, 0n],
              [0, 2n],
              [0, 2n ** 40n],
            ] as [number, bigint][],
            indexHashes: [index.root],
            patients: [patient],
            metaKeys: ["origin"],
          };
          const before = snapshot(store, probes);
          store = reopen(store);
          assert.deepEqual(snapshot(store, probes), before);
          const reopened = MerkleTree.open(sha256, store.merkleNodes, store.treeSize());
          assert.deepEqual(reopened.root(), tree.root());
          assert.deepEqual(new PatientIndex(sha256, store.indexNodes).root, index.root);
          acceptAll(store, [text("p5")], patient, reopened);
          const reference = MerkleTree.create(sha256);
          reference.appendMany([text("p1"), text("p2"), text("p3"), text("p5")]);
          assert.deepEqual(reopened.root(), reference.root());
          store = reopen(store);
          assert.equal(store.treeSize(), 4n);
          assert.equal(store.entryCount(), 5n);
          assert.deepEqual(MerkleTree.open(sha256, store.merkleNodes, 4n).root(), reference.root());
        });

        it("a transaction that threw before the close left nothing behind after the reopen", () => {
          let store = open();
          store.setMeta("kept", "yes");
          assert.throws(() =>
            store.transaction(() => {
              store.appendSubmissions([text("lost")]);
              store.setMeta("lost", "yes");
              throw new Error("crash");
            }),
          );
          store = reopen(store);
          assert.equal(store.getMeta("kept"), "yes");
          assert.equal(store.getMeta("lost"), undefined);
          assert.equal(store.submissionCount(), 0n);
        });
      });
    }
  });
}
