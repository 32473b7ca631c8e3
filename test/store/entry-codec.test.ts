/**
 * The SQLite store's encoding of entry bytes (src/store/entry-codec.ts): every input comes back identical,
 * entries shrink to well under half, and a stored value that was changed in any way is refused with
 * STORE_CORRUPT, never decoded into something else and never thrown as another error.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";
import fc from "fast-check";
import { isLedgerError } from "../../src/core/errors.ts";
import {
  EMPTY_DICTIONARY,
  SKELETON_DICTIONARY,
  decodeEntryBytes,
  encodeEntryBytes,
  entryDictionary,
  type EntryDictionary,
} from "../../src/store/entry-codec.ts";

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (n: number): string => randomBytes(n).toString("hex");
const b64 = (n: number): string => randomBytes(n).toString("base64");

/** A genesis naming two orgs, shaped like src/node/init.ts's. */
function genesis(authorKey: string, validatorKey: string): Uint8Array {
  return text(
    `{"body":{"consortium":{"keys":["${hex(32)}"],"threshold":1},"orgs":[{"encKey":"${hex(32)}",` +
      `"id":"hospital","roles":["author"],"signKey":"${authorKey}"},{"encKey":"${hex(32)}","id":"validator",` +
      `"roles":["validator"],"signKey":"${validatorKey}"}],"origin":"example.org/log"},"kind":"genesis",` +
      `"sigs":[{"key":"${hex(32)}","role":"consortium","sig":"${b64(64)}"}],"v":1}`,
  );
}

/** A record.append entry shaped like src/node/seed.ts's (random values, the sizes of the real ones). */
function record(authorKey: string, validatorKey: string): Uint8Array {
  const patient = hex(16);
  return text(
    `{"body":{"author":"hospital","blobs":[],"ciphertext":{"hash":"${hex(32)}","size":258},"envelopes":[` +
      `{"env":"${b64(87)}","to":"org:hospital"},{"env":"${b64(87)}","to":"org:validator"},` +
      `{"env":"${b64(87)}","to":"patient:${patient}"}],"month":"2026-09","patient":"${patient}",` +
      `"prev":"${hex(32)}","record":"${hex(16)}","validator":"validator","withheldFromPatient":false},` +
      `"kind":"record.append","sigs":[{"key":"${authorKey}","role":"author","sig":"${b64(64)}"},` +
      `{"key":"${validatorKey}","role":"validator","sig":"${b64(64)}"}],"v":1}`,
  );
}

function roundTrip(bytes: Uint8Array, dictionary: EntryDictionary): Uint8Array {
  const stored = encodeEntryBytes(bytes, dictionary);
  assert.deepEqual(decodeEntryBytes(stored, dictionary), bytes);
  return stored;
}

/** Decoding must either refuse with STORE_CORRUPT or give bytes; anything else fails the test. */
function decodeOrCorrupt(stored: Uint8Array, dictionary: EntryDictionary): Uint8Array | "corrupt" {
  try {
    return decodeEntryBytes(stored, dictionary);
  } catch (err) {
    assert.ok(isLedgerError(err) && err.code === "STORE_CORRUPT", `not STORE_CORRUPT: ${String(err)}`);
    assert.match(err.message, /^stored entry bytes are damaged: /);
    return "corrupt";
  }
}

/** A stored value with a correct CRC-32 around any body, to reach the decoder's checks behind the CRC. */
function withCrc(format: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = format;
  out.set(body, 5);
  const crc = crc32(Buffer.concat([Buffer.of(format), Buffer.from(body)]));
  new DataView(out.buffer).setUint32(1, crc);
  return out;
}

describe("entry bytes on disk (SQLite store)", () => {
  const authorKey = hex(32);
  const validatorKey = hex(32);
  const first = genesis(authorKey, validatorKey);
  const dictionary = entryDictionary(first);

  it("pins the skeleton dictionary: stored values copy from it, so changing it needs a new format", () => {
    const digest = createHash("sha256").update(SKELETON_DICTIONARY).digest("hex");
    assert.equal(SKELETON_DICTIONARY.length, 3026);
    assert.equal(digest, "0f80ffc7c4368725ea6d7692da5f7036a2b1aab4fb86c739624b117536cfea56");
  });

  it("gives every entry back exactly, and stores a record in well under half its bytes", () => {
    roundTrip(first, EMPTY_DICTIONARY);
    assert.equal(dictionary.values.length, 7);
    let raw = 0;
    let stored = 0;
    for (let i = 0; i < 200; i++) {
      const bytes = record(authorKey, validatorKey);
      raw += bytes.length;
      stored += roundTrip(bytes, dictionary).length;
    }
    // The random values alone are about 40% of the text: what is left of the rest is a few dozen bytes.
    assert.ok(stored / raw < 0.45, `stored ${stored} of ${raw} bytes`);
    // Without the genesis the org keys are not references: still a round trip, 64 bytes more.
    const bytes = record(authorKey, validatorKey);
    assert.ok(roundTrip(bytes, EMPTY_DICTIONARY).length > roundTrip(bytes, dictionary).length + 50);
  });

  it("gives back any JSON text, any string content and any bytes (property)", () => {
    const strings = fc.oneof(
      fc.string(),
      fc.string({ unit: "grapheme" }),
      fc.stringMatching(/^[0-9a-f]{0,80}$/),
      fc.stringMatching(/^[0-9a-fA-F]{10,40}$/),
      fc.stringMatching(/^[A-Za-z0-9+/]{12,40}={0,2}$/),
      fc.uint8Array({ minLength: 8, maxLength: 90 }).map((b) => Buffer.from(b).toString("base64")),
      fc.uint8Array({ minLength: 8, maxLength: 40 }).map((b) => `x:${Buffer.from(b).toString("hex")}9`),
    );
    const json = fc.oneof(
      fc.json(),
      fc.array(strings).map((list) => JSON.stringify(list)),
      fc.dictionary(strings, strings).map((o) => JSON.stringify(o)),
    );
    fc.assert(
      fc.property(json, (s) => {
        const bytes = text(s);
        if (bytes.length > 0) roundTrip(bytes, dictionary);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), (bytes) => {
        roundTrip(bytes, dictionary);
      }),
      { numRuns: 1000 },
    );
    // Shapes at the edges of the rules: escapes, odd runs, padding, unterminated strings, control bytes.
    for (const s of [
      '"\\"' + "ab".repeat(20) + '\\\\"',
      '"\\u00ab' + "cd".repeat(12) + '"',
      `"${"a".repeat(17)}"`,
      `"${b64(10).replace(/=+$/, "")}"`,
      `"${"A".repeat(15)}B=="`,
      `"${b64(20)}`,
      `{"a":"${hex(20)}\n"}`,
      `"${"0".repeat(64)}","${"0".repeat(64)}"`,
      `"${b64(64)}","${b64(64)}"`,
      "1234567890123456",
      "\u00e9\u{1f600}",
    ]) {
      roundTrip(text(s), dictionary);
      roundTrip(text(s), EMPTY_DICTIONARY);
    }
  });

  it("refuses every single changed byte of a stored value with STORE_CORRUPT (its CRC-32)", () => {
    for (const stored of [
      encodeEntryBytes(record(authorKey, validatorKey), dictionary),
      encodeEntryBytes(text("not json"), dictionary),
      encodeEntryBytes(first, EMPTY_DICTIONARY),
    ]) {
      for (let at = 0; at < stored.length; at++) {
        for (const mask of [0x01, 0x80, 0xff, 1 + (at % 255)]) {
          const changed = stored.slice();
          changed[at] = changed[at]! ^ mask;
          assert.equal(decodeOrCorrupt(changed, dictionary), "corrupt", `byte ${at} ^ ${mask}`);
        }
      }
      // Cut short or extended.
      assert.equal(decodeOrCorrupt(stored.subarray(0, stored.length - 1), dictionary), "corrupt");
      assert.equal(decodeOrCorrupt(Uint8Array.of(...stored, 0), dictionary), "corrupt");
      assert.equal(decodeOrCorrupt(stored.subarray(0, 5), dictionary), "corrupt");
    }
  });

  it("behind a valid CRC, any body decodes or is STORE_CORRUPT, never another error (property)", () => {
    const valid = encodeEntryBytes(record(authorKey, validatorKey), dictionary);
    const body = valid.subarray(5);
    fc.assert(
      fc.property(
        fc.constantFrom(0, 1, 2, 255),
        fc.oneof(
          fc.uint8Array({ maxLength: 600 }),
          // Mutations of a real body: deeper into the decoder than random bytes get.
          fc
            .array(fc.tuple(fc.nat(body.length - 1), fc.integer({ min: 1, max: 255 })), {
              minLength: 1,
              maxLength: 4,
            })
            .map((changes) => {
              const b = body.slice();
              for (const [at, mask] of changes) b[at] = b[at]! ^ mask;
              return b;
            }),
        ),
        (format, b) => {
          decodeOrCorrupt(withCrc(format, b), dictionary);
          decodeOrCorrupt(withCrc(format, b), EMPTY_DICTIONARY);
        },
      ),
      { numRuns: 3000 },
    );
    // Against another dictionary (a store whose submission 0 changed, which the audit reports there), a
    // value refers to other values: it is refused or comes out different, never as the entry.
    const original = decodeEntryBytes(valid, dictionary);
    assert.notDeepEqual(decodeOrCorrupt(valid, EMPTY_DICTIONARY), original);
  });
});
