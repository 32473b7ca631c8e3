/**
 * A node data folder built straight from the node contract (docs/verify.md, "The contract"), independently
 * of src/node: node.json, keys/log.key and a SQLite store holding genesis, orgs, patients, records with
 * their ciphertext blobs, a grant, an amendment, an erasure, and deliberately rejected submissions, all
 * judged by the real validator, appended to a Merkle tree over the store's node table, indexed in a
 * patient index over the store's index table, and committed block by block with a signed checkpoint.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fromHex, toBase64, toHex, utf8 } from "../../src/core/encoding/bytes.ts";
import { encodeEnvelope, sealEnvelope } from "../../src/core/crypto/envelope.ts";
import type { KeyPair } from "../../src/core/crypto/suite.ts";
import {
  LedgerState,
  applyEntry,
  buildEntry,
  encodeEntry,
  entryId,
  orgRecipient,
  patientRecipient,
  signEntry,
  type Entry,
  type SignatureRole,
} from "../../src/core/ledger/index.ts";
import { MerkleTree, type MerkleNodeStore } from "../../src/core/merkle/tree.ts";
import { signCheckpoint } from "../../src/core/note/checkpoint.ts";
import { generateNoteKey, parseNoteSignerKey } from "../../src/core/note/signed-note.ts";
import { patientIndexKey } from "../../src/core/patient-index/hashing.ts";
import { PatientIndex } from "../../src/core/patient-index/tree.ts";
// Staging is mechanism, not the contract under test: the node's own helper is reused.
import { StagedIndexNodes } from "../../src/node/staging.ts";
import { nodeCrypto as crypto } from "../../src/platform/node-crypto.ts";
import { openStore } from "../../src/store/index.ts";
import type { LedgerStore, NewEntry } from "../../src/store/types.ts";

/** The shape of the fixture log. */
export interface FixtureOptions {
  readonly patients: number;
  readonly recordsPerPatient: number;
  /** Submissions per block. */
  readonly batch: number;
  /** Also submit refused entries (malformed, duplicate, broken chain) and a grant, amend and erase. */
  readonly extras?: boolean;
}

/** What was built. */
export interface Fixture {
  readonly dir: string;
  readonly origin: string;
  readonly logKey: string;
  readonly entries: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly checkpoints: number;
  readonly blobs: number;
}

/** The first ledger time: 2026-11-02T09:00:00Z. Each block is a minute later. */
const T0 = Date.UTC(2026, 10, 2, 9) / 1000;
const sha = (data: Uint8Array): Uint8Array => crypto.sha256(data);

/** Merkle node writes held until the block's transaction (signing is async, a transaction is not). */
class StagedMerkle implements MerkleNodeStore {
  readonly staged: { level: number; index: bigint; hash: Uint8Array }[] = [];
  get(): Uint8Array | undefined {
    return undefined;
  }
  put(level: number, index: bigint, hash: Uint8Array): void {
    this.staged.push({ level, index, hash: hash.slice() });
  }
}

interface Party {
  readonly sign: KeyPair;
  readonly enc: KeyPair;
}

async function party(): Promise<Party> {
  return { sign: await crypto.ed25519Generate(), enc: await crypto.x25519Generate() };
}

async function signed(
  entry: Entry,
  signers: readonly (readonly [SignatureRole, KeyPair])[],
): Promise<Uint8Array> {
  let out = entry;
  for (const [role, key] of signers) out = await signEntry(crypto, out, role, key.secretKey);
  return encodeEntry(out);
}

/** Sequences blocks into the store exactly as the contract says a node does. */
class FixtureNode {
  readonly store: LedgerStore;
  readonly state = new LedgerState(crypto);
  readonly #merkle = new StagedMerkle();
  readonly tree = MerkleTree.create(sha, this.#merkle);
  readonly #staged: StagedIndexNodes;
  readonly index: PatientIndex;
  readonly #signer: Awaited<ReturnType<typeof parseNoteSignerKey>>;
  readonly #origin: string;
  #time = T0;
  entries = 0;
  accepted = 0;
  checkpoints = 0;

  constructor(store: LedgerStore, signer: Awaited<ReturnType<typeof parseNoteSignerKey>>, origin: string) {
    this.store = store;
    this.#staged = new StagedIndexNodes(store.indexNodes);
    this.index = new PatientIndex(sha, this.#staged);
    this.#signer = signer;
    this.#origin = origin;
  }

  /** One block: order, judge, append, index, checkpoint, then one transaction. */
  async block(submissions: readonly Uint8Array[]): Promise<void> {
    const first = this.store.appendSubmissions(submissions);
    const time = (this.#time += 60);
    const rows: NewEntry[] = [];
    const moved = new Set<string>();
    for (const [i, bytes] of submissions.entries()) {
      const seq = first + BigInt(i);
      const verdict = await applyEntry(this.state, bytes, { seq: Number(seq), time });
      if (verdict.accepted) {
        const position = this.tree.append(bytes);
        const entry = JSON.parse(new TextDecoder().decode(bytes)) as {
          kind: string;
          body: Record<string, unknown>;
        };
        const patient = typeof entry.body.patient === "string" ? entry.body.patient : null;
        if (patient !== null) moved.add(patient);
        const month =
          entry.kind === "record.append" || entry.kind === "record.amend"
            ? (entry.body.month as string)
            : null;
        rows.push({
          seq,
          position,
          id: fromHex(verdict.id),
          status: "accepted",
          reason: null,
          patient: patient === null ? null : patientIndexKey(sha, patient),
          clinicalTime: month,
        });
        this.accepted++;
      } else {
        rows.push({
          seq,
          position: null,
          id: sha(bytes),
          status: "rejected",
          reason: verdict.reason,
          patient: null,
          clinicalTime: null,
        });
      }
    }
    let note: string | null = null;
    if (rows.some((r) => r.status === "accepted")) {
      if (moved.size > 0) {
        this.index.update(
          [...moved].map((p) => ({ key: patientIndexKey(sha, p), value: this.state.chainHead(p)! })),
        );
      }
      note = await signCheckpoint(
        {
          origin: this.#origin,
          size: this.tree.size,
          rootHash: this.tree.root(),
          extensions: [`patient-index ${toBase64(this.index.root)}`],
        },
        [this.#signer],
      );
    }
    const size = this.tree.size;
    this.store.transaction(() => {
      for (const row of rows) this.store.putEntry(row);
      for (const { level, index, hash } of this.#merkle.staged)
        this.store.merkleNodes.put(level, index, hash);
      this.#merkle.staged.length = 0;
      this.#staged.commit();
      if (note !== null) {
        this.store.putCheckpoint(size, note);
        this.checkpoints++;
      }
      this.store.setMeta(`ledger_time.${first}`, String(time));
    });
    this.entries += submissions.length;
  }
}

/** Build a node data folder in `dir` (created), close its store, and say what it holds. */
export async function buildNodeFolder(dir: string, options: FixtureOptions): Promise<Fixture> {
  mkdirSync(join(dir, "keys"), { recursive: true });
  const origin = "verify.test.example/ledger";
  const keys = await generateNoteKey(crypto, origin);
  const signer = await parseNoteSignerKey(crypto, keys.signerKey);
  writeFileSync(join(dir, "keys", "log.key"), `${keys.signerKey}\n`, { mode: 0o600 });
  const config = {
    format: "medledger-node",
    version: 1,
    origin,
    store: "sqlite:ledger.db",
    logKey: keys.verifierKey,
  };
  writeFileSync(join(dir, "node.json"), `${JSON.stringify(config, null, 2)}\n`);
  const store = await openStore(`sqlite:${join(dir, "ledger.db")}`);
  store.setMeta("origin", origin);
  store.setMeta("log_vkey", keys.verifierKey);
  const node = new FixtureNode(store, signer, origin);

  const consortium = await Promise.all([1, 2, 3].map(() => crypto.ed25519Generate()));
  const orgs = { hospital: await party(), lab: await party(), val: await party() };
  const declare = (id: keyof typeof orgs, roles: ("author" | "validator")[]) => ({
    id,
    roles,
    signKey: toHex(orgs[id].sign.publicKey),
    encKey: toHex(orgs[id].enc.publicKey),
  });
  const genesis = buildEntry("genesis", {
    origin,
    consortium: { threshold: 2, keys: consortium.map((k) => toHex(k.publicKey)).sort() },
    orgs: [declare("hospital", ["author"]), declare("lab", ["author"]), declare("val", ["validator"])],
  });
  const genesisBytes = await signed(
    genesis,
    consortium.slice(0, 2).map((k) => ["consortium", k] as const),
  );

  // Envelopes are sealed once per reader and reused: the audit never opens them, the schema decodes them.
  const envelope = async (enc: KeyPair): Promise<string> =>
    toBase64(encodeEnvelope(await sealEnvelope(crypto, enc.publicKey, crypto.randomBytes(32))));
  const orgEnvelopes = {
    lab: await envelope(orgs.lab.enc),
    val: await envelope(orgs.val.enc),
    hospital: await envelope(orgs.hospital.enc),
  };

  interface Patient {
    readonly id: string;
    readonly keys: Party;
    readonly envelope: string;
    head: string;
  }
  const patients: Patient[] = [];
  const pending: Uint8Array[] = [genesisBytes];
  let blobs = 0;
  for (let p = 0; p < options.patients; p++) {
    const keys = await party();
    const id = toHex(crypto.randomBytes(16));
    const bytes = await signed(
      buildEntry("patient.enroll", {
        patient: id,
        prev: null,
        org: "hospital",
        signKey: toHex(keys.sign.publicKey),
        encKey: toHex(keys.enc.publicKey),
      }),
      [
        ["patient", keys.sign],
        ["org", orgs.hospital.sign],
      ],
    );
    patients.push({ id, keys, envelope: await envelope(keys.enc), head: entryId(crypto, bytes) });
    pending.push(bytes);
  }
  const record = async (
    patient: Patient,
    month: string,
    supersedes?: string,
  ): Promise<{ bytes: Uint8Array; record: string }> => {
    const ciphertext = crypto.randomBytes(64 + (blobs % 97));
    const hash = node.store.putBlob(ciphertext);
    blobs++;
    const recordId = toHex(crypto.randomBytes(16));
    const body = {
      patient: patient.id,
      prev: patient.head,
      record: recordId,
      author: "lab",
      validator: "val",
      withheldFromPatient: false,
      month,
      ciphertext: { hash: toHex(hash), size: ciphertext.length },
      blobs: [],
      envelopes: [
        { to: orgRecipient("lab"), env: orgEnvelopes.lab },
        { to: orgRecipient("val"), env: orgEnvelopes.val },
        { to: patientRecipient(patient.id), env: patient.envelope },
      ],
    };
    const entry =
      supersedes === undefined
        ? buildEntry("record.append", body)
        : buildEntry("record.amend", { ...body, supersedes });
    const bytes = await signed(entry, [
      ["author", orgs.lab.sign],
      ["validator", orgs.val.sign],
    ]);
    patient.head = entryId(crypto, bytes);
    return { bytes, record: recordId };
  };
  const months = ["2024-03", "2025-07", "2026-01", "2026-10", "2026-11"];
  let firstRecord: { patient: Patient; record: string } | undefined;
  for (let r = 0; r < options.recordsPerPatient; r++) {
    for (const patient of patients) {
      const made = await record(patient, months[(r + patients.indexOf(patient)) % months.length]!);
      firstRecord ??= { patient, record: made.record };
      pending.push(made.bytes);
    }
  }

  if (options.extras === true && firstRecord !== undefined) {
    const { patient } = firstRecord;
    // Refused on purpose, each with its own code: not JSON, a replay, a broken chain.
    pending.splice(3, 0, utf8("{not json"));
    pending.push(pending[pending.length - 1]!);
    const stale = patient.head;
    pending.push((await record(patient, "2026-09")).bytes);
    const broken = await record({ ...patient, head: stale }, "2026-08");
    pending.push(broken.bytes);
    // An amendment, a grant and an erasure, accepted.
    pending.push((await record(patient, "2026-10", firstRecord.record)).bytes);
    const grant = await signed(
      buildEntry("grant", {
        patient: patient.id,
        prev: patient.head,
        grantee: "hospital",
        expires: "2027-06-30",
        scopeHash: toHex(crypto.randomBytes(32)),
        scope: {
          ct: toBase64(crypto.randomBytes(96)),
          envelopes: [
            { to: orgRecipient("hospital"), env: orgEnvelopes.hospital },
            { to: patientRecipient(patient.id), env: patient.envelope },
          ],
        },
      }),
      [["patient", patient.keys.sign]],
    );
    patient.head = entryId(crypto, grant);
    pending.push(grant);
    const erase = await signed(
      buildEntry("record.erase", {
        patient: patient.id,
        prev: patient.head,
        record: firstRecord.record,
        by: "patient",
      }),
      [["patient", patient.keys.sign]],
    );
    patient.head = entryId(crypto, erase);
    pending.push(erase);
  }

  for (let i = 0; i < pending.length; i += options.batch)
    await node.block(pending.slice(i, i + options.batch));
  store.close();
  return {
    dir,
    origin,
    logKey: keys.verifierKey,
    entries: node.entries,
    accepted: node.accepted,
    rejected: node.entries - node.accepted,
    checkpoints: node.checkpoints,
    blobs,
  };
}
