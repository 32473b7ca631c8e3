/**
 * What a client trusts, and how a checkpoint earns it (DESIGN.md section 2, "Checkpoints and witnesses"):
 * the pinned log origin and key, the witness keys and how many must cosign, and the last checkpoint the
 * client verified. A new checkpoint is accepted only when the log key signed it, a quorum of the witnesses
 * cosigned it, and a consistency proof (RFC 9162 section 2.1.4.2) shows that it and the remembered one are
 * the same history, one a prefix of the other. A node that shows two histories is caught here.
 */
import { LedgerError } from "../core/errors.ts";
import { bytesEqual } from "../core/encoding/bytes.ts";
import type { CryptoSuite } from "../core/crypto/suite.ts";
import { verifyConsistency } from "../core/merkle/proofs.ts";
import {
  openCheckpoint,
  verifyCheckpoint,
  type Checkpoint,
  type CheckpointPolicy,
  type VerifiedCheckpoint,
} from "../core/note/checkpoint.ts";
import { parseCosignatureVerifierKey } from "../core/note/cosignature.ts";
import { parseNoteVerifierKey } from "../core/note/signed-note.ts";

/** What the client pins and remembers between runs (a JSON file for the CLI, IndexedDB in the portal). */
export interface TrustState {
  /** The log origin (the checkpoint's first line); "" before it is pinned. */
  origin: string;
  /** The log's C2SP verifier key (Ed25519, type 0x01); "" before it is pinned. */
  logKey: string;
  /** Witness C2SP verifier keys (cosignature/v1, type 0x04) whose cosignatures count. */
  witnesses: string[];
  /** How many of `witnesses` must cosign (0: the log signature alone). */
  quorum: number;
  /** The last verified checkpoint note, for consistency; null before the first. */
  checkpoint: string | null;
}

/** A fresh trust state for a node whose origin and log key came from its operator (or first use). */
export function newTrustState(input: {
  readonly origin: string;
  readonly logKey: string;
  readonly witnesses?: readonly string[];
  readonly quorum?: number;
}): TrustState {
  return {
    origin: input.origin,
    logKey: input.logKey,
    witnesses: [...(input.witnesses ?? [])],
    quorum: input.quorum ?? 0,
    checkpoint: null,
  };
}

/** The checkpoint policy of a trust state; INVALID_ARGUMENT before the log is pinned, KEY_INVALID for bad keys. */
export function trustPolicy(crypto: CryptoSuite, trust: TrustState): CheckpointPolicy {
  if (trust.origin === "" || trust.logKey === "") {
    throw new LedgerError("INVALID_ARGUMENT", "pin the node's origin and log key first (trust state)");
  }
  return {
    origin: trust.origin,
    logKey: parseNoteVerifierKey(crypto, trust.logKey),
    witnesses: trust.witnesses.map((k) => parseCosignatureVerifierKey(crypto, k)),
    quorum: trust.quorum,
  };
}

/** Fetches a consistency proof between two tree sizes (GET /v1/proofs/consistency). */
export type ConsistencyFetcher = (from: bigint, to: bigint) => Promise<readonly Uint8Array[]>;

/** A checkpoint verified against the trust state, and whether it moves the remembered one forward. */
export interface TrustedCheckpoint {
  readonly verified: VerifiedCheckpoint;
  /** True when the client should remember this checkpoint (the first one, or a larger tree). */
  readonly advances: boolean;
}

/**
 * Verify a checkpoint note against the trust state: the log signature (SIGNATURE_INVALID), the origin
 * (ORIGIN_MISMATCH), the grammar (CHECKPOINT_INVALID), the witness quorum (QUORUM_NOT_MET), and
 * consistency with the remembered checkpoint in whichever direction applies (INCONSISTENT_TREE).
 */
export async function verifyTrustedCheckpoint(
  crypto: CryptoSuite,
  trust: TrustState,
  note: string,
  fetchConsistency: ConsistencyFetcher,
): Promise<TrustedCheckpoint> {
  const policy = trustPolicy(crypto, trust);
  const verified = await verifyCheckpoint(note, policy);
  if (trust.checkpoint === null) return { verified, advances: true };
  let remembered: Checkpoint;
  try {
    remembered = (await openCheckpoint(trust.checkpoint, policy.origin, policy.logKey)).checkpoint;
  } catch (cause) {
    throw new LedgerError(
      "CHECKPOINT_INVALID",
      "the remembered checkpoint does not verify under the pinned key",
      {
        cause,
      },
    );
  }
  await checkConsistent(crypto, remembered, verified.checkpoint, fetchConsistency);
  return { verified, advances: verified.checkpoint.size > remembered.size };
}

/** Prove that two checkpoints of one log describe one history (INCONSISTENT_TREE otherwise). */
export async function checkConsistent(
  crypto: CryptoSuite,
  a: Checkpoint,
  b: Checkpoint,
  fetchConsistency: ConsistencyFetcher,
): Promise<void> {
  const [older, newer] = a.size <= b.size ? [a, b] : [b, a];
  if (older.size === newer.size) {
    if (!bytesEqual(older.rootHash, newer.rootHash)) {
      throw new LedgerError(
        "INCONSISTENT_TREE",
        `two checkpoints of size ${older.size} have different roots`,
      );
    }
    return;
  }
  // The empty tree is a prefix of every tree (RFC 9162 defines no proof from size 0).
  if (older.size === 0n) return;
  const proof = await fetchConsistency(older.size, newer.size);
  try {
    verifyConsistency((data) => crypto.sha256(data), {
      size1: older.size,
      size2: newer.size,
      root1: older.rootHash,
      root2: newer.rootHash,
      proof,
    });
  } catch (cause) {
    throw new LedgerError(
      "INCONSISTENT_TREE",
      `the checkpoint of size ${newer.size} does not extend the one of size ${older.size}: a split view, raise the alarm`,
      { cause },
    );
  }
}
