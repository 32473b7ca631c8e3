/**
 * HPKE, RFC 9180, base mode (mode_base = 0x00), over the CryptoSuite: pure core, no platform code.
 *
 * KEM: DHKEM(X25519, HKDF-SHA256), kem_id 0x0020 (sections 4.1 and 7.1). KDF: HKDF-SHA256, kdf_id 0x0001.
 * AEAD: AES-128-GCM (0x0001), AES-256-GCM (0x0002), ChaCha20-Poly1305 (0x0003) (section 7.3). Export-only
 * (0xFFFF), the PSK and Auth modes are not implemented: medledger needs none of them.
 *
 * Performance: the suite-dependent label prefixes are built once per Hpke instance, psk_id_hash (constant
 * in base mode) is computed once, and info_hash is remembered for the last info, since a node wraps many
 * keys under the same info. The exporter secret is derived only if export() is called.
 */
import { LedgerError } from "../errors.ts";
import { bytesEqual, concatBytes, i2osp, utf8 } from "../encoding/bytes.ts";
import { KEY_LENGTH, requireBytes, requireKey } from "./checks.ts";
import type { AeadAlgorithm, CryptoSuite, KeyPair } from "./suite.ts";

/** KEM id of DHKEM(X25519, HKDF-SHA256) (RFC 9180 section 7.1). */
export const KEM_DHKEM_X25519_HKDF_SHA256 = 0x0020;
/** KDF id of HKDF-SHA256 (RFC 9180 section 7.2). */
export const KDF_HKDF_SHA256 = 0x0001;
/** AEAD id of AES-128-GCM (RFC 9180 section 7.3). */
export const AEAD_AES_128_GCM = 0x0001;
/** AEAD id of AES-256-GCM (RFC 9180 section 7.3). */
export const AEAD_AES_256_GCM = 0x0002;
/** AEAD id of ChaCha20-Poly1305 (RFC 9180 section 7.3). */
export const AEAD_CHACHA20_POLY1305 = 0x0003;

/** The AEAD ids this implementation offers. */
export type HpkeAeadId = typeof AEAD_AES_128_GCM | typeof AEAD_AES_256_GCM | typeof AEAD_CHACHA20_POLY1305;

/** Nenc, Npk, Nsk of DHKEM(X25519) and Nsecret, Nh of HKDF-SHA256 (RFC 9180 sections 7.1, 7.2): all 32. */
export const X25519_ENC_LENGTH = 32;
const N_SECRET = 32;
const N_H = 32;
/** Nn and Nt of every AEAD here (RFC 9180 section 7.3). */
const N_N = 12;
/** Bound on info, ikm and exporter_context (RFC 9180 section 7.2.1 lets implementations limit them). */
export const MAX_LABELED_INPUT = 64 * 1024;

const AEADS: Record<HpkeAeadId, { readonly name: AeadAlgorithm; readonly nk: number }> = {
  [AEAD_AES_128_GCM]: { name: "AES-128-GCM", nk: 16 },
  [AEAD_AES_256_GCM]: { name: "AES-256-GCM", nk: 32 },
  [AEAD_CHACHA20_POLY1305]: { name: "ChaCha20-Poly1305", nk: 32 },
};

/** mode_base as the one byte that starts key_schedule_context (section 5.1). */
const MODE_BASE = Uint8Array.of(0x00);
const EMPTY = new Uint8Array(0);

/** A labeled prefix: "HPKE-v1" || suite_id || label (RFC 9180 section 4, LabeledExtract/LabeledExpand). */
function labelPrefix(suiteId: Uint8Array, label: string): Uint8Array {
  return concatBytes(utf8("HPKE-v1"), suiteId, utf8(label));
}

/** The fixed head of LabeledExpand's info for a known output length: I2OSP(L, 2) || labelPrefix. */
function expandPrefix(length: number, suiteId: Uint8Array, label: string): Uint8Array {
  return concatBytes(i2osp(length, 2), labelPrefix(suiteId, label));
}

function checkLabeledInput(value: unknown, what: string): asserts value is Uint8Array {
  requireBytes(value, what);
  if (value.length > MAX_LABELED_INPUT) {
    throw new LedgerError("TOO_LARGE", `${what} above ${MAX_LABELED_INPUT} bytes`);
  }
}

/** The result of Encap (RFC 9180 section 4.1): the KEM shared secret and the encapsulated key. */
export interface Encapsulation {
  readonly sharedSecret: Uint8Array;
  readonly enc: Uint8Array;
}

/** A recipient's X25519 key: the 32-byte secret alone, or the pair (which saves deriving pkR). */
export type RecipientKey = Uint8Array | KeyPair;

/** Options for the sender side: a fixed ephemeral key pair, for test vectors only (never in production). */
export interface SenderOptions {
  readonly ephemeral?: KeyPair;
}

/** An HPKE instance for one ciphersuite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and the chosen AEAD. */
export class Hpke {
  /** The CryptoSuite every primitive runs on. */
  readonly crypto: CryptoSuite;
  /** The AEAD id (RFC 9180 section 7.3). */
  readonly aeadId: HpkeAeadId;
  /** The AEAD name in CryptoSuite terms. */
  readonly aead: AeadAlgorithm;
  /** suite_id = "HPKE" || I2OSP(kem_id, 2) || I2OSP(kdf_id, 2) || I2OSP(aead_id, 2) (section 5.1). */
  readonly suiteId: Uint8Array;
  readonly #nk: number;
  // Prefixes are built once. DHKEM labels use the KEM suite_id, "KEM" || I2OSP(kem_id, 2) (section
  // 4.1); the key schedule uses the full HPKE suite_id (section 5.1). Expand prefixes include I2OSP(L, 2).
  readonly #eaePrk: Uint8Array;
  readonly #sharedSecret: Uint8Array;
  readonly #dkpPrk: Uint8Array;
  readonly #sk: Uint8Array;
  readonly #pskIdHashLabel: Uint8Array;
  readonly #infoHash: Uint8Array;
  readonly #secret: Uint8Array;
  readonly #key: Uint8Array;
  readonly #baseNonce: Uint8Array;
  readonly #exp: Uint8Array;
  readonly #sec: Uint8Array;
  #pskIdHash: Promise<Uint8Array> | undefined;
  #lastInfo: { readonly info: Uint8Array; readonly hash: Promise<Uint8Array> } | undefined;

  constructor(crypto: CryptoSuite, aeadId: HpkeAeadId) {
    const aead = (AEADS as Partial<Record<number, { name: AeadAlgorithm; nk: number }>>)[aeadId];
    if (aead === undefined) {
      throw new LedgerError("UNSUPPORTED_ALGORITHM", `unsupported HPKE AEAD id ${String(aeadId)}`);
    }
    this.crypto = crypto;
    this.aeadId = aeadId;
    this.aead = aead.name;
    this.#nk = aead.nk;
    const kemSuiteId = concatBytes(utf8("KEM"), i2osp(KEM_DHKEM_X25519_HKDF_SHA256, 2));
    this.suiteId = concatBytes(
      utf8("HPKE"),
      i2osp(KEM_DHKEM_X25519_HKDF_SHA256, 2),
      i2osp(KDF_HKDF_SHA256, 2),
      i2osp(aeadId, 2),
    );
    this.#eaePrk = labelPrefix(kemSuiteId, "eae_prk");
    this.#sharedSecret = expandPrefix(N_SECRET, kemSuiteId, "shared_secret");
    this.#dkpPrk = labelPrefix(kemSuiteId, "dkp_prk");
    this.#sk = expandPrefix(KEY_LENGTH, kemSuiteId, "sk");
    this.#pskIdHashLabel = labelPrefix(this.suiteId, "psk_id_hash");
    this.#infoHash = labelPrefix(this.suiteId, "info_hash");
    this.#secret = labelPrefix(this.suiteId, "secret");
    this.#key = expandPrefix(aead.nk, this.suiteId, "key");
    this.#baseNonce = expandPrefix(N_N, this.suiteId, "base_nonce");
    this.#exp = expandPrefix(N_H, this.suiteId, "exp");
    this.#sec = labelPrefix(this.suiteId, "sec");
  }

  /** LabeledExtract(salt, label, ikm) = Extract(salt, "HPKE-v1" || suite_id || label || ikm) (section 4). */
  #labeledExtract(salt: Uint8Array, prefix: Uint8Array, ikm: Uint8Array): Promise<Uint8Array> {
    return this.crypto.hkdfExtract(salt, concatBytes(prefix, ikm));
  }

  /**
   * LabeledExpand(prk, label, info, L) = Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id || label ||
   * info, L) (section 4), with the head I2OSP(L, 2) || "HPKE-v1" || suite_id || label precomputed.
   */
  #labeledExpand(prk: Uint8Array, head: Uint8Array, info: Uint8Array, length: number): Promise<Uint8Array> {
    return this.crypto.hkdfExpand(prk, concatBytes(head, info), length);
  }

  /** DeriveKeyPair(ikm) for X25519 (section 7.1.3); ikm must hold at least Nsk bytes (section 4). */
  async deriveKeyPair(ikm: Uint8Array): Promise<KeyPair> {
    checkLabeledInput(ikm, "HPKE ikm");
    if (ikm.length < KEY_LENGTH) {
      throw new LedgerError("INVALID_ARGUMENT", `HPKE ikm must be at least ${KEY_LENGTH} bytes`);
    }
    const dkpPrk = await this.#labeledExtract(EMPTY, this.#dkpPrk, ikm);
    const secretKey = await this.#labeledExpand(dkpPrk, this.#sk, EMPTY, KEY_LENGTH);
    return { secretKey, publicKey: await this.crypto.x25519PublicKey(secretKey) };
  }

  /** GenerateKeyPair() (section 4): a fresh random X25519 key pair. */
  generateKeyPair(): Promise<KeyPair> {
    return this.crypto.x25519Generate();
  }

  /** ExtractAndExpand(dh, kem_context) (section 4.1). */
  async #extractAndExpand(dh: Uint8Array, kemContext: Uint8Array): Promise<Uint8Array> {
    const eaePrk = await this.#labeledExtract(EMPTY, this.#eaePrk, dh);
    return this.#labeledExpand(eaePrk, this.#sharedSecret, kemContext, N_SECRET);
  }

  /** Encap(pkR) (section 4.1): a fresh ephemeral key, DH with pkR, and the shared secret. */
  async encap(recipientPublicKey: Uint8Array, options: SenderOptions = {}): Promise<Encapsulation> {
    requireKey(recipientPublicKey, "HPKE recipient public key");
    const ephemeral = options.ephemeral ?? (await this.crypto.x25519Generate());
    requireKey(ephemeral.secretKey, "HPKE ephemeral secret key");
    requireKey(ephemeral.publicKey, "HPKE ephemeral public key");
    // DH refuses an all-zero result with KEY_INVALID (sections 7.1.1 and 7.1.4).
    const dh = await this.crypto.x25519(ephemeral.secretKey, recipientPublicKey);
    const enc = ephemeral.publicKey;
    const sharedSecret = await this.#extractAndExpand(dh, concatBytes(enc, recipientPublicKey));
    return { sharedSecret, enc };
  }

  /** Decap(enc, skR) (section 4.1); pkR is derived from skR unless the caller passes the pair. */
  async decap(enc: Uint8Array, recipient: RecipientKey): Promise<Uint8Array> {
    requireKey(enc, "HPKE encapsulated key");
    const { secretKey, publicKey } = await this.#recipientPair(recipient);
    const dh = await this.crypto.x25519(secretKey, enc);
    return this.#extractAndExpand(dh, concatBytes(enc, publicKey));
  }

  async #recipientPair(recipient: RecipientKey): Promise<KeyPair> {
    if (recipient instanceof Uint8Array) {
      requireKey(recipient, "HPKE recipient secret key");
      return { secretKey: recipient, publicKey: await this.crypto.x25519PublicKey(recipient) };
    }
    if (typeof recipient !== "object" || recipient === null) {
      throw new LedgerError("KEY_INVALID", "HPKE recipient key must be a secret key or a key pair");
    }
    requireKey(recipient.secretKey, "HPKE recipient secret key");
    requireKey(recipient.publicKey, "HPKE recipient public key");
    return recipient;
  }

  #infoHashOf(info: Uint8Array): Promise<Uint8Array> {
    const last = this.#lastInfo;
    if (last !== undefined && bytesEqual(last.info, info)) return last.hash;
    const hash = this.#labeledExtract(EMPTY, this.#infoHash, info);
    this.#lastInfo = { info: info.slice(), hash };
    return hash;
  }

  /** KeySchedule<ROLE>(mode_base, shared_secret, info, "", "") (section 5.1). */
  async keySchedule(sharedSecret: Uint8Array, info: Uint8Array): Promise<KeyScheduleResult> {
    requireBytes(sharedSecret, "HPKE shared secret");
    checkLabeledInput(info, "HPKE info");
    this.#pskIdHash ??= this.#labeledExtract(EMPTY, this.#pskIdHashLabel, EMPTY);
    const context = concatBytes(MODE_BASE, await this.#pskIdHash, await this.#infoHashOf(info));
    // psk = "" in base mode (section 5.1.1).
    const secret = await this.#labeledExtract(sharedSecret, this.#secret, EMPTY);
    const key = await this.#labeledExpand(secret, this.#key, context, this.#nk);
    const baseNonce = await this.#labeledExpand(secret, this.#baseNonce, context, N_N);
    return new KeyScheduleResult(this, key, baseNonce, secret, context);
  }

  /** SetupBaseS(pkR, info) (section 5.1.1): the encapsulated key and a sender context. */
  async setupBaseS(
    recipientPublicKey: Uint8Array,
    info: Uint8Array,
    options: SenderOptions = {},
  ): Promise<{ readonly enc: Uint8Array; readonly context: SenderContext }> {
    checkLabeledInput(info, "HPKE info");
    const { sharedSecret, enc } = await this.encap(recipientPublicKey, options);
    const schedule = await this.keySchedule(sharedSecret, info);
    return { enc, context: new SenderContext(this, schedule) };
  }

  /** SetupBaseR(enc, skR, info) (section 5.1.1): a recipient context. */
  async setupBaseR(enc: Uint8Array, recipient: RecipientKey, info: Uint8Array): Promise<RecipientContext> {
    checkLabeledInput(info, "HPKE info");
    const sharedSecret = await this.decap(enc, recipient);
    return new RecipientContext(this, await this.keySchedule(sharedSecret, info));
  }

  /** Single-shot Seal (section 6.1): enc and the ciphertext of one message. */
  async seal(
    recipientPublicKey: Uint8Array,
    info: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    options: SenderOptions = {},
  ): Promise<{ readonly enc: Uint8Array; readonly ct: Uint8Array }> {
    const { enc, context } = await this.setupBaseS(recipientPublicKey, info, options);
    return { enc, ct: await context.seal(aad, plaintext) };
  }

  /** Single-shot Open (section 6.1); DECRYPTION_FAILED when anything does not match. */
  async open(
    enc: Uint8Array,
    recipient: RecipientKey,
    info: Uint8Array,
    aad: Uint8Array,
    ciphertext: Uint8Array,
  ): Promise<Uint8Array> {
    const context = await this.setupBaseR(enc, recipient, info);
    return context.open(aad, ciphertext);
  }

  /** exporter_secret = LabeledExpand(secret, "exp", key_schedule_context, Nh) (section 5.1). */
  exporterSecret(schedule: KeyScheduleResult): Promise<Uint8Array> {
    return this.#labeledExpand(schedule.secret, this.#exp, schedule.context, N_H);
  }

  /** LabeledExpand(exporter_secret, "sec", exporter_context, L) (section 5.3). */
  async exportFrom(
    exporterSecret: Uint8Array,
    exporterContext: Uint8Array,
    length: number,
  ): Promise<Uint8Array> {
    checkLabeledInput(exporterContext, "HPKE exporter context");
    if (!Number.isInteger(length) || length < 0 || length > 255 * N_H) {
      throw new LedgerError("INVALID_ARGUMENT", `HPKE export length must be in [0, ${255 * N_H}]`);
    }
    return this.#labeledExpand(
      exporterSecret,
      concatBytes(i2osp(length, 2), this.#sec),
      exporterContext,
      length,
    );
  }
}

/**
 * The output of the key schedule (section 5.1): key and base_nonce, and what exporter_secret is derived
 * from on demand (secret and key_schedule_context). All of it is secret but the context.
 */
export class KeyScheduleResult {
  readonly key: Uint8Array;
  readonly baseNonce: Uint8Array;
  readonly secret: Uint8Array;
  readonly context: Uint8Array;
  readonly #hpke: Hpke;

  constructor(hpke: Hpke, key: Uint8Array, baseNonce: Uint8Array, secret: Uint8Array, context: Uint8Array) {
    this.#hpke = hpke;
    this.key = key;
    this.baseNonce = baseNonce;
    this.secret = secret;
    this.context = context;
  }

  /** exporter_secret = LabeledExpand(secret, "exp", key_schedule_context, Nh) (section 5.1). */
  exporterSecret(): Promise<Uint8Array> {
    return this.#hpke.exporterSecret(this);
  }
}

/**
 * The encryption context shared by both roles (section 5.2). Sequence numbers are JavaScript safe
 * integers: the context refuses to go past 2^53 - 1 messages, far below the RFC's 2^96 - 1 limit.
 * A context is used sequentially: await each call before the next.
 */
abstract class Context {
  readonly #hpke: Hpke;
  readonly #schedule: KeyScheduleResult;
  #exporterSecret: Promise<Uint8Array> | undefined;
  /** The next sequence number. */
  protected seq = 0;

  constructor(hpke: Hpke, schedule: KeyScheduleResult) {
    this.#hpke = hpke;
    this.#schedule = schedule;
  }

  /** The AEAD key (exposed for the RFC 9180 test vectors; it is secret). */
  get key(): Uint8Array {
    return this.#schedule.key;
  }

  /** The base nonce (exposed for the RFC 9180 test vectors). */
  get baseNonce(): Uint8Array {
    return this.#schedule.baseNonce;
  }

  /** The exporter secret (derived on first use; exposed for the test vectors; it is secret). */
  exporterSecret(): Promise<Uint8Array> {
    this.#exporterSecret ??= this.#schedule.exporterSecret();
    return this.#exporterSecret;
  }

  /** Context.Export(exporter_context, L) (section 5.3). */
  async export(exporterContext: Uint8Array, length: number): Promise<Uint8Array> {
    return this.#hpke.exportFrom(await this.exporterSecret(), exporterContext, length);
  }

  /** ComputeNonce(seq) = base_nonce XOR I2OSP(seq, Nn) (section 5.2). */
  protected nonce(seq: number): Uint8Array {
    if (seq >= Number.MAX_SAFE_INTEGER) {
      throw new LedgerError("TOO_LARGE", "HPKE context message limit reached (RFC 9180 section 5.2)");
    }
    const nonce = this.#schedule.baseNonce.slice();
    const counter = i2osp(seq, N_N);
    for (let i = 0; i < N_N; i++) nonce[i]! ^= counter[i]!;
    return nonce;
  }

  protected get hpke(): Hpke {
    return this.#hpke;
  }
}

/** A sender context: Seal only (section 5.2). */
export class SenderContext extends Context {
  /** ContextS.Seal(aad, pt) (section 5.2). */
  async seal(aad: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array> {
    requireBytes(aad, "HPKE aad");
    requireBytes(plaintext, "HPKE plaintext");
    // Take the sequence number before awaiting, so two overlapping calls never share a nonce.
    const nonce = this.nonce(this.seq);
    this.seq++;
    return this.hpke.crypto.aeadSeal(this.hpke.aead, this.key, nonce, aad, plaintext);
  }
}

/** A recipient context: Open only (section 5.2). */
export class RecipientContext extends Context {
  /** ContextR.Open(aad, ct) (section 5.2); the sequence number advances only on success. */
  async open(aad: Uint8Array, ciphertext: Uint8Array): Promise<Uint8Array> {
    requireBytes(aad, "HPKE aad");
    requireBytes(ciphertext, "HPKE ciphertext");
    const seq = this.seq;
    const plaintext = await this.hpke.crypto.aeadOpen(
      this.hpke.aead,
      this.key,
      this.nonce(seq),
      aad,
      ciphertext,
    );
    this.seq = seq + 1;
    return plaintext;
  }
}
