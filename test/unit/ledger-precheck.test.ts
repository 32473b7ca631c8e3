/**
 * Pre-checks (src/core/ledger/precheck.ts) and the fast paths under them. Properties: parseCanonical only
 * ever answers with what the strict parser and the RFC 8785 serialiser would (and for nearly all canonical
 * text it answers); decodeEntry gives exactly the verdict, reason and detail of the strict-only decoding it
 * replaced, on valid entries and on mutations of them; quickRecordCheck never accepts what EntrySchema
 * refuses, however a record is mutated; signedContentOf is signedContent; and applyEntry
 * gives the same verdicts and state with a pre-check of the very bytes, with one of other bytes, and without.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { bytesEqual, toBase64, toHex, utf8 } from "../../src/core/encoding/bytes.ts";
import { canonicalBytes, canonicalize, parseCanonical, parseJson } from "../../src/core/encoding/jcs.ts";
import type { JsonValue } from "../../src/core/encoding/jcs.ts";
import { encodeEnvelope, sealEnvelope } from "../../src/core/crypto/envelope.ts";
import type { KeyPair } from "../../src/core/crypto/suite.ts";
import { LedgerError } from "../../src/core/errors.ts";
import {
  EntrySchema,
  LedgerState,
  applyEntry,
  buildEntry,
  decodeEntry,
  encodeEntry,
  entryId,
  orgRecipient,
  patientRecipient,
  precheckEntry,
  quickRecordCheck,
  reject,
  signEntry,
  signedContent,
  signedContentOf,
  strictlyAscending,
  type DecodedEntry,
  type Entry,
  type EntryPrecheck,
} from "../../src/core/ledger/index.ts";

import { nodeCrypto as crypto } from "../../src/platform/node-crypto.ts";

const T0 = Date.UTC(2026, 10, 2, 9) / 1000;
const LIMITS = { maxDepth: 8, maxBytes: 1024 * 1024 };

const jsonValue: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e15, max: 1e15 }),
    fc.string({ unit: "grapheme" }),
    fc.string({ unit: "binary" }),
    fc.array(tie("value"), { maxLength: 5 }),
    fc.dictionary(fc.string({ unit: "binary" }), tie("value"), { maxKeys: 5 }),
  ),
})).value;

/** Canonical text of a value, or undefined when JCS refuses it (a lone surrogate, too deep). */
function canonicalText(value: JsonValue): string | undefined {
  try {
    return canonicalize(value, LIMITS);
  } catch {
    return undefined;
  }
}

/** What parseCanonical may answer: undefined, or exactly the strict parser's value of canonical text. */
function checkAnswer(text: string): JsonValue | undefined {
  const fast = parseCanonical(text, LIMITS);
  if (fast === undefined) return undefined;
  const strict = parseJson(text, LIMITS);
  assert.deepEqual(fast, strict);
  assert.equal(canonicalize(strict, LIMITS), text);
  return fast;
}

/** Small edits of a text: insert, delete or repeat a character, or change one. */
const edit = fc.record({
  at: fc.nat(),
  op: fc.constantFrom("insert", "delete", "repeat", "replace"),
  char: fc.constantFrom(
    " ",
    "\n",
    '"',
    "\\",
    ",",
    ":",
    "{",
    "}",
    "[",
    "]",
    "0",
    "1",
    "-",
    ".",
    "e",
    "a",
    "u",
    "\u00e9",
    "\ud800",
  ),
});

function applyEdit(text: string, e: { at: number; op: string; char: string }): string {
  const at = text.length === 0 ? 0 : e.at % text.length;
  if (e.op === "insert") return text.slice(0, at) + e.char + text.slice(at);
  if (e.op === "delete") return text.slice(0, at) + text.slice(at + 1);
  if (e.op === "repeat") return text.slice(0, at + 1) + text.slice(at);
  return text.slice(0, at) + e.char + text.slice(at + 1);
}

describe("parseCanonical", () => {
  it("answers for canonical text with the strict parser's value", () => {
    let answered = 0;
    let texts = 0;
    fc.assert(
      fc.property(jsonValue, (value) => {
        const text = canonicalText(value);
        if (text === undefined) return;
        texts++;
        if (checkAnswer(text) !== undefined) answered++;
        // Integer-like member names are the one case it leaves to the strict path (JavaScript lists them
        // first); any other canonical text gets an answer.
        else assert.ok(/"(0|[1-9][0-9]*)":/.test(text), text);
      }),
      { numRuns: 1000 },
    );
    assert.ok(answered > texts / 2, `${answered} of ${texts}`);
  });

  it("never answers for text that is not canonical, whatever the edit", () => {
    fc.assert(
      fc.property(jsonValue, fc.array(edit, { minLength: 1, maxLength: 3 }), (value, edits) => {
        const text = canonicalText(value);
        if (text === undefined) return;
        checkAnswer(edits.reduce(applyEdit, text));
      }),
      { numRuns: 2000 },
    );
  });

  it("leaves to the strict path what only the strict path refuses", () => {
    for (const text of [
      '{"a":1,"a":1}',
      '{"b":1,"a":2}',
      '["\\ud800"]',
      "[9007199254740993]",
      "[1.0]",
      "[1e2]",
      '["\\u0061"]',
      "\ufeff[]",
      "[[[[[[[[[]]]]]]]]]",
      '{"a" :1}',
    ]) {
      assert.equal(parseCanonical(text, LIMITS), undefined, text);
    }
  });
});

/** decodeEntry as it was before the fast path: strict parse, JCS re-serialisation, schema, signature order. */
function strictDecode(bytes: Uint8Array): DecodedEntry {
  const refuse = (code: Parameters<typeof reject>[0], detail: string): DecodedEntry => ({
    ...reject(code, detail),
    ok: false,
  });
  if (bytes.length > LIMITS.maxBytes)
    return refuse("TOO_LARGE", `entry is ${bytes.length} bytes; the limit is ${LIMITS.maxBytes}`);
  let value: unknown;
  try {
    value = parseJson(bytes, LIMITS);
    if (!bytesEqual(canonicalBytes(value, LIMITS), bytes)) {
      return refuse("NOT_CANONICAL", "entry bytes are not the RFC 8785 canonical form");
    }
  } catch (err) {
    if (!(err instanceof LedgerError)) throw err;
    return refuse("MALFORMED", err.message);
  }
  const parsed = EntrySchema.safeParse(value);
  if (!parsed.success) {
    // Compare the code only: the detail comes from the same function on the same issues.
    return refuse("SCHEMA", "");
  }
  if (!strictlyAscending(parsed.data.sigs.map((s) => `${s.role}\n${s.key}`))) {
    return refuse("NOT_CANONICAL", "signatures must be sorted by (role, key) without duplicates");
  }
  return { ok: true, entry: parsed.data };
}

function sameDecoding(bytes: Uint8Array): void {
  const fast = decodeEntry(bytes);
  const strict = strictDecode(bytes);
  if (strict.ok || fast.ok) {
    assert.ok(fast.ok && strict.ok, "both accept");
    assert.deepEqual(fast.entry, strict.entry);
    return;
  }
  assert.equal(fast.reason, strict.reason);
  if (strict.reason !== "SCHEMA") assert.equal(fast.detail, strict.detail);
}

async function party(): Promise<{ sign: KeyPair; enc: KeyPair }> {
  return { sign: await crypto.ed25519Generate(), enc: await crypto.x25519Generate() };
}

/** A genesis, an enrolment and a few records of one patient, each with valid signatures. */
async function story(): Promise<Uint8Array[]> {
  const consortium = await crypto.ed25519Generate();
  const hospital = await party();
  const val = await party();
  const ana = await party();
  const hex = (k: KeyPair): string => toHex(k.publicKey);
  const genesis = buildEntry("genesis", {
    origin: "ledger.example.org/north",
    consortium: { threshold: 1, keys: [hex(consortium)] },
    orgs: [
      { id: "hospital", roles: ["author"], signKey: hex(hospital.sign), encKey: hex(hospital.enc) },
      { id: "val", roles: ["validator"], signKey: hex(val.sign), encKey: hex(val.enc) },
    ],
  });
  const out = [encodeEntry(await signEntry(crypto, genesis, "consortium", consortium.secretKey))];
  const patient = toHex(crypto.randomBytes(16));
  let enroll: Entry = buildEntry("patient.enroll", {
    patient,
    prev: null,
    org: "hospital",
    signKey: hex(ana.sign),
    encKey: hex(ana.enc),
  });
  enroll = await signEntry(crypto, enroll, "patient", ana.sign.secretKey);
  enroll = await signEntry(crypto, enroll, "org", hospital.sign.secretKey);
  out.push(encodeEntry(enroll));
  let head = entryId(crypto, out[1]!);
  for (let r = 0; r < 4; r++) {
    const to = [patientRecipient(patient), orgRecipient("hospital"), orgRecipient("val")].sort();
    const keys = {
      [patientRecipient(patient)]: ana.enc,
      [orgRecipient("hospital")]: hospital.enc,
      [orgRecipient("val")]: val.enc,
    };
    const envelopes = await Promise.all(
      to.map(async (t) => ({
        to: t,
        env: toBase64(encodeEnvelope(await sealEnvelope(crypto, keys[t]!.publicKey, crypto.randomBytes(32)))),
      })),
    );
    let rec: Entry = buildEntry("record.append", {
      patient,
      prev: head,
      record: toHex(crypto.randomBytes(16)),
      author: "hospital",
      validator: "val",
      withheldFromPatient: false,
      month: "2026-0" + String(r + 1),
      ciphertext: { hash: toHex(crypto.randomBytes(32)), size: 100 * r },
      blobs: [],
      envelopes,
    });
    rec = await signEntry(crypto, rec, "author", hospital.sign.secretKey);
    rec = await signEntry(crypto, rec, "validator", val.sign.secretKey);
    out.push(encodeEntry(rec));
    head = entryId(crypto, out[out.length - 1]!);
  }
  return out;
}

const STORY = await story();
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

/** Mutations of a valid entry: a byte changed, or a small edit of its text. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant("byte" as const), at: fc.nat(), delta: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant("edit" as const), edit }),
);

function mutate(bytes: Uint8Array, m: typeof mutation extends fc.Arbitrary<infer T> ? T : never): Uint8Array {
  if (m.kind === "byte") {
    const out = new Uint8Array(bytes);
    const at = m.at % out.length;
    out[at] = (out[at]! + m.delta) % 256;
    return out;
  }
  return utf8(applyEdit(text(bytes), m.edit));
}

describe("decodeEntry with the fast canonical path", () => {
  it("decodes valid entries exactly as the strict path does", () => {
    for (const bytes of STORY) sameDecoding(bytes);
  });

  it("refuses every mutation with the strict path's reason and detail", () => {
    fc.assert(
      fc.property(fc.nat(STORY.length - 1), mutation, (i, m) => sameDecoding(mutate(STORY[i]!, m))),
      { numRuns: 3000 },
    );
  });
});

/** Values that sit on or just past the schemas' edges, or are of the wrong type. */
const TRICKY: unknown[] = [
  null,
  true,
  false,
  0,
  -0,
  1,
  -1,
  1.5,
  32,
  33,
  64,
  65,
  2 ** 40,
  2 ** 40 + 1,
  2 ** 53,
  1e21,
  "",
  " ",
  "a",
  "ab".repeat(16),
  "ab".repeat(15) + "a",
  "AB".repeat(32),
  "ab".repeat(32),
  "ab".repeat(33),
  "0".repeat(64),
  "hospital",
  "Hospital",
  "-x",
  "a".repeat(64),
  "a".repeat(65),
  "2026-05",
  "2026-13",
  "1899-01",
  "2026-5",
  "org:hospital",
  "org:",
  "patient:" + "ab".repeat(16),
  "patient:" + "ab".repeat(15),
  "author",
  "validator",
  "org",
  "patient",
  "consortium",
  "Author",
  "record.append",
  "record.amend",
  "genesis",
  "A".repeat(88),
  "A".repeat(86) + "==",
  "A".repeat(85) + "B==",
  "=".repeat(88),
  "A".repeat(2048),
  [],
  [1],
  {},
  { a: 1 },
];

/** A copy of `value` with one random change somewhere in it. */
function structuralMutation(): fc.Arbitrary<(value: unknown) => unknown> {
  return fc
    .record({
      path: fc.array(fc.nat(), { maxLength: 5 }),
      op: fc.constantFrom("replace", "delete", "add", "proto", "drop", "repeat", "swap", "stringify"),
      tricky: fc.nat(TRICKY.length - 1),
      name: fc.constantFrom(
        "x",
        "v",
        "kind",
        "body",
        "sigs",
        "patient",
        "to",
        "env",
        "hash",
        "size",
        "supersedes",
      ),
    })
    .map((m) => (value: unknown): unknown => {
      const root = structuredClone(value);
      // Walk down the path (each step picks a member or element by index), remember the last container.
      let holder: Record<string, unknown> | unknown[] | null = null;
      let key: string | number = "";
      let node: unknown = root;
      for (const step of m.path) {
        if (typeof node !== "object" || node === null) break;
        const keys = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
        if (keys.length === 0) break;
        holder = node as Record<string, unknown> | unknown[];
        key = keys[step % keys.length]!;
        node = (holder as Record<string | number, unknown>)[key];
      }
      const target = (holder ?? { root }) as Record<string | number, unknown>;
      if (holder === null) key = "root";
      const current = target[key];
      switch (m.op) {
        case "replace":
          target[key] = structuredClone(TRICKY[m.tricky]);
          break;
        case "delete":
          if (Array.isArray(target)) target.splice(key as number, 1);
          else delete target[key];
          break;
        case "add":
          if (typeof current === "object" && current !== null && !Array.isArray(current)) {
            (current as Record<string, unknown>)[m.name] = structuredClone(TRICKY[m.tricky]);
          }
          break;
        case "proto":
          if (typeof current === "object" && current !== null && !Array.isArray(current)) {
            Object.defineProperty(current, "__proto__", {
              value: 1,
              enumerable: true,
              configurable: true,
              writable: true,
            });
          }
          break;
        case "drop":
          if (Array.isArray(current)) current.pop();
          break;
        case "repeat":
          if (Array.isArray(current) && current.length > 0) current.push(structuredClone(current[0]));
          break;
        case "swap":
          if (Array.isArray(current) && current.length > 1) current.reverse();
          break;
        case "stringify":
          target[key] = JSON.stringify(current) ?? "undefined";
          break;
      }
      return holder === null ? target.root : root;
    });
}

describe("quickRecordCheck", () => {
  const records = STORY.slice(2).map((bytes) => JSON.parse(text(bytes)) as unknown);

  it("passes valid records, and what it passes EntrySchema passes", () => {
    for (const record of records) {
      assert.equal(quickRecordCheck(record), true);
      assert.equal(EntrySchema.safeParse(record).success, true);
      const amend = structuredClone(record) as { kind: string; body: Record<string, unknown> };
      amend.kind = "record.amend";
      amend.body.supersedes = "cd".repeat(16);
      assert.equal(quickRecordCheck(amend), true);
      assert.equal(EntrySchema.safeParse(amend).success, true);
    }
    assert.equal(quickRecordCheck(JSON.parse(text(STORY[0]!))), false, "other kinds go to zod");
  });

  it("never accepts a mutated record that EntrySchema refuses", () => {
    let refused = 0;
    fc.assert(
      fc.property(
        fc.nat(records.length - 1),
        fc.boolean(),
        fc.array(structuralMutation(), { minLength: 1, maxLength: 3 }),
        (i, amend, mutations) => {
          let value = structuredClone(records[i]) as { kind: string; body: Record<string, unknown> };
          if (amend) {
            value.kind = "record.amend";
            value.body.supersedes = "cd".repeat(16);
          }
          for (const mutate of mutations) value = mutate(value) as typeof value;
          const schema = EntrySchema.safeParse(value).success;
          if (!schema) refused++;
          if (quickRecordCheck(value)) assert.ok(schema, JSON.stringify(value));
        },
      ),
      { numRuns: 20_000 },
    );
    assert.ok(refused > 10_000, `${refused} mutations refused`);
  });
});

describe("signedContentOf", () => {
  it("is signedContent for every decoded entry, and falls back for bytes that are not the entry's", () => {
    for (const bytes of STORY) {
      const decoded = decodeEntry(bytes);
      assert.ok(decoded.ok);
      assert.deepEqual(signedContentOf(bytes, decoded.entry), signedContent(decoded.entry));
      assert.deepEqual(signedContentOf(STORY[0]!, decoded.entry), signedContent(decoded.entry));
    }
  });
});

describe("applyEntry with pre-checks", () => {
  /** Judge a sequence; `precheck` gives (or not) a pre-check for entry i. */
  async function judgeAll(
    sequence: readonly Uint8Array[],
    precheck: (i: number) => Promise<EntryPrecheck | undefined>,
  ): Promise<{ verdicts: string[]; digest: string }> {
    const state = new LedgerState(crypto);
    const verdicts: string[] = [];
    for (const [i, bytes] of sequence.entries()) {
      const verdict = await applyEntry(state, bytes, { seq: i, time: T0 }, await precheck(i));
      verdicts.push(verdict.accepted ? `accepted ${verdict.id}` : `${verdict.reason}: ${verdict.detail}`);
    }
    return { verdicts, digest: state.digest() };
  }

  it("same verdicts, details and state with a pre-check of the same bytes, of other bytes, or none", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(STORY.length - 1), fc.option(mutation)), { maxLength: 12 }),
        async (picks) => {
          // The story in order (so that entries are accepted), with mutated or repeated entries in between.
          const sequence = [...STORY];
          for (const [k, [i, m]] of picks.entries()) {
            sequence.splice(
              Math.min(sequence.length, 2 + k * 2),
              0,
              m === null ? STORY[i]! : mutate(STORY[i]!, m),
            );
          }
          const own = async (i: number) => (await precheckEntry(crypto, sequence[i]!)) ?? undefined;
          const other = async (i: number) =>
            (await precheckEntry(crypto, sequence[(i + 1) % sequence.length]!)) ?? undefined;
          // A pre-check for these bytes that vouches for no signature: everything is verified inline.
          const none = async (i: number) => {
            const p = await precheckEntry(crypto, sequence[i]!);
            return p === null ? undefined : { digest: p.digest, verified: 0 };
          };
          const without = await judgeAll(sequence, async () => undefined);
          assert.deepEqual(await judgeAll(sequence, own), without);
          assert.deepEqual(await judgeAll(sequence, other), without);
          assert.deepEqual(await judgeAll(sequence, none), without);
          assert.ok(
            without.verdicts.filter((v) => v.startsWith("accepted")).length >= STORY.length - picks.length,
          );
        },
      ),
      { numRuns: 40 },
    );
  });

  it("vouches only for signatures that verify, and binds them to the bytes' SHA-256", async () => {
    const bytes = STORY[2]!;
    const precheck = await precheckEntry(crypto, bytes);
    assert.ok(precheck !== null);
    assert.equal(precheck.verified, 0b11);
    assert.deepEqual(precheck.digest, crypto.sha256(bytes));
    const forged = decodeEntry(bytes);
    assert.ok(forged.ok);
    const [a, b] = forged.entry.sigs;
    const swapped = canonicalBytes({ ...forged.entry, sigs: [{ ...a!, sig: b!.sig }, b!] });
    assert.equal((await precheckEntry(crypto, swapped))?.verified, 0b10);
    assert.equal(await precheckEntry(crypto, utf8("{}")), null);
  });
});
