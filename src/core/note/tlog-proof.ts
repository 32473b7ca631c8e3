/**
 * C2SP tlog-proof (c2sp.org/tlog-proof@v1): an offline-verifiable proof that an entry is in a log,
 * bundling an entry index, its RFC 9162 inclusion proof and the signed (and possibly cosigned)
 * checkpoint it is proved against. Grammar (tlog-proof "Format"), every line ending in U+000A:
 *
 *     c2sp.org/tlog-proof@v1
 *     [extra <base64 opaque data>]          optional, unauthenticated
 *     index <decimal, no leading zeros>
 *     <base64 hash>                          zero or more, leaf's sibling first, up to the root's child
 *     <empty line>
 *     <signed checkpoint note, verbatim>
 */
import { fromBase64, fromUtf8, toBase64, utf8 } from "../encoding/bytes.ts";
import { LedgerError } from "../errors.ts";
import {
  parseSignedCheckpoint,
  parseUint64,
  verifyCheckpoint,
  type CheckpointPolicy,
  type VerifiedCheckpoint,
} from "./checkpoint.ts";
import { MAX_NOTE_BYTES, type NoteCrypto } from "./signed-note.ts";
import { HASH_LENGTH as HASH_BYTES } from "../merkle/hash.ts";
import { MAX_PROOF_HASHES, verifyInclusion } from "../merkle/proofs.ts";

/** First line of every tlog-proof (tlog-proof "Format"). */
export const TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1";

/** Our bound on an encoded tlog-proof, checkpoint included. */
export const MAX_TLOG_PROOF_BYTES = MAX_NOTE_BYTES;

/** A parsed tlog-proof. The checkpoint is kept verbatim and is not verified by parsing. */
export interface TlogProof {
  /** Opaque extra data; not authenticated (tlog-proof "Format"). */
  readonly extra?: Uint8Array;
  /** Zero-based index of the entry in the log. */
  readonly index: bigint;
  /** Inclusion proof hashes, leaf's sibling first (RFC 9162 section 2.1.3.1). */
  readonly proof: readonly Uint8Array[];
  /** The signed checkpoint note, verbatim. */
  readonly checkpoint: string;
}

/** A tlog-proof whose checkpoint passed the policy; the inclusion proof is checked by verifyTlogProof. */
export interface VerifiedTlogProof {
  readonly proof: TlogProof;
  readonly checkpoint: VerifiedCheckpoint;
}

function malformed(message: string): never {
  throw new LedgerError("MALFORMED_INPUT", `tlog-proof: ${message}`);
}

function decodeHash(line: string, what: string): Uint8Array {
  let hash: Uint8Array;
  try {
    hash = fromBase64(line);
  } catch (cause) {
    throw new LedgerError("MALFORMED_INPUT", `${what} is not valid base64`, { cause });
  }
  if (hash.length !== HASH_BYTES) {
    throw new LedgerError("MALFORMED_INPUT", `${what} is ${hash.length} bytes, expected ${HASH_BYTES}`);
  }
  return hash;
}

/**
 * Parse a tlog-proof strictly (tlog-proof "Format"): the exact header, an optional non-empty `extra`
 * line, `index N` in canonical decimal, at most 64 proof hashes of 32 bytes in canonical base64, an empty
 * line, then a well-formed signed checkpoint whose tree contains the index. Every line must end in a
 * newline. Throws MALFORMED_INPUT, TOO_LARGE, CHECKPOINT_INVALID or INDEX_OUT_OF_RANGE; verifies nothing.
 */
export function parseTlogProof(input: Uint8Array | string): TlogProof {
  const bytes = typeof input === "string" ? utf8(input) : input;
  if (bytes.length > MAX_TLOG_PROOF_BYTES)
    throw new LedgerError("TOO_LARGE", `tlog-proof is larger than ${MAX_TLOG_PROOF_BYTES} bytes`);
  const text = fromUtf8(bytes);
  let pos = 0;
  let lineNo = 0;
  const nextLine = (): string => {
    lineNo++;
    const end = text.indexOf("\n", pos);
    if (end < 0)
      malformed(pos >= text.length ? `missing line ${lineNo}` : `line ${lineNo} is truncated (no newline)`);
    const line = text.slice(pos, end);
    pos = end + 1;
    return line;
  };

  if (nextLine() !== TLOG_PROOF_HEADER) malformed(`the first line must be ${TLOG_PROOF_HEADER}`);
  let line = nextLine();
  let extra: Uint8Array | undefined;
  if (line.startsWith("extra")) {
    if (!line.startsWith("extra ")) malformed("the extra line must be 'extra <base64>'");
    try {
      extra = fromBase64(line.slice("extra ".length));
    } catch (cause) {
      throw new LedgerError("MALFORMED_INPUT", "tlog-proof: the extra data is not valid base64", { cause });
    }
    // An empty extra is "no extra data", and then the line MUST be omitted (tlog-proof "Format").
    if (extra.length === 0) malformed("the extra line is empty; omit it when there is no extra data");
    line = nextLine();
  }
  if (!line.startsWith("index ")) malformed(`line ${lineNo} must be 'index <n>'`);
  const index = parseUint64(line.slice("index ".length));
  if (index === undefined)
    malformed("the index is not a decimal number without leading zeros that fits in 64 bits");

  const proof: Uint8Array[] = [];
  for (;;) {
    line = nextLine();
    if (line === "") break;
    if (proof.length === MAX_PROOF_HASHES) malformed(`more than ${MAX_PROOF_HASHES} proof hashes`);
    proof.push(decodeHash(line, `tlog-proof: proof hash on line ${lineNo}`));
  }

  const checkpoint = text.slice(pos);
  if (checkpoint.length === 0) malformed("the checkpoint is missing");
  const { checkpoint: body } = parseSignedCheckpoint(checkpoint);
  if (index >= body.size) {
    throw new LedgerError(
      "INDEX_OUT_OF_RANGE",
      `tlog-proof: index ${index} is not in a tree of size ${body.size}`,
    );
  }
  return extra === undefined ? { index, proof, checkpoint } : { extra, index, proof, checkpoint };
}

/** Format a tlog-proof; the fields are checked as parseTlogProof checks them, so the result parses back. */
export function formatTlogProof(proof: TlogProof): string {
  const lines = [TLOG_PROOF_HEADER];
  if (proof.extra !== undefined) lines.push(`extra ${toBase64(proof.extra)}`);
  lines.push(`index ${proof.index.toString()}`);
  for (const hash of proof.proof) lines.push(toBase64(hash));
  const out = `${lines.join("\n")}\n\n${proof.checkpoint}`;
  // Parsing the result applies every check of the grammar (hash lengths, index bounds, checkpoint form).
  try {
    parseTlogProof(out);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : "invalid field";
    throw new LedgerError("INVALID_ARGUMENT", `cannot format this tlog-proof: ${why}`, { cause });
  }
  return out;
}

/** Produce a tlog-proof from an entry index, its inclusion proof hashes and a signed checkpoint note. */
export function createTlogProof(
  index: bigint,
  proof: readonly Uint8Array[],
  signedCheckpoint: string,
  extra?: Uint8Array,
): string {
  return formatTlogProof(
    extra === undefined
      ? { index, proof, checkpoint: signedCheckpoint }
      : { extra, index, proof, checkpoint: signedCheckpoint },
  );
}

/**
 * Verify a tlog-proof for a leaf hash: parse it, verify its checkpoint under the policy (log signature,
 * origin, witness quorum), check the index is inside the tree, then check the inclusion proof against the
 * checkpoint's root (RFC 9162 section 2.1.3.2, src/core/merkle). The extra data stays unauthenticated.
 */
export async function verifyTlogProof(
  crypto: NoteCrypto,
  input: Uint8Array | string,
  leafHash: Uint8Array,
  policy: CheckpointPolicy,
): Promise<VerifiedTlogProof> {
  const proof = parseTlogProof(input);
  const checkpoint = await verifyCheckpoint(proof.checkpoint, policy);
  const { size, rootHash } = checkpoint.checkpoint;
  if (proof.index >= size) {
    throw new LedgerError("INDEX_OUT_OF_RANGE", `index ${proof.index} is not in a tree of size ${size}`);
  }
  verifyInclusion((data) => crypto.sha256(data), {
    index: proof.index,
    size,
    leafHash,
    proof: proof.proof,
    root: rootHash,
  });
  return { proof, checkpoint };
}

/**
 * Parse a list of hashes written one canonical base64 SHA-256 hash per line, each line ending in a
 * newline (our consistency-proof file format; an empty input is an empty list). Bounded to 64 hashes.
 */
export function parseHashLines(input: Uint8Array | string, what = "proof"): Uint8Array[] {
  const bytes = typeof input === "string" ? utf8(input) : input;
  if (bytes.length > MAX_PROOF_HASHES * 64) throw new LedgerError("TOO_LARGE", `${what} file is too large`);
  const text = fromUtf8(bytes);
  if (text.length === 0) return [];
  if (!text.endsWith("\n"))
    throw new LedgerError("MALFORMED_INPUT", `${what}: the last line is truncated (no newline)`);
  const lines = text.slice(0, -1).split("\n");
  if (lines.length > MAX_PROOF_HASHES)
    throw new LedgerError("MALFORMED_INPUT", `${what}: more than ${MAX_PROOF_HASHES} hashes`);
  return lines.map((line, i) => decodeHash(line, `${what}: line ${i + 1}`));
}

/** Format hashes one base64 per line, the inverse of parseHashLines. */
export function formatHashLines(hashes: readonly Uint8Array[]): string {
  return hashes.map((h) => `${toBase64(h)}\n`).join("");
}
