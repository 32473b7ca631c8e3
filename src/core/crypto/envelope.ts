/**
 * Key envelopes (DESIGN.md section 4): a record's 256-bit data key wrapped for one reader with HPKE
 * (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM.
 *
 * An envelope is versioned so that the suite can change (a post-quantum or hybrid KEM) without breaking
 * old ones: version 1 fixes the suite above, and a reader refuses any version it does not know with
 * UNSUPPORTED_VERSION. Binary form (docs/crypto.md), 87 bytes:
 *
 *   version (1 byte, 0x01) || kem_id (2) || kdf_id (2) || aead_id (2) || enc (32) || ct (48)
 *
 * where ct is AES-256-GCM of the 32-byte data key with its 16-byte tag. The HPKE info is the fixed
 * ENVELOPE_INFO_PREFIX followed by the caller's info, so an envelope can never be mistaken for another
 * HPKE use of the same key, and the caller's aad (for example the entry header) is the AEAD's aad.
 */
import { LedgerError } from "../errors.ts";
import { concatBytes, fromBase64, i2osp, toBase64, utf8 } from "../encoding/bytes.ts";
import { requireBytes, requireKey } from "./checks.ts";
import {
  AEAD_AES_256_GCM,
  Hpke,
  KDF_HKDF_SHA256,
  KEM_DHKEM_X25519_HKDF_SHA256,
  X25519_ENC_LENGTH,
  type RecipientKey,
} from "./hpke.ts";
import type { CryptoSuite } from "./suite.ts";

/** The envelope version this code writes. */
export const KEY_ENVELOPE_VERSION = 1;
/** The name of the version 1 suite, as written in the JSON form. */
export const KEY_ENVELOPE_V1_SUITE = "X25519-HKDF-SHA256-AES-256-GCM";
/** Length of a data key: 256 bits (DESIGN.md section 4). */
export const DATA_KEY_LENGTH = 32;
/** Length of the version 1 ciphertext: the data key and the AES-GCM tag. */
export const KEY_ENVELOPE_V1_CT_LENGTH = DATA_KEY_LENGTH + 16;
/** Length of the version 1 binary encoding. */
export const KEY_ENVELOPE_V1_LENGTH = 1 + 6 + X25519_ENC_LENGTH + KEY_ENVELOPE_V1_CT_LENGTH;
/** HPKE info prefix of version 1: "medledger/key-envelope/v1" then a zero byte, then the caller's info. */
export const ENVELOPE_INFO_PREFIX = concatBytes(utf8("medledger/key-envelope/v1"), Uint8Array.of(0));
/** Bound on the caller's info and aad. */
export const MAX_ENVELOPE_BINDING = 16 * 1024;

const V1_HEADER = concatBytes(
  Uint8Array.of(KEY_ENVELOPE_VERSION),
  i2osp(KEM_DHKEM_X25519_HKDF_SHA256, 2),
  i2osp(KDF_HKDF_SHA256, 2),
  i2osp(AEAD_AES_256_GCM, 2),
);

/** A version 1 key envelope. */
export interface KeyEnvelope {
  readonly v: 1;
  readonly suite: typeof KEY_ENVELOPE_V1_SUITE;
  /** The HPKE encapsulated key (the sender's ephemeral X25519 public key). */
  readonly enc: Uint8Array;
  /** The AES-256-GCM ciphertext of the data key, tag included. */
  readonly ct: Uint8Array;
}

/** The JSON form of a key envelope: enc and ct in standard base64. */
export interface KeyEnvelopeJson {
  readonly v: 1;
  readonly suite: typeof KEY_ENVELOPE_V1_SUITE;
  readonly enc: string;
  readonly ct: string;
}

/** What an envelope is bound to: HPKE info (which reader, which purpose) and AEAD aad (which record). */
export interface EnvelopeBinding {
  readonly info?: Uint8Array;
  readonly aad?: Uint8Array;
}

const instances = new WeakMap<CryptoSuite, Hpke>();

/** One Hpke per CryptoSuite, so its cached labels and info hash are shared by every envelope. */
function hpkeFor(crypto: CryptoSuite): Hpke {
  let hpke = instances.get(crypto);
  if (hpke === undefined) {
    hpke = new Hpke(crypto, AEAD_AES_256_GCM);
    instances.set(crypto, hpke);
  }
  return hpke;
}

function bindingOf(binding: EnvelopeBinding): { info: Uint8Array; aad: Uint8Array } {
  if (typeof binding !== "object" || binding === null) {
    throw new LedgerError("INVALID_ARGUMENT", "envelope binding must be an object");
  }
  const info = binding.info ?? new Uint8Array(0);
  const aad = binding.aad ?? new Uint8Array(0);
  requireBytes(info, "envelope info");
  requireBytes(aad, "envelope aad");
  if (info.length > MAX_ENVELOPE_BINDING || aad.length > MAX_ENVELOPE_BINDING) {
    throw new LedgerError("TOO_LARGE", `envelope info and aad are limited to ${MAX_ENVELOPE_BINDING} bytes`);
  }
  // The prefix has a fixed length, so prefix || info is injective in info.
  return { info: concatBytes(ENVELOPE_INFO_PREFIX, info), aad };
}

/** Wrap a 32-byte data key for the holder of an X25519 public key (RFC 9180 section 6.1 single-shot). */
export async function sealEnvelope(
  crypto: CryptoSuite,
  recipientPublicKey: Uint8Array,
  dataKey: Uint8Array,
  binding: EnvelopeBinding = {},
): Promise<KeyEnvelope> {
  requireKey(recipientPublicKey, "recipient public key");
  requireKey(dataKey, "data key");
  const { info, aad } = bindingOf(binding);
  const { enc, ct } = await hpkeFor(crypto).seal(recipientPublicKey, info, aad, dataKey);
  return { v: KEY_ENVELOPE_VERSION, suite: KEY_ENVELOPE_V1_SUITE, enc, ct };
}

/**
 * Unwrap a data key with the recipient's X25519 secret key (or key pair, which saves deriving the
 * public key). Accepts the object or the binary form. DECRYPTION_FAILED when the key, the envelope or
 * the binding does not match; UNSUPPORTED_VERSION for an unknown version.
 */
export async function openEnvelope(
  crypto: CryptoSuite,
  recipient: RecipientKey,
  envelope: KeyEnvelope | Uint8Array,
  binding: EnvelopeBinding = {},
): Promise<Uint8Array> {
  const checked = envelope instanceof Uint8Array ? decodeEnvelope(envelope) : checkEnvelope(envelope);
  const { info, aad } = bindingOf(binding);
  return hpkeFor(crypto).open(checked.enc, recipient, info, aad, checked.ct);
}

/** Validate an envelope object from outside (every field, every length). */
export function checkEnvelope(value: unknown): KeyEnvelope {
  if (typeof value !== "object" || value === null) {
    throw new LedgerError("MALFORMED_INPUT", "key envelope must be an object");
  }
  const { v, suite, enc, ct } = value as Record<string, unknown>;
  checkVersion(v);
  if (suite !== KEY_ENVELOPE_V1_SUITE) {
    throw new LedgerError("UNSUPPORTED_ALGORITHM", `key envelope v1 suite must be ${KEY_ENVELOPE_V1_SUITE}`);
  }
  if (!(enc instanceof Uint8Array) || enc.length !== X25519_ENC_LENGTH) {
    throw new LedgerError("MALFORMED_INPUT", `key envelope enc must be ${X25519_ENC_LENGTH} bytes`);
  }
  if (!(ct instanceof Uint8Array) || ct.length !== KEY_ENVELOPE_V1_CT_LENGTH) {
    throw new LedgerError("MALFORMED_INPUT", `key envelope ct must be ${KEY_ENVELOPE_V1_CT_LENGTH} bytes`);
  }
  return { v: KEY_ENVELOPE_VERSION, suite: KEY_ENVELOPE_V1_SUITE, enc, ct };
}

function checkVersion(v: unknown): asserts v is 1 {
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw new LedgerError("MALFORMED_INPUT", "key envelope version must be an integer");
  }
  if (v !== KEY_ENVELOPE_VERSION) {
    throw new LedgerError("UNSUPPORTED_VERSION", `key envelope version ${v} is not supported`);
  }
}

/** The binary form of an envelope (87 bytes for version 1). */
export function encodeEnvelope(envelope: KeyEnvelope): Uint8Array {
  const { enc, ct } = checkEnvelope(envelope);
  return concatBytes(V1_HEADER, enc, ct);
}

/** Parse the binary form: UNSUPPORTED_VERSION, UNSUPPORTED_ALGORITHM or MALFORMED_INPUT when it is wrong. */
export function decodeEnvelope(bytes: Uint8Array): KeyEnvelope {
  requireBytes(bytes, "key envelope");
  if (bytes.length === 0) throw new LedgerError("MALFORMED_INPUT", "key envelope is empty");
  checkVersion(bytes[0]);
  if (bytes.length !== KEY_ENVELOPE_V1_LENGTH) {
    throw new LedgerError("MALFORMED_INPUT", `key envelope v1 must be ${KEY_ENVELOPE_V1_LENGTH} bytes`);
  }
  for (let i = 1; i < V1_HEADER.length; i++) {
    if (bytes[i] !== V1_HEADER[i]) {
      throw new LedgerError("UNSUPPORTED_ALGORITHM", "key envelope v1 names a suite other than its own");
    }
  }
  const encEnd = V1_HEADER.length + X25519_ENC_LENGTH;
  return {
    v: KEY_ENVELOPE_VERSION,
    suite: KEY_ENVELOPE_V1_SUITE,
    enc: bytes.slice(V1_HEADER.length, encEnd),
    ct: bytes.slice(encEnd),
  };
}

/** The JSON form of an envelope (for entries, which are canonical JSON). */
export function envelopeToJson(envelope: KeyEnvelope): KeyEnvelopeJson {
  const { enc, ct } = checkEnvelope(envelope);
  return { v: KEY_ENVELOPE_VERSION, suite: KEY_ENVELOPE_V1_SUITE, enc: toBase64(enc), ct: toBase64(ct) };
}

/** Parse the JSON form from outside: exactly the four members, strict base64, exact lengths. */
export function envelopeFromJson(value: unknown): KeyEnvelope {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new LedgerError("MALFORMED_INPUT", "key envelope must be a JSON object");
  }
  const record = value as Record<string, unknown>;
  checkVersion(record.v);
  const keys = Object.keys(record).sort().join(",");
  if (keys !== "ct,enc,suite,v") {
    throw new LedgerError("MALFORMED_INPUT", "key envelope v1 has exactly the members v, suite, enc, ct");
  }
  if (
    typeof record.enc !== "string" ||
    typeof record.ct !== "string" ||
    record.enc.length > 64 ||
    record.ct.length > 128
  ) {
    throw new LedgerError("MALFORMED_INPUT", "key envelope enc and ct must be base64 strings");
  }
  return checkEnvelope({
    v: record.v,
    suite: record.suite,
    enc: fromBase64(record.enc),
    ct: fromBase64(record.ct),
  });
}
