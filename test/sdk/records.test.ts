/**
 * Record encryption (docs/records.md sections 1 to 3) on both crypto suites and across them: a record with
 * chunked attachments round-trips, and every tampering is refused: a chunk reordered, moved to another
 * attachment, dropped from the end or changed; the payload moved to another record, patient, author or
 * month (AAD swap); an envelope opened as another reader or for another record. Then the validator's checks
 * of a payload, and a fast-check round trip over random payloads.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { CryptoSuite } from "../../src/core/crypto/suite.ts";
import { isWellFormedString } from "../../src/core/encoding/jcs.ts";
import { isLedgerError, type ErrorCode } from "../../src/core/errors.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { webCrypto } from "../../src/platform/web-crypto.ts";
import {
  ATTACHMENT_CHUNK_BYTES,
  checkRecordPayload,
  chunkCount,
  decryptAttachment,
  decryptPayload,
  encryptRecord,
  openChunk,
  recordAad,
  unwrapKey,
  wrapKeyFor,
  type RecordContent,
  type RecordHeader,
  type RecordPayload,
} from "../../src/sdk/index.ts";

const SUITES: readonly CryptoSuite[] = [nodeCrypto, webCrypto];

const HEADER: RecordHeader = {
  patient: "a1".repeat(16),
  record: "b2".repeat(16),
  author: "imaging",
  month: "2026-10",
};

function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const IMAGE = bytes(2 * ATTACHMENT_CHUNK_BYTES + 12_345, 7);
const REPORT = bytes(3000, 11);

const CONTENT: RecordContent = {
  type: "image",
  sensitivity: "normal",
  date: "2026-10-14",
  title: "Chest X-ray",
  resource: {
    resourceType: "ImagingStudy",
    status: "available",
    subject: { reference: `Patient/${HEADER.patient}` },
  },
  attachments: [
    { name: "chest.dcm", contentType: "application/dicom", bytes: IMAGE },
    { name: "empty.txt", contentType: "text/plain", bytes: new Uint8Array(0) },
    { name: "report.pdf", contentType: "application/pdf", bytes: REPORT },
  ],
};

function refusedWith(code: ErrorCode): (err: unknown) => boolean {
  return (err) => {
    assert.ok(isLedgerError(err), `expected a LedgerError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

for (const suite of SUITES) {
  describe(`record encryption (${suite.name} suite)`, () => {
    it("round-trips a record with chunked attachments, and its key through an envelope", async () => {
      const encrypted = await encryptRecord(suite, HEADER, CONTENT);
      assert.deepEqual(
        encrypted.chunks.map((c) => c.length),
        [3, 0, 1],
      );
      assert.equal(encrypted.blobs.length, 4);
      assert.deepEqual(
        encrypted.blobs.map((b) => b.hash),
        [...encrypted.blobs.map((b) => b.hash)].sort(),
      );
      assert.equal(encrypted.payload.attachments[0]!.size, IMAGE.length);
      const patient = await suite.x25519Generate();
      const [env] = await wrapKeyFor(
        suite,
        [{ to: `patient:${HEADER.patient}`, publicKey: patient.publicKey }],
        encrypted.dataKey,
        encrypted.aad,
      );
      const key = await unwrapKey(suite, `patient:${HEADER.patient}`, patient, env!.env, recordAad(HEADER));
      const payload = await decryptPayload(suite, key, HEADER, encrypted.ciphertext);
      assert.deepEqual(payload, encrypted.payload);
      for (const [i, meta] of payload.attachments.entries()) {
        const plain = await decryptAttachment(suite, key, encrypted.aad, i, meta, encrypted.chunks[i]!);
        assert.deepEqual(plain, CONTENT.attachments![i]!.bytes);
      }
    });

    it("refuses a reordered, moved, truncated or changed chunk", async () => {
      const e = await encryptRecord(suite, HEADER, CONTENT);
      const [c0, c1, c2] = e.chunks[0] as [Uint8Array, Uint8Array, Uint8Array];
      const meta = e.payload.attachments[0]!;
      // Through the payload's list: the hashes no longer match.
      await assert.rejects(
        decryptAttachment(suite, e.dataKey, e.aad, 0, meta, [c1, c0, c2]),
        refusedWith("DECRYPTION_FAILED"),
      );
      await assert.rejects(
        decryptAttachment(suite, e.dataKey, e.aad, 0, meta, [c0, c1]),
        refusedWith("DECRYPTION_FAILED"),
      );
      // Under the AEAD alone: a chunk opened at another place, of another count or attachment, fails.
      await assert.rejects(openChunk(suite, e.dataKey, e.aad, 0, 0, 3, c1), refusedWith("DECRYPTION_FAILED"));
      await assert.rejects(openChunk(suite, e.dataKey, e.aad, 0, 1, 2, c1), refusedWith("DECRYPTION_FAILED"));
      await assert.rejects(openChunk(suite, e.dataKey, e.aad, 2, 0, 1, c0), refusedWith("DECRYPTION_FAILED"));
      // The last chunk claimed as the end of a truncated file (n - 1 chunks) fails too.
      await assert.rejects(openChunk(suite, e.dataKey, e.aad, 0, 1, 2, c1), refusedWith("DECRYPTION_FAILED"));
      // A changed byte.
      const changed = c2.slice();
      changed[20]! ^= 1;
      await assert.rejects(
        openChunk(suite, e.dataKey, e.aad, 0, 2, 3, changed),
        refusedWith("DECRYPTION_FAILED"),
      );
      // The honest chunk at its place opens.
      assert.equal(
        (await openChunk(suite, e.dataKey, e.aad, 0, 2, 3, c2)).length,
        IMAGE.length % ATTACHMENT_CHUNK_BYTES,
      );
    });

    it("refuses the payload under another header (AAD swap) or changed", async () => {
      const e = await encryptRecord(suite, HEADER, { ...CONTENT, attachments: [] });
      for (const other of [
        { ...HEADER, record: "c3".repeat(16) },
        { ...HEADER, patient: "d4".repeat(16) },
        { ...HEADER, author: "hospital" },
        { ...HEADER, month: "2026-09" },
      ]) {
        await assert.rejects(
          decryptPayload(suite, e.dataKey, other, e.ciphertext),
          refusedWith("DECRYPTION_FAILED"),
        );
      }
      const changed = e.ciphertext.slice();
      changed[changed.length - 1]! ^= 0x80;
      await assert.rejects(
        decryptPayload(suite, e.dataKey, HEADER, changed),
        refusedWith("DECRYPTION_FAILED"),
      );
      await assert.rejects(
        decryptPayload(suite, e.dataKey, HEADER, e.ciphertext.subarray(0, 20)),
        refusedWith("DECRYPTION_FAILED"),
      );
      await assert.rejects(
        decryptPayload(suite, suite.randomBytes(32), HEADER, e.ciphertext),
        refusedWith("DECRYPTION_FAILED"),
      );
    });

    it("refuses an envelope opened as another reader or for another record", async () => {
      const e = await encryptRecord(suite, HEADER, { ...CONTENT, attachments: [] });
      const org = await suite.x25519Generate();
      const [env] = await wrapKeyFor(suite, [{ to: "org:lab", publicKey: org.publicKey }], e.dataKey, e.aad);
      await assert.rejects(
        unwrapKey(suite, "org:clinic", org, env!.env, e.aad),
        refusedWith("DECRYPTION_FAILED"),
      );
      await assert.rejects(
        unwrapKey(suite, "org:lab", org, env!.env, recordAad({ ...HEADER, record: "c3".repeat(16) })),
        refusedWith("DECRYPTION_FAILED"),
      );
      await assert.rejects(
        unwrapKey(suite, "org:lab", await suite.x25519Generate(), env!.env, e.aad),
        refusedWith("DECRYPTION_FAILED"),
      );
      await assert.rejects(unwrapKey(suite, "org:lab", org, "AAAA", e.aad), refusedWith("DECRYPTION_FAILED"));
    });

    it("refuses to write a record whose date is outside the entry's month, or bad content", async () => {
      await assert.rejects(
        encryptRecord(suite, HEADER, { ...CONTENT, date: "2026-09-30" }),
        refusedWith("INVALID_ARGUMENT"),
      );
      await assert.rejects(
        encryptRecord(suite, HEADER, { ...CONTENT, title: "" }),
        refusedWith("INVALID_ARGUMENT"),
      );
      await assert.rejects(
        encryptRecord(suite, HEADER, { ...CONTENT, title: "x".repeat(201) }),
        refusedWith("INVALID_ARGUMENT"),
      );
      const many = Array.from({ length: 17 }, (_, i) => ({
        name: `f${i}`,
        contentType: "text/plain",
        bytes: REPORT,
      }));
      await assert.rejects(
        encryptRecord(suite, HEADER, { ...CONTENT, attachments: many }),
        refusedWith("INVALID_ARGUMENT"),
      );
      await assert.rejects(
        encryptRecord(suite, HEADER, {
          ...CONTENT,
          attachments: [{ name: "a\nb", contentType: "text/plain", bytes: REPORT }],
        }),
        refusedWith("INVALID_ARGUMENT"),
      );
    });
  });
}

describe("record encryption across suites", () => {
  it("what the node suite encrypts the web suite decrypts, and the reverse", async () => {
    for (const [a, b] of [
      [nodeCrypto, webCrypto],
      [webCrypto, nodeCrypto],
    ] as const) {
      const e = await encryptRecord(a, HEADER, CONTENT);
      const reader = await b.x25519Generate();
      const [env] = await wrapKeyFor(a, [{ to: "org:lab", publicKey: reader.publicKey }], e.dataKey, e.aad);
      const key = await unwrapKey(b, "org:lab", reader, env!.env, e.aad);
      assert.deepEqual(await decryptPayload(b, key, HEADER, e.ciphertext), e.payload);
      const image = await decryptAttachment(b, key, e.aad, 0, e.payload.attachments[0]!, e.chunks[0]!);
      assert.deepEqual(image, IMAGE);
    }
  });

  it("round-trips random payloads and small attachments (fast-check)", async () => {
    const json = fc.jsonValue({ maxDepth: 3 }).filter((v) => {
      try {
        JSON.stringify(v);
        return true;
      } catch {
        return false;
      }
    });
    await fc.assert(
      fc.asyncProperty(
        fc.string({ minLength: 1, maxLength: 200 }).filter((s) => isWellFormedString(s)),
        fc.dictionary(fc.string({ maxLength: 8 }), json, { maxKeys: 4 }),
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 3 }),
        fc.constantFrom(...SUITES),
        async (title, extra, files, suite) => {
          const resource = { ...extra, resourceType: "Observation" };
          let content: RecordContent;
          try {
            content = {
              type: "laboratory-result",
              sensitivity: "hiv",
              date: "2026-10-01",
              title,
              resource: JSON.parse(JSON.stringify(resource)) as Record<string, unknown>,
              attachments: files.map((f, i) => ({
                name: `file-${i}`,
                contentType: "application/octet-stream",
                bytes: f,
              })),
            };
          } catch {
            return;
          }
          let e;
          try {
            e = await encryptRecord(suite, HEADER, content);
          } catch (err) {
            // Numbers outside I-JSON (-0 aside, JCS refuses nothing JSON.parse gives) are the only refusal.
            assert.ok(isLedgerError(err));
            return;
          }
          const payload = await decryptPayload(suite, e.dataKey, HEADER, e.ciphertext);
          assert.deepEqual(payload, e.payload);
          for (const [i, meta] of payload.attachments.entries()) {
            assert.equal(meta.chunks.length, chunkCount(files[i]!.length));
            assert.deepEqual(
              await decryptAttachment(suite, e.dataKey, e.aad, i, meta, e.chunks[i]!),
              files[i],
            );
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe("the validator's checks of a payload", () => {
  const base: RecordPayload = {
    v: 1,
    type: "laboratory-result",
    sensitivity: "normal",
    date: "2026-10-14",
    title: "HbA1c",
    resource: { resourceType: "Observation", subject: { reference: `Patient/${HEADER.patient}` } },
    attachments: [],
  };
  const context = {
    patient: HEADER.patient,
    month: "2026-10",
    withheldFromPatient: false,
    today: "2026-11-25",
  };
  const reasons = (p: RecordPayload, c = context): string[] => checkRecordPayload(p, c).map((f) => f.reason);

  it("passes a sound payload", () => {
    assert.deepEqual(reasons(base), []);
    assert.deepEqual(reasons({ ...base, resource: { resourceType: "DiagnosticReport" } }), []);
  });
  it("FHIR_INVALID: no resourceType, a malformed one, or one that does not fit the record type", () => {
    assert.deepEqual(reasons({ ...base, resource: {} }), ["FHIR_INVALID"]);
    assert.deepEqual(reasons({ ...base, resource: { resourceType: "observation" } }), ["FHIR_INVALID"]);
    assert.deepEqual(reasons({ ...base, resource: { resourceType: "MedicationRequest" } }), ["FHIR_INVALID"]);
    assert.deepEqual(reasons({ ...base, type: "image" }), ["FHIR_INVALID"]);
    assert.deepEqual(reasons({ ...base, resource: { resourceType: "Observation", subject: "x" } }), [
      "FHIR_INVALID",
    ]);
  });
  it("PATIENT_MISMATCH: a reference to another patient, or to two", () => {
    assert.deepEqual(
      reasons({
        ...base,
        resource: { resourceType: "Observation", subject: { reference: "Patient/other" } },
      }),
      ["PATIENT_MISMATCH"],
    );
    assert.deepEqual(
      reasons({
        ...base,
        resource: {
          resourceType: "Observation",
          subject: { reference: "urn:uuid:1" },
          patient: { reference: "urn:uuid:2" },
        },
      }),
      ["PATIENT_MISMATCH"],
    );
    // A reference the validator cannot map (an org's own id scheme) is not a mismatch by itself.
    assert.deepEqual(
      reasons({ ...base, resource: { resourceType: "Observation", subject: { reference: "urn:uuid:1" } } }),
      [],
    );
  });
  it("DATE_IMPLAUSIBLE: in the future, or outside the entry's month", () => {
    assert.deepEqual(reasons(base, { ...context, today: "2026-10-13" }), ["DATE_IMPLAUSIBLE"]);
    assert.deepEqual(reasons(base, { ...context, month: "2026-09" }), ["DATE_IMPLAUSIBLE"]);
  });
  it("OTHER: a psychotherapy note not withheld, or a withheld record that is not one", () => {
    assert.deepEqual(reasons({ ...base, type: "clinical-note", sensitivity: "psychotherapy-note" }), [
      "OTHER",
    ]);
    assert.deepEqual(reasons(base, { ...context, withheldFromPatient: true }), ["OTHER"]);
  });
});
