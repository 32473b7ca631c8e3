/**
 * HPKE (RFC 9180) base mode and the key envelope, on every CryptoSuite: the RFC's appendix A vectors,
 * interoperability both ways with an independent implementation (@hpke/core), envelope round trips and
 * refusals, and a property test.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Aes128Gcm, Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/core";
import { Chacha20Poly1305 } from "@hpke/chacha20poly1305";
import {
  AEAD_AES_128_GCM,
  AEAD_AES_256_GCM,
  AEAD_CHACHA20_POLY1305,
  Hpke,
  type HpkeAeadId,
} from "../../src/core/crypto/hpke.ts";
import {
  KEY_ENVELOPE_V1_LENGTH,
  decodeEnvelope,
  encodeEnvelope,
  envelopeFromJson,
  envelopeToJson,
  openEnvelope,
  sealEnvelope,
  type KeyEnvelope,
} from "../../src/core/crypto/envelope.ts";
import type { CryptoSuite } from "../../src/core/crypto/suite.ts";
import { isLedgerError, type ErrorCode } from "../../src/core/errors.ts";
import { fromHex, toHex, utf8 } from "../../src/core/encoding/bytes.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { webCrypto } from "../../src/platform/web-crypto.ts";

const SUITES: readonly CryptoSuite[] = [nodeCrypto, webCrypto];

interface Vector {
  name: string;
  mode: number;
  kem_id: number;
  kdf_id: number;
  aead_id: HpkeAeadId;
  info: string;
  ikmE: string;
  pkEm: string;
  skEm: string;
  ikmR: string;
  pkRm: string;
  skRm: string;
  enc: string;
  shared_secret: string;
  key_schedule_context: string;
  secret: string;
  key: string;
  base_nonce: string;
  exporter_secret: string;
  encryptions: { seq: number; pt: string; aad: string; nonce: string; ct: string }[];
  exports?: { exporter_context: string; L: number; exported_value: string }[];
}

const VECTORS = (
  JSON.parse(readFileSync(new URL("../vectors/hpke/rfc9180-x25519-base.json", import.meta.url), "utf8")) as {
    vectors: Vector[];
  }
).vectors;

/**
 * The exported values of RFC 9180 appendices A.1.1.2 and A.2.1.2, which the vector file does not carry
 * (exporter contexts "", 0x00 and "TestContext", L = 32).
 */
const RFC_EXPORTS: Partial<
  Record<HpkeAeadId, { exporter_context: string; L: number; exported_value: string }[]>
> = {
  [AEAD_AES_128_GCM]: [
    {
      exporter_context: "",
      L: 32,
      exported_value: "3853fe2b4035195a573ffc53856e77058e15d9ea064de3e59f4961d0095250ee",
    },
    {
      exporter_context: "00",
      L: 32,
      exported_value: "2e8f0b54673c7029649d4eb9d5e33bf1872cf76d623ff164ac185da9e88c21a5",
    },
    {
      exporter_context: "54657374436f6e74657874",
      L: 32,
      exported_value: "e9e43065102c3836401bed8c3c3c75ae46be1639869391d62c61f1ec7af54931",
    },
  ],
  [AEAD_CHACHA20_POLY1305]: [
    {
      exporter_context: "",
      L: 32,
      exported_value: "4bbd6243b8bb54cec311fac9df81841b6fd61f56538a775e7c80a9f40160606e",
    },
    {
      exporter_context: "00",
      L: 32,
      exported_value: "8c1df14732580e5501b00f82b10a1647b40713191b7c1240ac80e2b68808ba69",
    },
    {
      exporter_context: "54657374436f6e74657874",
      L: 32,
      exported_value: "5acb09211139c43b3090489a9da433e8a30ee7188ba8b0a9a1ccf0c229283e53",
    },
  ],
};

async function rejectsWith(
  promise: Promise<unknown> | (() => unknown),
  ...codes: ErrorCode[]
): Promise<void> {
  const run = typeof promise === "function" ? async () => promise() : () => promise;
  await assert.rejects(run, (err: unknown) => {
    assert.ok(
      codes.some((code) => isLedgerError(err, code)),
      `expected LedgerError ${codes.join(" or ")}, got ${String(err)}`,
    );
    return true;
  });
}

function flip(bytes: Uint8Array, index: number): Uint8Array {
  const out = bytes.slice();
  out[index]! ^= 0x01;
  return out;
}

/** base_nonce XOR I2OSP(seq, Nn) (RFC 9180 section 5.2), computed independently of the code under test. */
function xorNonce(baseNonce: Uint8Array, seq: number): string {
  const out = baseNonce.slice();
  let s = BigInt(seq);
  for (let i = out.length - 1; i >= 0 && s > 0n; i--, s >>= 8n) out[i]! ^= Number(s & 0xffn);
  return toHex(out);
}

function theirSuite(aeadId: HpkeAeadId): CipherSuite {
  const aead =
    aeadId === AEAD_AES_128_GCM
      ? new Aes128Gcm()
      : aeadId === AEAD_AES_256_GCM
        ? new Aes256Gcm()
        : new Chacha20Poly1305();
  return new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead });
}

const bytes = (buffer: ArrayBuffer): Uint8Array => new Uint8Array(buffer);
const AEAD_IDS: readonly HpkeAeadId[] = [AEAD_AES_128_GCM, AEAD_AES_256_GCM, AEAD_CHACHA20_POLY1305];

for (const crypto of SUITES) {
  describe(`HPKE on ${crypto.name}`, () => {
    for (const v of VECTORS) {
      describe(`RFC 9180 appendix A: ${v.name}`, () => {
        const hpke = new Hpke(crypto, v.aead_id);
        const info = fromHex(v.info);

        it("is the suite the vector names", () => {
          assert.deepEqual([v.mode, v.kem_id, v.kdf_id], [0, 0x0020, 0x0001]);
          assert.equal(
            toHex(hpke.suiteId),
            "48504b45" + "0020" + "0001" + v.aead_id.toString(16).padStart(4, "0"),
          );
        });

        it("DeriveKeyPair (section 7.1.3) gives skEm, pkEm, skRm, pkRm", async () => {
          const e = await hpke.deriveKeyPair(fromHex(v.ikmE));
          const r = await hpke.deriveKeyPair(fromHex(v.ikmR));
          assert.equal(toHex(e.secretKey), v.skEm);
          assert.equal(toHex(e.publicKey), v.pkEm);
          assert.equal(toHex(r.secretKey), v.skRm);
          assert.equal(toHex(r.publicKey), v.pkRm);
        });

        it("Encap and Decap (section 4.1) give enc and shared_secret", async () => {
          const ephemeral = { secretKey: fromHex(v.skEm), publicKey: fromHex(v.pkEm) };
          const { enc, sharedSecret } = await hpke.encap(fromHex(v.pkRm), { ephemeral });
          assert.equal(toHex(enc), v.enc);
          assert.equal(toHex(sharedSecret), v.shared_secret);
          assert.equal(toHex(await hpke.decap(fromHex(v.enc), fromHex(v.skRm))), v.shared_secret);
          const pair = { secretKey: fromHex(v.skRm), publicKey: fromHex(v.pkRm) };
          assert.equal(toHex(await hpke.decap(fromHex(v.enc), pair)), v.shared_secret);
        });

        it("KeySchedule (section 5.1) gives key, base_nonce, exporter_secret", async () => {
          const schedule = await hpke.keySchedule(fromHex(v.shared_secret), info);
          assert.equal(toHex(schedule.key), v.key);
          assert.equal(toHex(schedule.baseNonce), v.base_nonce);
          assert.equal(toHex(schedule.context), v.key_schedule_context);
          assert.equal(toHex(schedule.secret), v.secret);
          assert.equal(toHex(await schedule.exporterSecret()), v.exporter_secret);
        });

        it("every encryption, in sequence order, sealed and opened (section 5.2)", async () => {
          const ephemeral = { secretKey: fromHex(v.skEm), publicKey: fromHex(v.pkEm) };
          const { enc, context: sender } = await hpke.setupBaseS(fromHex(v.pkRm), info, { ephemeral });
          assert.equal(toHex(enc), v.enc);
          assert.equal(toHex(sender.key), v.key);
          assert.equal(toHex(sender.baseNonce), v.base_nonce);
          const recipient = await hpke.setupBaseR(enc, fromHex(v.skRm), info);
          const listed = new Map(v.encryptions.map((e) => [e.seq, e]));
          const last = Math.max(...listed.keys());
          for (let seq = 0; seq <= last; seq++) {
            const e = listed.get(seq);
            // Sequence numbers the vector skips are spent on empty messages, as the RFC's generator did.
            const aad = e ? fromHex(e.aad) : new Uint8Array(0);
            const pt = e ? fromHex(e.pt) : new Uint8Array(0);
            const ct = await sender.seal(aad, pt);
            if (e) {
              assert.equal(xorNonce(fromHex(v.base_nonce), seq), e.nonce, `nonce ${seq}`);
              assert.equal(toHex(ct), e.ct, `ciphertext ${seq}`);
            }
            assert.deepEqual(await recipient.open(aad, ct), pt);
          }
        });

        it("exports (section 5.3) match the RFC's exported values", async () => {
          const exports = v.exports ?? RFC_EXPORTS[v.aead_id] ?? [];
          assert.ok(exports.length > 0);
          const ephemeral = { secretKey: fromHex(v.skEm), publicKey: fromHex(v.pkEm) };
          const { context: sender } = await hpke.setupBaseS(fromHex(v.pkRm), info, { ephemeral });
          const recipient = await hpke.setupBaseR(fromHex(v.enc), fromHex(v.skRm), info);
          for (const x of exports) {
            assert.equal(toHex(await sender.export(fromHex(x.exporter_context), x.L)), x.exported_value);
            assert.equal(toHex(await recipient.export(fromHex(x.exporter_context), x.L)), x.exported_value);
          }
        });

        it("single-shot seal and open (section 6.1)", async () => {
          const e = v.encryptions[0]!;
          const ephemeral = { secretKey: fromHex(v.skEm), publicKey: fromHex(v.pkEm) };
          const sealed = await hpke.seal(fromHex(v.pkRm), info, fromHex(e.aad), fromHex(e.pt), { ephemeral });
          assert.equal(toHex(sealed.enc), v.enc);
          assert.equal(toHex(sealed.ct), e.ct);
          assert.equal(
            toHex(await hpke.open(fromHex(v.enc), fromHex(v.skRm), info, fromHex(e.aad), fromHex(e.ct))),
            e.pt,
          );
        });
      });
    }

    describe("contexts", () => {
      it("a failed open does not advance the recipient's sequence number", async () => {
        const hpke = new Hpke(crypto, AEAD_AES_256_GCM);
        const r = await hpke.generateKeyPair();
        const { enc, context: sender } = await hpke.setupBaseS(r.publicKey, utf8("info"));
        const recipient = await hpke.setupBaseR(enc, r, utf8("info"));
        const ct0 = await sender.seal(utf8("a"), utf8("zero"));
        const ct1 = await sender.seal(utf8("a"), utf8("one"));
        await rejectsWith(recipient.open(utf8("a"), ct1), "DECRYPTION_FAILED");
        await rejectsWith(recipient.open(utf8("b"), ct0), "DECRYPTION_FAILED");
        assert.deepEqual(await recipient.open(utf8("a"), ct0), utf8("zero"));
        assert.deepEqual(await recipient.open(utf8("a"), ct1), utf8("one"));
      });

      it("refuses bad keys, a small-order enc, short ikm and an unknown AEAD id", async () => {
        const hpke = new Hpke(crypto, AEAD_AES_256_GCM);
        const r = await hpke.generateKeyPair();
        const info = new Uint8Array(0);
        await rejectsWith(hpke.setupBaseS(r.publicKey.subarray(1), info), "KEY_INVALID");
        await rejectsWith(hpke.setupBaseR(new Uint8Array(31), r.secretKey, info), "KEY_INVALID");
        await rejectsWith(hpke.setupBaseR(new Uint8Array(32), r.secretKey, info), "KEY_INVALID");
        await rejectsWith(hpke.setupBaseR(r.publicKey, r.secretKey.subarray(2), info), "KEY_INVALID");
        await rejectsWith(hpke.setupBaseS(new Uint8Array(32), info), "KEY_INVALID");
        await rejectsWith(hpke.deriveKeyPair(new Uint8Array(16)), "INVALID_ARGUMENT");
        await rejectsWith(hpke.setupBaseS(r.publicKey, new Uint8Array(64 * 1024 + 1)), "TOO_LARGE");
        await rejectsWith(() => new Hpke(crypto, 0x0004 as HpkeAeadId), "UNSUPPORTED_ALGORITHM");
      });
    });

    describe("interoperability with @hpke/core", () => {
      for (const aeadId of AEAD_IDS) {
        const theirs = theirSuite(aeadId);
        const ours = new Hpke(crypto, aeadId);

        it(`AEAD ${aeadId}: we seal, they open (single-shot and a three-message context, exports)`, async () => {
          const r = await ours.generateKeyPair();
          const recipientKey = await theirs.kem.importKey("raw", r.secretKey.slice().buffer, false);
          const info = utf8("medledger interop");
          const single = await ours.seal(r.publicKey, info, utf8("aad"), utf8("one message"));
          const opened = await theirs.open(
            { recipientKey, enc: single.enc.slice().buffer, info },
            single.ct,
            utf8("aad"),
          );
          assert.deepEqual(bytes(opened), utf8("one message"));

          const { enc, context } = await ours.setupBaseS(r.publicKey, info);
          const recipient = await theirs.createRecipientContext({
            recipientKey,
            enc: enc.slice().buffer,
            info,
          });
          for (const text of ["first", "second", "third"]) {
            const ct = await context.seal(utf8(text), utf8(text.toUpperCase()));
            assert.deepEqual(bytes(await recipient.open(ct, utf8(text))), utf8(text.toUpperCase()));
          }
          assert.deepEqual(
            await context.export(utf8("ctx"), 42),
            bytes(await recipient.export(utf8("ctx"), 42)),
          );
        });

        it(`AEAD ${aeadId}: they seal, we open (single-shot and a three-message context)`, async () => {
          const pair = await theirs.kem.generateKeyPair();
          const secretKey = bytes(await theirs.kem.serializePrivateKey(pair.privateKey));
          const publicKey = bytes(await theirs.kem.serializePublicKey(pair.publicKey));
          assert.deepEqual(await crypto.x25519PublicKey(secretKey), publicKey);
          const info = utf8("medledger interop");
          const single = await theirs.seal(
            { recipientPublicKey: pair.publicKey, info },
            utf8("one message"),
            utf8("aad"),
          );
          const opened = await ours.open(bytes(single.enc), secretKey, info, utf8("aad"), bytes(single.ct));
          assert.deepEqual(opened, utf8("one message"));

          const sender = await theirs.createSenderContext({ recipientPublicKey: pair.publicKey, info });
          const context = await ours.setupBaseR(bytes(sender.enc), { secretKey, publicKey }, info);
          for (const text of ["first", "second", "third"]) {
            const ct = bytes(await sender.seal(utf8(text.toUpperCase()), utf8(text)));
            assert.deepEqual(await context.open(utf8(text), ct), utf8(text.toUpperCase()));
          }
          assert.deepEqual(
            await context.export(utf8("ctx"), 42),
            bytes(await sender.export(utf8("ctx"), 42)),
          );
        });
      }

      it("a key envelope opens with @hpke/core given the envelope's info, and theirs opens as an envelope", async () => {
        const theirs = theirSuite(AEAD_AES_256_GCM);
        const r = await crypto.x25519Generate();
        const dataKey = crypto.randomBytes(32);
        const binding = { info: utf8("record 7 for org 3"), aad: utf8("entry header") };
        const envelope = await sealEnvelope(crypto, r.publicKey, dataKey, binding);
        const info = new Uint8Array([...utf8("medledger/key-envelope/v1"), 0, ...binding.info]);
        const recipientKey = await theirs.kem.importKey("raw", r.secretKey.slice().buffer, false);
        const opened = await theirs.open(
          { recipientKey, enc: envelope.enc.slice().buffer, info },
          envelope.ct,
          binding.aad,
        );
        assert.deepEqual(bytes(opened), dataKey);

        const recipientPublicKey = await theirs.kem.deserializePublicKey(r.publicKey);
        const sealed = await theirs.seal({ recipientPublicKey, info }, dataKey, binding.aad);
        const theirEnvelope: KeyEnvelope = {
          v: 1,
          suite: "X25519-HKDF-SHA256-AES-256-GCM",
          enc: bytes(sealed.enc),
          ct: bytes(sealed.ct),
        };
        assert.deepEqual(await openEnvelope(crypto, r.secretKey, theirEnvelope, binding), dataKey);
      });
    });

    describe("key envelopes", () => {
      it("round trip, in object, binary and JSON form", async () => {
        const r = await crypto.x25519Generate();
        const dataKey = crypto.randomBytes(32);
        const binding = { info: utf8("grant 12"), aad: utf8("record header") };
        const envelope = await sealEnvelope(crypto, r.publicKey, dataKey, binding);
        assert.equal(envelope.v, 1);
        assert.equal(envelope.suite, "X25519-HKDF-SHA256-AES-256-GCM");
        assert.equal(envelope.enc.length, 32);
        assert.equal(envelope.ct.length, 48);
        const encoded = encodeEnvelope(envelope);
        assert.equal(encoded.length, KEY_ENVELOPE_V1_LENGTH);
        assert.equal(toHex(encoded.subarray(0, 7)), "01002000010002");
        assert.deepEqual(decodeEnvelope(encoded), envelope);
        const json = envelopeToJson(envelope);
        assert.deepEqual(envelopeFromJson(JSON.parse(JSON.stringify(json))), envelope);
        assert.deepEqual(await openEnvelope(crypto, r.secretKey, envelope, binding), dataKey);
        assert.deepEqual(await openEnvelope(crypto, r, encoded, binding), dataKey);
      });

      it("each seal of the same key is different (fresh ephemeral key)", async () => {
        const r = await crypto.x25519Generate();
        const dataKey = crypto.randomBytes(32);
        const a = await sealEnvelope(crypto, r.publicKey, dataKey);
        const b = await sealEnvelope(crypto, r.publicKey, dataKey);
        assert.notDeepEqual(a.enc, b.enc);
        assert.notDeepEqual(a.ct, b.ct);
      });

      it("refuses a tampered enc or ct, another info or aad, and the wrong recipient", async () => {
        const r = await crypto.x25519Generate();
        const other = await crypto.x25519Generate();
        const binding = { info: utf8("i"), aad: utf8("a") };
        const envelope = await sealEnvelope(crypto, r.publicKey, crypto.randomBytes(32), binding);
        for (let i = 0; i < 32; i += 7) {
          await rejectsWith(
            openEnvelope(crypto, r.secretKey, { ...envelope, enc: flip(envelope.enc, i) }, binding),
            "DECRYPTION_FAILED",
            "KEY_INVALID",
          );
        }
        for (const i of [0, 20, 31, 32, 47]) {
          await rejectsWith(
            openEnvelope(crypto, r.secretKey, { ...envelope, ct: flip(envelope.ct, i) }, binding),
            "DECRYPTION_FAILED",
          );
        }
        await rejectsWith(
          openEnvelope(crypto, r.secretKey, envelope, { info: utf8("j"), aad: utf8("a") }),
          "DECRYPTION_FAILED",
        );
        await rejectsWith(
          openEnvelope(crypto, r.secretKey, envelope, { info: utf8("i"), aad: utf8("b") }),
          "DECRYPTION_FAILED",
        );
        await rejectsWith(
          openEnvelope(crypto, r.secretKey, envelope, { info: utf8("i") }),
          "DECRYPTION_FAILED",
        );
        await rejectsWith(openEnvelope(crypto, other.secretKey, envelope, binding), "DECRYPTION_FAILED");
        // A key pair whose public half is not the secret's gives another KEM context: refused.
        await rejectsWith(
          openEnvelope(crypto, { secretKey: r.secretKey, publicKey: other.publicKey }, envelope, binding),
          "DECRYPTION_FAILED",
        );
        await rejectsWith(
          openEnvelope(crypto, r.secretKey, { ...envelope, enc: new Uint8Array(32) }, binding),
          "KEY_INVALID",
        );
      });

      it("refuses unknown versions, other suites, bad lengths and wrong key lengths", async () => {
        const r = await crypto.x25519Generate();
        const envelope = await sealEnvelope(crypto, r.publicKey, crypto.randomBytes(32));
        const encoded = encodeEnvelope(envelope);
        const v2 = { ...envelope, v: 2 } as unknown as KeyEnvelope;
        await rejectsWith(openEnvelope(crypto, r.secretKey, v2), "UNSUPPORTED_VERSION");
        await rejectsWith(
          openEnvelope(crypto, r.secretKey, flip(encoded, 1).fill(2, 0, 1)),
          "UNSUPPORTED_VERSION",
        );
        await rejectsWith(
          openEnvelope(crypto, r.secretKey, encoded.slice().fill(0, 0, 1)),
          "UNSUPPORTED_VERSION",
        );
        await rejectsWith(() => decodeEnvelope(flip(encoded, 6)), "UNSUPPORTED_ALGORITHM");
        await rejectsWith(() => decodeEnvelope(encoded.subarray(0, 86)), "MALFORMED_INPUT");
        await rejectsWith(() => decodeEnvelope(new Uint8Array([...encoded, 0])), "MALFORMED_INPUT");
        await rejectsWith(() => decodeEnvelope(new Uint8Array(0)), "MALFORMED_INPUT");
        const otherSuite = {
          ...envelope,
          suite: "X25519-HKDF-SHA256-ChaCha20Poly1305",
        } as unknown as KeyEnvelope;
        await rejectsWith(openEnvelope(crypto, r.secretKey, otherSuite), "UNSUPPORTED_ALGORITHM");
        await rejectsWith(
          openEnvelope(crypto, r.secretKey, { ...envelope, ct: envelope.ct.subarray(1) }),
          "MALFORMED_INPUT",
        );
        await rejectsWith(
          openEnvelope(crypto, r.secretKey, { ...envelope, enc: envelope.enc.subarray(1) }),
          "MALFORMED_INPUT",
        );
        await rejectsWith(
          openEnvelope(crypto, r.secretKey, null as unknown as KeyEnvelope),
          "MALFORMED_INPUT",
        );
        await rejectsWith(
          () => envelopeFromJson({ ...envelopeToJson(envelope), extra: 1 }),
          "MALFORMED_INPUT",
        );
        await rejectsWith(
          () => envelopeFromJson({ ...envelopeToJson(envelope), v: 3 }),
          "UNSUPPORTED_VERSION",
        );
        await rejectsWith(
          () => envelopeFromJson({ ...envelopeToJson(envelope), enc: "%%%%" }),
          "MALFORMED_INPUT",
        );
        await rejectsWith(
          sealEnvelope(crypto, r.publicKey.subarray(1), crypto.randomBytes(32)),
          "KEY_INVALID",
        );
        await rejectsWith(sealEnvelope(crypto, r.publicKey, crypto.randomBytes(16)), "KEY_INVALID");
        await rejectsWith(openEnvelope(crypto, new Uint8Array(33), envelope), "KEY_INVALID");
        await rejectsWith(
          sealEnvelope(crypto, r.publicKey, crypto.randomBytes(32), { info: new Uint8Array(20000) }),
          "TOO_LARGE",
        );
      });

      it("property: open(seal(k)) is k for random data keys, infos and aads", async () => {
        const r = await crypto.x25519Generate();
        await fc.assert(
          fc.asyncProperty(
            fc.uint8Array({ minLength: 32, maxLength: 32 }),
            fc.uint8Array({ maxLength: 64 }),
            fc.uint8Array({ maxLength: 64 }),
            async (dataKey, info, aad) => {
              const envelope = await sealEnvelope(crypto, r.publicKey, dataKey, { info, aad });
              assert.deepEqual(
                await openEnvelope(crypto, r.secretKey, encodeEnvelope(envelope), { info, aad }),
                dataKey,
              );
            },
          ),
          { numRuns: 40 },
        );
      });
    });
  });
}

describe("key envelopes across implementations", () => {
  it("sealed with one suite, opened with the other, both ways", async () => {
    for (const [a, b] of [
      [nodeCrypto, webCrypto],
      [webCrypto, nodeCrypto],
    ] as const) {
      const r = await b.x25519Generate();
      const dataKey = a.randomBytes(32);
      const envelope = await sealEnvelope(a, r.publicKey, dataKey, { aad: utf8("h") });
      assert.deepEqual(await openEnvelope(b, r.secretKey, envelope, { aad: utf8("h") }), dataKey);
    }
  });
});
