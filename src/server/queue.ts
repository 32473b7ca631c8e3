/**
 * The validation queue (docs/api.md, "The validation queue"; DESIGN.md section 2): a record built and
 * signed by its author waits on the node until its validator attests it (adds its `validator`
 * signature; the node then submits it to the ledger) or rejects it with a reason the author sees. Queue
 * items are node-local state in DIR/queue.db, never ledger: a rejected item never reaches the ledger.
 *
 * Attesting writes the attested bytes to the item before submitting them, so that after a crash between
 * the ledger's commit and the item's update, `recover()` finds the verdict in the ledger and settles it.
 */
import { fromBase64, fromHex, toBase64, toHex } from "../core/encoding/bytes.ts";
import { LedgerError } from "../core/errors.ts";
import type { CryptoSuite } from "../core/crypto/suite.ts";
import { decodeEntry, encodeEntry, entryId, verifySignature } from "../core/ledger/entry.ts";
import type { Entry, EntryOf, EntrySignature } from "../core/ledger/schema.ts";
import type { LedgerState } from "../core/ledger/state.ts";
import type { LedgerNode, SubmitResult } from "../node/node.ts";
import type { LocalStore, QueueRow, QueueStatus } from "./local-store.ts";
import type { Caller } from "./rights.ts";

/** The reasons a validator may give when it rejects a record (docs/api.md). */
export const QUEUE_REJECT_REASONS = [
  "FHIR_INVALID",
  "PATIENT_MISMATCH",
  "DATE_IMPLAUSIBLE",
  "AUTHOR_UNKNOWN",
  "OTHER",
] as const;

/** A validator's reason for rejecting a queue item. */
export type QueueRejectReason = (typeof QUEUE_REJECT_REASONS)[number];

/** The longest note a validator may attach to a rejection. */
export const MAX_QUEUE_NOTE = 500;

/** A submit result as JSON (docs/api.md, POST /v1/entries). */
export type SubmitResultJson =
  | { readonly seq: string; readonly id: string; readonly accepted: true; readonly position: string }
  | {
      readonly seq: string;
      readonly id: string;
      readonly accepted: false;
      readonly reason: string;
      readonly detail: string;
    };

/** A queue item as the API shows it. */
export interface QueueItemJson {
  readonly queueId: string;
  readonly status: QueueStatus;
  readonly author: string;
  readonly validator: string;
  readonly patient: string;
  readonly kind: string;
  readonly entry: string;
  readonly submittedAt: number;
  readonly reason: string | null;
  readonly note: string | null;
  readonly result: SubmitResultJson | null;
}

/** The JSON form of a node verdict. */
export function submitResultJson(result: SubmitResult): SubmitResultJson {
  const seq = result.seq.toString();
  return result.accepted
    ? { seq, id: result.id, accepted: true, position: result.position.toString() }
    : { seq, id: result.id, accepted: false, reason: result.reason, detail: result.detail };
}

function invalid(reason: string, detail: string): never {
  throw new LedgerError("ENTRY_INVALID", `${reason}: ${detail}`);
}

function sigOrder(sig: EntrySignature): string {
  return `${sig.role}\n${sig.key}`;
}

type RecordEntry = EntryOf<"record.append"> | EntryOf<"record.amend">;

/** The queue service over the node and the local store. */
export class ValidationQueue {
  readonly #node: LedgerNode;
  readonly #local: LocalStore;
  readonly #crypto: CryptoSuite;
  readonly #clockSeconds: () => number;
  /** Items being attested right now: a second attest or a reject meanwhile is a CONFLICT. */
  readonly #busy = new Set<string>();

  constructor(node: LedgerNode, local: LocalStore, crypto: CryptoSuite, clockSeconds: () => number) {
    this.#node = node;
    this.#local = local;
    this.#crypto = crypto;
    this.#clockSeconds = clockSeconds;
  }

  /** Settle items whose attested bytes reached the ledger before a crash (call after node.idle()). */
  recover(): void {
    for (const row of this.#local.attesting()) {
      const found = this.#node.store.entryById(this.#crypto.sha256(row.attested!));
      if (found === undefined) continue;
      const seq = found.seq;
      const id = toHex(found.id);
      const result: SubmitResult =
        found.status === "accepted" && found.position !== null
          ? { seq, id, accepted: true, position: found.position }
          : { seq, id, accepted: false, reason: found.reason ?? "", detail: "" };
      this.#settleWith(row.queueId, result);
    }
  }

  /**
   * Queue an author-signed record (docs/api.md, POST /v1/queue). Returns the item and whether it is new
   * (the same bytes queued twice give the existing item).
   */
  submit(caller: Caller, bytes: Uint8Array): Promise<{ item: QueueItemJson; created: boolean }> {
    return this.#submit(caller, bytes);
  }

  async #submit(caller: Caller, bytes: Uint8Array): Promise<{ item: QueueItemJson; created: boolean }> {
    if (caller.kind !== "org") throw new LedgerError("NOT_PERMITTED", "only an author org queues records");
    const decoded = decodeEntry(bytes);
    if (!decoded.ok) invalid(decoded.reason, decoded.detail);
    const entry: Entry = decoded.entry;
    if (entry.kind !== "record.append" && entry.kind !== "record.amend") {
      invalid("SCHEMA", "only record.append and record.amend wait in the validation queue");
    }
    const record: RecordEntry = entry;
    const body = record.body;
    if (body.author !== caller.id) {
      throw new LedgerError("NOT_PERMITTED", "you may queue only records you author");
    }
    const [sig, ...others] = record.sigs;
    if (sig === undefined || others.length > 0 || sig.role !== "author") {
      invalid("MISSING_SIGNATURE", "a queued record carries exactly one signature, its author's");
    }
    if (sig.key !== caller.signKey)
      throw new LedgerError("NOT_PERMITTED", "the author signature is not yours");
    if (!(await verifySignature(this.#crypto, record, sig))) {
      invalid("BAD_SIGNATURE", "the author signature does not verify");
    }
    this.#checkParties(this.#node.state, body);
    const store = this.#node.store;
    const hashes = [body.ciphertext.hash, ...body.blobs.map((b) => b.hash)];
    for (const hash of hashes) {
      if (!store.hasBlob(fromHex(hash))) {
        throw new LedgerError(
          "INVALID_ARGUMENT",
          `blob ${hash} was not uploaded: PUT /v1/blobs/${hash} first`,
        );
      }
    }
    const queueId = entryId(this.#crypto, bytes);
    const created = this.#local.addQueueItem({
      queueId,
      author: body.author,
      validator: body.validator,
      patient: body.patient,
      kind: record.kind,
      entry: bytes,
      submittedAt: this.#clockSeconds(),
      blobs: hashes,
    });
    return { item: this.#json(this.#local.queueItem(queueId)!), created };
  }

  /** The ledger checks that can be made now, so that a doomed record is refused before it waits. */
  #checkParties(state: LedgerState, body: RecordEntry["body"]): void {
    const org = (id: string, role: "author" | "validator"): void => {
      const found = state.orgs.get(id);
      if (found === undefined) invalid("UNKNOWN_ORG", `${id} is not an admitted org`);
      if (found.retiredAt !== null) invalid("ORG_RETIRED", `${id} is retired`);
      if (!found.roles.includes(role)) invalid("ROLE_MISSING", `${id} lacks the ${role} role`);
    };
    org(body.author, "author");
    org(body.validator, "validator");
    if (body.author === body.validator) invalid("SELF_ATTESTATION", "the validator must be another org");
    const patient = state.patients.get(body.patient);
    if (patient === undefined) invalid("PATIENT_UNKNOWN", "the patient is not enrolled");
    if (patient.head !== body.prev) {
      invalid("CHAIN_BROKEN", "prev is not the patient's latest entry: rebuild the record on the new head");
    }
  }

  /** The items naming the caller in a role (docs/api.md, GET /v1/queue). */
  list(
    caller: Caller,
    role: "validator" | "author",
    status: QueueStatus | undefined,
    after: string | undefined,
    limit: number,
  ): { items: QueueItemJson[]; next: string | null } {
    if (caller.kind !== "org") throw new LedgerError("NOT_PERMITTED", "only orgs have queue items");
    const rows = this.#local.listQueue(role, caller.id, status, after, limit + 1);
    const page = rows.slice(0, limit);
    return {
      items: page.map((row) => this.#json(row)),
      next: rows.length > limit ? page.at(-1)!.queueId : null,
    };
  }

  /** One item, to its author or validator. */
  get(caller: Caller, queueId: string): QueueItemJson {
    return this.#json(this.#participant(caller, queueId, "either"));
  }

  #participant(caller: Caller, queueId: string, who: "validator" | "either"): QueueRow {
    const row = this.#local.queueItem(queueId);
    if (row === undefined) throw new LedgerError("NOT_FOUND", "no such queue item");
    const allowed =
      caller.kind === "org" &&
      (caller.id === row.validator || (who === "either" && caller.id === row.author));
    if (!allowed) {
      throw new LedgerError(
        "NOT_PERMITTED",
        who === "validator"
          ? "only the item's validator may do this"
          : "only the item's author or validator may read it",
      );
    }
    return row;
  }

  #pending(row: QueueRow): void {
    if (row.status !== "pending")
      throw new LedgerError("CONFLICT", `the queue item is ${row.status} already`);
    if (this.#busy.has(row.queueId)) throw new LedgerError("CONFLICT", "the queue item is being attested");
  }

  /**
   * The validator attests: its signature is added, the entry goes to the ledger, and the ledger's verdict
   * settles the item (docs/api.md, POST /v1/queue/{queueId}/attest).
   */
  async attest(
    caller: Caller,
    queueId: string,
    signature: string,
  ): Promise<
    | { status: "attested"; result: SubmitResultJson }
    | { status: "rejected"; reason: string; result: SubmitResultJson }
  > {
    const row = this.#participant(caller, queueId, "validator");
    this.#pending(row);
    let sigBytes: Uint8Array;
    try {
      sigBytes = fromBase64(signature);
    } catch {
      throw new LedgerError("MALFORMED_INPUT", "signature must be strict base64");
    }
    if (sigBytes.length !== 64) throw new LedgerError("MALFORMED_INPUT", "signature must be 64 bytes");
    const decoded = decodeEntry(row.entry);
    if (!decoded.ok) throw new LedgerError("STORE_CORRUPT", "a queued entry no longer decodes");
    const entry = decoded.entry;
    const validatorSig: EntrySignature = { role: "validator", key: caller.signKey, sig: signature };
    const sigs = [...entry.sigs, validatorSig].sort((a, b) => (sigOrder(a) < sigOrder(b) ? -1 : 1));
    const attested = { ...entry, sigs } as Entry;
    if (!(await verifySignature(this.#crypto, attested, validatorSig))) {
      invalid("BAD_SIGNATURE", "the validator signature does not verify over this entry");
    }
    const bytes = encodeEntry(attested);
    // Checked again after the await: another request may have settled or taken the item meanwhile.
    this.#pending(this.#local.queueItem(queueId)!);
    this.#busy.add(queueId);
    try {
      this.#local.markAttesting(queueId, bytes);
      const [result] = await this.#node.submit([bytes]);
      if (result === undefined) throw new LedgerError("INTERNAL", "the node gave no verdict");
      this.#settleWith(queueId, result);
      const json = submitResultJson(result);
      return result.accepted
        ? { status: "attested", result: json }
        : { status: "rejected", reason: result.reason, result: json };
    } finally {
      this.#busy.delete(queueId);
    }
  }

  #settleWith(queueId: string, result: SubmitResult): void {
    const json = JSON.stringify(submitResultJson(result));
    if (result.accepted) this.#local.settle(queueId, "attested", null, null, json);
    else this.#local.settle(queueId, "rejected", result.reason, null, json);
  }

  /** The validator rejects with a reason (and a note for the author, kept on the node only). */
  reject(caller: Caller, queueId: string, reason: QueueRejectReason, note: string | null): void {
    const row = this.#participant(caller, queueId, "validator");
    this.#pending(row);
    this.#local.settle(queueId, "rejected", reason, note, null);
  }

  #json(row: QueueRow): QueueItemJson {
    return {
      queueId: row.queueId,
      status: row.status,
      author: row.author,
      validator: row.validator,
      patient: row.patient,
      kind: row.kind,
      entry: toBase64(row.entry),
      submittedAt: row.submittedAt,
      reason: row.reason,
      note: row.note,
      result: row.result === null ? null : (JSON.parse(row.result) as SubmitResultJson),
    };
  }
}
