/**
 * The embedded node (docs/node.md), as a story in numbered steps on a real SQLite store in a temporary
 * folder: 1. `node init` makes a data folder whose genesis is seq 0; 2. the running node takes Ana's
 * enrolment, MRN link and records, and refuses a record that breaks her chain; 3. the refused entry is kept
 * as rejected with its code and changed nothing else; 4. every checkpoint verifies under the log key,
 * commits to the patient index, and the root is recomputed from the stored entries; 5. closed and reopened,
 * the node has the same size, root and state, and carries on. Then: a failed store transaction leaves the
 * store as it was and rejects its submitters; hostile submissions are refused before they reach the stream;
 * a second process cannot open the same folder.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fromBase64, toHex, utf8 } from "../../src/core/encoding/bytes.ts";
import { isLedgerError } from "../../src/core/errors.ts";
import { buildEntry, encodeEntry, entryId, parseEntry, signEntry } from "../../src/core/ledger/entry.ts";
import { generateKeyFileKeys } from "../../src/core/crypto/keyfile.ts";
import { MerkleTree } from "../../src/core/merkle/tree.ts";
import { verifyCheckpoint } from "../../src/core/note/checkpoint.ts";
import {
  generateNoteKey,
  parseNoteSignerKey,
  parseNoteVerifierKey,
} from "../../src/core/note/signed-note.ts";
import { PatientIndex, patientIndexKey } from "../../src/core/patient-index/index.ts";
import { nodeCrypto as crypto } from "../../src/platform/node-crypto.ts";
import { MemoryStore } from "../../src/store/index.ts";
import type { LedgerStore } from "../../src/store/types.ts";
import { initNode } from "../../src/node/init.ts";
import {
  META_LEDGER_TIME_PREFIX,
  PATIENT_INDEX_EXTENSION,
  createNode,
  type LedgerNode,
} from "../../src/node/node.ts";
import {
  enrollEntry,
  linkEntry,
  loadSeedActors,
  newSeedPatient,
  recordEntry,
  type SeedActors,
  type SeedPatient,
} from "../../src/node/seed.ts";

/** 2026-11-02T09:00:00Z, then a minute per batch: the node's clock in this story. */
const T0 = Date.UTC(2026, 10, 2, 9) / 1000;
const ORIGIN = "north.medledger.example/log";
const WEAK_KDF = { kdf: { N: 2 ** 10, r: 8, p: 1 }, allowWeakKdf: true } as const;
const sha = (data: Uint8Array): Uint8Array => crypto.sha256(data);

function clock(): () => number {
  let t = T0;
  return () => (t += 60);
}

/** Everything a refused step must leave unchanged. */
function snapshot(node: LedgerNode) {
  return {
    size: node.size,
    root: toHex(node.root()),
    indexRoot: toHex(node.indexRoot()),
    digest: node.state.digest(),
    checkpoint: node.checkpoint()?.note,
  };
}

/** The tree root recomputed from the stored accepted entries, in position order. */
function recomputedRoot(store: LedgerStore, size: bigint): Uint8Array {
  const tree = MerkleTree.create(sha);
  for (let position = 0n; position < size; position++) {
    const row = store.entryByPosition(position);
    assert.ok(row !== undefined, `entry at position ${position}`);
    tree.append(row.bytes);
  }
  return tree.root();
}

describe("the embedded node, on a real SQLite store", () => {
  const root = mkdtempSync(join(tmpdir(), "medledger-node-test-"));
  const dir = join(root, "north");
  after(() => rmSync(root, { recursive: true, force: true }));
  let node: LedgerNode;
  let actors: SeedActors;
  let ana: SeedPatient;
  const sizes: bigint[] = [];

  before(async () => {
    ana = await newSeedPatient(crypto);
  });

  it("1. node init writes the data folder and appends the genesis as seq 0", async () => {
    const result = await initNode({ dir, crypto, origin: ORIGIN, keyFileOptions: WEAK_KDF });
    assert.equal(result.size, 1n);
    const config = JSON.parse(readFileSync(join(dir, "node.json"), "utf8")) as Record<string, unknown>;
    assert.deepEqual(Object.keys(config), ["format", "version", "origin", "store", "logKey"]);
    assert.equal(config.format, "medledger-node");
    assert.equal(config.version, 1);
    assert.equal(config.origin, ORIGIN);
    assert.equal(config.store, "sqlite:ledger.db");
    assert.equal(config.logKey, result.logKey);
    assert.equal(statSync(join(dir, "keys")).mode & 0o777, 0o700);
    for (const file of [
      "log.key",
      "PASSPHRASES.txt",
      "consortium-1.json",
      "org-hospital.json",
      "org-validator.json",
    ]) {
      assert.equal(statSync(join(dir, "keys", file)).mode & 0o777, 0o600, file);
    }
    const signer = await parseNoteSignerKey(
      crypto,
      readFileSync(join(dir, "keys", "log.key"), "utf8").trim(),
    );
    assert.equal(signer.verifier.verifierKey, result.logKey);
    await assert.rejects(initNode({ dir, crypto, keyFileOptions: WEAK_KDF }), (e) =>
      isLedgerError(e, "CONFLICT"),
    );
  });

  it("2. the node takes Ana's enrolment, MRN link and records, and refuses a broken chain link", async () => {
    node = await createNode({ dir, crypto, now: clock() });
    assert.equal(node.size, 1n);
    assert.equal(node.store.getMeta("origin"), ORIGIN);
    assert.equal(node.store.getMeta("log_vkey"), node.logKey.verifierKey);
    assert.equal(node.store.entryBySeq(0n)?.status, "accepted");
    sizes.push(1n);
    actors = await loadSeedActors(crypto, dir);
    const putBlob = (bytes: Uint8Array): Uint8Array => node.store.putBlob(bytes);

    const enrol = await enrollEntry(crypto, actors, ana);
    const link = await linkEntry(crypto, actors, ana, "MRN-0001");
    const first = await recordEntry(crypto, actors, ana, "2026-09", putBlob);
    // A second record built on the same head as `first` (as a concurrent author would): CHAIN_BROKEN.
    const head = ana.head;
    ana.head = entryId(crypto, link);
    const stale = await recordEntry(crypto, actors, ana, "2026-10", putBlob);
    ana.head = head;
    const results = await node.submit([enrol, link, first, stale]);
    assert.deepEqual(
      results.map((r) => (r.accepted ? `${r.seq} accepted @${r.position}` : `${r.seq} ${r.reason}`)),
      ["1 accepted @1", "2 accepted @2", "3 accepted @3", "4 CHAIN_BROKEN"],
    );
    assert.equal(results[0]!.id, entryId(crypto, enrol));
    assert.equal(node.size, 4n);
    sizes.push(4n);
    const second = await recordEntry(crypto, actors, ana, "2025-01", putBlob);
    const [late] = await node.submit([second]);
    assert.ok(late?.accepted);
    assert.equal(node.size, 5n);
    sizes.push(5n);
    assert.equal(node.state.patients.get(ana.id)?.length, 4);
    assert.equal(node.state.patients.get(ana.id)?.head, entryId(crypto, second));
  });

  it("3. a refused entry is stored as rejected with its code, and nothing else changed", async () => {
    const stored = node.store.entryBySeq(4n)!;
    assert.equal(stored.status, "rejected");
    assert.equal(stored.reason, "CHAIN_BROKEN");
    assert.equal(stored.position, null);
    assert.equal(stored.patient, null);
    assert.equal(toHex(stored.id), toHex(sha(stored.bytes)));

    const before = snapshot(node);
    const entries = node.store.entryCount();
    // Built on Ana's link, two entries behind her head.
    ana.head = toHex(node.store.entryBySeq(2n)!.id);
    const stale = await recordEntry(crypto, actors, ana, "2026-10", (b) => node.store.putBlob(b));
    ana.head = node.state.patients.get(ana.id)!.head;
    const [verdict] = await node.submit([stale]);
    assert.equal(verdict?.accepted, false);
    assert.equal(verdict?.accepted === false && verdict.reason, "CHAIN_BROKEN");
    assert.deepEqual(snapshot(node), before, "a batch of rejections writes no checkpoint and moves nothing");
    assert.equal(node.store.entryCount(), entries + 1n);
    assert.equal(node.store.entryBySeq(entries)?.reason, "CHAIN_BROKEN");
    assert.equal(node.store.checkpointAt(node.size + 1n), undefined);
  });

  it("4. every checkpoint verifies, commits to the patient index, and matches the stored entries", async () => {
    const logKey = parseNoteVerifierKey(crypto, node.logKey.verifierKey);
    for (const size of sizes) {
      const note = node.store.checkpointAt(size);
      assert.ok(note !== undefined, `checkpoint at ${size}`);
      const { checkpoint } = await verifyCheckpoint(note, { origin: ORIGIN, logKey });
      assert.equal(checkpoint.size, size);
      assert.equal(checkpoint.extensions.length, 1);
      assert.match(checkpoint.extensions[0]!, /^patient-index [A-Za-z0-9+/]{43}=$/);
      assert.equal(toHex(checkpoint.rootHash), toHex(recomputedRoot(node.store, size)));
    }
    const latest = node.checkpoint()!;
    const { checkpoint } = await verifyCheckpoint(latest.note, { origin: ORIGIN, logKey });
    const indexRoot = fromBase64(checkpoint.extensions[0]!.slice(PATIENT_INDEX_EXTENSION.length + 1));
    assert.equal(toHex(indexRoot), toHex(node.indexRoot()));
    // The index, read from the store at the committed root, holds Ana's chain head and length.
    const key = patientIndexKey(sha, ana.id);
    const value = new PatientIndex(sha, node.store.indexNodes).get(key, indexRoot);
    assert.equal(toHex(value!.head), node.state.patients.get(ana.id)!.head);
    assert.equal(value!.length, 4);
    // Entry rows carry the patient's index key and the clinical month of records.
    const rows = node.store.readEntries(0n, 100);
    assert.deepEqual(
      rows.map((r) => [
        r.status,
        r.patient === null ? null : toHex(r.patient) === toHex(key),
        r.clinicalTime,
      ]),
      [
        ["accepted", null, null],
        ["accepted", true, null],
        ["accepted", true, null],
        ["accepted", true, "2026-09"],
        ["rejected", null, null],
        ["accepted", true, "2025-01"],
        ["rejected", null, null],
      ],
    );
    assert.equal(toHex(node.store.patientHead(key)!.head), node.state.patients.get(ana.id)!.head);
    // Ledger time is recorded where it changes, so a replay judges each entry at its own time.
    assert.equal(node.store.getMeta(`${META_LEDGER_TIME_PREFIX}0`) !== undefined, true);
  });

  it("5. closed and reopened, the node has the same size, root and state, and carries on", async () => {
    const before = snapshot(node);
    await node.close();
    await assert.rejects(node.submit([utf8("{}")]), (e) => isLedgerError(e, "CONFLICT"));
    node = await createNode({ dir, crypto, now: () => T0 + 3600 });
    assert.deepEqual(snapshot(node), before);
    const next = await recordEntry(crypto, actors, ana, "2026-11", (b) => node.store.putBlob(b));
    const [verdict] = await node.submit([next]);
    assert.ok(verdict?.accepted);
    assert.equal(verdict.position, before.size);
    assert.equal(node.size, before.size + 1n);
    assert.equal(toHex(node.root()), toHex(recomputedRoot(node.store, node.size)));
  });

  it("a second process cannot run the same data folder", async () => {
    await assert.rejects(createNode({ dir, crypto }), (e) => isLedgerError(e, "CONFLICT"));
    await node.close();
  });
});

/** A genesis for ORIGIN: one consortium key, one author org. */
async function genesisEntry(): Promise<Uint8Array> {
  const consortium = await crypto.ed25519Generate();
  const org = { sign: await crypto.ed25519Generate(), enc: await crypto.x25519Generate() };
  const entry = buildEntry("genesis", {
    origin: ORIGIN,
    consortium: { threshold: 1, keys: [toHex(consortium.publicKey)] },
    orgs: [
      {
        id: "clinic",
        roles: ["author"],
        signKey: toHex(org.sign.publicKey),
        encKey: toHex(org.enc.publicKey),
      },
    ],
  });
  return encodeEntry(await signEntry(crypto, entry, "consortium", consortium.secretKey));
}

describe("the node's refusals change nothing", () => {
  async function memoryNode(store: LedgerStore, options: { failCheckpoints?: number } = {}) {
    const keys = await generateNoteKey(crypto, ORIGIN);
    const logSigner = await parseNoteSignerKey(crypto, keys.signerKey);
    let failures = options.failCheckpoints ?? 0;
    // A store whose checkpoint write fails (as a full disk would) the first `failures` times.
    const flaky = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === "putCheckpoint") {
          return (size: bigint, note: string) => {
            if (failures > 0) {
              failures--;
              throw new Error("disk full");
            }
            target.putCheckpoint(size, note);
          };
        }
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === "function"
          ? ((value as (...args: unknown[]) => unknown).bind(target) as unknown)
          : value;
      },
    });
    const errors: unknown[] = [];
    const node = await createNode({
      store: flaky,
      config: { origin: ORIGIN, logKey: keys.verifierKey },
      logSigner,
      crypto,
      now: clock(),
      onBatchError: (e) => errors.push(e),
    });
    return { node, errors, logSigner };
  }

  it("a failed store transaction rejects its submitters, leaves the store unchanged, and the node recovers", async () => {
    const store = new MemoryStore();
    const { node, errors } = await memoryNode(store, { failCheckpoints: 1 });
    const genesis = await genesisEntry();
    // The genesis cannot be committed (its checkpoint write fails): the submitter hears of it.
    await assert.rejects(node.submit([genesis]), /disk full/);
    assert.equal(errors.length, 1);
    assert.equal(store.entryCount(), 0n);
    assert.equal(store.treeSize(), 0n);
    assert.equal(store.latestCheckpoint(), undefined);
    assert.equal(node.size, 0n);
    // The submission stays ordered in the stream and is processed with the next batch: the genesis is
    // accepted at seq 0, and the same bytes again at seq 1 are a duplicate.
    const [again] = await node.submit([genesis]);
    assert.equal(again?.seq, 1n);
    assert.equal(again?.accepted === false && again.reason, "DUPLICATE_ID");
    assert.equal(store.entryCount(), 2n);
    assert.equal(store.entryBySeq(0n)?.status, "accepted");
    assert.equal(store.latestCheckpoint()?.size, 1n);
    assert.equal(node.size, 1n);
    await node.close();
    store.close();
  });

  it("submissions made durable just before a crash are processed at the next start", async () => {
    const store = new MemoryStore();
    const keys = await generateNoteKey(crypto, ORIGIN);
    const logSigner = await parseNoteSignerKey(crypto, keys.signerKey);
    const open = () =>
      createNode({
        store,
        config: { origin: ORIGIN, logKey: keys.verifierKey },
        logSigner,
        crypto,
        now: clock(),
      });
    let node = await open();
    const genesis = await genesisEntry();
    await node.submit([genesis]);
    await node.close();
    // The stream took two more submissions, then the process died before processing them.
    store.appendSubmissions([genesis, utf8("[]")]);
    node = await open();
    await node.idle();
    assert.equal(store.entryCount(), 3n);
    assert.equal(store.entryBySeq(1n)?.reason, "DUPLICATE_ID");
    assert.equal(store.entryBySeq(2n)?.reason, "SCHEMA");
    assert.equal(node.size, 1n);
    await node.close();
    store.close();
  });

  it("hostile submissions are refused before they reach the ordered stream", async () => {
    const store = new MemoryStore();
    const { node } = await memoryNode(store);
    const refused = async (value: unknown, code: "INVALID_ARGUMENT" | "TOO_LARGE") =>
      assert.rejects(node.submit(value as Uint8Array[]), (e) => isLedgerError(e, code));
    await refused([], "INVALID_ARGUMENT");
    await refused([new Uint8Array(0)], "INVALID_ARGUMENT");
    await refused(["{}"], "INVALID_ARGUMENT");
    await refused("{}", "INVALID_ARGUMENT");
    await refused([new Uint8Array(1024 * 1024 + 1)], "TOO_LARGE");
    await refused(new Array(10_001).fill(utf8("{}")), "INVALID_ARGUMENT");
    assert.equal(store.submissionCount(), 0n);
    // Garbage that is bytes is ordered and judged: MALFORMED, kept as rejected, no checkpoint.
    const [verdict] = await node.submit([utf8("\u00ff{")]);
    assert.equal(verdict?.accepted === false && verdict.reason, "MALFORMED");
    assert.equal(store.latestCheckpoint(), undefined);
    await node.close();
    store.close();
  });

  it("a store of another log is refused", async () => {
    const store = new MemoryStore();
    const { node } = await memoryNode(store);
    await node.close();
    await assert.rejects(memoryNode(store), (e) => isLedgerError(e, "CONFLICT"));
    store.close();
  });
});

describe("signature pre-verification on worker threads", () => {
  it("gives the same verdicts, roots and state as verifying on the main thread, forged signatures included", async () => {
    const keys = await generateNoteKey(crypto, ORIGIN);
    const logSigner = await parseNoteSignerKey(crypto, keys.signerKey);
    const consortium = await crypto.ed25519Generate();
    const org = async (id: string, kind: "org" | "validator") => ({
      id,
      keys: await generateKeyFileKeys(crypto, kind, id),
    });
    const actors: SeedActors = {
      author: await org("hospital", "org"),
      validator: await org("validator", "validator"),
      blindingKey: crypto.randomBytes(32),
    };
    const genesis = buildEntry("genesis", {
      origin: ORIGIN,
      consortium: { threshold: 1, keys: [toHex(consortium.publicKey)] },
      orgs: [
        { id: "hospital", roles: ["author"], keyFile: actors.author },
        { id: "validator", roles: ["validator"], keyFile: actors.validator },
      ].map((o) => ({
        id: o.id,
        roles: o.roles as ("author" | "validator")[],
        signKey: toHex(o.keyFile.keys.signing.publicKey),
        encKey: toHex(o.keyFile.keys.encryption.publicKey),
      })),
    });
    const entries = [encodeEntry(await signEntry(crypto, genesis, "consortium", consortium.secretKey))];
    for (let p = 0; p < 6; p++) {
      const patient = await newSeedPatient(crypto);
      entries.push(await enrollEntry(crypto, actors, patient));
      entries.push(await linkEntry(crypto, actors, patient, `MRN-${p}`));
      for (let r = 0; r < 3; r++) entries.push(await recordEntry(crypto, actors, patient, "2026-05", sha));
    }
    // Forge: the author's signature replaced by the validator's (well-formed, wrong): BAD_SIGNATURE.
    const forged = parseEntry(entries[9]!);
    const author = forged.sigs.find((sig) => sig.role === "author")!;
    const validator = forged.sigs.find((sig) => sig.role === "validator")!;
    entries[9] = encodeEntry({
      ...forged,
      sigs: forged.sigs.map((sig) => (sig === author ? { ...sig, sig: validator.sig } : sig)),
    });
    const run = async (verifyWorkers: number) => {
      const store = new MemoryStore();
      const node = await createNode({
        store,
        config: { origin: ORIGIN, logKey: keys.verifierKey },
        logSigner,
        crypto,
        now: () => T0,
        verifyWorkers,
      });
      const verdicts = (await node.submit(entries)).map((r) => (r.accepted ? "accepted" : r.reason));
      const out = { verdicts, root: toHex(node.root()), digest: node.state.digest() };
      await node.close();
      store.close();
      return out;
    };
    const onWorkers = await run(1);
    const onMain = await run(0);
    assert.deepEqual(onWorkers, onMain);
    assert.equal(onWorkers.verdicts[9], "BAD_SIGNATURE");
    // The patient's next record was built on the forged one: its chain link is broken.
    assert.equal(onWorkers.verdicts[10], "CHAIN_BROKEN");
    assert.equal(onWorkers.verdicts.filter((v) => v === "accepted").length, entries.length - 2);
  });
});
