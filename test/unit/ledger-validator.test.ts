/**
 * The deterministic validator (docs/entries.md, "Rules"). A story in numbered steps walks a region's ledger
 * from genesis through records, grants, amendments, erasure and break-glass, and refuses a bad variant at
 * each step, checking that a refused entry changed nothing (same state digest). Every rejection code is
 * produced at least once. Property tests: determinism across two validators, rejected entries leave the
 * state unchanged, any single-byte mutation of a valid entry is refused (never accepted, never a crash).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { isLedgerError } from "../../src/core/errors.ts";
import { toBase64, toHex, utf8 } from "../../src/core/encoding/bytes.ts";
import { canonicalize } from "../../src/core/encoding/jcs.ts";
import { encodeEnvelope, sealEnvelope } from "../../src/core/crypto/envelope.ts";
import type { KeyPair } from "../../src/core/crypto/suite.ts";
import {
  LedgerState,
  MAX_ENTRY_BYTES,
  REJECTION_CODES,
  applyEntry,
  blindIdentifier,
  buildEntry,
  encodeEntry,
  orgRecipient,
  parseEntry,
  patientRecipient,
  signEntry,
  sortByClinicalTime,
  type ApplyResult,
  type BodyOf,
  type Entry,
  type EntryKind,
  type OrgRole,
  type PositionedEntry,
  type RejectionCode,
  type SignatureRole,
} from "../../src/core/ledger/index.ts";
import { nodeCrypto as crypto } from "../../src/platform/node-crypto.ts";

/** 2026-11-02T09:00:00Z: the story's ledger time starts here (passed in, never read from a clock). */
const T0 = Date.UTC(2026, 10, 2, 9) / 1000;

interface Party {
  readonly sign: KeyPair;
  readonly enc: KeyPair;
}

async function party(): Promise<Party> {
  return { sign: await crypto.ed25519Generate(), enc: await crypto.x25519Generate() };
}

const consortium = await Promise.all([1, 2, 3].map(() => crypto.ed25519Generate()));
const consortiumKeys = consortium.map((k) => toHex(k.publicKey)).sort();
const ORGS: Record<string, { roles: OrgRole[]; keys: Party }> = {
  hospital: { roles: ["author"], keys: await party() },
  lab: { roles: ["author"], keys: await party() },
  val: { roles: ["validator"], keys: await party() },
  clinic: { roles: ["author", "validator"], keys: await party() },
  pharmacy: { roles: ["author"], keys: await party() },
};
const ana = { id: "a0".repeat(16), keys: await party() };
const bob = { id: "b0".repeat(16), keys: await party() };
const org = (id: string): Party => ORGS[id]!.keys;
const hex = (k: KeyPair): string => toHex(k.publicKey);

async function envelopeFor(encKey: KeyPair): Promise<string> {
  return toBase64(encodeEnvelope(await sealEnvelope(crypto, encKey.publicKey, crypto.randomBytes(32))));
}

function declare(id: string): BodyOf<"org.admit">["org"] {
  return { id, roles: ORGS[id]!.roles, signKey: hex(org(id).sign), encKey: hex(org(id).enc) };
}

async function sign(entry: Entry, signers: readonly (readonly [SignatureRole, KeyPair])[]): Promise<Entry> {
  let out = entry;
  for (const [role, key] of signers) out = await signEntry(crypto, out, role, key.secretKey);
  return out;
}

/** A validator run: positions advance by one per entry (accepted or not) and ledger time by a minute. */
class Ledger {
  readonly state = new LedgerState(crypto);
  readonly seen = new Set<RejectionCode>();
  readonly accepted: PositionedEntry[] = [];
  seq = 0;
  time = T0;

  head(patient: string): string {
    return this.state.patients.get(patient)?.head ?? "00".repeat(32);
  }

  async apply(entry: Entry | Uint8Array): Promise<ApplyResult> {
    const bytes = entry instanceof Uint8Array ? entry : encodeEntry(entry);
    const position = { seq: this.seq++, time: (this.time += 60) };
    const before = this.state.digest();
    const result = await applyEntry(this.state, bytes, position);
    if (result.accepted) this.accepted.push({ entry: parseEntry(bytes), position });
    else {
      this.seen.add(result.reason);
      assert.equal(this.state.digest(), before, `rejected ${result.reason} changed the state`);
    }
    return result;
  }

  async accept(entry: Entry | Uint8Array): Promise<string> {
    const result = await this.apply(entry);
    assert.ok(result.accepted, result.accepted ? "" : `${result.reason}: ${result.detail}`);
    return result.id;
  }

  async refuse(entry: Entry | Uint8Array, reason: RejectionCode): Promise<void> {
    const result = await this.apply(entry);
    assert.equal(result.accepted ? "accepted" : result.reason, reason, result.accepted ? "" : result.detail);
  }
}

function genesis(orgs: readonly string[] = ["hospital", "lab", "val"]): Entry {
  return buildEntry("genesis", {
    origin: "ledger.example.org/region-north",
    consortium: { threshold: 2, keys: consortiumKeys },
    orgs: orgs.map(declare),
  });
}

const quorum = (n = 2) => consortium.slice(0, n).map((k) => ["consortium", k] as const);

async function enroll(patient = ana, by = "hospital"): Promise<Entry> {
  const entry = buildEntry("patient.enroll", {
    patient: patient.id,
    prev: null,
    org: by,
    signKey: hex(patient.keys.sign),
    encKey: hex(patient.keys.enc),
  });
  return sign(entry, [
    ["patient", patient.keys.sign],
    ["org", org(by).sign],
  ]);
}

interface RecordOptions {
  patient?: typeof ana;
  record?: string;
  author?: string;
  validator?: string;
  month?: string;
  withheld?: boolean;
  recipients?: string[];
  supersedes?: string;
  prev?: string;
  signers?: (readonly [SignatureRole, KeyPair])[];
}

let recordCounter = 0;
function newRecordId(): string {
  return toHex(utf8(`record-${String(++recordCounter).padStart(9, "0")}`));
}

async function record(l: Ledger, o: RecordOptions = {}): Promise<Entry> {
  const patient = o.patient ?? ana;
  const author = o.author ?? "lab";
  const validator = o.validator ?? "val";
  const withheld = o.withheld ?? false;
  const recipients =
    o.recipients ??
    (withheld
      ? [orgRecipient(author)]
      : [orgRecipient(author), orgRecipient(validator), patientRecipient(patient.id)]);
  const encOf = (to: string): KeyPair =>
    to.startsWith("org:") ? (ORGS[to.slice(4)]?.keys.enc ?? ana.keys.enc) : patient.keys.enc;
  const envelopes = await Promise.all(
    [...new Set(recipients)].sort().map(async (to) => ({ to, env: await envelopeFor(encOf(to)) })),
  );
  const body = {
    patient: patient.id,
    prev: o.prev ?? l.head(patient.id),
    record: o.record ?? newRecordId(),
    author,
    validator,
    withheldFromPatient: withheld,
    month: o.month ?? "2026-10",
    ciphertext: { hash: toHex(crypto.randomBytes(32)), size: 2048 },
    blobs: [],
    envelopes,
  };
  const entry =
    o.supersedes === undefined
      ? buildEntry("record.append", body)
      : buildEntry("record.amend", { ...body, supersedes: o.supersedes });
  const signers = o.signers ?? [
    ["author", ORGS[author]?.keys.sign ?? org("lab").sign],
    ["validator", ORGS[validator]?.keys.sign ?? org("val").sign],
  ];
  return sign(entry, signers);
}

async function patientEntry<K extends EntryKind>(
  l: Ledger,
  kind: K,
  body: Omit<BodyOf<K>, "patient" | "prev">,
  signers: (readonly [SignatureRole, KeyPair])[] = [["patient", ana.keys.sign]],
  patient = ana,
): Promise<Entry> {
  const full = { patient: patient.id, prev: l.head(patient.id), ...body } as unknown as BodyOf<K>;
  return sign(buildEntry(kind, full), signers);
}

async function grantBody(
  grantee: string,
  expires = "2027-06-30",
  scopeReaders: readonly string[] = [],
): Promise<Omit<BodyOf<"grant">, "patient" | "prev">> {
  const envelopes = [
    { to: orgRecipient(grantee), env: await envelopeFor(org(grantee).enc) },
    { to: patientRecipient(ana.id), env: await envelopeFor(ana.keys.enc) },
  ];
  for (const reader of scopeReaders) {
    envelopes.push({ to: orgRecipient(reader), env: await envelopeFor(org(reader).enc) });
  }
  envelopes.sort((a, b) => (a.to < b.to ? -1 : 1));
  return {
    grantee,
    expires,
    scopeHash: toHex(crypto.randomBytes(32)),
    scope: { ct: toBase64(crypto.randomBytes(96)), envelopes },
  };
}

/** Replace a byte of an entry's canonical text (for hostile-input steps). */
function tamper(entry: Entry, edit: (text: string) => string): Uint8Array {
  return utf8(edit(new TextDecoder().decode(encodeEntry(entry))));
}

describe("ledger validator: the story of a region's ledger", () => {
  it("accepts the right entries, refuses the wrong ones with the right code, and a refusal changes nothing", async () => {
    const l = new Ledger();

    // 0. Nothing before genesis; hostile bytes are refused with their own codes.
    await l.refuse(await enroll(), "GENESIS_MISPLACED");
    await l.refuse(new Uint8Array(MAX_ENTRY_BYTES + 1), "TOO_LARGE");
    await l.refuse(utf8("{not json"), "MALFORMED");
    await l.refuse(utf8('{ "v": 1 }'), "NOT_CANONICAL");
    await l.refuse(utf8('{"v":1}'), "SCHEMA");

    // 1. Genesis: a 2-of-3 consortium admits a hospital, a lab and a validator org.
    await l.refuse(await sign(genesis(), quorum(1)), "MISSING_SIGNATURE");
    const stranger = await crypto.ed25519Generate();
    await l.refuse(await sign(genesis(), [...quorum(2), ["consortium", stranger]]), "BAD_SIGNATURE");
    const genesisEntry = await sign(genesis(), quorum(2));
    await l.accept(genesisEntry);
    assert.equal(l.state.origin, "ledger.example.org/region-north");
    assert.deepEqual([...l.state.orgs.keys()].sort(), ["hospital", "lab", "val"]);
    await l.refuse(genesisEntry, "DUPLICATE_ID");
    await l.refuse(await sign(genesis(["lab"]), quorum(2)), "GENESIS_MISPLACED");

    // 2. The hospital enrols Ana: signed by Ana and by the hospital.
    await l.refuse(await enroll().then((e) => ({ ...e, sigs: e.sigs.slice(0, 1) })), "MISSING_SIGNATURE");
    await l.refuse(await enroll(ana, "pharmacy"), "UNKNOWN_ORG");
    const enrolment = await l.accept(await enroll());
    assert.equal(l.state.patients.get(ana.id)?.head, enrolment);
    assert.equal(l.state.chainHead(ana.id)?.length, 1);
    const reEnrol = await sign(
      buildEntry("patient.enroll", {
        patient: ana.id,
        prev: null,
        org: "lab",
        signKey: hex(ana.keys.sign),
        encKey: hex(ana.keys.enc),
      }),
      [
        ["patient", ana.keys.sign],
        ["org", org("lab").sign],
      ],
    );
    await l.refuse(reEnrol, "PATIENT_EXISTS");

    // 3. The hospital links its MRN for Ana, blinded with its own key: only the keyed hash is on the ledger.
    const blindingKey = crypto.randomBytes(32);
    const blinded = await blindIdentifier(
      crypto,
      blindingKey,
      "urn:oid:2.16.840.1.113883.19.5",
      "MRN-004217",
    );
    const both = [["org", org("hospital").sign] as const, ["patient", ana.keys.sign] as const];
    const linkEntry = await patientEntry(l, "identifier.link", { org: "hospital", blinded }, both);
    assert.ok(!new TextDecoder().decode(encodeEntry(linkEntry)).includes("MRN-004217"));
    await l.accept(linkEntry);
    assert.equal(l.state.identifierOwner("hospital", blinded), ana.id);
    await l.refuse(
      await patientEntry(l, "identifier.link", { org: "hospital", blinded }, both),
      "IDENTIFIER_LINKED",
    );
    await l.refuse(
      await patientEntry(l, "identifier.unlink", { org: "hospital", blinded: "ab".repeat(32) }, both),
      "IDENTIFIER_UNKNOWN",
    );
    await l.refuse(
      await patientEntry(l, "identifier.link", { org: "hospital", blinded }, both, bob),
      "PATIENT_UNKNOWN",
    );

    // 4. The lab appends a result for October with the validator's attestation.
    await l.refuse(await record(l, { signers: [["author", org("lab").sign]] }), "MISSING_SIGNATURE");
    await l.refuse(
      await record(l, {
        signers: [
          ["author", org("lab").sign],
          ["validator", org("hospital").sign],
        ],
      }),
      "BAD_SIGNATURE",
    );
    await l.refuse(
      await record(l, {
        signers: [
          ["author", org("lab").sign],
          ["patient", ana.keys.sign],
          ["validator", org("val").sign],
        ],
      }),
      "UNEXPECTED_SIGNATURE",
    );
    await l.refuse(await record(l, { validator: "hospital" }), "ROLE_MISSING");
    await l.refuse(await record(l, { author: "val" }), "ROLE_MISSING");
    await l.refuse(await record(l, { author: "clinic" }), "UNKNOWN_ORG");
    await l.refuse(
      await record(l, { recipients: [orgRecipient("lab"), orgRecipient("val")] }),
      "ENVELOPE_MISSING",
    );
    await l.refuse(await record(l, { month: "2026-12" }), "TIME_INVALID");
    await l.refuse(await record(l, { prev: enrolment }), "CHAIN_BROKEN");
    const octoberId = newRecordId();
    const october = await record(l, { record: octoberId });
    const forged = tamper(october, (t) => t.replace('"size":2048', '"size":2049'));
    await l.refuse(forged, "BAD_SIGNATURE");
    const octoberEntry = await l.accept(october);
    assert.equal(l.state.records.get(octoberId)?.entry, octoberEntry);
    await l.refuse(october, "DUPLICATE_ID");
    await l.refuse(await record(l, { record: octoberId }), "DUPLICATE_RECORD");

    // 5. A result from March 2024 arrives today: accepted, and first in clinical order.
    const marchId = newRecordId();
    await l.accept(await record(l, { record: marchId, month: "2024-03" }));
    const history = sortByClinicalTime(l.accepted.filter((p) => p.entry.kind.startsWith("record.")));
    assert.equal((history[0]!.entry.body as BodyOf<"record.append">).record, marchId);
    assert.equal((history[1]!.entry.body as BodyOf<"record.append">).record, octoberId);
    assert.equal(l.state.chainHead(ana.id)?.length, 4);

    // 6. The consortium retires the hospital and admits a clinic and a pharmacy.
    const retire = buildEntry("org.retire", { org: "hospital" });
    await l.refuse(await sign(retire, quorum(1)), "MISSING_SIGNATURE");
    await l.refuse(
      await sign(retire, [
        ["consortium", consortium[0]!],
        ["org", org("lab").sign],
      ]),
      "UNEXPECTED_SIGNATURE",
    );
    await l.refuse(await sign(buildEntry("org.retire", { org: "clinic" }), quorum()), "UNKNOWN_ORG");
    await l.accept(await sign(retire, quorum()));
    await l.refuse(await sign(buildEntry("org.retire", { org: "hospital" }), quorum(3)), "ORG_RETIRED");
    const before = l.state.digest();
    await l.refuse(await record(l, { author: "hospital" }), "ORG_RETIRED");
    assert.equal(l.state.digest(), before);
    await l.accept(await sign(buildEntry("org.admit", { org: declare("clinic") }), quorum()));
    await l.accept(await sign(buildEntry("org.admit", { org: declare("pharmacy") }), quorum()));
    await l.refuse(
      await sign(buildEntry("org.admit", { org: declare("pharmacy") }), quorum(3)),
      "ORG_EXISTS",
    );
    await l.refuse(await sign(buildEntry("org.admit", { org: declare("hospital") }), quorum()), "ORG_EXISTS");
    await l.refuse(await record(l, { author: "clinic", validator: "clinic" }), "SELF_ATTESTATION");

    // 7. A psychotherapy note: wrapped for the author only, never for the patient.
    await l.refuse(
      await record(l, {
        author: "clinic",
        withheld: true,
        recipients: [orgRecipient("clinic"), patientRecipient(ana.id)],
      }),
      "ENVELOPE_FORBIDDEN",
    );
    const noteId = newRecordId();
    await l.accept(await record(l, { author: "clinic", withheld: true, record: noteId }));

    // 8. Ana grants the pharmacy access until mid-2027; new records may then be wrapped for it.
    const pharmacyTo = orgRecipient("pharmacy");
    const standard = [orgRecipient("lab"), orgRecipient("val"), patientRecipient(ana.id)];
    await l.refuse(await record(l, { recipients: [...standard, pharmacyTo] }), "ENVELOPE_FORBIDDEN");
    await l.refuse(await patientEntry(l, "grant", await grantBody("pharmacy", "2026-11-01")), "TIME_INVALID");
    await l.refuse(await patientEntry(l, "grant", await grantBody("hospital")), "ORG_RETIRED");
    // Scope readers (docs/records.md section 4): active orgs only; the retired hospital may not read it.
    await l.refuse(
      await patientEntry(l, "grant", await grantBody("pharmacy", undefined, ["hospital"])),
      "ENVELOPE_FORBIDDEN",
    );
    const grantId = await l.accept(
      await patientEntry(l, "grant", await grantBody("pharmacy", undefined, ["lab"])),
    );
    assert.deepEqual(
      l.state.activeGrants(ana.id, l.time).map((g) => g.id),
      [grantId],
    );
    const withPharmacyId = newRecordId();
    await l.accept(await record(l, { record: withPharmacyId, recipients: [...standard, pharmacyTo] }));

    // 9. Ana shares the keys of her October result with the pharmacy; never the withheld note's.
    const env = await envelopeFor(org("pharmacy").enc);
    await l.refuse(
      await patientEntry(l, "key.share", { grant: "cd".repeat(32), keys: [{ record: octoberId, env }] }),
      "GRANT_UNKNOWN",
    );
    await l.refuse(
      await patientEntry(l, "key.share", { grant: grantId, keys: [{ record: noteId, env }] }),
      "ENVELOPE_FORBIDDEN",
    );
    await l.refuse(
      await patientEntry(l, "key.share", { grant: grantId, keys: [{ record: "ef".repeat(16), env }] }),
      "RECORD_UNKNOWN",
    );
    await l.accept(
      await patientEntry(l, "key.share", { grant: grantId, keys: [{ record: octoberId, env }] }),
    );

    // 10. The pharmacy's node logs what it obtained, under the grant.
    const pharmacy = [["org", org("pharmacy").sign] as const];
    const access = (records: string[], basis: BodyOf<"access.event">["basis"], by = "pharmacy") =>
      patientEntry(l, "access.event", { org: by, records: [...records].sort(), basis }, [
        ["org", org(by).sign],
      ]);
    await l.refuse(await access([noteId], { type: "grant", grant: grantId }), "NOT_PERMITTED");
    await l.refuse(await access([octoberId], { type: "grant", grant: grantId }, "lab"), "NOT_PERMITTED");
    await l.refuse(await access([octoberId], { type: "care" }), "NOT_PERMITTED");
    await l.accept(await access([octoberId], { type: "grant", grant: grantId }));
    await l.accept(await access([noteId], { type: "care" }, "clinic"));

    // 11. Ana revokes the grant: no more access under it, no more shares.
    const revoke = await patientEntry(l, "grant.revoke", { grant: grantId });
    await l.accept(revoke);
    await l.refuse(await patientEntry(l, "grant.revoke", { grant: grantId }), "GRANT_INACTIVE");
    await l.refuse(await access([octoberId], { type: "grant", grant: grantId }), "GRANT_INACTIVE");
    await l.refuse(await record(l, { recipients: [...standard, pharmacyTo] }), "ENVELOPE_FORBIDDEN");

    // 12. The lab amends its October result; only the author amends, and only the latest version.
    const amendedId = newRecordId();
    await l.refuse(await record(l, { supersedes: "ef".repeat(16) }), "RECORD_UNKNOWN");
    await l.refuse(
      await record(l, {
        supersedes: octoberId,
        author: "clinic",
        recipients: [orgRecipient("clinic"), orgRecipient("val"), patientRecipient(ana.id)],
      }),
      "NOT_PERMITTED",
    );
    await l.accept(await record(l, { supersedes: octoberId, record: amendedId }));
    assert.equal(l.state.records.get(octoberId)?.supersededBy, amendedId);
    await l.refuse(await record(l, { supersedes: octoberId }), "RECORD_SUPERSEDED");

    // 13. Ana erases the March result (a tombstone); it cannot be erased or amended again.
    const erase = (id: string) => patientEntry(l, "record.erase", { record: id, by: "patient" });
    await l.accept(await erase(marchId));
    assert.equal(l.state.records.get(marchId)?.erased, true);
    await l.refuse(await erase(marchId), "RECORD_ERASED");
    await l.refuse(await record(l, { supersedes: marchId }), "RECORD_ERASED");
    await l.accept(
      await patientEntry(l, "record.erase", { record: withPharmacyId, by: "author" }, [
        ["author", org("lab").sign],
      ]),
    );

    // 14. Break-glass: the pharmacy declares an emergency, then logs what it obtained under it.
    await l.refuse(
      await access([amendedId], { type: "emergency", emergency: "ab".repeat(32) }),
      "EMERGENCY_UNKNOWN",
    );
    const emergency = await l.accept(
      await patientEntry(l, "emergency.access", { org: "pharmacy", reason: "patient-unconscious" }, pharmacy),
    );
    await l.accept(await access([amendedId], { type: "emergency", emergency }));
    await l.refuse(await access([noteId], { type: "emergency", emergency }), "NOT_PERMITTED");
    l.time += 73 * 3600;
    await l.refuse(await access([amendedId], { type: "emergency", emergency }), "EMERGENCY_UNKNOWN");

    // 15. Non-canonical sig order and schema violations inside otherwise good entries.
    const twoSigs = await record(l);
    await l.refuse(utf8(canonicalize({ ...twoSigs, sigs: [...twoSigs.sigs].reverse() })), "NOT_CANONICAL");
    await l.refuse(
      tamper(twoSigs, (t) => t.replace('"month":"2026-10"', '"month":"2026-1X"')),
      "SCHEMA",
    );

    // Every rejection code was produced by the story.
    assert.deepEqual(
      [...REJECTION_CODES].filter((c) => !l.seen.has(c)),
      [],
    );

    // A second validator replaying the same ordered stream reaches the same state.
    const replay = new Ledger();
    for (const item of l.accepted) {
      const result = await applyEntry(replay.state, encodeEntry(item.entry), item.position);
      assert.ok(result.accepted);
    }
    assert.equal(replay.state.digest(), l.state.digest());
    assert.equal(JSON.stringify(replay.state.toJson()), JSON.stringify(l.state.toJson()));
  });

  it("refuses a position that does not follow the last accepted one (a broken stream, not a bad entry)", async () => {
    const state = new LedgerState(crypto);
    const bytes = encodeEntry(await sign(genesis(), quorum()));
    assert.ok((await applyEntry(state, bytes, { seq: 5, time: T0 })).accepted);
    await assert.rejects(applyEntry(state, bytes, { seq: 5, time: T0 }), (e) =>
      isLedgerError(e, "INVALID_ARGUMENT"),
    );
    await assert.rejects(applyEntry(state, bytes, { seq: 6, time: T0 - 1 }), (e) =>
      isLedgerError(e, "INVALID_ARGUMENT"),
    );
    await assert.rejects(applyEntry(state, bytes, { seq: 1.5, time: T0 }), (e) =>
      isLedgerError(e, "INVALID_ARGUMENT"),
    );
  });
});

/** The story's opening as a pool of entries (valid and invalid), for the property tests. */
async function pool(): Promise<{
  bytes: Uint8Array[];
  targets: { before: Uint8Array[]; entry: Uint8Array }[];
}> {
  const l = new Ledger();
  const bytes: Uint8Array[] = [];
  const keep = async (entry: Entry): Promise<Uint8Array> => {
    const b = encodeEntry(entry);
    bytes.push(b);
    await l.apply(b);
    return b;
  };
  const g = await keep(await sign(genesis(), quorum()));
  const e = await keep(await enroll());
  await keep(await enroll(bob, "lab"));
  const both = [["org", org("hospital").sign] as const, ["patient", ana.keys.sign] as const];
  await keep(await patientEntry(l, "identifier.link", { org: "hospital", blinded: "12".repeat(32) }, both));
  const r = await keep(await record(l));
  await keep(await record(l, { month: "2025-01" }));
  await keep(await record(l, { patient: bob, month: "2025-02" }));
  await keep(await sign(buildEntry("org.retire", { org: "hospital" }), quorum()));
  await keep(await record(l, { author: "hospital" }));
  await keep(await record(l, { signers: [["author", org("lab").sign]] }));
  await keep(await sign(buildEntry("org.admit", { org: declare("pharmacy") }), quorum()));
  await keep(await patientEntry(l, "grant", await grantBody("pharmacy")));
  bytes.push(utf8("{}"), new Uint8Array([0xff, 0xfe]));
  const beforeRecord = bytes.slice(0, 4);
  return {
    bytes,
    targets: [
      { before: [], entry: g },
      { before: [g], entry: e },
      { before: beforeRecord, entry: r },
    ],
  };
}

const { bytes: POOL, targets: TARGETS } = await pool();

async function run(sequence: readonly Uint8Array[]): Promise<{ results: string[]; digest: string }> {
  const state = new LedgerState(crypto);
  const results: string[] = [];
  let time = T0;
  for (const [seq, bytes] of sequence.entries()) {
    const before = state.digest();
    const result = await applyEntry(state, bytes, { seq, time: (time += 30) });
    if (!result.accepted)
      assert.equal(state.digest(), before, `rejection ${result.reason} changed the state`);
    results.push(result.accepted ? `ok ${result.id}` : result.reason);
  }
  return { results, digest: state.digest() };
}

describe("ledger validator: properties", () => {
  it("(a, b) two fresh validators agree on every verdict and state; a refusal changes nothing", async () => {
    const ordered = fc.subarray(POOL.map((_, i) => i));
    const shuffled = fc.shuffledSubarray(POOL.map((_, i) => i));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(ordered, shuffled, fc.array(fc.nat(POOL.length - 1), { maxLength: 20 })),
        async (picks) => {
          const sequence = picks.map((i) => POOL[i]!);
          const first = await run(sequence);
          const second = await run(sequence);
          assert.deepEqual(second, first);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("(c) any single-byte change of a valid entry is refused, never accepted, never a crash", async () => {
    for (const target of TARGETS) {
      const state = new LedgerState(crypto);
      for (const [seq, bytes] of target.before.entries()) await applyEntry(state, bytes, { seq, time: T0 });
      const digest = state.digest();
      let seq = target.before.length;
      await fc.assert(
        fc.asyncProperty(
          fc.nat(target.entry.length - 1),
          fc.integer({ min: 1, max: 255 }),
          async (at, delta) => {
            const mutated = new Uint8Array(target.entry);
            mutated[at] = (mutated[at]! + delta) % 256;
            const result = await applyEntry(state, mutated, { seq: seq++, time: T0 });
            assert.equal(result.accepted, false);
            assert.equal(state.digest(), digest);
          },
        ),
        { numRuns: 300 },
      );
      assert.ok((await applyEntry(state, target.entry, { seq: seq++, time: T0 })).accepted);
    }
  });
});
