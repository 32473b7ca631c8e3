/**
 * The CryptoSuite contract, run against every implementation (node:crypto and WebCrypto): published
 * vectors first (FIPS 180-4, RFC 4231, RFC 5869, RFC 8032, RFC 7748, the GCM specification, RFC 8439,
 * RFC 7914), then every refusal, then differential tests between the two implementations.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { AeadAlgorithm, CryptoSuite } from "../../src/core/crypto/suite.ts";
import { isLedgerError, type ErrorCode } from "../../src/core/errors.ts";
import { fromHex, toHex, utf8 } from "../../src/core/encoding/bytes.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { createWebCryptoSuite, webCrypto } from "../../src/platform/web-crypto.ts";
import ed25519Vectors from "../vectors/rfc8032/ed25519.json" with { type: "json" };

const SUITES: readonly CryptoSuite[] = [nodeCrypto, webCrypto];

async function rejectsWith(promise: Promise<unknown> | (() => unknown), code: ErrorCode): Promise<void> {
  const run = typeof promise === "function" ? async () => promise() : () => promise;
  await assert.rejects(run, (err: unknown) => {
    assert.ok(isLedgerError(err, code), `expected LedgerError ${code}, got ${String(err)}`);
    return true;
  });
}

/** RFC 8032 section 7.1: TEST 1, TEST 2, TEST 3 and TEST SHA(abc) (test/vectors/rfc8032). */
const ED25519_VECTORS = ed25519Vectors.vectors;

/** The Ed25519 group order L (RFC 8032 section 5.1). */
const ED25519_L = 2n ** 252n + 27742317777372353535851937790883648493n;

/** A signature with S replaced by S + L: same value mod L, but RFC 8032 section 5.1.7 requires S < L. */
function withNonCanonicalS(signature: Uint8Array): Uint8Array {
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(signature[i]!);
  s += ED25519_L;
  const out = signature.slice();
  for (let i = 32; i < 64; i++) {
    out[i] = Number(s & 0xffn);
    s >>= 8n;
  }
  return out;
}

/** RFC 7748 section 5.2 (two single scalar multiplications) and the first iteration of the loop test. */
const X25519_VECTORS = [
  {
    scalar: "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
    u: "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
    out: "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
  },
  {
    // The u-coordinate has its top bit set, which X25519 must ignore (section 5).
    scalar: "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
    u: "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
    out: "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
  },
  {
    scalar: "0900000000000000000000000000000000000000000000000000000000000000",
    u: "0900000000000000000000000000000000000000000000000000000000000000",
    out: "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079",
  },
];

/** RFC 7748 section 6.1: Alice and Bob. */
const ALICE_SECRET = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const ALICE_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const BOB_SECRET = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
const BOB_PUBLIC = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const ALICE_BOB_SHARED = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

/** u-coordinates whose X25519 result is zero for every scalar: points of small order and their aliases. */
const SMALL_ORDER_POINTS = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  // p and p + 1, the non-canonical encodings of 0 and 1 (section 5: reduced modulo p).
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

/** AEAD known answers: McGrew and Viega, "The Galois/Counter Mode of Operation", test cases; RFC 8439. */
const AEAD_VECTORS: ReadonlyArray<{
  name: string;
  algorithm: AeadAlgorithm;
  key: string;
  nonce: string;
  aad: string;
  plaintext: string;
  ciphertext: string;
}> = [
  {
    name: "GCM test case 2 (AES-128)",
    algorithm: "AES-128-GCM",
    key: "00000000000000000000000000000000",
    nonce: "000000000000000000000000",
    aad: "",
    plaintext: "00000000000000000000000000000000",
    ciphertext: "0388dace60b6a392f328c2b971b2fe78" + "ab6e47d42cec13bdf53a67b21257bddf",
  },
  {
    name: "GCM test case 4 (AES-128, with aad)",
    algorithm: "AES-128-GCM",
    key: "feffe9928665731c6d6a8f9467308308",
    nonce: "cafebabefacedbaddecaf888",
    aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
    plaintext:
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
    ciphertext:
      "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091" +
      "5bc94fbc3221a5db94fae95ae7121a47",
  },
  {
    name: "GCM test case 13 (AES-256, empty)",
    algorithm: "AES-256-GCM",
    key: "0000000000000000000000000000000000000000000000000000000000000000",
    nonce: "000000000000000000000000",
    aad: "",
    plaintext: "",
    ciphertext: "530f8afbc74536b9a963b4f1c4cb738b",
  },
  {
    name: "GCM test case 14 (AES-256)",
    algorithm: "AES-256-GCM",
    key: "0000000000000000000000000000000000000000000000000000000000000000",
    nonce: "000000000000000000000000",
    aad: "",
    plaintext: "00000000000000000000000000000000",
    ciphertext: "cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919",
  },
  {
    name: "GCM test case 15 (AES-256)",
    algorithm: "AES-256-GCM",
    key: "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
    nonce: "cafebabefacedbaddecaf888",
    aad: "",
    plaintext:
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
    ciphertext:
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad" +
      "b094dac5d93471bdec1a502270e3cc6c",
  },
  {
    name: "GCM test case 16 (AES-256, with aad)",
    algorithm: "AES-256-GCM",
    key: "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
    nonce: "cafebabefacedbaddecaf888",
    aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
    plaintext:
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
    ciphertext:
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662" +
      "76fc6ece0f4e1768cddf8853bb2d551b",
  },
  {
    name: "RFC 8439 section 2.8.2",
    algorithm: "ChaCha20-Poly1305",
    key: "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
    nonce: "070000004041424344454647",
    aad: "50515253c0c1c2c3c4c5c6c7",
    plaintext: toHex(
      utf8(
        "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
      ),
    ),
    ciphertext:
      "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116" +
      "1ae10b594f09e26a7e902ecbd0600691",
  },
];

const ALGORITHMS: readonly AeadAlgorithm[] = ["AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305"];
const KEY_LENGTHS: Record<AeadAlgorithm, number> = {
  "AES-128-GCM": 16,
  "AES-256-GCM": 32,
  "ChaCha20-Poly1305": 32,
};

function flip(bytes: Uint8Array, index: number): Uint8Array {
  const out = bytes.slice();
  out[index]! ^= 0x01;
  return out;
}

for (const crypto of SUITES) {
  describe(`CryptoSuite ${crypto.name}`, () => {
    describe("randomBytes", () => {
      it("returns the requested length, different each time, and bounds the length", async () => {
        assert.equal(crypto.randomBytes(0).length, 0);
        assert.equal(crypto.randomBytes(100_000).length, 100_000);
        assert.notDeepEqual(crypto.randomBytes(32), crypto.randomBytes(32));
        await rejectsWith(() => crypto.randomBytes(-1), "INVALID_ARGUMENT");
        await rejectsWith(() => crypto.randomBytes(1.5), "INVALID_ARGUMENT");
        await rejectsWith(() => crypto.randomBytes(1 << 30), "INVALID_ARGUMENT");
      });
    });

    describe("SHA-256 (FIPS 180-4)", () => {
      it("hashes the standard messages", () => {
        assert.equal(
          toHex(crypto.sha256(utf8("abc"))),
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        );
        assert.equal(
          toHex(crypto.sha256(new Uint8Array(0))),
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        );
        assert.equal(
          toHex(crypto.sha256(utf8("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
        );
      });

      it("is synchronous, returns a plain Uint8Array, and refuses a non-byte input", async () => {
        const digest = crypto.sha256(utf8("abc"));
        assert.ok(!(digest instanceof Promise));
        assert.equal(Object.getPrototypeOf(digest), Uint8Array.prototype);
        await rejectsWith(() => crypto.sha256("abc" as unknown as Uint8Array), "INVALID_ARGUMENT");
      });
    });

    describe("SHA-512 (FIPS 180-4)", () => {
      it("hashes the standard messages", () => {
        assert.equal(
          toHex(crypto.sha512(utf8("abc"))),
          "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a" +
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        );
        assert.equal(
          toHex(crypto.sha512(new Uint8Array(0))),
          "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce" +
            "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
        );
        assert.equal(
          toHex(
            crypto.sha512(
              utf8(
                "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno" +
                  "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
              ),
            ),
          ),
          "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018" +
            "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909",
        );
      });

      it("is synchronous, returns a plain Uint8Array, and refuses a non-byte input", async () => {
        const digest = crypto.sha512(utf8("abc"));
        assert.ok(!(digest instanceof Promise));
        assert.equal(Object.getPrototypeOf(digest), Uint8Array.prototype);
        await rejectsWith(() => crypto.sha512("abc" as unknown as Uint8Array), "INVALID_ARGUMENT");
      });
    });

    describe("HMAC-SHA256 (RFC 4231)", () => {
      it("test case 1", async () => {
        const mac = await crypto.hmacSha256(new Uint8Array(20).fill(0x0b), utf8("Hi There"));
        assert.equal(toHex(mac), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
      });
      it("test case 2", async () => {
        const mac = await crypto.hmacSha256(utf8("Jefe"), utf8("what do ya want for nothing?"));
        assert.equal(toHex(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
      });
      it("test case 6 (key longer than a block)", async () => {
        const mac = await crypto.hmacSha256(
          new Uint8Array(131).fill(0xaa),
          utf8("Test Using Larger Than Block-Size Key - Hash Key First"),
        );
        assert.equal(toHex(mac), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
      });
    });

    describe("HKDF-SHA256 (RFC 5869)", () => {
      it("appendix A.1: basic test case", async () => {
        const prk = await crypto.hkdfExtract(
          fromHex("000102030405060708090a0b0c"),
          new Uint8Array(22).fill(0x0b),
        );
        assert.equal(toHex(prk), "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
        const okm = await crypto.hkdfExpand(prk, fromHex("f0f1f2f3f4f5f6f7f8f9"), 42);
        assert.equal(
          toHex(okm),
          "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        );
      });

      it("appendix A.3: zero-length salt and info", async () => {
        const prk = await crypto.hkdfExtract(new Uint8Array(0), new Uint8Array(22).fill(0x0b));
        assert.equal(toHex(prk), "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04");
        const okm = await crypto.hkdfExpand(prk, new Uint8Array(0), 42);
        assert.equal(
          toHex(okm),
          "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
        );
      });

      it("expands every length up to three blocks as prefixes of one stream", async () => {
        const prk = crypto.randomBytes(32);
        const full = await crypto.hkdfExpand(prk, utf8("info"), 96);
        for (const length of [0, 1, 12, 31, 32, 33, 64, 65, 96]) {
          assert.deepEqual(await crypto.hkdfExpand(prk, utf8("info"), length), full.subarray(0, length));
        }
      });

      it("refuses lengths beyond 255 * HashLen and a short PRK", async () => {
        const prk = crypto.randomBytes(32);
        await rejectsWith(crypto.hkdfExpand(prk, new Uint8Array(0), 255 * 32 + 1), "INVALID_ARGUMENT");
        await rejectsWith(crypto.hkdfExpand(prk, new Uint8Array(0), -1), "INVALID_ARGUMENT");
        await rejectsWith(crypto.hkdfExpand(prk.subarray(0, 16), new Uint8Array(0), 32), "INVALID_ARGUMENT");
      });
    });

    describe("Ed25519 (RFC 8032)", () => {
      for (const v of ED25519_VECTORS) {
        it(`section 7.1 ${v.name}: public key, signature, verification`, async () => {
          const secret = fromHex(v.secret);
          assert.equal(toHex(await crypto.ed25519PublicKey(secret)), v.public);
          const signature = await crypto.ed25519Sign(secret, fromHex(v.message));
          assert.equal(toHex(signature), v.signature);
          assert.equal(await crypto.ed25519Verify(fromHex(v.public), fromHex(v.message), signature), true);
        });
      }

      it("refuses a changed message, signature or key, and a non-canonical S", async () => {
        const v = ED25519_VECTORS[2]!;
        const pk = fromHex(v.public);
        const msg = fromHex(v.message);
        const sig = fromHex(v.signature);
        assert.equal(await crypto.ed25519Verify(pk, flip(msg, 0), sig), false);
        assert.equal(await crypto.ed25519Verify(pk, msg, flip(sig, 0)), false);
        assert.equal(await crypto.ed25519Verify(pk, msg, flip(sig, 40)), false);
        assert.equal(await crypto.ed25519Verify(flip(pk, 0), msg, sig), false);
        assert.equal(await crypto.ed25519Verify(pk, msg, withNonCanonicalS(sig)), false);
      });

      it("returns false, never throws, for malformed keys and signatures", async () => {
        const v = ED25519_VECTORS[0]!;
        const pk = fromHex(v.public);
        const sig = fromHex(v.signature);
        const empty = new Uint8Array(0);
        assert.equal(await crypto.ed25519Verify(pk.subarray(1), empty, sig), false);
        assert.equal(await crypto.ed25519Verify(pk, empty, sig.subarray(1)), false);
        assert.equal(await crypto.ed25519Verify(new Uint8Array(32).fill(0xff), empty, sig), false);
        assert.equal(await crypto.ed25519Verify("x" as unknown as Uint8Array, empty, sig), false);
        assert.equal(await crypto.ed25519Verify(pk, null as unknown as Uint8Array, sig), false);
      });

      it("refuses secret keys of the wrong length with KEY_INVALID", async () => {
        await rejectsWith(crypto.ed25519Sign(new Uint8Array(31), new Uint8Array(0)), "KEY_INVALID");
        await rejectsWith(crypto.ed25519PublicKey(new Uint8Array(64)), "KEY_INVALID");
        await rejectsWith(
          crypto.ed25519Sign("seed" as unknown as Uint8Array, new Uint8Array(0)),
          "KEY_INVALID",
        );
      });

      it("generates key pairs that sign and verify", async () => {
        const pair = await crypto.ed25519Generate();
        assert.equal(pair.secretKey.length, 32);
        assert.deepEqual(await crypto.ed25519PublicKey(pair.secretKey), pair.publicKey);
        const sig = await crypto.ed25519Sign(pair.secretKey, utf8("hello"));
        assert.equal(await crypto.ed25519Verify(pair.publicKey, utf8("hello"), sig), true);
      });

      it("follows a key array that the caller overwrites (no stale cached key)", async () => {
        const key = fromHex(ED25519_VECTORS[0]!.secret);
        assert.equal(toHex(await crypto.ed25519Sign(key, new Uint8Array(0))), ED25519_VECTORS[0]!.signature);
        key.set(fromHex(ED25519_VECTORS[1]!.secret));
        assert.equal(toHex(await crypto.ed25519PublicKey(key)), ED25519_VECTORS[1]!.public);
        assert.equal(toHex(await crypto.ed25519Sign(key, fromHex("72"))), ED25519_VECTORS[1]!.signature);
      });
    });

    describe("X25519 (RFC 7748)", () => {
      for (const [i, v] of X25519_VECTORS.entries()) {
        it(`section 5.2 vector ${i + 1}`, async () => {
          assert.equal(toHex(await crypto.x25519(fromHex(v.scalar), fromHex(v.u))), v.out);
        });
      }

      it("section 6.1: Alice and Bob agree", async () => {
        assert.equal(toHex(await crypto.x25519PublicKey(fromHex(ALICE_SECRET))), ALICE_PUBLIC);
        assert.equal(toHex(await crypto.x25519PublicKey(fromHex(BOB_SECRET))), BOB_PUBLIC);
        assert.equal(
          toHex(await crypto.x25519(fromHex(ALICE_SECRET), fromHex(BOB_PUBLIC))),
          ALICE_BOB_SHARED,
        );
        assert.equal(
          toHex(await crypto.x25519(fromHex(BOB_SECRET), fromHex(ALICE_PUBLIC))),
          ALICE_BOB_SHARED,
        );
      });

      it("section 6.1: refuses an all-zero shared secret with KEY_INVALID", async () => {
        const secret = fromHex(ALICE_SECRET);
        for (const point of SMALL_ORDER_POINTS) {
          await rejectsWith(crypto.x25519(secret, fromHex(point)), "KEY_INVALID");
        }
      });

      it("refuses keys of the wrong length with KEY_INVALID", async () => {
        await rejectsWith(crypto.x25519(new Uint8Array(31), fromHex(BOB_PUBLIC)), "KEY_INVALID");
        await rejectsWith(crypto.x25519(fromHex(ALICE_SECRET), new Uint8Array(33)), "KEY_INVALID");
        await rejectsWith(crypto.x25519PublicKey(new Uint8Array(0)), "KEY_INVALID");
      });

      it("generates key pairs that agree", async () => {
        const a = await crypto.x25519Generate();
        const b = await crypto.x25519Generate();
        assert.deepEqual(await crypto.x25519PublicKey(a.secretKey), a.publicKey);
        assert.deepEqual(
          await crypto.x25519(a.secretKey, b.publicKey),
          await crypto.x25519(b.secretKey, a.publicKey),
        );
      });
    });

    describe("AEAD", () => {
      for (const v of AEAD_VECTORS) {
        it(`${v.name}: seal and open`, async () => {
          const args = [v.algorithm, fromHex(v.key), fromHex(v.nonce), fromHex(v.aad)] as const;
          assert.equal(toHex(await crypto.aeadSeal(...args, fromHex(v.plaintext))), v.ciphertext);
          assert.equal(toHex(await crypto.aeadOpen(...args, fromHex(v.ciphertext))), v.plaintext);
        });
      }

      for (const algorithm of ALGORITHMS) {
        it(`${algorithm}: any change to key, nonce, aad, ciphertext or tag is DECRYPTION_FAILED`, async () => {
          const key = crypto.randomBytes(KEY_LENGTHS[algorithm]);
          const nonce = crypto.randomBytes(12);
          const aad = utf8("header");
          const ct = await crypto.aeadSeal(
            algorithm,
            key,
            nonce,
            aad,
            utf8("a data key, 32 bytes long......."),
          );
          await rejectsWith(crypto.aeadOpen(algorithm, flip(key, 3), nonce, aad, ct), "DECRYPTION_FAILED");
          await rejectsWith(crypto.aeadOpen(algorithm, key, flip(nonce, 11), aad, ct), "DECRYPTION_FAILED");
          await rejectsWith(crypto.aeadOpen(algorithm, key, nonce, flip(aad, 0), ct), "DECRYPTION_FAILED");
          await rejectsWith(crypto.aeadOpen(algorithm, key, nonce, aad, flip(ct, 0)), "DECRYPTION_FAILED");
          await rejectsWith(
            crypto.aeadOpen(algorithm, key, nonce, aad, flip(ct, ct.length - 1)),
            "DECRYPTION_FAILED",
          );
          await rejectsWith(
            crypto.aeadOpen(algorithm, key, nonce, aad, ct.subarray(0, 15)),
            "DECRYPTION_FAILED",
          );
          await rejectsWith(crypto.aeadOpen(algorithm, key, nonce, aad, ct.subarray(1)), "DECRYPTION_FAILED");
        });

        it(`${algorithm}: refuses bad key and nonce lengths`, async () => {
          const len = KEY_LENGTHS[algorithm];
          const empty = new Uint8Array(0);
          await rejectsWith(
            crypto.aeadSeal(algorithm, new Uint8Array(len + 1), new Uint8Array(12), empty, empty),
            "KEY_INVALID",
          );
          await rejectsWith(
            crypto.aeadSeal(algorithm, new Uint8Array(len), new Uint8Array(8), empty, empty),
            "INVALID_ARGUMENT",
          );
          await rejectsWith(
            crypto.aeadOpen(
              algorithm,
              new Uint8Array(len - 1),
              new Uint8Array(12),
              empty,
              new Uint8Array(16),
            ),
            "KEY_INVALID",
          );
        });
      }

      it("refuses an unknown algorithm with UNSUPPORTED_ALGORITHM", async () => {
        const empty = new Uint8Array(0);
        const algorithm = "AES-256-CBC" as AeadAlgorithm;
        await rejectsWith(
          crypto.aeadSeal(algorithm, new Uint8Array(32), new Uint8Array(12), empty, empty),
          "UNSUPPORTED_ALGORITHM",
        );
      });
    });

    describe("scrypt (RFC 7914 section 12)", () => {
      it("vector 1: empty passphrase and salt, N = 16, r = 1, p = 1", async () => {
        const key = await crypto.scrypt(new Uint8Array(0), new Uint8Array(0), { N: 16, r: 1, p: 1 }, 64);
        assert.equal(
          toHex(key),
          "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906",
        );
      });

      it('vector 2: "password", "NaCl", N = 1024, r = 8, p = 16', async () => {
        const key = await crypto.scrypt(utf8("password"), utf8("NaCl"), { N: 1024, r: 8, p: 16 }, 64);
        assert.equal(
          toHex(key),
          "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640",
        );
      });

      it("refuses parameters outside RFC 7914 or the suite's bounds before doing any work", async () => {
        const pw = utf8("pw");
        await rejectsWith(crypto.scrypt(pw, pw, { N: 1000, r: 8, p: 1 }, 32), "INVALID_ARGUMENT");
        await rejectsWith(crypto.scrypt(pw, pw, { N: 1, r: 8, p: 1 }, 32), "INVALID_ARGUMENT");
        await rejectsWith(crypto.scrypt(pw, pw, { N: 2 ** 21, r: 8, p: 1 }, 32), "TOO_LARGE");
        await rejectsWith(crypto.scrypt(pw, pw, { N: 2 ** 20, r: 16, p: 1 }, 32), "TOO_LARGE");
        await rejectsWith(crypto.scrypt(pw, pw, { N: 1024, r: 0, p: 1 }, 32), "INVALID_ARGUMENT");
        await rejectsWith(crypto.scrypt(pw, pw, { N: 1024, r: 8, p: 1 }, 0), "INVALID_ARGUMENT");
      });
    });
  });
}

describe("CryptoSuite: node and web agree (differential)", () => {
  const [a, b] = [nodeCrypto, webCrypto];

  it("a signature from one verifies with the other, both ways", async () => {
    for (const [signer, verifier] of [
      [a, b],
      [b, a],
    ] as const) {
      const pair = await signer.ed25519Generate();
      const message = signer.randomBytes(100);
      const signature = await signer.ed25519Sign(pair.secretKey, message);
      assert.equal(await verifier.ed25519Verify(pair.publicKey, message, signature), true);
      assert.deepEqual(await verifier.ed25519Sign(pair.secretKey, message), signature);
      assert.equal(await verifier.ed25519Verify(pair.publicKey, flip(message, 5), signature), false);
    }
  });

  it("X25519 key pairs from one agree with the other", async () => {
    const x = await a.x25519Generate();
    const y = await b.x25519Generate();
    assert.deepEqual(await a.x25519(x.secretKey, y.publicKey), await b.x25519(y.secretKey, x.publicKey));
    assert.deepEqual(await b.x25519PublicKey(x.secretKey), x.publicKey);
    assert.deepEqual(await a.x25519PublicKey(y.secretKey), y.publicKey);
  });

  it("AEAD ciphertexts from one open with the other, for every algorithm", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ALGORITHMS),
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ maxLength: 40 }),
        async (algorithm, plaintext, aad) => {
          const key = a.randomBytes(KEY_LENGTHS[algorithm]);
          const nonce = a.randomBytes(12);
          const fromA = await a.aeadSeal(algorithm, key, nonce, aad, plaintext);
          assert.deepEqual(await b.aeadSeal(algorithm, key, nonce, aad, plaintext), fromA);
          assert.deepEqual(await b.aeadOpen(algorithm, key, nonce, aad, fromA), plaintext);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("HMAC, HKDF, SHA-256 and SHA-512 agree on random inputs", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 200 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.integer({ min: 0, max: 200 }),
        async (key, data, length) => {
          assert.deepEqual(a.sha256(data), b.sha256(data));
          assert.deepEqual(a.sha512(data), b.sha512(data));
          assert.deepEqual(await a.hmacSha256(key, data), await b.hmacSha256(key, data));
          const prk = await a.hkdfExtract(key, data);
          assert.deepEqual(await b.hkdfExtract(key, data), prk);
          assert.deepEqual(await a.hkdfExpand(prk, key, length), await b.hkdfExpand(prk, key, length));
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("the web suite on a platform without the algorithms", () => {
  it("reports UNSUPPORTED_ALGORITHM, not a bad key or a bad signature", async () => {
    const notSupported = () => Promise.reject(new DOMException("no Ed25519 here", "NotSupportedError"));
    const subtle = { importKey: notSupported, verify: notSupported } as unknown as SubtleCrypto;
    const lacking = createWebCryptoSuite({
      subtle,
      getRandomValues: globalThis.crypto.getRandomValues.bind(globalThis.crypto),
    } as Crypto);
    const v = ED25519_VECTORS[0]!;
    await rejectsWith(lacking.ed25519Sign(fromHex(v.secret), new Uint8Array(0)), "UNSUPPORTED_ALGORITHM");
    await rejectsWith(
      lacking.ed25519Verify(fromHex(v.public), new Uint8Array(0), fromHex(v.signature)),
      "UNSUPPORTED_ALGORITHM",
    );
    await rejectsWith(lacking.x25519(fromHex(ALICE_SECRET), fromHex(BOB_PUBLIC)), "UNSUPPORTED_ALGORITHM");
  });

  it("reports UNSUPPORTED_ALGORITHM when there is no crypto.subtle at all", async () => {
    const none = createWebCryptoSuite({} as Crypto);
    await rejectsWith(() => none.randomBytes(8), "UNSUPPORTED_ALGORITHM");
    await rejectsWith(none.hmacSha256(new Uint8Array(1), new Uint8Array(1)), "UNSUPPORTED_ALGORITHM");
  });
});
