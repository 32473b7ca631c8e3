/**
 * Verification of a patient's history as a node serves it (docs/api.md, "History"; docs/patient-index.md
 * section 7): before anything in it is trusted, the checkpoint must verify under the pinned log key with the
 * witness quorum and be consistent with the checkpoint the client remembers; the patient-index proof must
 * show the chain head and length under the checkpoint's index root; every entry must be included in the
 * log at its position; and the entries must form one unbroken chain from the enrolment to that head with
 * exactly that many entries. Then every signature on every entry is verified. A failure is an error naming
 * what failed (PROOF_INVALID, SIGNATURE_INVALID, ...), never a shorter history.
 *
 * Pure: pages come in as parsed JSON, the consistency proof through a callback.
 */
import { LedgerError } from "../core/errors.ts";
import { fromBase64, fromHex, toHex } from "../core/encoding/bytes.ts";
import { canonicalize } from "../core/encoding/jcs.ts";
import type { CryptoSuite } from "../core/crypto/suite.ts";
import { parseEntry, verifySignature, signedContentOf } from "../core/ledger/entry.ts";
import type { Entry, EntryOf } from "../core/ledger/schema.ts";
import { leafHash } from "../core/merkle/hash.ts";
import { verifyInclusion } from "../core/merkle/proofs.ts";
import type { VerifiedCheckpoint } from "../core/note/checkpoint.ts";
import { patientIndexKey } from "../core/patient-index/hashing.ts";
import {
  indexProofFromJson,
  verifyMembership,
  verifyNonMembership,
  type IndexProof,
} from "../core/patient-index/proof.ts";
import type { HistoryPage } from "./api.ts";
import { verifyTrustedCheckpoint, type ConsistencyFetcher, type TrustState } from "./trust.ts";

/** The checkpoint extension line that commits to the patient-index root (docs/node.md). */
export const PATIENT_INDEX_EXTENSION = "patient-index";

/** An entry of the history that passed every check. */
export interface VerifiedEntry {
  readonly position: bigint;
  readonly seq: bigint;
  readonly id: string;
  /** Ledger time as the node states it (not covered by a proof; used for display and windows). */
  readonly ledgerTime: number;
  readonly bytes: Uint8Array;
  readonly entry: Entry;
}

/** A verified, complete history as of one checkpoint. */
export interface VerifiedHistory {
  readonly patient: string;
  readonly checkpoint: VerifiedCheckpoint;
  /** The checkpoint note as served (with cosignatures). */
  readonly note: string;
  readonly indexRoot: Uint8Array;
  /** Whether the client should now remember this checkpoint. */
  readonly advances: boolean;
  readonly chain: { readonly head: string; readonly length: number };
  /** The patient's entries in chain (ledger) order, enrolment first. */
  readonly entries: readonly VerifiedEntry[];
}

/** Known signer keys, for checking that each signature is by the principal it claims (hex keys). */
export interface SignerKeys {
  /** Org id -> Ed25519 signKey in hex, as the node lists them. */
  readonly orgs?: ReadonlyMap<string, string>;
}

function proofInvalid(message: string, cause?: unknown): never {
  throw new LedgerError("PROOF_INVALID", message, cause === undefined ? undefined : { cause });
}

/** The patient-index root a checkpoint commits to: its one `patient-index <base64>` extension line. */
export function indexRootOf(checkpoint: VerifiedCheckpoint): Uint8Array {
  const lines = checkpoint.checkpoint.extensions.filter((l) => l.startsWith(`${PATIENT_INDEX_EXTENSION} `));
  if (lines.length !== 1) {
    throw new LedgerError(
      "CHECKPOINT_INVALID",
      "the checkpoint does not commit to exactly one patient-index root",
    );
  }
  let root: Uint8Array;
  try {
    root = fromBase64(lines[0]!.slice(PATIENT_INDEX_EXTENSION.length + 1));
  } catch (cause) {
    throw new LedgerError("CHECKPOINT_INVALID", "the checkpoint's patient-index root is not base64", {
      cause,
    });
  }
  if (root.length !== 32)
    throw new LedgerError("CHECKPOINT_INVALID", "the patient-index root is not 32 bytes");
  return root;
}

function parseIndexProof(json: unknown): IndexProof {
  try {
    return indexProofFromJson(json);
  } catch (cause) {
    return proofInvalid("the patient-index proof is malformed", cause);
  }
}

/**
 * Verify a history page by page. `start` checks the checkpoint and the completeness proof of the first
 * page; `add` checks each page's entries; `finish` checks that the chain is whole.
 */
export class HistoryVerifier {
  readonly #crypto: CryptoSuite;
  readonly #sha: (data: Uint8Array) => Uint8Array;
  readonly #patient: string;
  readonly #first: HistoryPage;
  readonly #firstProof: string;
  readonly #checkpoint: VerifiedCheckpoint;
  readonly #indexRoot: Uint8Array;
  readonly #advances: boolean;
  readonly #keys: SignerKeys;
  readonly #entries: VerifiedEntry[] = [];
  #patientKey: string | null = null;
  #lastPosition = -1n;
  #finished = false;

  private constructor(
    crypto: CryptoSuite,
    patient: string,
    first: HistoryPage,
    checkpoint: VerifiedCheckpoint,
    indexRoot: Uint8Array,
    advances: boolean,
    keys: SignerKeys,
  ) {
    this.#crypto = crypto;
    this.#sha = (data) => crypto.sha256(data);
    this.#patient = patient;
    this.#first = first;
    this.#firstProof = canonicalize(first.indexProof);
    this.#checkpoint = checkpoint;
    this.#indexRoot = indexRoot;
    this.#advances = advances;
    this.#keys = keys;
  }

  /**
   * Check the first page's checkpoint (signature, quorum, consistency with the remembered one) and its
   * completeness proof (membership of the patient with value = chain head and length).
   */
  static async start(
    crypto: CryptoSuite,
    trust: TrustState,
    patient: string,
    first: HistoryPage,
    fetchConsistency: ConsistencyFetcher,
    keys: SignerKeys = {},
  ): Promise<HistoryVerifier> {
    if (first.patient !== patient) proofInvalid("the node answered with another patient's history");
    const { verified, advances } = await verifyTrustedCheckpoint(
      crypto,
      trust,
      first.checkpoint,
      fetchConsistency,
    );
    if (verified.checkpoint.size !== first.size) {
      throw new LedgerError("CHECKPOINT_INVALID", "the page's size is not the size of its checkpoint");
    }
    const indexRoot = indexRootOf(verified);
    const proof = parseIndexProof(first.indexProof);
    if (proof.type !== "membership") proofInvalid("the patient-index proof is not a membership proof");
    const sha = (data: Uint8Array): Uint8Array => crypto.sha256(data);
    verifyMembership(
      sha,
      indexRoot,
      patientIndexKey(sha, patient),
      { head: fromHex(first.chain.head), length: first.chain.length },
      proof,
    );
    return new HistoryVerifier(crypto, patient, first, verified, indexRoot, advances, keys);
  }

  /** The tree size every page must hang on. */
  get size(): bigint {
    return this.#checkpoint.checkpoint.size;
  }

  /** Entries verified so far, and the chain length they must reach. */
  get progress(): { readonly done: number; readonly total: number } {
    return { done: this.#entries.length, total: this.#first.chain.length };
  }

  /** Verify one page (the first one too): same checkpoint, inclusion of each entry, chain links, signatures. */
  async add(page: HistoryPage): Promise<void> {
    if (this.#finished) throw new LedgerError("INTERNAL", "the history was already finished");
    const first = this.#first;
    if (
      page !== first &&
      (page.patient !== first.patient ||
        page.checkpoint !== first.checkpoint ||
        page.size !== first.size ||
        page.chain.head !== first.chain.head ||
        page.chain.length !== first.chain.length ||
        canonicalize(page.indexProof) !== this.#firstProof)
    ) {
      proofInvalid("the history's pages do not hang on one checkpoint and one proof");
    }
    if (page.entries.length === 0 && page.next !== null) proofInvalid("an empty page that is not the last");
    if (this.#entries.length + page.entries.length > first.chain.length) {
      proofInvalid(`the node sent more entries than the chain's length ${first.chain.length}`);
    }
    const root = this.#checkpoint.checkpoint.rootHash;
    for (const item of page.entries) {
      if (item.position <= this.#lastPosition) proofInvalid("the entries are not in ledger order");
      if (item.position >= this.size) proofInvalid(`entry ${item.id} is beyond the checkpoint's tree`);
      this.#lastPosition = item.position;
      if (toHex(this.#sha(item.bytes)) !== item.id) proofInvalid(`entry ${item.id} does not hash to its id`);
      try {
        verifyInclusion(this.#sha, {
          index: item.position,
          size: this.size,
          leafHash: leafHash(this.#sha, item.bytes),
          proof: item.inclusion,
          root,
        });
      } catch (cause) {
        proofInvalid(`entry ${item.id} at position ${item.position} is not included in the log`, cause);
      }
      const entry = parseEntry(item.bytes);
      this.#link(entry, item.id);
      await this.#checkSignatures(item.bytes, entry, item.id);
      this.#entries.push({
        position: item.position,
        seq: item.seq,
        id: item.id,
        ledgerTime: item.ledgerTime,
        bytes: item.bytes,
        entry,
      });
    }
    if (page.next !== null && page.entries.length > 0 && page.next < this.#lastPosition) {
      proofInvalid("the page's next position goes backwards");
    }
  }

  /** Check the chain link of the next entry (docs/patient-index.md section 7, step 3). */
  #link(entry: Entry, id: string): void {
    const index = this.#entries.length;
    const body = entry.body as { patient?: unknown; prev?: unknown };
    if (body.patient !== this.#patient) proofInvalid(`entry ${id} is not about the patient`);
    if (index === 0) {
      if (entry.kind !== "patient.enroll") proofInvalid("the history does not start with the enrolment");
      this.#patientKey = entry.body.signKey;
    } else if (body.prev !== this.#entries[index - 1]!.id) {
      proofInvalid(
        `entry ${id} does not follow the previous entry of the chain: an entry is missing or added`,
      );
    }
  }

  /**
   * Every signature verifies, patient signatures by the enrolled key, org signatures by the org's key. The
   * signed content is cut out of the entry's canonical bytes (parseEntry refused any other bytes) rather
   * than serialised again, once for all the entry's signatures.
   */
  async #checkSignatures(bytes: Uint8Array, entry: Entry, id: string): Promise<void> {
    const content = signedContentOf(bytes, entry);
    for (const sig of entry.sigs) {
      if (sig.role === "patient" && sig.key !== this.#patientKey) {
        throw new LedgerError("SIGNATURE_INVALID", `entry ${id} is signed as the patient by another key`);
      }
      const orgId = signerOrg(entry, sig.role);
      const known = orgId === undefined ? undefined : this.#keys.orgs?.get(orgId);
      if (known !== undefined && known !== sig.key) {
        throw new LedgerError("SIGNATURE_INVALID", `entry ${id} is signed as ${orgId} by another key`);
      }
      if (!(await verifySignature(this.#crypto, entry, sig, content))) {
        throw new LedgerError("SIGNATURE_INVALID", `a ${sig.role} signature of entry ${id} does not verify`);
      }
    }
  }

  /** Check that the chain is whole (exactly `length` entries ending at `head`) and return the history. */
  finish(): VerifiedHistory {
    const { head, length } = this.#first.chain;
    if (this.#entries.length !== length) {
      proofInvalid(`the node sent ${this.#entries.length} entries of a chain of ${length}`);
    }
    if (this.#entries[length - 1]!.id !== head) proofInvalid("the chain does not end at the proven head");
    this.#finished = true;
    return {
      patient: this.#patient,
      checkpoint: this.#checkpoint,
      note: this.#first.checkpoint,
      indexRoot: this.#indexRoot,
      advances: this.#advances,
      chain: { head, length },
      entries: this.#entries,
    };
  }
}

/** The org a signature in `role` speaks for, from the entry's body. */
function signerOrg(entry: Entry, role: string): string | undefined {
  const body = entry.body as Record<string, unknown>;
  if (role === "author" && typeof body.author === "string") return body.author;
  if (role === "validator" && typeof body.validator === "string") return body.validator;
  if (role === "org" && typeof body.org === "string") return body.org;
  return undefined;
}

/**
 * Verify a proof that a patient has no entries (the body of a history 404): the checkpoint against the
 * trust state, then non-membership under its index root. Returns the verified checkpoint.
 */
export async function verifyAbsence(
  crypto: CryptoSuite,
  trust: TrustState,
  patient: string,
  note: string,
  size: bigint,
  proofJson: unknown,
  fetchConsistency: ConsistencyFetcher,
): Promise<{ readonly checkpoint: VerifiedCheckpoint; readonly advances: boolean }> {
  const { verified, advances } = await verifyTrustedCheckpoint(crypto, trust, note, fetchConsistency);
  if (verified.checkpoint.size !== size) {
    throw new LedgerError("CHECKPOINT_INVALID", "the stated size is not the size of the checkpoint");
  }
  const proof = parseIndexProof(proofJson);
  if (proof.type !== "non-membership") proofInvalid("the proof of absence is not a non-membership proof");
  const sha = (data: Uint8Array): Uint8Array => crypto.sha256(data);
  verifyNonMembership(sha, indexRootOf(verified), patientIndexKey(sha, patient), proof);
  return { checkpoint: verified, advances };
}

/** What the verified chain says about the patient's records, grants and key shares (docs/records.md). */
export interface LedgerView {
  /** Record versions by record id. */
  readonly records: ReadonlyMap<string, RecordVersion>;
  /** Grants by grant id (= entry id). */
  readonly grants: ReadonlyMap<string, GrantView>;
  /** Emergency declarations by entry id. */
  readonly emergencies: ReadonlyMap<string, { readonly org: string; readonly ledgerTime: number }>;
}

/** A record version as the chain shows it. */
export interface RecordVersion {
  readonly item: VerifiedEntry;
  readonly body: EntryOf<"record.append">["body"] & { readonly supersedes?: string };
  supersededBy: string | null;
  erased: boolean;
}

/** A grant as the chain shows it. */
export interface GrantView {
  readonly id: string;
  readonly body: EntryOf<"grant">["body"];
  readonly ledgerTime: number;
  revoked: boolean;
  /** Record id -> the grantee's envelope, from this grant's key shares. */
  readonly shared: Map<string, string>;
}

/** Index a verified chain: record versions with supersession and erasure, grants with revocations and shares. */
export function viewOf(history: VerifiedHistory): LedgerView {
  const records = new Map<string, RecordVersion>();
  const grants = new Map<string, GrantView>();
  const emergencies = new Map<string, { org: string; ledgerTime: number }>();
  for (const item of history.entries) {
    const { entry } = item;
    switch (entry.kind) {
      case "record.append":
      case "record.amend": {
        records.set(entry.body.record, { item, body: entry.body, supersededBy: null, erased: false });
        if (entry.kind === "record.amend") {
          const old = records.get(entry.body.supersedes);
          if (old !== undefined) old.supersededBy = entry.body.record;
        }
        break;
      }
      case "record.erase": {
        const version = records.get(entry.body.record);
        if (version !== undefined) version.erased = true;
        break;
      }
      case "grant":
        grants.set(item.id, {
          id: item.id,
          body: entry.body,
          ledgerTime: item.ledgerTime,
          revoked: false,
          shared: new Map(),
        });
        break;
      case "grant.revoke": {
        const grant = grants.get(entry.body.grant);
        if (grant !== undefined) grant.revoked = true;
        break;
      }
      case "key.share": {
        const grant = grants.get(entry.body.grant);
        if (grant !== undefined) for (const k of entry.body.keys) grant.shared.set(k.record, k.env);
        break;
      }
      case "emergency.access":
        emergencies.set(item.id, { org: entry.body.org, ledgerTime: item.ledgerTime });
        break;
      default:
        break;
    }
  }
  return { records, grants, emergencies };
}
