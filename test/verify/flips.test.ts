/**
 * `medledger verify` against tampering: a node folder is built, then, many times, a fresh copy of it gets
 * exactly one byte changed in one value of its database (through SQL, so the file stays a valid SQLite
 * database and only the value changes; an integer is changed in one byte of its 8-byte form): submission
 * bytes (stored encoded, with a CRC), every field of an entry row, patient keys, Merkle nodes, patient-index
 * nodes (prefix and body) and root, checkpoint notes, blobs and their keys, the log's metadata. Every
 * flip must make the audit fail, name the place that is wrong, and never throw. Most flips hit a folder
 * built from the contract (test/verify/fixture.ts, with rejected entries, an amendment, a grant and an
 * erasure); one per table and column hits a folder made by the node's own `node init` and `node seed`.
 */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { verifyNodeFolder } from "../../src/verify/node-folder.ts";
import type { AuditFailure, FailureKind } from "../../src/verify/failure.ts";
import { medledger } from "../cli/run.ts";
import { buildNodeFolder, type Fixture } from "./fixture.ts";

/** How many single-byte flips to make in the contract-built folder (seeded, so a failure can be replayed). */
const FLIPS = 78;
const SEED = 0x5eed_f11b;

/** A small deterministic PRNG (mulberry32): the same seed gives the same flips on every run. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** One kind of value that can be flipped, and where the audit must then say the fault is. */
interface Target {
  readonly table: string;
  readonly column: string;
  /** How the value is held: TEXT and BLOB values get a byte flipped, INTEGER ones a byte of their 8 bytes. */
  readonly type: "text" | "blob" | "integer";
  /** The columns that identify a row (its primary key). */
  readonly key: readonly string[];
  readonly where?: string;
  /** SQL giving, for the row's key values, the seq where the audit must report the fault (when not in the row). */
  readonly firstSeq?: string;
  /** The fault the audit must report for a flip in this row. */
  readonly expect: (row: Record<string, unknown>) => {
    kind: FailureKind;
    check?: (f: AuditFailure) => boolean;
  };
}

const bySeq = (row: Record<string, unknown>) => ({
  kind: "seq" as const,
  check: (f: AuditFailure) => f.seq === Number(row.seq),
});

const TARGETS: readonly Target[] = [
  { table: "submissions", column: "bytes", type: "blob", key: ["seq"], expect: bySeq },
  { table: "entries", column: "id_prefix", type: "integer", key: ["seq"], expect: bySeq },
  {
    table: "entries",
    column: "position",
    type: "integer",
    key: ["seq"],
    where: "position IS NOT NULL",
    expect: bySeq,
  },
  {
    table: "entries",
    column: "reason",
    type: "text",
    key: ["seq"],
    where: "reason IS NOT NULL",
    expect: bySeq,
  },
  {
    table: "entries",
    column: "patient",
    type: "integer",
    key: ["seq"],
    where: "patient IS NOT NULL",
    expect: bySeq,
  },
  {
    table: "entries",
    column: "clinical_time",
    type: "text",
    key: ["seq"],
    where: "clinical_time IS NOT NULL",
    expect: bySeq,
  },
  {
    // A patient's key is read with every entry about the patient: the first of them (the enrolment) fails.
    table: "patients",
    column: "key",
    type: "blob",
    key: ["n"],
    firstSeq: "SELECT min(seq) FROM entries WHERE patient = ?",
    expect: (row) => ({ kind: "seq", check: (f) => f.seq === Number(row.firstSeq) }),
  },
  {
    table: "merkle_nodes",
    column: "hash",
    type: "blob",
    key: ["level", "idx"],
    // A node of level L at index i is first wrong where it is completed: the leaf range starting at i * 2^L.
    expect: (row) => ({
      kind: "position",
      check: (f) => f.position === Number(BigInt(row.idx as bigint) << BigInt(row.level as bigint)),
    }),
  },
  {
    table: "index_nodes",
    column: "prefix",
    type: "integer",
    key: ["prefix", "body"],
    expect: () => ({ kind: "checkpoint" }),
  },
  {
    table: "index_nodes",
    column: "body",
    type: "blob",
    key: ["prefix", "body"],
    expect: () => ({ kind: "checkpoint" }),
  },
  ...(["prefix", "patient", "head", "length"] as const).map((column): Target => ({
    table: "index_leaves",
    column,
    type: "integer",
    key: ["prefix", "patient", "head", "length"],
    expect: () => ({ kind: "checkpoint" }),
  })),
  {
    table: "index_root",
    column: "root",
    type: "blob",
    key: ["singleton"],
    expect: () => ({ kind: "store" }),
  },
  {
    table: "checkpoints",
    column: "note",
    type: "text",
    key: ["size"],
    expect: (row) => ({ kind: "checkpoint", check: (f) => f.size === Number(row.size) }),
  },
  { table: "blobs", column: "hash", type: "blob", key: ["hash"], expect: () => ({ kind: "blob" }) },
  { table: "blobs", column: "bytes", type: "blob", key: ["hash"], expect: () => ({ kind: "blob" }) },
  {
    table: "meta",
    column: "value",
    type: "text",
    key: ["key"],
    where: "key IN ('origin', 'log_vkey')",
    expect: () => ({ kind: "store" }),
  },
];

/**
 * Flip one byte of one value in a copy of the database; returns the row it changed and a description, or
 * undefined when the table has no such value (a log without rejected entries has no reason to flip).
 */
function flip(
  dbFile: string,
  target: Target,
  rand: (n: number) => number,
): { row: Record<string, unknown>; what: string } | undefined {
  const db = new Database(dbFile);
  try {
    db.defaultSafeIntegers(true);
    // The tampering writes values a node never would: let them in, as an attacker with the file could.
    db.pragma("ignore_check_constraints = ON");
    db.pragma("foreign_keys = OFF");
    const keys = target.key.join(", ");
    const value = target.type === "integer" ? target.column : `CAST(${target.column} AS BLOB)`;
    const rows = db
      .prepare(
        `SELECT ${keys}, ${value} AS v FROM ${target.table}` +
          `${target.where === undefined ? "" : ` WHERE ${target.where}`} ORDER BY ${keys}`,
      )
      .all() as Record<string, unknown>[];
    if (rows.length === 0) return undefined;
    const row = rows[rand(rows.length)]!;
    if (target.firstSeq !== undefined) {
      row.firstSeq = db
        .prepare(target.firstSeq)
        .pluck()
        .get(...target.key.map((k) => row[k]));
    }
    const match = target.key.map((k) => `${k} = ?`).join(" AND ");
    const where = target.key.map((k) => row[k]);
    let at = 0;
    // A flipped integer may collide with a unique one (a position): flip another byte then.
    for (let attempt = 0; ; attempt++) {
      let flipped: unknown;
      if (target.type === "integer") {
        const bytes = Buffer.alloc(8);
        bytes.writeBigInt64BE(row.v as bigint);
        at = rand(8);
        bytes[at] = bytes[at]! ^ (1 + rand(255));
        flipped = bytes.readBigInt64BE();
      } else {
        const bytes = Buffer.from(row.v as Uint8Array);
        at = rand(bytes.length);
        bytes[at] = bytes[at]! ^ (1 + rand(255));
        flipped = bytes;
      }
      const set = target.type === "text" ? "CAST(? AS TEXT)" : "?";
      try {
        const info = db
          .prepare(`UPDATE ${target.table} SET ${target.column} = ${set} WHERE ${match}`)
          .run(flipped, ...where);
        assert.equal(info.changes, 1);
        break;
      } catch (err) {
        if (
          !(err instanceof Database.SqliteError && err.code.startsWith("SQLITE_CONSTRAINT")) ||
          attempt > 20
        ) {
          throw err;
        }
      }
    }
    const id = target.key.map(
      (k) => `${k}=${Buffer.isBuffer(row[k]) ? row[k].toString("hex").slice(0, 12) : String(row[k])}`,
    );
    return { row, what: `${target.table}.${target.column} [${id.join(",")}] byte ${at}` };
  } finally {
    db.close();
  }
}

describe("medledger verify: every single-byte flip in the database is caught and located", () => {
  let root = "";
  let fixture: Fixture;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), "medledger-verify-flips-"));
    fixture = await buildNodeFolder(join(root, "clean"), {
      patients: 6,
      recordsPerPatient: 3,
      batch: 5,
      extras: true,
    });
  });

  after(() => rmSync(root, { recursive: true, force: true }));

  /** Flip, audit, and check the audit fails at the expected place; false when there was nothing to flip. */
  async function flipAndAudit(
    source: string,
    i: number,
    target: Target,
    rand: (n: number) => number,
  ): Promise<boolean> {
    const dir = join(root, `flip-${i}`);
    cpSync(source, dir, { recursive: true });
    try {
      const flipped = flip(join(dir, "ledger.db"), target, rand);
      if (flipped === undefined) return false;
      const { row, what } = flipped;
      const report = await verifyNodeFolder({ dir, crypto: nodeCrypto, threads: 0 });
      const failure = report.failure;
      assert.ok(failure !== null, `flip ${i} (${what}) was not detected`);
      assert.equal(report.ok, false);
      const expected = target.expect(row);
      assert.equal(failure.kind, expected.kind, `flip ${i} (${what}): ${JSON.stringify(failure)}`);
      assert.ok(
        expected.check?.(failure) ?? true,
        `flip ${i} (${what}) is reported elsewhere: ${JSON.stringify(failure)}`,
      );
      assert.ok(failure.where.length > 0 && failure.message.length > 0);
      assert.ok(!/\n|\s{4}at /.test(failure.message), "one line, no stack trace");
      return true;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it("the untouched copy verifies", async () => {
    const report = await verifyNodeFolder({ dir: fixture.dir, crypto: nodeCrypto, threads: 0 });
    assert.equal(report.failure, null);
    assert.equal(report.entries, fixture.entries);
    assert.equal(report.checkpoints, fixture.checkpoints);
    assert.equal(report.blobs, fixture.blobs);
  });

  it(`${FLIPS} seeded random flips across every table: each fails, names its place, never throws`, async () => {
    const rand = prng(SEED);
    const flipped = new Set<string>();
    for (let i = 0; i < FLIPS; i++) {
      // Round-robin over the targets so each table and column is hit several times; rows and bytes are random.
      const target = TARGETS[i % TARGETS.length]!;
      const name = `${target.table}.${target.column}`;
      assert.ok(await flipAndAudit(fixture.dir, i, target, rand), `${name} has values to flip`);
      flipped.add(name);
    }
    assert.equal(flipped.size, TARGETS.length, "every table and column was flipped");
  });

  it("one flip per table and column in a folder made by the node's own `node init` and `node seed`", async () => {
    const dir = join(root, "seeded");
    for (const args of [
      ["node", "init", "--data", dir],
      ["node", "seed", "--data", dir, "--patients", "8", "--records-per-patient", "2"],
    ]) {
      const run = await medledger(...args);
      assert.equal(run.status, 0, run.stderr);
    }
    const clean = await verifyNodeFolder({ dir, crypto: nodeCrypto, threads: 0 });
    assert.equal(clean.failure, null);
    const rand = prng(SEED + 1);
    let flipped = 0;
    for (const [i, target] of TARGETS.entries()) {
      if (await flipAndAudit(dir, FLIPS + i, target, rand)) flipped++;
    }
    // Only the rejection reason may have nothing to flip: the seeder's entries are all accepted.
    assert.ok(flipped >= TARGETS.length - 1, `${flipped} flips`);
  });
});
