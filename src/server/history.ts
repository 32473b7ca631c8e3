/**
 * One page of a patient's history (docs/api.md, "History"): the patient's chain in ledger order, each
 * entry with its ledger time and its RFC 9162 inclusion proof, all hanging on one checkpoint, with the
 * patient-index proof (docs/patient-index.md) that the chain's head and length are what the checkpoint
 * commits to. Built from a LedgerNode alone, so the SDK's tests can serve the same JSON without a server.
 */
import { fromBase64, toBase64, toHex } from "../core/encoding/bytes.ts";
import { LedgerError } from "../core/errors.ts";
import { inclusionProofFromNodes } from "../core/merkle/proofs.ts";
import { parseSignedCheckpoint } from "../core/note/checkpoint.ts";
import { patientIndexKey } from "../core/patient-index/hashing.ts";
import { indexProofToJson, type IndexProofJson } from "../core/patient-index/proof.ts";
import { PatientIndex } from "../core/patient-index/tree.ts";
import { META_LEDGER_TIME_PREFIX, PATIENT_INDEX_EXTENSION, type LedgerNode } from "../node/node.ts";
import type { LedgerStore } from "../store/types.ts";
import { HttpError } from "./errors.ts";
import { PATIENT_ID } from "./input.ts";

/** Entries per page by default and at most (docs/api.md section 1). */
export const MAX_HISTORY_PAGE = 500;

/** A page stops growing past this many entry bytes (it always holds at least one entry). */
export const MAX_HISTORY_PAGE_BYTES = 8 * 1024 * 1024;

/** Which page: at most `limit` entries with position > `after`, under the checkpoint of tree size `size`. */
export interface HistoryQuery {
  readonly limit?: number;
  readonly after?: bigint;
  /** The checkpoint's tree size: omitted for the first page (the latest checkpoint). */
  readonly size?: bigint;
}

/** One entry of a history page. */
export interface HistoryEntryJson {
  readonly seq: string;
  readonly position: string;
  readonly id: string;
  readonly ledgerTime: number;
  /** The canonical entry bytes, base64. */
  readonly bytes: string;
  /** RFC 9162 inclusion proof of `position` in the tree of `size` leaves, base64 hashes. */
  readonly inclusion: string[];
}

/** A history page, as GET /v1/patients/{id}/history answers it. */
export interface HistoryPageJson {
  readonly patient: string;
  readonly checkpoint: string;
  readonly size: string;
  readonly indexProof: IndexProofJson;
  readonly chain: { readonly head: string; readonly length: number };
  readonly entries: HistoryEntryJson[];
  readonly next: string | null;
}

/** Options of buildHistoryPage. */
export interface HistoryOptions {
  /** The ledger time of a seq; by default read from the store's `ledger_time.<seq>` meta. */
  readonly ledgerTime?: (seq: bigint) => number;
}

/** The ledger time of seq s: `ledger_time.<b>` for the largest b <= s that has one (docs/node.md). */
export function ledgerTimeFromMeta(store: LedgerStore): (seq: bigint) => number {
  const cache = new Map<bigint, number>();
  return (seq) => {
    const walked: bigint[] = [];
    for (let s = seq; s >= 0n; s--) {
      let time = cache.get(s);
      if (time === undefined) {
        const text = store.getMeta(`${META_LEDGER_TIME_PREFIX}${s}`);
        if (text !== undefined) {
          if (!/^(0|[1-9][0-9]{0,14})$/.test(text)) {
            throw new LedgerError("STORE_CORRUPT", `invalid ledger time at seq ${s}`);
          }
          time = Number(text);
        }
      }
      if (time !== undefined) {
        for (const w of walked) cache.set(w, time);
        cache.set(s, time);
        return time;
      }
      walked.push(s);
    }
    throw new LedgerError("STORE_CORRUPT", `no ledger time recorded at or before seq ${seq}`);
  };
}

/** The patient-index root a checkpoint commits to (its one extension line, docs/node.md). */
export function checkpointIndexRoot(note: string): { size: bigint; indexRoot: Uint8Array } {
  const { checkpoint } = parseSignedCheckpoint(note);
  const prefix = `${PATIENT_INDEX_EXTENSION} `;
  const line = checkpoint.extensions.find((l) => l.startsWith(prefix));
  if (line === undefined) throw new LedgerError("STORE_CORRUPT", "a checkpoint has no patient-index line");
  return { size: checkpoint.size, indexRoot: fromBase64(line.slice(prefix.length)) };
}

/**
 * Build one history page of a patient from a node's store. NOT_FOUND for a checkpoint size the node has
 * no checkpoint of; NOT_FOUND with the non-membership proof, the checkpoint and its size in the error body
 * (an HttpError's `extra`) when the patient has no entries under that checkpoint.
 */
export function buildHistoryPage(
  node: LedgerNode,
  patient: string,
  query: HistoryQuery = {},
  options: HistoryOptions = {},
): HistoryPageJson {
  if (!PATIENT_ID.test(patient)) throw new LedgerError("MALFORMED_INPUT", "patient id is malformed");
  const limit = query.limit ?? MAX_HISTORY_PAGE;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_HISTORY_PAGE) {
    throw new LedgerError("INVALID_ARGUMENT", `limit must be from 1 to ${MAX_HISTORY_PAGE}`);
  }
  const store = node.store;
  const sha = (data: Uint8Array): Uint8Array => node.state.crypto.sha256(data);
  let note: string | undefined;
  if (query.size === undefined) {
    note = node.checkpoint()?.note;
    if (note === undefined) throw new LedgerError("NOT_FOUND", "the node has no checkpoint yet");
  } else {
    note = query.size <= node.size ? store.checkpointAt(query.size) : undefined;
    if (note === undefined) {
      throw new LedgerError(
        "NOT_FOUND",
        `no checkpoint of tree size ${query.size}: page with the size of the first page`,
      );
    }
  }
  const { size, indexRoot } = checkpointIndexRoot(note);
  const key = patientIndexKey(sha, patient);
  const lookup = new PatientIndex(sha, store.indexNodes).lookup(key, indexRoot);
  const indexProof = indexProofToJson(lookup.proof);
  if (lookup.value === undefined) {
    throw new HttpError(
      "NOT_FOUND",
      "the patient has no entries under this checkpoint (the non-membership proof shows it)",
      {
        extra: { indexProof, checkpoint: note, size: size.toString() },
      },
    );
  }
  const ledgerTime = options.ledgerTime ?? ledgerTimeFromMeta(store);
  const from = query.after === undefined ? 0n : query.after + 1n;
  const rows = store
    .patientEntries(key, from, limit)
    .filter((row) => row.position !== null && row.position < size);
  const entries: HistoryEntryJson[] = [];
  let bytes = 0;
  for (const row of rows) {
    if (entries.length > 0 && bytes + row.bytes.length > MAX_HISTORY_PAGE_BYTES) break;
    bytes += row.bytes.length;
    const position = row.position!;
    entries.push({
      seq: row.seq.toString(),
      position: position.toString(),
      id: toHex(row.id),
      ledgerTime: ledgerTime(row.seq),
      bytes: toBase64(row.bytes),
      inclusion: inclusionProofFromNodes(sha, store.merkleNodes, position, size).map((h) => toBase64(h)),
    });
  }
  let next: string | null = null;
  const last = entries.at(-1);
  if (last !== undefined) {
    const probe = store.patientEntries(key, BigInt(last.position) + 1n, 1)[0];
    if (probe?.position !== undefined && probe.position !== null && probe.position < size)
      next = last.position;
  }
  return {
    patient,
    checkpoint: note,
    size: size.toString(),
    indexProof,
    chain: { head: toHex(lookup.value.head), length: lookup.value.length },
    entries,
    next,
  };
}
