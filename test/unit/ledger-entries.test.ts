/**
 * Ledger entries (docs/entries.md): building, signing with domain separation, strict decoding (canonical
 * form, schema, signature order), the clear-field allowlist of every kind, and property tests: parse of
 * the canonical encoding round-trips, and random JSON is refused with a rejection code, never a throw.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { isLedgerError } from "../../src/core/errors.ts";
import { toBase64, toHex, utf8 } from "../../src/core/encoding/bytes.ts";
import { canonicalize } from "../../src/core/encoding/jcs.ts";
import { encodeEnvelope, sealEnvelope } from "../../src/core/crypto/envelope.ts";
import {
  CLEAR_FIELDS,
  ENTRY_KINDS,
  MAX_ENTRY_BYTES,
  REJECTION_CODES,
  blindIdentifier,
  buildEntry,
  decodeEntry,
  encodeEntry,
  entryId,
  newRandomId,
  orgRecipient,
  parseEntry,
  patientRecipient,
  signEntry,
  signingMessage,
  verifySignature,
  type BodyOf,
  type Entry,
  type EntryKind,
} from "../../src/core/ledger/index.ts";
import { nodeCrypto as crypto } from "../../src/platform/node-crypto.ts";

const KEY_A = toHex(new Uint8Array(32).fill(1));
const KEY_B = toHex(new Uint8Array(32).fill(2));
const HASH = toHex(new Uint8Array(32).fill(3));
const PATIENT = "a1".repeat(16);
const RECORD = "b2".repeat(16);

const signer = await crypto.ed25519Generate();
const recipient = await crypto.x25519Generate();
const ENVELOPE = toBase64(
  encodeEnvelope(await sealEnvelope(crypto, recipient.publicKey, new Uint8Array(32))),
);
const SCOPE_CT = toBase64(new Uint8Array(64).fill(9));

/** One valid body of every kind, built the way the SDK will build them. */
const SAMPLE_BODIES: { [K in EntryKind]: BodyOf<K> } = {
  genesis: {
    origin: "ledger.example.org/region",
    consortium: { threshold: 1, keys: [KEY_A] },
    orgs: [{ id: "lab", roles: ["author"], signKey: KEY_A, encKey: KEY_B }],
  },
  "org.admit": { org: { id: "clinic", roles: ["author", "validator"], signKey: KEY_A, encKey: KEY_B } },
  "org.retire": { org: "clinic" },
  "patient.enroll": { patient: PATIENT, prev: null, org: "lab", signKey: KEY_A, encKey: KEY_B },
  "identifier.link": { patient: PATIENT, prev: HASH, org: "lab", blinded: HASH },
  "identifier.unlink": { patient: PATIENT, prev: HASH, org: "lab", blinded: HASH },
  "record.append": {
    patient: PATIENT,
    prev: HASH,
    record: RECORD,
    author: "lab",
    validator: "val",
    withheldFromPatient: false,
    month: "2026-10",
    ciphertext: { hash: HASH, size: 1234 },
    blobs: [{ hash: HASH, size: 99 }],
    envelopes: [
      { to: orgRecipient("lab"), env: ENVELOPE },
      { to: orgRecipient("val"), env: ENVELOPE },
      { to: patientRecipient(PATIENT), env: ENVELOPE },
    ],
  },
  "record.amend": {
    patient: PATIENT,
    prev: HASH,
    record: "c3".repeat(16),
    supersedes: RECORD,
    author: "lab",
    validator: "val",
    withheldFromPatient: false,
    month: "2026-10",
    ciphertext: { hash: HASH, size: 1234 },
    blobs: [],
    envelopes: [{ to: orgRecipient("lab"), env: ENVELOPE }],
  },
  "record.erase": { patient: PATIENT, prev: HASH, record: RECORD, by: "patient" },
  grant: {
    patient: PATIENT,
    prev: HASH,
    grantee: "clinic",
    expires: "2027-01-31",
    scopeHash: HASH,
    scope: { ct: SCOPE_CT, envelopes: [{ to: orgRecipient("clinic"), env: ENVELOPE }] },
  },
  "grant.revoke": { patient: PATIENT, prev: HASH, grant: HASH },
  "key.share": { patient: PATIENT, prev: HASH, grant: HASH, keys: [{ record: RECORD, env: ENVELOPE }] },
  "access.event": {
    patient: PATIENT,
    prev: HASH,
    org: "clinic",
    records: [RECORD],
    basis: { type: "grant", grant: HASH },
  },
  "emergency.access": { patient: PATIENT, prev: HASH, org: "clinic", reason: "patient-unconscious" },
};

/** Every member path of a JSON value, arrays marked `[]`, as CLEAR_FIELDS writes them. */
function paths(value: unknown, at = ""): string[] {
  if (Array.isArray(value)) return [at, ...value.flatMap((v) => paths(v, `${at}[]`))].filter((p) => p !== "");
  if (typeof value === "object" && value !== null) {
    const out: string[] = at === "" ? [] : [at];
    for (const [k, v] of Object.entries(value)) out.push(...paths(v, at === "" ? k : `${at}.${k}`));
    return out;
  }
  return at === "" ? [] : [at];
}

async function signed<K extends EntryKind>(kind: K): Promise<Entry> {
  return signEntry(crypto, buildEntry(kind, SAMPLE_BODIES[kind]), "org", signer.secretKey);
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(isLedgerError(err), `expected a LedgerError, got ${String(err)}`);
    return err.code;
  }
  return "none";
}

describe("ledger entries: builders", () => {
  it("builds, signs, encodes and parses every kind", async () => {
    for (const kind of ENTRY_KINDS) {
      const entry = await signed(kind);
      const bytes = encodeEntry(entry);
      assert.deepEqual(parseEntry(bytes), entry, kind);
      assert.equal(entryId(crypto, bytes), toHex(crypto.sha256(bytes)));
    }
  });

  it("reveals in clear exactly the documented fields of each kind, nothing else", async () => {
    for (const kind of ENTRY_KINDS) {
      const entry = await signed(kind);
      assert.deepEqual(Object.keys(entry).sort(), ["body", "kind", "sigs", "v"]);
      const allowed = new Set(CLEAR_FIELDS[kind]);
      for (const path of paths(entry.body)) assert.ok(allowed.has(path), `${kind} reveals ${path}`);
    }
  });

  it("refuses a body with a field the schema does not have (no room for free text)", () => {
    const body = { ...SAMPLE_BODIES["record.append"], note: "HbA1c 9.1%" };
    assert.equal(
      code(() => buildEntry("record.append", body as BodyOf<"record.append">)),
      "ENTRY_INVALID",
    );
    const enroll = { ...SAMPLE_BODIES["patient.enroll"], name: "Ana" };
    assert.equal(
      code(() => buildEntry("patient.enroll", enroll as BodyOf<"patient.enroll">)),
      "ENTRY_INVALID",
    );
    assert.equal(
      code(() => buildEntry("nope" as EntryKind, {} as never)),
      "ENTRY_INVALID",
    );
  });

  it("bounds sizes and formats: months, days, ids, envelope counts", () => {
    const append = SAMPLE_BODIES["record.append"];
    const bad: Partial<BodyOf<"record.append">>[] = [
      { month: "2026-13" },
      { month: "2026-1" },
      { patient: "A1".repeat(16) },
      { patient: "a1".repeat(15) },
      { ciphertext: { hash: HASH, size: -1 } },
      { ciphertext: { hash: HASH, size: 2 ** 41 } },
      { envelopes: [] },
      { envelopes: Array.from({ length: 65 }, (_, i) => ({ to: orgRecipient(`o${i}`), env: ENVELOPE })) },
      { envelopes: [{ to: "org:lab", env: ENVELOPE.slice(4) }] },
      {
        blobs: [
          { hash: HASH, size: 1 },
          { hash: HASH, size: 1 },
        ],
      },
    ];
    for (const patch of bad) {
      assert.equal(
        code(() => buildEntry("record.append", { ...append, ...patch })),
        "ENTRY_INVALID",
        JSON.stringify(patch).slice(0, 80),
      );
    }
    assert.equal(
      code(() => buildEntry("grant", { ...SAMPLE_BODIES.grant, expires: "2027-02-30" })),
      "ENTRY_INVALID",
    );
    assert.equal(
      code(() =>
        buildEntry("genesis", { ...SAMPLE_BODIES.genesis, consortium: { threshold: 2, keys: [KEY_A] } }),
      ),
      "ENTRY_INVALID",
    );
  });

  it("blinds identifiers with the org's key: same input same value, another key another value", async () => {
    const key = crypto.randomBytes(32);
    const a = await blindIdentifier(crypto, key, "urn:oid:1.2.3", "MRN-0042");
    assert.match(a, /^[0-9a-f]{64}$/);
    assert.equal(await blindIdentifier(crypto, key, "urn:oid:1.2.3", "MRN-0042"), a);
    assert.notEqual(await blindIdentifier(crypto, crypto.randomBytes(32), "urn:oid:1.2.3", "MRN-0042"), a);
    await assert.rejects(blindIdentifier(crypto, key, "a\nb", "c"), (e) =>
      isLedgerError(e, "INVALID_ARGUMENT"),
    );
    assert.match(newRandomId(crypto), /^[0-9a-f]{32}$/);
  });
});

describe("ledger entries: signatures", () => {
  it("signs in a role: the role is in the message, so a signature cannot move to another role", async () => {
    const entry = await signed("identifier.link");
    const sig = entry.sigs[0]!;
    assert.equal(await verifySignature(crypto, entry, sig), true);
    assert.equal(await verifySignature(crypto, entry, { ...sig, role: "patient" }), false);
    const message = signingMessage(entry, "org");
    const prefix = utf8("medledger/entry/v1\norg\n");
    assert.deepEqual(message.subarray(0, prefix.length), prefix);
    const content = canonicalize({ v: entry.v, kind: entry.kind, body: entry.body });
    assert.deepEqual(message.subarray(prefix.length), utf8(content));
  });

  it("keeps signatures sorted by (role, key) and replaces a signer's own signature", async () => {
    const other = await crypto.ed25519Generate();
    let entry: Entry = buildEntry("identifier.link", SAMPLE_BODIES["identifier.link"]);
    entry = await signEntry(crypto, entry, "patient", other.secretKey);
    entry = await signEntry(crypto, entry, "org", signer.secretKey);
    entry = await signEntry(crypto, entry, "org", signer.secretKey);
    assert.deepEqual(
      entry.sigs.map((s) => s.role),
      ["org", "patient"],
    );
  });
});

describe("ledger entries: strict decoding", () => {
  it("refuses non-canonical bytes, malformed JSON, bad schema, unsorted signatures and oversize input", async () => {
    const entry = await signed("record.erase");
    const bytes = encodeEntry(entry);
    const text = new TextDecoder().decode(bytes);
    const reasons = (b: Uint8Array): string => {
      const d = decodeEntry(b);
      return d.ok ? "ok" : d.reason;
    };
    assert.equal(reasons(bytes), "ok");
    assert.equal(reasons(utf8(` ${text}`)), "NOT_CANONICAL");
    assert.equal(reasons(utf8(JSON.stringify(JSON.parse(text), null, 1))), "NOT_CANONICAL");
    assert.equal(reasons(utf8(text.slice(0, -1))), "MALFORMED");
    assert.equal(reasons(utf8(text.replace('{"body"', '{"body":1,"body"'))), "MALFORMED");
    assert.equal(reasons(encodeUnchecked({ ...entry, v: 2 })), "SCHEMA");
    assert.equal(reasons(encodeUnchecked({ ...entry, extra: true })), "SCHEMA");
    assert.equal(reasons(encodeUnchecked({ ...entry, kind: "record.delete" })), "SCHEMA");
    const two = await signEntry(crypto, entry, "patient", signer.secretKey);
    assert.equal(reasons(encodeUnchecked({ ...two, sigs: [...two.sigs].reverse() })), "NOT_CANONICAL");
    assert.equal(reasons(new Uint8Array(MAX_ENTRY_BYTES + 1)), "TOO_LARGE");
    assert.equal(
      code(() => parseEntry(utf8("{}"))),
      "ENTRY_INVALID",
    );
    assert.equal(
      code(() => parseEntry(new Uint8Array(MAX_ENTRY_BYTES + 1))),
      "TOO_LARGE",
    );
  });

  it("property: parseEntry(canonical(entry)) round-trips for random record bodies", async () => {
    const hex = (bytes: number) => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map(toHex);
    const body = fc.record({
      patient: fc.integer({ min: 16, max: 32 }).chain(hex),
      prev: hex(32),
      record: hex(16),
      author: fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
      validator: fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
      withheldFromPatient: fc.boolean(),
      month: fc
        .tuple(fc.integer({ min: 1900, max: 2999 }), fc.integer({ min: 1, max: 12 }))
        .map(([y, m]) => `${y}-${String(m).padStart(2, "0")}`),
      ciphertext: fc.record({ hash: hex(32), size: fc.integer({ min: 0, max: 2 ** 40 }) }),
      blobs: fc
        .uniqueArray(fc.record({ hash: hex(32), size: fc.nat() }), { maxLength: 5, selector: (b) => b.hash })
        .map((list) => [...list].sort((a, b) => (a.hash < b.hash ? -1 : 1))),
    });
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const entry = await signEntry(
          crypto,
          buildEntry("record.append", { ...b, envelopes: [{ to: orgRecipient(b.author), env: ENVELOPE }] }),
          "author",
          signer.secretKey,
        );
        const bytes = encodeEntry(entry);
        assert.deepEqual(parseEntry(bytes), entry);
        assert.deepEqual(encodeEntry(parseEntry(bytes)), bytes);
      }),
      { numRuns: 100 },
    );
  });

  it("property: random JSON is refused with a rejection code, never a throw", () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 6 }), (text) => {
        const decoded = decodeEntry(utf8(text));
        assert.equal(decoded.ok, false);
        if (!decoded.ok) assert.ok((REJECTION_CODES as readonly string[]).includes(decoded.reason));
      }),
      { numRuns: 500 },
    );
  });
});

/** Canonical bytes of an arbitrary object, bypassing the schema (to build hostile entries). */
function encodeUnchecked(value: unknown): Uint8Array {
  return utf8(canonicalize(value));
}
