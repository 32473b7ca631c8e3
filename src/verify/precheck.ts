/**
 * Signature pre-checking: the parallel half of an audit (docs/verify.md, "Parallel design").
 *
 * The validator (applyEntry) must judge entries one after another, but almost all of its cost is Ed25519
 * verification, which depends on nothing but the (key, message, signature) triple. So workers verify every
 * signature of a chunk of entries (and of the checkpoints that end blocks in it) ahead of time, and report
 * each verdict under SHA-256(key || signature || message). The validator then runs unchanged, in order, on
 * the main thread, over a crypto suite whose ed25519Verify first looks its exact triple up among those
 * verdicts: a verdict is used only for the very triple it was computed for, and any triple the workers did
 * not see (or saw differently) is verified there and then. A worker can make the audit slower, never wrong.
 *
 * Workers do not decode entries fully (strict JSON, JCS, schema: as costly as a verification). An entry's
 * signed content is its own canonical bytes without the `sigs` member (docs/entries.md section 2), so a
 * worker finds the signatures with the engine's JSON.parse and cuts the content out of the bytes. If the
 * bytes are not canonical, the cut is wrong, the digests match nothing, and the validator refuses the entry
 * as NOT_CANONICAL before it ever asks for a signature.
 */
import type { CryptoSuite } from "../core/crypto/suite.ts";
import { concatBytes, fromBase64, fromHex, utf8 } from "../core/encoding/bytes.ts";
import { ENTRY_SIGNING_PREFIX } from "../core/ledger/entry.ts";
import { parseNote, type NoteVerifier } from "../core/note/signed-note.ts";

/** Bytes of an Ed25519 public key and of a signature (RFC 8032). */
const KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
/** Bytes of a verdict's digest (SHA-256). */
export const VERDICT_DIGEST_BYTES = 32;

/** A chunk of work: entry bytes back to back, where each ends, and checkpoint notes to pre-check. */
export interface PrecheckJob {
  /** The entries' bytes, concatenated. */
  readonly data: Uint8Array;
  /** End offset of each entry in `data` (entry i is data[ends[i-1] ?? 0, ends[i])). */
  readonly ends: Uint32Array;
  /** Signed checkpoint notes whose log-key signatures should be pre-checked. */
  readonly notes: readonly string[];
}

/** The verdicts of a job: one 32-byte digest and one validity byte per signature checked. */
export interface PrecheckVerdicts {
  /** SHA-256(key || signature || message) of each checked triple, back to back. */
  readonly digests: Uint8Array;
  /** 1 when the triple's signature verified, else 0. */
  readonly valid: Uint8Array;
}

/** Something that pre-checks jobs (a worker pool); the audit runs without one too. */
export interface SignaturePrechecker {
  /** How many threads check signatures (for the report). */
  readonly threads: number;
  /** Verify every signature of a job. May reject: the audit then verifies inline. */
  check(job: PrecheckJob): Promise<PrecheckVerdicts>;
}

/** One signature to verify. */
interface Triple {
  readonly key: Uint8Array;
  readonly signature: Uint8Array;
  readonly message: Uint8Array;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const ROLE = /^[a-z]{1,32}$/;
const HEX_KEY = /^[0-9a-f]{64}$/;

/** The triple's digest: what the main thread looks a verdict up by. */
export function tripleDigest(
  crypto: Pick<CryptoSuite, "sha256">,
  key: Uint8Array,
  signature: Uint8Array,
  message: Uint8Array,
): Uint8Array {
  return crypto.sha256(concatBytes(key, signature, message));
}

/**
 * The signatures of an entry as the validator will ask for them, or none when the bytes are not a
 * canonical entry with well-formed signatures (the validator then refuses it before any signature check,
 * or verifies inline what was missed).
 */
export function entryTriples(bytes: Uint8Array): Triple[] {
  let text: string;
  let value: unknown;
  try {
    text = strictUtf8.decode(bytes);
    value = JSON.parse(text);
  } catch {
    return [];
  }
  const sigs = (value as { sigs?: unknown } | null)?.sigs;
  if (!Array.isArray(sigs) || sigs.length === 0) return [];
  const parsed: { key: string; role: string; sig: string }[] = [];
  for (const s of sigs as unknown[]) {
    const { key, role, sig } = (s ?? {}) as { key?: unknown; role?: unknown; sig?: unknown };
    if (typeof key !== "string" || typeof role !== "string" || typeof sig !== "string") return [];
    if (!HEX_KEY.test(key) || !ROLE.test(role)) return [];
    parsed.push({ key, role, sig });
  }
  // JCS orders members body, kind, sigs, v (RFC 8785 section 3.2.3), so a canonical entry ends with this
  // tail; its strings hold no character JSON escapes (checked above or base64), so this is their JCS form.
  const tail = utf8(`,"sigs":${JSON.stringify(parsed)},"v":1}`);
  if (bytes.length <= tail.length) return [];
  const cut = bytes.length - tail.length;
  for (let i = 0; i < tail.length; i++) if (bytes[cut + i] !== tail[i]) return [];
  // The signed content is JCS({ v, kind, body }): the same bytes without the sigs member.
  const content = concatBytes(bytes.subarray(0, cut), utf8(',"v":1}'));
  const triples: Triple[] = [];
  for (const { key, role, sig } of parsed) {
    let signature: Uint8Array;
    try {
      signature = fromBase64(sig);
    } catch {
      continue;
    }
    if (signature.length !== SIGNATURE_BYTES) continue;
    const message = concatBytes(utf8(`${ENTRY_SIGNING_PREFIX}${role}\n`), content);
    triples.push({ key: fromHex(key), signature, message });
  }
  return triples;
}

/** The log-key signatures of a signed checkpoint note (signed-note "Signatures"), or none if it does not parse. */
export function noteTriples(note: string, logKey: NoteVerifier): Triple[] {
  try {
    const parsed = parseNote(note);
    const message = utf8(parsed.text);
    return parsed.signatures
      .filter(
        (s) =>
          s.name === logKey.name &&
          s.keyId === logKey.keyId &&
          s.signature.length === SIGNATURE_BYTES &&
          logKey.publicKey.length === KEY_BYTES,
      )
      .map((s) => ({ key: logKey.publicKey, signature: s.signature, message }));
  } catch {
    return [];
  }
}

/** Verify every signature of a job (in a worker, or inline for tests). Pure: crypto is handed in. */
export async function precheckJob(
  crypto: Pick<CryptoSuite, "sha256" | "ed25519Verify">,
  job: PrecheckJob,
  logKey: NoteVerifier | null,
  interner?: KeyInterner,
): Promise<PrecheckVerdicts> {
  const triples: Triple[] = [];
  let start = 0;
  for (const end of job.ends) {
    if (end < start || end > job.data.length) break;
    triples.push(...entryTriples(job.data.subarray(start, end)));
    start = end;
  }
  if (logKey !== null) for (const note of job.notes) triples.push(...noteTriples(note, logKey));
  const keys = interner ?? new KeyInterner();
  const digests = new Uint8Array(triples.length * VERDICT_DIGEST_BYTES);
  const valid = new Uint8Array(triples.length);
  for (const [i, t] of triples.entries()) {
    valid[i] = (await crypto.ed25519Verify(keys.intern(t.key), t.message, t.signature)) ? 1 : 0;
    digests.set(tripleDigest(crypto, t.key, t.signature, t.message), i * VERDICT_DIGEST_BYTES);
  }
  return { digests, valid };
}

/** Distinct public keys an interner remembers before starting afresh. */
const INTERNED_KEYS = 100_000;

/**
 * One array per distinct public key. The crypto suite caches its parsed key objects by array identity
 * (src/core/crypto/key-cache.ts), and the validator hands it a fresh array per signature (fromHex of the
 * entry's key), so without this every verification would import its key again: about a tenth of the cost
 * of an Ed25519 verification, per signature.
 */
export class KeyInterner {
  readonly #keys = new Map<string, Uint8Array>();

  /** The remembered array with these bytes (a copy of `key` the first time). */
  intern(key: Uint8Array): Uint8Array {
    const id = binaryKey(key);
    const known = this.#keys.get(id);
    if (known !== undefined) return known;
    if (this.#keys.size >= INTERNED_KEYS) this.#keys.clear();
    const copy = key.slice();
    this.#keys.set(id, copy);
    return copy;
  }
}

/** A map key for bytes: one UTF-16 unit per byte, cheaper to build than hex. */
export function binaryKey(bytes: Uint8Array): string {
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}

/** Verdicts the main thread may use, and how often it found one (hits) or verified inline (misses). */
export class VerdictCache {
  readonly #verdicts = new Map<string, boolean>();
  /** Signatures answered from a pre-checked verdict. */
  hits = 0;
  /** Signatures verified on the main thread. */
  misses = 0;

  /** Add a job's verdicts. Malformed verdicts (a worker bug) are ignored: those triples verify inline. */
  add(verdicts: PrecheckVerdicts): void {
    const { digests, valid } = verdicts;
    if (digests.length !== valid.length * VERDICT_DIGEST_BYTES) return;
    for (let i = 0; i < valid.length; i++) {
      const at = i * VERDICT_DIGEST_BYTES;
      this.#verdicts.set(binaryKey(digests.subarray(at, at + VERDICT_DIGEST_BYTES)), valid[i] === 1);
    }
  }

  /** Number of verdicts held. */
  get size(): number {
    return this.#verdicts.size;
  }

  /** Forget every verdict (after the chunk they were for). */
  clear(): void {
    this.#verdicts.clear();
  }

  /** The verdict on exactly this triple, if one was pre-checked. */
  lookup(digest: Uint8Array): boolean | undefined {
    return this.#verdicts.get(binaryKey(digest));
  }
}

/**
 * A crypto suite that answers ed25519Verify from pre-checked verdicts for the exact triple asked, and
 * verifies with `base` otherwise. Everything else is `base`'s.
 */
export function precheckedCrypto(base: CryptoSuite, cache: VerdictCache): CryptoSuite {
  const keys = new KeyInterner();
  const suite = Object.create(base) as CryptoSuite & { ed25519Verify: CryptoSuite["ed25519Verify"] };
  suite.ed25519Verify = async (publicKey, message, signature) => {
    const wellFormed =
      publicKey instanceof Uint8Array &&
      message instanceof Uint8Array &&
      signature instanceof Uint8Array &&
      publicKey.length === KEY_BYTES &&
      signature.length === SIGNATURE_BYTES;
    // With nothing pre-checked (a small log, no workers) the digest would be computed for nothing.
    if (wellFormed && cache.size > 0) {
      const verdict = cache.lookup(tripleDigest(base, publicKey, signature, message));
      if (verdict !== undefined) {
        cache.hits++;
        return verdict;
      }
    }
    cache.misses++;
    return base.ed25519Verify(wellFormed ? keys.intern(publicKey) : publicKey, message, signature);
  };
  return suite;
}
