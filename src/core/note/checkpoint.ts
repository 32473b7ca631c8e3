/**
 * C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint): the signed tree head of a log, carried as a signed
 * note whose text is
 *
 *     <origin>\n<tree size, decimal>\n<root hash, base64>\n[<extension line>\n ...]
 *
 * Tree sizes are bigints (up to 2^64 - 1; DESIGN.md section 2 requires sizes above 2^32 to work).
 */
import { fromBase64, toBase64 } from "../encoding/bytes.ts";
import { LedgerError } from "../errors.ts";
import { HASH_LENGTH as ROOT_HASH_BYTES } from "../merkle/hash.ts";
import { MAX_TREE_SIZE } from "../merkle/proofs.ts";
import { checkQuorum, type QuorumResult } from "./quorum.ts";
import {
  openNote,
  parseNote,
  signNote,
  MAX_NOTE_BYTES,
  type NoteSigner,
  type NoteVerifier,
  type OpenedNote,
} from "./signed-note.ts";

/** Our bound on checkpoint extension lines (tlog-checkpoint "Note text" 4 leaves them unbounded). */
export const MAX_CHECKPOINT_EXTENSIONS = 64;

/** A parsed checkpoint body. */
export interface Checkpoint {
  /** The log's unique identity (tlog-checkpoint "Note text" 1). */
  readonly origin: string;
  /** Number of leaves in the tree (tlog-checkpoint "Note text" 2). */
  readonly size: bigint;
  /** The RFC 9162 root hash at that size (tlog-checkpoint "Note text" 3). */
  readonly rootHash: Uint8Array;
  /** Opaque, non-empty extension lines (tlog-checkpoint "Note text" 4). */
  readonly extensions: readonly string[];
}

/** A checkpoint whose note verified under the log key, optionally with witness cosignatures. */
export interface OpenedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly note: OpenedNote;
  /** The log key that signed it. */
  readonly logKey: NoteVerifier;
  /** Witness keys (of those given) whose cosignature verified. */
  readonly witnesses: readonly NoteVerifier[];
}

/** What a verifier trusts: the log's origin and key, witness keys and how many must cosign. */
export interface CheckpointPolicy {
  /** Expected origin line. */
  readonly origin: string;
  /** The log's signing key (type 0x01). */
  readonly logKey: NoteVerifier;
  /** Witness cosignature keys (type 0x04); defaults to none. */
  readonly witnesses?: readonly NoteVerifier[];
  /** Distinct witnesses that must have cosigned; defaults to 0. */
  readonly quorum?: number;
}

/** A checkpoint that passed the whole policy. */
export interface VerifiedCheckpoint extends OpenedCheckpoint {
  readonly quorum: QuorumResult;
}

function invalid(message: string): never {
  throw new LedgerError("CHECKPOINT_INVALID", message);
}

/** Parse a decimal uint64 with no leading zeros ("0" itself allowed); returns undefined when it is not one. */
export function parseUint64(text: string): bigint | undefined {
  if (!/^(0|[1-9][0-9]{0,19})$/.test(text)) return undefined;
  const value = BigInt(text);
  return value <= MAX_TREE_SIZE ? value : undefined;
}

function hasControlCharacter(line: string): boolean {
  for (let i = 0; i < line.length; i++) if (line.charCodeAt(i) < 0x20) return true;
  return false;
}

/**
 * Parse a checkpoint note text strictly (tlog-checkpoint "Note text"): at least three non-empty lines,
 * each ending in a newline; a non-empty origin; the size as canonical decimal fitting in 64 bits; the
 * root hash as canonical base64 of exactly 32 bytes; extension lines non-empty. Throws CHECKPOINT_INVALID.
 */
export function parseCheckpoint(text: string): Checkpoint {
  if (text.length > MAX_NOTE_BYTES) invalid("checkpoint is too large");
  if (!text.endsWith("\n")) invalid("checkpoint text must end with a newline");
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3)
    invalid(`checkpoint has ${lines.length} line(s), expected origin, size and root hash`);
  if (lines.length - 3 > MAX_CHECKPOINT_EXTENSIONS) invalid("checkpoint has too many extension lines");
  const [origin, sizeLine, rootLine, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin.length === 0) invalid("checkpoint origin line is empty");
  for (const line of lines) {
    if (hasControlCharacter(line)) invalid("checkpoint contains a control character");
  }
  const size = parseUint64(sizeLine);
  if (size === undefined) {
    invalid("checkpoint tree size is not a decimal number without leading zeros that fits in 64 bits");
  }
  let rootHash: Uint8Array;
  try {
    rootHash = fromBase64(rootLine);
  } catch (cause) {
    throw new LedgerError("CHECKPOINT_INVALID", "checkpoint root hash is not valid base64", { cause });
  }
  if (rootHash.length !== ROOT_HASH_BYTES)
    invalid(`checkpoint root hash is ${rootHash.length} bytes, expected ${ROOT_HASH_BYTES}`);
  if (extensions.some((line) => line.length === 0)) invalid("checkpoint has an empty extension line");
  return { origin, size, rootHash, extensions };
}

/** Format a checkpoint note text; validates the fields the same way parseCheckpoint does. */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  if (checkpoint.size < 0n) invalid("checkpoint tree size is negative");
  if (checkpoint.origin.includes("\n")) invalid("checkpoint origin contains a newline");
  if (checkpoint.extensions.some((line) => line.includes("\n"))) {
    invalid("checkpoint extension line contains a newline");
  }
  const text = [
    checkpoint.origin,
    checkpoint.size.toString(),
    toBase64(checkpoint.rootHash),
    ...checkpoint.extensions,
  ]
    .map((line) => `${line}\n`)
    .join("");
  // Parsing the result applies every other rule (size bound, hash length, empty lines, control characters).
  parseCheckpoint(text);
  return text;
}

/** Sign a checkpoint as a signed note with the log's key (and any further signers). */
export async function signCheckpoint(
  checkpoint: Checkpoint,
  signers: readonly NoteSigner[],
): Promise<string> {
  return signNote(formatCheckpoint(checkpoint), signers);
}

/** Parse a signed checkpoint without verifying any signature (for cosigners and proof bundles). */
export function parseSignedCheckpoint(input: Uint8Array | string): {
  readonly checkpoint: Checkpoint;
  readonly text: string;
} {
  const note = parseNote(input);
  return { checkpoint: parseCheckpoint(note.text), text: note.text };
}

/**
 * Open a signed checkpoint: the note must verify (signed-note "Signatures"), the log key must be among
 * its verified signers, the text must be a valid checkpoint, and its origin must equal the expected one
 * (ORIGIN_MISMATCH). Witness signatures that verify are reported; a bad one from a known witness fails.
 */
export async function openCheckpoint(
  input: Uint8Array | string,
  origin: string,
  logKey: NoteVerifier,
  witnesses: readonly NoteVerifier[] = [],
): Promise<OpenedCheckpoint> {
  const note = await openNote(input, [logKey, ...witnesses]);
  if (!note.signedBy.includes(logKey)) {
    throw new LedgerError("SIGNATURE_INVALID", `checkpoint is not signed by the log key ${logKey.name}`);
  }
  const checkpoint = parseCheckpoint(note.text);
  if (checkpoint.origin !== origin) {
    throw new LedgerError(
      "ORIGIN_MISMATCH",
      `checkpoint origin ${JSON.stringify(checkpoint.origin)} is not ${JSON.stringify(origin)}`,
    );
  }
  const witnessesSigned = note.signedBy.filter((v) => v !== logKey);
  return { checkpoint, note, logKey, witnesses: witnessesSigned };
}

/** Open a signed checkpoint under a policy and check its witness quorum (QUORUM_NOT_MET). */
export async function verifyCheckpoint(
  input: Uint8Array | string,
  policy: CheckpointPolicy,
): Promise<VerifiedCheckpoint> {
  const witnesses = policy.witnesses ?? [];
  const quorumPolicy = { keys: witnesses, threshold: policy.quorum ?? 0 };
  // Refuse an impossible policy (threshold above the keys given) before reading any input.
  checkQuorum(quorumPolicy, witnesses);
  const opened = await openCheckpoint(input, policy.origin, policy.logKey, witnesses);
  return { ...opened, quorum: checkQuorum(quorumPolicy, opened.witnesses) };
}
