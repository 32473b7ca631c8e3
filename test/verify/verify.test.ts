/**
 * `medledger verify` end to end. A story in numbered steps over node folders built from the contract (and
 * one made by the node's own `node init` and `node seed`): 1. a clean folder verifies, alone and with
 * signature workers, to the same counts and roots; 2. the real command prints its OK line, its JSON, and
 * its usage errors; 3. a wrong key, in node.json or given by the auditor, fails; 4. tampering that keeps
 * the row ids consistent is still caught by the replayed validator; 5. missing rows and missing
 * checkpoints are named; 6. the signature pre-check can make an audit slower, never wrong.
 */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { toHex, utf8 } from "../../src/core/encoding/bytes.ts";
import { generateNoteKey } from "../../src/core/note/signed-note.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import {
  EMPTY_DICTIONARY,
  decodeEntryBytes,
  encodeEntryBytes,
  entryDictionary,
} from "../../src/store/entry-codec.ts";
import { openStore } from "../../src/store/index.ts";
import { auditStore } from "../../src/verify/audit.ts";
import { verifyNodeFolder } from "../../src/verify/node-folder.ts";
import { SignaturePool } from "../../src/verify/pool.ts";
import {
  VerdictCache,
  entryTriples,
  precheckJob,
  precheckedCrypto,
  tripleDigest,
} from "../../src/verify/precheck.ts";
import { medledger, type Run } from "../cli/run.ts";
import { buildNodeFolder, type Fixture } from "./fixture.ts";

function assertNoStack(run: Run): void {
  assert.ok(!/\n\s+at /.test(run.stdout + run.stderr), `no stack trace: ${run.stderr}`);
}

/** Change a database in a copy of a node folder with raw SQL, as someone holding the file could. */
function tamper(dir: string, sql: (db: Database.Database) => void): void {
  const db = new Database(join(dir, "ledger.db"));
  try {
    db.defaultSafeIntegers(true);
    db.pragma("foreign_keys = OFF");
    sql(db);
  } finally {
    db.close();
  }
}

describe("medledger verify", () => {
  let root = "";
  let fixture: Fixture;
  let copies = 0;
  const copy = (): string => {
    const dir = join(root, `copy-${copies++}`);
    cpSync(fixture.dir, dir, { recursive: true });
    return dir;
  };

  before(async () => {
    root = mkdtempSync(join(tmpdir(), "medledger-verify-"));
    fixture = await buildNodeFolder(join(root, "clean"), {
      patients: 5,
      recordsPerPatient: 3,
      batch: 6,
      extras: true,
    });
  });

  after(() => rmSync(root, { recursive: true, force: true }));

  it("1. a clean folder verifies, on one thread and with signature workers, to the same result", async () => {
    const inline = await verifyNodeFolder({ dir: fixture.dir, crypto: nodeCrypto, threads: 0 });
    assert.equal(inline.failure, null);
    assert.equal(inline.ok, true);
    assert.deepEqual(
      [inline.entries, inline.accepted, inline.rejected, inline.checkpoints, inline.blobs, inline.patients],
      [fixture.entries, fixture.accepted, fixture.rejected, fixture.checkpoints, fixture.blobs, 5],
    );
    assert.equal(inline.threads, 0);
    assert.equal(inline.signatures.prechecked, 0);

    const store = await openStore(`sqlite:${join(fixture.dir, "ledger.db")}`);
    const pool = SignaturePool.start(2, fixture.logKey);
    try {
      const parallel = await auditStore({
        store,
        crypto: nodeCrypto,
        origin: fixture.origin,
        logKey: fixture.logKey,
        precheck: pool,
      });
      assert.equal(parallel.failure, null);
      assert.equal(parallel.threads, 2);
      assert.deepEqual(
        { ...parallel, timings: null, threads: null, signatures: null },
        { ...inline, timings: null, threads: null, signatures: null },
      );
      // Every entry and checkpoint signature was answered by a worker; none had to be verified inline.
      assert.equal(parallel.signatures.inline, 0);
      assert.equal(parallel.signatures.prechecked, inline.signatures.inline);
    } finally {
      await pool.close();
      store.close();
    }
  });

  it("2. the command prints one OK line, or one JSON document, and exits 0", async () => {
    const ok = await medledger("verify", "--data", fixture.dir);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(
      ok.stdout,
      new RegExp(
        `^OK verified ${fixture.entries} entries \\(${fixture.accepted} accepted, ${fixture.rejected} rejected\\), ` +
          `${fixture.checkpoints} checkpoints, ${fixture.blobs} blobs; size ${fixture.accepted} root [0-9a-f]{64}\n$`,
      ),
    );
    const json = await medledger("verify", "--data", fixture.dir, "--json", "--threads", "0");
    assert.equal(json.status, 0, json.stderr);
    const report = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.equal(report.ok, true);
    assert.equal(report.failure, null);
    assert.equal(report.entries, fixture.entries);
    assert.equal(report.exitCode, 0);
    assert.equal(typeof (report.timings as Record<string, unknown>).totalMs, "number");
  });

  it("2. usage errors exit 2 with one line and no stack trace", async () => {
    const runs = await Promise.all([
      medledger("verify"),
      medledger("verify", "--data", join(root, "no-such-folder")),
      medledger("verify", "--data", fixture.dir, "--log-key", "not-a-key"),
      medledger("verify", "--data", fixture.dir, "--threads", "-1"),
      medledger("verify", "--data", join(root, "no-such-folder"), "--json"),
    ]);
    for (const run of runs) {
      assert.equal(run.status, 2, run.stdout + run.stderr);
      assertNoStack(run);
    }
    const json = JSON.parse(runs[4].stdout) as { ok: boolean; code: string; exitCode: number };
    assert.deepEqual([json.ok, json.code, json.exitCode], [false, "INVALID_ARGUMENT", 2]);
  });

  it("3. a corrupted key in node.json, or another log's key given by the auditor, fails", async () => {
    const dir = copy();
    const config = JSON.parse(readFileSync(join(dir, "node.json"), "utf8")) as { logKey: string };
    // Change one character of the key's base64: still a well-formed key string, but another key.
    const key = config.logKey;
    const at = key.length - 5;
    config.logKey = key.slice(0, at) + (key[at] === "A" ? "B" : "A") + key.slice(at + 1);
    writeFileSync(join(dir, "node.json"), JSON.stringify(config));
    const corrupted = await medledger("verify", "--data", dir);
    assert.equal(corrupted.status, 1, corrupted.stdout + corrupted.stderr);
    assert.match(corrupted.stderr, /^FAIL KEY_INVALID: (node|store) /);
    assertNoStack(corrupted);

    const other = await generateNoteKey(nodeCrypto, fixture.origin);
    const wrong = await medledger("verify", "--data", fixture.dir, "--log-key", other.verifierKey, "--json");
    assert.equal(wrong.status, 1);
    const report = JSON.parse(wrong.stdout) as {
      ok: boolean;
      failure: { kind: string; code: string; check: string };
    };
    assert.equal(report.ok, false);
    assert.deepEqual(
      [report.failure.kind, report.failure.code, report.failure.check],
      ["node", "KEY_INVALID", "log-key"],
    );

    // The auditor's own copy of the right key verifies.
    const right = await verifyNodeFolder({
      dir: fixture.dir,
      logKey: fixture.logKey,
      crypto: nodeCrypto,
      threads: 0,
    });
    assert.equal(right.failure, null);

    const broken = copy();
    writeFileSync(join(broken, "node.json"), "{ not json");
    const malformed = await verifyNodeFolder({ dir: broken, crypto: nodeCrypto, threads: 0 });
    assert.deepEqual([malformed.failure?.kind, malformed.failure?.code], ["node", "MALFORMED_INPUT"]);

    const escaping = copy();
    writeFileSync(
      join(escaping, "node.json"),
      JSON.stringify({ ...config, logKey: key, store: "sqlite:../clean/ledger.db" }),
    );
    const outside = await verifyNodeFolder({ dir: escaping, crypto: nodeCrypto, threads: 0 });
    assert.equal(outside.failure?.check, "node-config");

    const garbage = copy();
    writeFileSync(
      join(garbage, "ledger.db"),
      "this is not a database, it is only text to look at".repeat(100),
    );
    const notDb = await medledger("verify", "--data", garbage);
    assert.equal(notDb.status, 1);
    assert.match(notDb.stderr, /^FAIL STORE_CORRUPT: node store: /);
  });

  it("4. tampering that keeps row ids consistent is caught by the replayed validator", async () => {
    // Change a record's month in its submission and recompute the row's id: the signatures no longer verify.
    const dir = copy();
    let seq = -1n;
    // The store keeps entry bytes encoded (src/store/entry-codec.ts, a published format): someone holding
    // the file decodes, edits and encodes again, and sets the id's stored prefix.
    tamper(dir, (db) => {
      const rows = db.prepare("SELECT seq, bytes FROM submissions ORDER BY seq").all() as {
        seq: bigint;
        bytes: Buffer;
      }[];
      const dictionary = entryDictionary(decodeEntryBytes(rows[0]!.bytes, EMPTY_DICTIONARY));
      const text = (r: { bytes: Buffer }) => Buffer.from(decodeEntryBytes(r.bytes, dictionary)).toString();
      const row = rows.slice(1).find((r) => text(r).includes('"month":"2026-01"'))!;
      seq = row.seq;
      const bytes = utf8(text(row).replace('"month":"2026-01"', '"month":"2025-01"'));
      db.prepare("UPDATE submissions SET bytes = ? WHERE seq = ?").run(
        encodeEntryBytes(bytes, dictionary),
        seq,
      );
      const prefix = BigInt(Buffer.from(nodeCrypto.sha256(bytes)).readIntBE(0, 6));
      db.prepare("UPDATE entries SET id_prefix = ? WHERE seq = ?").run(prefix, seq);
    });
    const report = await verifyNodeFolder({ dir, crypto: nodeCrypto, threads: 0 });
    assert.equal(report.failure?.kind, "seq");
    assert.equal(report.failure?.seq, Number(seq));
    assert.equal(report.failure?.check, "entry-verdict");
    assert.match(report.failure?.message ?? "", /BAD_SIGNATURE/);

    // A rejected entry relabelled as accepted (the node "let it in").
    const relabel = copy();
    tamper(relabel, (db) => {
      db.pragma("ignore_check_constraints = ON");
      db.prepare("UPDATE entries SET reason = NULL, position = 999 WHERE seq = 3").run();
    });
    const relabelled = await verifyNodeFolder({ dir: relabel, crypto: nodeCrypto, threads: 0 });
    assert.deepEqual([relabelled.failure?.seq, relabelled.failure?.check], [3, "entry-verdict"]);
  });

  it("5. a submission without its row, a lost row, and a block without a checkpoint are named", async () => {
    const lastRow = copy();
    let last = 0n;
    tamper(lastRow, (db) => {
      last = db.prepare("SELECT max(seq) FROM entries").pluck().get() as bigint;
      db.prepare("DELETE FROM entries WHERE seq = ?").run(last);
    });
    const run = await medledger("verify", "--data", lastRow);
    assert.equal(run.status, 1);
    assert.equal(
      run.stderr,
      `FAIL STORE_CORRUPT: seq ${last}: 1 submission(s) from this seq on have no entry row\n`,
    );

    const middle = copy();
    tamper(middle, (db) => db.prepare("DELETE FROM entries WHERE seq = 7").run());
    const gap = await verifyNodeFolder({ dir: middle, crypto: nodeCrypto, threads: 0 });
    assert.deepEqual([gap.failure?.kind, gap.failure?.seq, gap.failure?.check], ["seq", 7, "stream"]);

    const unsigned = copy();
    let size = 0n;
    tamper(unsigned, (db) => {
      size = db.prepare("SELECT max(size) FROM checkpoints").pluck().get() as bigint;
      db.prepare("DELETE FROM checkpoints WHERE size = ?").run(size);
    });
    const missing = await verifyNodeFolder({ dir: unsigned, crypto: nodeCrypto, threads: 0 });
    assert.equal(missing.failure?.check, "checkpoint-missing");
    assert.equal(missing.failure?.kind, "position");

    const time = copy();
    tamper(time, (db) => db.prepare("UPDATE meta SET value = 'soon' WHERE key = 'ledger_time.0'").run());
    const badTime = await verifyNodeFolder({ dir: time, crypto: nodeCrypto, threads: 0 });
    assert.deepEqual([badTime.failure?.seq, badTime.failure?.check], [0, "ledger-time"]);
  });

  it("6. a pre-checked verdict answers only its own triple: a worker can make the audit slower, never wrong", async () => {
    const key = await nodeCrypto.ed25519Generate();
    const message = utf8("signed text");
    const signature = await nodeCrypto.ed25519Sign(key.secretKey, message);
    const cache = new VerdictCache();
    // A lying verdict: "valid" for a message that was never signed.
    const forged = utf8("forged text");
    cache.add({
      digests: tripleDigest(nodeCrypto, key.publicKey, signature, forged),
      valid: Uint8Array.of(1),
    });
    const crypto = precheckedCrypto(nodeCrypto, cache);
    assert.equal(await crypto.ed25519Verify(key.publicKey, forged, signature), true, "its own triple");
    assert.equal(await crypto.ed25519Verify(key.publicKey, message, signature), true, "verified inline");
    assert.equal(
      await crypto.ed25519Verify(key.publicKey, utf8("other"), signature),
      false,
      "verified inline",
    );
    assert.deepEqual([cache.hits, cache.misses], [1, 2]);
    // Malformed verdicts are ignored rather than misread.
    cache.clear();
    cache.add({ digests: new Uint8Array(31), valid: Uint8Array.of(1) });
    assert.equal(cache.lookup(new Uint8Array(32)), undefined);
  });

  it("6. workers cut the signed content out of canonical entries, and find nothing in other bytes", async () => {
    const store = await openStore(`sqlite:${join(fixture.dir, "ledger.db")}`);
    try {
      const rows = store.readEntries(0n, 100);
      const data = rows.map((r) => r.bytes);
      let accepted = 0;
      for (const row of rows) {
        const triples = entryTriples(row.bytes);
        if (row.status === "accepted") {
          accepted++;
          assert.ok(triples.length > 0);
          for (const t of triples)
            assert.ok(await nodeCrypto.ed25519Verify(t.key, t.message, t.signature), `seq ${row.seq}`);
        }
      }
      assert.equal(accepted, fixture.accepted);
      assert.deepEqual(entryTriples(utf8("{not json")), []);
      // Not canonical (a space added): no triple, so the validator's NOT_CANONICAL is reached first.
      const text = new TextDecoder().decode(data[1]);
      assert.deepEqual(
        entryTriples(utf8(text.replace('{"body":', '{ "body":').replace(',"v":1}', ', "v":1}'))),
        [],
      );
      // A job whose end offsets lie is cut short, not read out of bounds.
      const job = { data: data[1]!, ends: Uint32Array.of(data[1]!.length, 1 << 30), notes: ["not a note"] };
      const verdicts = await precheckJob(nodeCrypto, job, null);
      assert.equal(verdicts.valid.length, 2);
      assert.deepEqual([...verdicts.valid], [1, 1]);
      assert.equal(toHex(verdicts.digests).length, 128);
    } finally {
      store.close();
    }
  });

  it("7. a folder made by the node's own `node init` and `node seed` verifies", async () => {
    const dir = join(root, "seeded");
    const init = await medledger("node", "init", "--data", dir);
    assert.equal(init.status, 0, init.stderr);
    const seed = await medledger(
      "node",
      "seed",
      "--data",
      dir,
      "--patients",
      "12",
      "--records-per-patient",
      "2",
    );
    assert.equal(seed.status, 0, seed.stderr);
    const run = await medledger("verify", "--data", dir, "--json");
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const report = JSON.parse(run.stdout) as {
      ok: boolean;
      entries: number;
      blobs: number;
      patients: number;
    };
    assert.equal(report.ok, true);
    assert.equal(report.patients, 12);
    assert.ok(report.blobs >= 24);
  });
});
