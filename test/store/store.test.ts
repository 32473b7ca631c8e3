// The store conformance suite on every adapter (memory, SQLite in temporary files), openStore's URL
// handling, SQLite specifics (schema, settings, refusal of foreign files), and a differential property
// test: random operation sequences give the same observable state and the same outcomes on both adapters.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import fc from "fast-check";
import { isLedgerError } from "../../src/core/errors.ts";
import { MemoryStore, SQLITE_APPLICATION_ID, openSqliteStore, openStore } from "../../src/store/index.ts";
import type { LedgerStore, NewEntry } from "../../src/store/index.ts";
import { labelled, refuses, runStoreConformance, sha256, snapshot, text } from "./conformance.ts";

const dir = mkdtempSync(join(tmpdir(), "medledger-store-"));
const opened = new Set<LedgerStore>();
const paths = new WeakMap<LedgerStore, string>();
let files = 0;

/** A new SQLite store in the temporary folder, closed and removed when the tests end. */
function freshSqlite(): LedgerStore {
  const path = join(dir, `store-${++files}.db`);
  const store = openSqliteStore(path);
  opened.add(store);
  paths.set(store, path);
  return store;
}

after(() => {
  for (const store of opened) store.close();
  rmSync(dir, { recursive: true, force: true });
});

runStoreConformance("memory", {
  open: () => new MemoryStore(),
});

runStoreConformance("sqlite", {
  open: freshSqlite,
  reopen: (store) => {
    const path = paths.get(store)!;
    store.close();
    opened.delete(store);
    const again = openSqliteStore(path);
    opened.add(again);
    paths.set(again, path);
    return again;
  },
});

describe("openStore", () => {
  it('opens "memory:" and "sqlite:PATH", creating the folders of a new file', async () => {
    const memory = await openStore("memory:");
    assert.equal(memory.kind, "memory");
    memory.close();
    const path = join(dir, "nested", "folders", "ledger.db");
    const sqlite = await openStore(`sqlite:${path}`);
    assert.equal(sqlite.kind, "sqlite");
    sqlite.setMeta("origin", "example");
    sqlite.close();
    const again = await openStore(`sqlite:${path}`);
    assert.equal(again.getMeta("origin"), "example");
    again.close();
  });

  it("refuses unknown schemes, PostgreSQL for now, and malformed URLs, without echoing secrets", async () => {
    const refusesAsync = async (url: unknown, pattern: RegExp) => {
      await assert.rejects(openStore(url as string), (err: unknown) => {
        assert.ok(isLedgerError(err, "INVALID_ARGUMENT"), String(err));
        assert.match(err.message, pattern);
        assert.doesNotMatch(err.message, /hunter2/);
        return true;
      });
    };
    await refusesAsync("postgres://user:hunter2@db.example/ledger", /not yet supported.*consortium mode/);
    await refusesAsync("postgresql://user:hunter2@db.example/ledger", /not yet supported/);
    await refusesAsync("mysql://user:hunter2@db.example/ledger", /unknown store URL scheme "mysql:"/);
    await refusesAsync("./ledger.db", /unknown store URL scheme \(none\)/);
    await refusesAsync("sqlite:", /names a file/);
    await refusesAsync("sqlite::memory:", /is a file/);
    await refusesAsync("sqlite:a\0b", /file path/);
    await refusesAsync("memory:extra", /unknown store URL scheme "memory:"/);
    await refusesAsync("", /1\.\.4096/);
    await refusesAsync("sqlite:" + "x".repeat(5000), /1\.\.4096/);
    await refusesAsync(42, /string/);
  });
});

describe("sqlite specifics", () => {
  it("runs in WAL mode with synchronous = FULL, foreign keys and secure delete on", () => {
    const store = openSqliteStore(join(dir, "settings.db"));
    assert.deepEqual(store.settings(), {
      journalMode: "wal",
      synchronous: "FULL",
      foreignKeys: true,
      secureDelete: true,
    });
    store.close();
  });

  it("marks its file with an application id and records its migrations", () => {
    const path = join(dir, "marked.db");
    openSqliteStore(path).close();
    const raw = new Database(path, { readonly: true });
    try {
      assert.equal(raw.pragma("application_id", { simple: true }), SQLITE_APPLICATION_ID);
      assert.deepEqual(raw.prepare("SELECT version, name FROM migrations").all(), [
        {
          version: 2,
          name: "compact schema: encoded entry bytes, hash prefixes, numbered patients, derived leaves",
        },
      ]);
      assert.equal(raw.pragma("integrity_check", { simple: true }), "ok");
    } finally {
      raw.close();
    }
  });

  it("refuses another application's database, a file that is not a database, and a newer schema", () => {
    const foreign = join(dir, "foreign.db");
    const other = new Database(foreign);
    other.exec("CREATE TABLE customers (id INTEGER PRIMARY KEY)");
    other.close();
    refuses(() => openSqliteStore(foreign), "INVALID_ARGUMENT");
    const tagged = join(dir, "tagged.db");
    const app = new Database(tagged);
    app.pragma("application_id = 1234");
    app.close();
    refuses(() => openSqliteStore(tagged), "INVALID_ARGUMENT");
    const garbage = join(dir, "garbage.db");
    writeFileSync(garbage, Buffer.alloc(8192, 0x41));
    refuses(() => openSqliteStore(garbage), "STORE_CORRUPT");
    const newer = join(dir, "newer.db");
    openSqliteStore(newer).close();
    const raw = new Database(newer);
    raw.prepare("INSERT INTO migrations (version, name, applied_at) VALUES (3, 'future', 'then')").run();
    raw.close();
    refuses(() => openSqliteStore(newer), "UNSUPPORTED_VERSION");
  });

  it("refuses a schema 1 file (written before the compact schema) with a message saying what to do", () => {
    const older = join(dir, "older.db");
    openSqliteStore(older).close();
    const raw = new Database(older);
    raw.exec("DELETE FROM migrations");
    raw
      .prepare("INSERT INTO migrations (version, name, applied_at) VALUES (1, 'initial schema', 'then')")
      .run();
    raw.close();
    assert.throws(
      () => openSqliteStore(older),
      (err: unknown) =>
        isLedgerError(err) &&
        err.code === "UNSUPPORTED_VERSION" &&
        /schema version 1, written by an earlier build/.test(err.message) &&
        /does not upgrade it in place/.test(err.message),
    );
  });

  it("reports a row damaged on disk as STORE_CORRUPT instead of handing it out", () => {
    const path = join(dir, "damaged.db");
    const store = openSqliteStore(path);
    store.appendSubmissions([text("entry")]);
    store.putEntry({
      seq: 0n,
      position: 0n,
      id: sha256(text("entry")),
      status: "accepted",
      reason: null,
      patient: null,
      clinicalTime: null,
    });
    store.merkleNodes.put(1, 0n, labelled("node"));
    store.indexNodes.writeBatch({ nodes: [], root: labelled("root") });
    store.close();
    const raw = new Database(path);
    // Writes that the schema's CHECK constraints forbid, as a bit flip on disk would make them.
    raw.pragma("ignore_check_constraints = ON");
    raw.exec("UPDATE entries SET id_prefix = id_prefix + 1");
    raw.exec("UPDATE merkle_nodes SET hash = x'0102'");
    raw.exec("UPDATE index_root SET root = x'00'");
    raw.close();
    const damaged = openSqliteStore(path);
    try {
      refuses(() => damaged.entryBySeq(0n), "STORE_CORRUPT");
      refuses(() => damaged.readEntries(0n, 10), "STORE_CORRUPT");
      // Ids are found by their stored prefix: a damaged prefix hides the entry from lookups by id (reading
      // the row, as `medledger verify` does, reports it).
      assert.equal(damaged.entryById(sha256(text("entry"))), undefined);
      refuses(() => damaged.merkleNodes.get(1, 0n), "STORE_CORRUPT");
      refuses(() => damaged.indexNodes.currentRoot(), "STORE_CORRUPT");
      assert.deepEqual(damaged.readSubmissions(0n, 1)[0]?.bytes, text("entry"));
    } finally {
      damaged.close();
    }
  });

  it("reports damaged entry bytes, patient keys and index nodes, naming what is wrong", () => {
    const path = join(dir, "damaged-bytes.db");
    const store = openSqliteStore(path);
    const genesis = text(`{"body":{"key":"${"ab".repeat(32)}"},"kind":"genesis"}`);
    const entry = text(`{"body":{"key":"${"ab".repeat(32)}","patient":"${"cd".repeat(16)}"},"kind":"x"}`);
    store.appendSubmissions([genesis, entry]);
    const patient = labelled("patient");
    store.transaction(() => {
      store.putEntry({ ...accepted(0n, genesis), patient: null });
      store.putEntry({ ...accepted(1n, entry), patient });
    });
    const leaf = new Uint8Array(73).fill(2);
    store.indexNodes.writeBatch({ nodes: [{ hash: sha256(leaf), body: leaf }], root: sha256(leaf) });
    assert.deepEqual(store.entryBySeq(1n)?.bytes, entry);
    store.close();

    // 1. One byte of submission 1 flipped: its CRC-32 no longer matches; submission 0 still reads.
    const raw = new Database(path);
    raw.pragma("ignore_check_constraints = ON");
    const stored = Buffer.from(
      raw.prepare("SELECT bytes FROM submissions WHERE seq = 1").pluck().get() as Buffer,
    );
    stored[stored.length - 3] = stored[stored.length - 3]! ^ 0x20;
    raw.prepare("UPDATE submissions SET bytes = ? WHERE seq = 1").run(stored);
    // 2. The patient's key changed, and a patient-index node's body changed.
    raw.exec("UPDATE patients SET key = x'00'");
    raw.exec("UPDATE index_nodes SET body = zeroblob(73)");
    raw.close();
    const damaged = openSqliteStore(path);
    try {
      assert.deepEqual(damaged.readSubmissions(0n, 1)[0]?.bytes, genesis);
      assert.throws(
        () => damaged.readSubmissions(1n, 1),
        (err: unknown) =>
          isLedgerError(err) &&
          err.code === "STORE_CORRUPT" &&
          /^submission 1: stored entry bytes are damaged: their CRC-32 does not match$/.test(err.message),
      );
      assert.throws(
        () => damaged.entryBySeq(1n),
        (err: unknown) =>
          isLedgerError(err) && err.code === "STORE_CORRUPT" && /patient key/.test(err.message),
      );
      // The patient's key is no longer the one stored: its chain is not found under it.
      assert.equal(damaged.patientHead(patient), undefined);
      // A damaged node hashes to nothing asked for: it reads as absent, and the index reports it missing.
      assert.equal(damaged.indexNodes.get(sha256(leaf)), undefined);
    } finally {
      damaged.close();
    }

    // 3. Submission 0 damaged: every later submission refers to its values, and says so.
    const raw2 = new Database(path);
    raw2.exec("UPDATE submissions SET bytes = x'00000000000041' WHERE seq = 0");
    raw2.close();
    const noGenesis = openSqliteStore(path);
    try {
      assert.throws(
        () => noGenesis.readSubmissions(1n, 1),
        (err: unknown) =>
          isLedgerError(err) &&
          err.code === "STORE_CORRUPT" &&
          /submission 0, whose values later submissions use, cannot be decoded/.test(err.message),
      );
    } finally {
      noGenesis.close();
    }
  });
});

/** An accepted entry row for submission `seq` with these bytes, at position `seq`. */
function accepted(seq: bigint, bytes: Uint8Array): NewEntry {
  return {
    seq,
    position: seq,
    id: sha256(bytes),
    status: "accepted",
    reason: null,
    patient: null,
    clinicalTime: null,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Differential property test: the memory store is the reference, SQLite must be indistinguishable from it.
// ---------------------------------------------------------------------------------------------------------

type Op =
  | { readonly kind: "append"; readonly items: readonly number[] }
  | {
      readonly kind: "decide";
      readonly accept: boolean;
      readonly patient: number | null;
      readonly time: string | null;
      readonly skew: number;
    }
  | { readonly kind: "merkle"; readonly level: number; readonly index: bigint; readonly hash: number }
  | { readonly kind: "index"; readonly nodes: readonly number[]; readonly root: number }
  | { readonly kind: "checkpoint"; readonly delta: number; readonly note: number }
  | { readonly kind: "putBlob"; readonly blob: number }
  | { readonly kind: "deleteBlob"; readonly blob: number }
  | { readonly kind: "meta"; readonly key: number; readonly value: string }
  | { readonly kind: "tx"; readonly ops: readonly Op[]; readonly fail: boolean };

const PATIENTS = [labelled("p0"), labelled("p1"), labelled("p2")];
const META_KEYS = ["origin", "node.key_id", "extra"];
const MERKLE_INDICES = [0n, 1n, 2n ** 33n, MAX_INDEX()];
const INDEX_NODES = Array.from({ length: 6 }, (_, i) => {
  const body = new Uint8Array(i % 2 === 0 ? 73 : 65);
  body.set(labelled(`index body ${i}`), 1);
  return { hash: sha256(body), body };
});

function MAX_INDEX(): bigint {
  return (1n << 63n) - 1n;
}

const opArb: fc.Arbitrary<Op> = fc.letrec<{ op: Op; leaf: Op }>((tie) => ({
  leaf: fc.oneof(
    // A pool of three submissions, so duplicate ids (accepted and rejected) come up often.
    fc.record({ kind: fc.constant("append"), items: fc.array(fc.nat(2), { minLength: 0, maxLength: 4 }) }),
    fc.record({
      kind: fc.constant("decide"),
      accept: fc.boolean(),
      patient: fc.option(fc.nat(2)),
      time: fc.option(fc.constantFrom("2024", "2024-03", "2023-12-31", "")),
      skew: fc.constantFrom(0, 0, 0, 1, -1),
    }),
    fc.record({
      kind: fc.constant("decide"),
      accept: fc.boolean(),
      patient: fc.option(fc.nat(2)),
      time: fc.constant(null),
      skew: fc.constant(0),
    }),
    fc.record({
      kind: fc.constant("merkle"),
      level: fc.constantFrom(0, 1, 63, 64),
      index: fc.constantFrom(...MERKLE_INDICES, -1n),
      hash: fc.nat(2),
    }),
    fc.record({
      kind: fc.constant("index"),
      nodes: fc.array(fc.nat(INDEX_NODES.length), { maxLength: 3 }),
      root: fc.nat(INDEX_NODES.length - 1),
    }),
    fc.record({ kind: fc.constant("checkpoint"), delta: fc.integer({ min: -2, max: 1 }), note: fc.nat(3) }),
    fc.record({ kind: fc.constant("putBlob"), blob: fc.nat(3) }),
    fc.record({ kind: fc.constant("deleteBlob"), blob: fc.nat(3) }),
    fc.record({
      kind: fc.constant("meta"),
      key: fc.nat(META_KEYS.length),
      value: fc.constantFrom("a", "b", "", "\ud800"),
    }),
  ),
  op: fc.oneof(
    { weight: 5, arbitrary: tie("leaf") },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant("tx"),
        ops: fc.array(tie("op"), { maxLength: 5 }),
        fail: fc.boolean(),
      }),
    },
  ),
})).op;

class Rollback extends Error {}

/** Apply an op and describe its outcome: its result, or the code of the error it threw. */
function apply(store: LedgerStore, op: Op, outcomes: string[]): void {
  const record = (fn: () => unknown) => {
    try {
      const result = fn();
      outcomes.push(
        `ok ${result instanceof Uint8Array ? Buffer.from(result).toString("hex") : String(result)}`,
      );
    } catch (err) {
      if (err instanceof Rollback) throw err;
      if (!isLedgerError(err)) throw err;
      outcomes.push(`error ${err.code}`);
    }
  };
  switch (op.kind) {
    case "append":
      record(() => store.appendSubmissions(op.items.map((i) => text(`submission ${i}`))));
      return;
    case "decide": {
      const seq = store.entryCount() + BigInt(op.skew);
      const bytes = seq >= 0n ? store.readSubmissions(seq, 1)[0]?.bytes : undefined;
      const entry: NewEntry = {
        seq: seq < 0n ? 0n : seq,
        position: op.accept ? store.treeSize() : null,
        id: bytes === undefined ? labelled("no submission") : sha256(bytes),
        status: op.accept ? "accepted" : "rejected",
        reason: op.accept ? null : "DUPLICATE_ID",
        patient: op.patient === null ? null : PATIENTS[op.patient]!,
        clinicalTime: op.time,
      };
      record(() => store.putEntry(entry));
      return;
    }
    case "merkle":
      record(() => store.merkleNodes.put(op.level, op.index, labelled(`merkle ${op.hash}`)));
      return;
    case "index":
      record(() =>
        store.indexNodes.writeBatch({
          nodes: op.nodes.map((i) => INDEX_NODES[i] ?? { hash: labelled("bad"), body: new Uint8Array(3) }),
          root: INDEX_NODES[op.root]!.hash,
        }),
      );
      return;
    case "checkpoint": {
      const size = store.treeSize() + BigInt(op.delta);
      record(() => store.putCheckpoint(size, `checkpoint ${op.note}`));
      return;
    }
    case "putBlob":
      record(() => store.putBlob(text(`blob ${op.blob}`)));
      return;
    case "deleteBlob":
      record(() => store.deleteBlob(sha256(text(`blob ${op.blob}`))));
      return;
    case "meta":
      record(() => store.setMeta(META_KEYS[op.key] ?? "schema_version", op.value));
      return;
    case "tx":
      try {
        store.transaction(() => {
          for (const inner of op.ops) apply(store, inner, outcomes);
          if (op.fail) throw new Rollback();
        });
        outcomes.push("committed");
      } catch (err) {
        if (!(err instanceof Rollback)) throw err;
        outcomes.push("rolled back");
      }
      return;
  }
}

describe("memory and sqlite agree", () => {
  it("random operation sequences give the same outcomes and the same observable state", () => {
    const probes = {
      merkle: [0, 1, 63].flatMap((level) =>
        MERKLE_INDICES.map((index) => [level, index] as [number, bigint]),
      ),
      indexHashes: INDEX_NODES.map((n) => n.hash),
      patients: PATIENTS,
      metaKeys: META_KEYS,
    };
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
        const memory = new MemoryStore();
        const sqlite = freshSqlite();
        try {
          const memoryOutcomes: string[] = [];
          const sqliteOutcomes: string[] = [];
          for (const op of ops) {
            apply(memory, op, memoryOutcomes);
            apply(sqlite, op, sqliteOutcomes);
          }
          assert.deepEqual(sqliteOutcomes, memoryOutcomes);
          assert.deepEqual(snapshot(sqlite, probes), snapshot(memory, probes));
        } finally {
          sqlite.close();
          opened.delete(sqlite);
        }
      }),
      { numRuns: 120 },
    );
  });
});
