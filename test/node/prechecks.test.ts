/**
 * Pre-checks on worker threads (docs/node.md, "Parallel pre-checks"): the same ordered stream gives the
 * same verdicts, rejection codes and details, entry rows, Merkle and patient-index roots and ledger state
 * whether no worker or two pre-check it. The stream mixes valid entries with many kinds of invalid ones:
 * bad signatures (forged, flipped, by the wrong key), non-canonical bytes (whitespace, escapes, member and
 * signature order, number spelling), schema violations carrying valid signatures, malformed JSON and UTF-8,
 * duplicates and broken chains. Part of the stream is already durable when the node starts (pre-checked
 * as a batch), the rest is submitted in bursts of various sizes (pre-checked from submit() on).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { concatBytes, fromBase64, toBase64, toHex, utf8 } from "../../src/core/encoding/bytes.ts";
import { canonicalBytes } from "../../src/core/encoding/jcs.ts";
import { encodeEnvelope, sealEnvelope } from "../../src/core/crypto/envelope.ts";
import type { KeyPair } from "../../src/core/crypto/suite.ts";
import {
  ENTRY_SIGNING_PREFIX,
  buildEntry,
  encodeEntry,
  entryId,
  orgRecipient,
  patientRecipient,
  signEntry,
  type Entry,
  type SignatureRole,
} from "../../src/core/ledger/index.ts";
import { generateNoteKey, parseNoteSignerKey } from "../../src/core/note/signed-note.ts";
import { nodeCrypto as crypto } from "../../src/platform/node-crypto.ts";
import { MemoryStore } from "../../src/store/index.ts";
import { META_LOG_VKEY, META_ORIGIN } from "../../src/node/config.ts";
import { createNode } from "../../src/node/node.ts";

const T0 = Date.UTC(2026, 10, 2, 9) / 1000;
/** Patients in the stream (five valid entries each). */
const PATIENTS = 16;
const ORIGIN = "north.medledger.example/log";

interface Party {
  readonly sign: KeyPair;
  readonly enc: KeyPair;
}

async function party(): Promise<Party> {
  return { sign: await crypto.ed25519Generate(), enc: await crypto.x25519Generate() };
}

const hex = (k: KeyPair): string => toHex(k.publicKey);
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

/** Sign as signEntry does, but without its schema check: for schema violations with valid signatures. */
async function signRaw(
  entry: Entry,
  signers: readonly (readonly [SignatureRole, KeyPair])[],
): Promise<Uint8Array> {
  const content = canonicalBytes({ v: entry.v, kind: entry.kind, body: entry.body });
  const sigs = [];
  for (const [role, key] of signers) {
    const message = concatBytes(utf8(`${ENTRY_SIGNING_PREFIX}${role}\n`), content);
    sigs.push({ role, key: hex(key), sig: toBase64(await crypto.ed25519Sign(key.secretKey, message)) });
  }
  sigs.sort((a, b) => (`${a.role}\n${a.key}` < `${b.role}\n${b.key}` ? -1 : 1));
  return canonicalBytes({ ...entry, sigs });
}

/** The stream: valid entries, and an invalid variant of some of them in front of the valid one. */
async function buildStream(): Promise<{ stream: Uint8Array[]; kinds: Map<number, string> }> {
  const consortium = await crypto.ed25519Generate();
  const orgs = { hospital: await party(), lab: await party(), val: await party() };
  const genesis = buildEntry("genesis", {
    origin: ORIGIN,
    consortium: { threshold: 1, keys: [hex(consortium)] },
    orgs: [
      { id: "hospital", roles: ["author"] as const, keys: orgs.hospital },
      { id: "lab", roles: ["author"] as const, keys: orgs.lab },
      { id: "val", roles: ["validator"] as const, keys: orgs.val },
    ].map((o) => ({ id: o.id, roles: [...o.roles], signKey: hex(o.keys.sign), encKey: hex(o.keys.enc) })),
  });
  const stream = [encodeEntry(await signEntry(crypto, genesis, "consortium", consortium.secretKey))];
  const kinds = new Map<number, string>();
  const bad = (kind: string, bytes: Uint8Array | string): void => {
    kinds.set(stream.length, kind);
    stream.push(typeof bytes === "string" ? utf8(bytes) : bytes);
  };
  const envelope = async (to: KeyPair): Promise<string> =>
    toBase64(encodeEnvelope(await sealEnvelope(crypto, to.publicKey, crypto.randomBytes(32))));

  for (let p = 0; p < PATIENTS; p++) {
    const patient = { id: toHex(crypto.randomBytes(16)), keys: await party() };
    const enroll = buildEntry("patient.enroll", {
      patient: patient.id,
      prev: null,
      org: "hospital",
      signKey: hex(patient.keys.sign),
      encKey: hex(patient.keys.enc),
    });
    let signed = await signEntry(crypto, enroll, "patient", patient.keys.sign.secretKey);
    signed = await signEntry(crypto, signed, "org", orgs.hospital.sign.secretKey);
    let head = entryId(crypto, encodeEntry(signed));
    stream.push(encodeEntry(signed));
    for (let r = 0; r < 4; r++) {
      const recipients = [patientRecipient(patient.id), orgRecipient("hospital"), orgRecipient("val")].sort();
      const keyOf = (to: string): KeyPair =>
        to === orgRecipient("hospital")
          ? orgs.hospital.enc
          : to === orgRecipient("val")
            ? orgs.val.enc
            : patient.keys.enc;
      const body = {
        patient: patient.id,
        prev: head,
        record: toHex(crypto.randomBytes(16)),
        author: "hospital",
        validator: "val",
        withheldFromPatient: false,
        month: "2026-05",
        ciphertext: { hash: toHex(crypto.randomBytes(32)), size: 1000 + r },
        blobs: [],
        envelopes: await Promise.all(recipients.map(async (to) => ({ to, env: await envelope(keyOf(to)) }))),
      };
      const entry = buildEntry("record.append", body);
      let rec = await signEntry(crypto, entry, "author", orgs.hospital.sign.secretKey);
      rec = await signEntry(crypto, rec, "validator", orgs.val.sign.secretKey);
      const bytes = encodeEntry(rec);
      const json = text(bytes);
      const author = rec.sigs.find((s) => s.role === "author")!;
      const validator = rec.sigs.find((s) => s.role === "validator")!;
      const withSigs = (sigs: typeof rec.sigs): Uint8Array => canonicalBytes({ ...rec, sigs });
      // One kind of invalid variant per (patient, record), then the valid entry itself.
      switch ((p * 4 + r) % 24) {
        case 0:
          bad("forged signature", withSigs([{ ...author, sig: validator.sig }, validator]));
          break;
        case 1: {
          const flipped = fromBase64(author.sig);
          flipped[5]! ^= 0x10;
          bad("flipped signature", withSigs([{ ...author, sig: toBase64(flipped) }, validator]));
          break;
        }
        case 2:
          bad(
            "wrong key",
            await signRaw(entry, [
              ["author", orgs.lab.sign],
              ["validator", orgs.val.sign],
            ]),
          );
          break;
        case 3:
          bad("whitespace", json.replace('{"body":', '{ "body":'));
          break;
        case 4:
          bad("escaped character", json.replace('"author":"hospital"', '"author":"hospit\\u0061l"'));
          break;
        case 5:
          bad("signature order", withSigs([validator, author]));
          break;
        case 6: {
          const { body: b, kind, sigs, v } = JSON.parse(json) as Entry;
          bad("member order", JSON.stringify({ kind, body: b, sigs, v }));
          break;
        }
        case 7:
          bad("number spelling", json.replace(`"size":${1000 + r}`, `"size":${1000 + r}.0`));
          break;
        case 8:
          bad(
            "schema: month, validly signed",
            await signRaw({ ...entry, body: { ...body, month: "2026-13" } }, [
              ["author", orgs.hospital.sign],
              ["validator", orgs.val.sign],
            ]),
          );
          break;
        case 9:
          bad(
            "schema: extra member, validly signed",
            await signRaw({ ...entry, body: { ...body, note: "x" } } as unknown as Entry, [
              ["author", orgs.hospital.sign],
              ["validator", orgs.val.sign],
            ]),
          );
          break;
        case 10:
          bad(
            "schema: envelope",
            json.replace(body.envelopes[0]!.env, `${body.envelopes[0]!.env.slice(0, -4)}@@@@`),
          );
          break;
        case 11:
          bad("schema: signature length", withSigs([{ ...author, sig: author.sig.slice(0, 84) }, validator]));
          break;
        case 12:
          bad("truncated", bytes.subarray(0, bytes.length - 7));
          break;
        case 13:
          bad(
            "invalid UTF-8",
            concatBytes(bytes.subarray(0, 20), Uint8Array.of(0xc3, 0x28), bytes.subarray(22)),
          );
          break;
        case 14:
          bad(
            "duplicate member",
            json.replace('"author":"hospital"', '"author":"hospital","author":"hospital"'),
          );
          break;
        case 15:
          bad("lone surrogate", json.replace('"author":"hospital"', '"author":"\\ud800"'));
          break;
        case 16:
          bad("unsafe number", json.replace(`"size":${1000 + r}`, '"size":9007199254740993'));
          break;
        case 17:
          bad("byte order mark", concatBytes(Uint8Array.of(0xef, 0xbb, 0xbf), bytes));
          break;
        case 18:
          bad("too deep", json.replace('"blobs":[]', '"blobs":[[[[[[[[[]]]]]]]]]'));
          break;
        case 19:
          bad("missing signature", withSigs([author]));
          break;
        case 20:
          bad("not JSON", "record.append please");
          break;
        case 21:
          bad(
            "wrong role",
            withSigs(
              [{ ...author, role: "org" as const }, validator].sort((a, b) => (a.role < b.role ? -1 : 1)),
            ),
          );
          break;
        default:
          break;
      }
      stream.push(bytes);
      head = entryId(crypto, bytes);
      if (r === 1) {
        kinds.set(stream.length, "duplicate");
        stream.push(bytes);
      }
      if (r === 3 && p % 3 === 0) {
        // A record chained on the record before the last: CHAIN_BROKEN.
        kinds.set(stream.length, "broken chain");
        const late = buildEntry("record.append", { ...body, record: toHex(crypto.randomBytes(16)) });
        let lateSigned = await signEntry(crypto, late, "author", orgs.hospital.sign.secretKey);
        lateSigned = await signEntry(crypto, lateSigned, "validator", orgs.val.sign.secretKey);
        stream.push(encodeEntry(lateSigned));
      }
    }
  }
  return { stream, kinds };
}

const { stream: STREAM, kinds: KINDS } = await buildStream();

/** The code each kind of invalid entry must be refused with. */
const EXPECTED: Record<string, string> = {
  "forged signature": "BAD_SIGNATURE",
  "flipped signature": "BAD_SIGNATURE",
  "wrong key": "BAD_SIGNATURE",
  "wrong role": "UNEXPECTED_SIGNATURE",
  "missing signature": "MISSING_SIGNATURE",
  whitespace: "NOT_CANONICAL",
  "escaped character": "NOT_CANONICAL",
  "signature order": "NOT_CANONICAL",
  "member order": "NOT_CANONICAL",
  "number spelling": "NOT_CANONICAL",
  "schema: month, validly signed": "SCHEMA",
  "schema: extra member, validly signed": "SCHEMA",
  "schema: envelope": "SCHEMA",
  "schema: signature length": "SCHEMA",
  truncated: "MALFORMED",
  "invalid UTF-8": "MALFORMED",
  "duplicate member": "MALFORMED",
  "lone surrogate": "MALFORMED",
  "unsafe number": "MALFORMED",
  "byte order mark": "MALFORMED",
  "too deep": "MALFORMED",
  "not JSON": "MALFORMED",
  duplicate: "DUPLICATE_ID",
  "broken chain": "CHAIN_BROKEN",
};
/** Entries already durable when the node starts: pre-checked as a batch, not from submit(). */
const AT_START = 40;

async function run(verifyWorkers: number) {
  const keys = await generateNoteKey(crypto, ORIGIN);
  const logSigner = await parseNoteSignerKey(crypto, keys.signerKey);
  const store = new MemoryStore();
  store.transaction(() => {
    store.setMeta(META_ORIGIN, ORIGIN);
    store.setMeta(META_LOG_VKEY, keys.verifierKey);
  });
  store.appendSubmissions(STREAM.slice(0, AT_START));
  const node = await createNode({
    store,
    config: { origin: ORIGIN, logKey: keys.verifierKey },
    logSigner,
    crypto,
    now: () => T0,
    verifyWorkers,
  });
  // Bursts of 1 to 17 submissions, all in one turn of the event loop: they are ordered as called.
  const rest = STREAM.slice(AT_START);
  const bursts: Uint8Array[][] = [];
  for (let i = 0, size = 1; i < rest.length; i += size, size = (size % 17) + 1)
    bursts.push(rest.slice(i, i + size));
  const answered = (await Promise.all(bursts.map((b) => node.submit(b)))).flat();
  await node.idle();
  const rows = store.readEntries(0n, 10_000).map((row) => ({
    seq: row.seq,
    status: row.status,
    reason: row.reason,
    position: row.position,
    id: toHex(row.id),
    patient: row.patient === null ? null : toHex(row.patient),
    clinicalTime: row.clinicalTime,
  }));
  const out = {
    answered: answered.map((r) =>
      r.accepted ? `${r.seq} accepted ${r.position}` : `${r.seq} ${r.reason}: ${r.detail}`,
    ),
    rows,
    size: node.size,
    root: toHex(node.root()),
    indexRoot: toHex(node.indexRoot()),
    digest: node.state.digest(),
  };
  const prechecks = node.prechecks;
  await node.close();
  store.close();
  return { out, prechecks };
}

describe("pre-checks on worker threads", () => {
  it("give the same verdicts, codes, rows, roots and state with 0 and 2 workers, on a stream of valid and invalid entries", async () => {
    const main = await run(0);
    const workers = await run(2);
    assert.deepEqual(workers.out, main.out);
    assert.deepEqual(main.prechecks, { workerChunks: 0, mainChunks: 0 });
    assert.ok(workers.prechecks.workerChunks > 0, "the workers pre-checked entries");

    // The stream is what it claims to be: each invalid entry is refused with the code its kind calls for.
    const refused = new Map<string, string>();
    for (const [seq, kind] of KINDS) refused.set(kind, main.out.rows[seq]!.reason ?? "accepted");
    assert.deepEqual(Object.fromEntries(refused), EXPECTED);
    const accepted = main.out.rows.filter((r) => r.status === "accepted").length;
    assert.equal(accepted, 1 + PATIENTS * 5);
    assert.equal(main.out.rows.length, STREAM.length);
  });
});
