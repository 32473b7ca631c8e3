/**
 * The CryptoSuite on WebCrypto, for the browser (the portal and the SDK); it also runs on Node 20, where
 * the tests hold it to the same vectors as the node:crypto suite.
 *
 * WebCrypto does Ed25519, X25519, HMAC and AES-GCM natively (constant-time, in the browser's own crypto
 * library). Three gaps are filled with audited pure-JS code from noble: SHA-256 and SHA-512, because the
 * suite's hashes must be synchronous and WebCrypto's digest is async only; ChaCha20-Poly1305 and scrypt, which
 * WebCrypto does not offer. No node: import here or below: this file is bundled for the browser.
 */
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { scryptAsync } from "@noble/hashes/scrypt.js";
import { sha256 as nobleSha256, sha512 as nobleSha512 } from "@noble/hashes/sha2.js";
import { LedgerError } from "../core/errors.ts";
import { concatBytes, fromBase64, fromHex } from "../core/encoding/bytes.ts";
import {
  KEY_LENGTH,
  MAX_RANDOM_LENGTH,
  SIGNATURE_LENGTH,
  checkAeadArguments,
  checkCiphertextLength,
  checkHkdfExpand,
  checkScrypt,
  isAllZero,
  requireBytes,
  requireKey,
  requireLength,
} from "../core/crypto/checks.ts";
import { KeyCache } from "../core/crypto/key-cache.ts";
import type { CryptoSuite, KeyPair } from "../core/crypto/suite.ts";

type OkpCurve = "Ed25519" | "X25519";

/** PKCS#8 PrivateKeyInfo prefixes for a 32-byte raw secret key (RFC 8410 section 7). */
const PKCS8_PREFIX: Record<OkpCurve, Uint8Array> = {
  Ed25519: fromHex("302e020100300506032b657004220420"),
  X25519: fromHex("302e020100300506032b656e04220420"),
};

/** A secret CryptoKey and, once computed, its public key bytes. */
interface SecretEntry {
  readonly curve: OkpCurve;
  readonly key: CryptoKey;
  publicKey: Uint8Array | undefined;
}

/** RFC 5869 section 2.2: a missing salt is HashLen zero bytes (WebCrypto refuses zero-length HMAC keys). */
const ZERO_SALT = new Uint8Array(32);

/** WebCrypto wants ArrayBuffer-backed views; copy the rare SharedArrayBuffer-backed input. */
function bs(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
}

/** Decode an RFC 7515 base64url JWK member holding a 32-byte key. */
function fromBase64url(text: string | undefined): Uint8Array {
  if (typeof text !== "string" || text.length !== 43) {
    throw new LedgerError("INTERNAL", "WebCrypto exported a key of the wrong size");
  }
  return fromBase64(text.replace(/-/g, "+").replace(/_/g, "/") + "=");
}

/**
 * A rejection handler that reports a WebCrypto failure as a LedgerError: UNSUPPORTED_ALGORITHM when the
 * platform lacks the algorithm (an older browser without Ed25519 or X25519), else the given code.
 */
function toError(code: "KEY_INVALID", message: string) {
  return (cause: unknown): never => {
    if ((cause as { name?: unknown } | null)?.name === "NotSupportedError") {
      throw new LedgerError("UNSUPPORTED_ALGORITHM", `${message}: not supported by this WebCrypto`, {
        cause,
      });
    }
    throw new LedgerError(code, message, { cause });
  };
}

/**
 * Build a CryptoSuite over a WebCrypto implementation (globalThis.crypto by default, looked up on first
 * use so that importing this module never fails where WebCrypto is missing).
 */
export function createWebCryptoSuite(source?: Crypto): CryptoSuite {
  let resolved: Crypto | undefined = source;
  const webcrypto = (): Crypto => {
    resolved ??= (globalThis as { crypto?: Crypto }).crypto;
    if (resolved?.subtle === undefined) {
      throw new LedgerError("UNSUPPORTED_ALGORITHM", "WebCrypto (crypto.subtle) is not available here");
    }
    return resolved;
  };
  const subtle = (): SubtleCrypto => webcrypto().subtle;

  const secretKeys = new KeyCache<SecretEntry>();
  const publicKeys = new KeyCache<CryptoKey>();
  const aesKeys = new KeyCache<CryptoKey>();
  const hmacKeys = new KeyCache<CryptoKey>();

  async function secretEntry(curve: OkpCurve, secretKey: Uint8Array): Promise<SecretEntry> {
    const cached = secretKeys.get(secretKey);
    if (cached !== undefined && cached.curve === curve) return cached;
    const usages: KeyUsage[] = curve === "Ed25519" ? ["sign"] : ["deriveBits"];
    // Extractable so that the public key can be read back as the JWK "x" member; the raw secret is in
    // the caller's memory anyway.
    const key = await subtle()
      .importKey("pkcs8", bs(concatBytes(PKCS8_PREFIX[curve], secretKey)), { name: curve }, true, usages)
      .catch(toError("KEY_INVALID", `${curve} secret key refused by WebCrypto`));
    const entry: SecretEntry = { curve, key, publicKey: undefined };
    secretKeys.set(secretKey, entry);
    return entry;
  }

  async function publicOf(entry: SecretEntry): Promise<Uint8Array> {
    entry.publicKey ??= fromBase64url((await subtle().exportKey("jwk", entry.key)).x);
    return entry.publicKey;
  }

  async function publicKeyObject(curve: OkpCurve, publicKey: Uint8Array): Promise<CryptoKey> {
    const cached = publicKeys.get(publicKey);
    if (cached !== undefined && cached.algorithm.name === curve) return cached;
    const usages: KeyUsage[] = curve === "Ed25519" ? ["verify"] : [];
    const key = await subtle().importKey("raw", bs(publicKey), { name: curve }, false, usages);
    publicKeys.set(publicKey, key);
    return key;
  }

  async function generate(curve: OkpCurve): Promise<KeyPair> {
    // 32 random bytes are a complete Ed25519 seed (RFC 8032 section 5.1.5) or X25519 scalar (RFC 7748
    // section 5). Importing them rather than calling generateKey also avoids, on Node, a deadlock
    // between a JWK export and the garbage collection of a key-generation job.
    const secretKey = new Uint8Array(KEY_LENGTH);
    webcrypto().getRandomValues(secretKey);
    return { secretKey, publicKey: await publicOf(await secretEntry(curve, secretKey)) };
  }

  async function hmac(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
    // HMAC pads its key with zeros to the block size (RFC 2104 section 2), so an empty key and 32 zero
    // bytes are the same key; WebCrypto only accepts the latter.
    const keyBytes = key.length === 0 ? ZERO_SALT : key;
    let cryptoKey = hmacKeys.get(keyBytes);
    if (cryptoKey === undefined) {
      cryptoKey = await subtle().importKey("raw", bs(keyBytes), { name: "HMAC", hash: "SHA-256" }, false, [
        "sign",
      ]);
      hmacKeys.set(keyBytes, cryptoKey);
    }
    return new Uint8Array(await subtle().sign("HMAC", cryptoKey, bs(data)));
  }

  async function aesKey(key: Uint8Array): Promise<CryptoKey> {
    let cryptoKey = aesKeys.get(key);
    if (cryptoKey === undefined) {
      cryptoKey = await subtle().importKey("raw", bs(key), { name: "AES-GCM" }, false, [
        "encrypt",
        "decrypt",
      ]);
      aesKeys.set(key, cryptoKey);
    }
    return cryptoKey;
  }

  return {
    name: "web",

    randomBytes(length) {
      requireLength(length, 0, MAX_RANDOM_LENGTH, "random length");
      const out = new Uint8Array(length);
      // getRandomValues fills at most 65,536 bytes per call (WebCrypto section 10.1.1).
      for (let offset = 0; offset < length; offset += 65536) {
        webcrypto().getRandomValues(out.subarray(offset, Math.min(length, offset + 65536)));
      }
      return out;
    },

    sha256(data) {
      requireBytes(data, "SHA-256 input");
      return nobleSha256(data);
    },

    sha512(data) {
      requireBytes(data, "SHA-512 input");
      return nobleSha512(data);
    },

    async hmacSha256(key, data) {
      requireBytes(key, "HMAC key");
      requireBytes(data, "HMAC input");
      return hmac(key, data);
    },

    async hkdfExtract(salt, ikm) {
      requireBytes(salt, "HKDF salt");
      requireBytes(ikm, "HKDF input keying material");
      // RFC 5869 section 2.2. WebCrypto's HKDF always runs Extract and Expand together, so the two
      // halves are built on its HMAC instead.
      return hmac(salt, ikm);
    },

    async hkdfExpand(prk, info, length) {
      checkHkdfExpand(prk, info, length);
      // RFC 5869 section 2.3: T(i) = HMAC(PRK, T(i-1) | info | i).
      const out = new Uint8Array(length);
      let previous: Uint8Array = new Uint8Array(0);
      for (let i = 1, offset = 0; offset < length; i++, offset += 32) {
        previous = await hmac(prk, concatBytes(previous, info, Uint8Array.of(i)));
        out.set(previous.subarray(0, Math.min(32, length - offset)), offset);
      }
      return out;
    },

    ed25519Generate: () => generate("Ed25519"),

    async ed25519PublicKey(secretKey) {
      requireKey(secretKey, "Ed25519 secret key");
      return publicOf(await secretEntry("Ed25519", secretKey));
    },

    async ed25519Sign(secretKey, message) {
      requireKey(secretKey, "Ed25519 secret key");
      requireBytes(message, "message");
      const { key } = await secretEntry("Ed25519", secretKey);
      return new Uint8Array(await subtle().sign("Ed25519", key, bs(message)));
    },

    async ed25519Verify(publicKey, message, signature) {
      if (!(publicKey instanceof Uint8Array) || publicKey.length !== KEY_LENGTH) return false;
      if (!(message instanceof Uint8Array)) return false;
      if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_LENGTH) return false;
      try {
        const key = await publicKeyObject("Ed25519", publicKey);
        return await subtle().verify("Ed25519", key, bs(signature), bs(message));
      } catch (cause) {
        // A platform without Ed25519 must not look like a bad signature.
        if ((cause as { name?: unknown } | null)?.name === "NotSupportedError") {
          throw new LedgerError("UNSUPPORTED_ALGORITHM", "Ed25519 is not supported by this WebCrypto", {
            cause,
          });
        }
        return false;
      }
    },

    x25519Generate: () => generate("X25519"),

    async x25519PublicKey(secretKey) {
      requireKey(secretKey, "X25519 secret key");
      return publicOf(await secretEntry("X25519", secretKey));
    },

    async x25519(secretKey, publicKey) {
      requireKey(secretKey, "X25519 secret key");
      requireKey(publicKey, "X25519 public key");
      const { key } = await secretEntry("X25519", secretKey);
      const peer = await publicKeyObject("X25519", publicKey).catch(
        toError("KEY_INVALID", "X25519 public key refused by WebCrypto"),
      );
      // WebCrypto fails deriveBits when the result is all zeros (RFC 7748 section 6.1, WebCrypto
      // "X25519" deriveBits step 6); report it, and any other refusal, as a bad key.
      const bits = await subtle()
        .deriveBits({ name: "X25519", public: peer }, key, 256)
        .catch(toError("KEY_INVALID", "X25519 with this public key gives no shared secret"));
      const shared = new Uint8Array(bits);
      if (isAllZero(shared)) throw new LedgerError("KEY_INVALID", "X25519 shared secret is all zeros");
      return shared;
    },

    async aeadSeal(algorithm, key, nonce, aad, plaintext) {
      checkAeadArguments(algorithm, key, nonce, aad, plaintext);
      if (algorithm === "ChaCha20-Poly1305") return chacha20poly1305(key, nonce, aad).encrypt(plaintext);
      const params = { name: "AES-GCM", iv: bs(nonce), additionalData: bs(aad), tagLength: 128 };
      return new Uint8Array(await subtle().encrypt(params, await aesKey(key), bs(plaintext)));
    },

    async aeadOpen(algorithm, key, nonce, aad, ciphertext) {
      checkAeadArguments(algorithm, key, nonce, aad, ciphertext);
      checkCiphertextLength(ciphertext);
      try {
        if (algorithm === "ChaCha20-Poly1305") return chacha20poly1305(key, nonce, aad).decrypt(ciphertext);
        const params = { name: "AES-GCM", iv: bs(nonce), additionalData: bs(aad), tagLength: 128 };
        return new Uint8Array(await subtle().decrypt(params, await aesKey(key), bs(ciphertext)));
      } catch (cause) {
        throw new LedgerError("DECRYPTION_FAILED", `${algorithm} tag does not verify`, { cause });
      }
    },

    async scrypt(passphrase, salt, params, length) {
      const { N, r, p } = checkScrypt(passphrase, salt, params, length);
      // asyncTick yields to the event loop every 10 ms, so the page stays responsive while it runs.
      return scryptAsync(passphrase, salt, {
        N,
        r,
        p,
        dkLen: length,
        maxmem: 128 * r * (N + p + 2) + (1 << 20),
        asyncTick: 10,
      });
    },
  };
}

/** The CryptoSuite on the platform's WebCrypto (globalThis.crypto). */
export const webCrypto: CryptoSuite = createWebCryptoSuite();
