/**
 * What the server needs to know about the ledger beyond LedgerState, derived by following the store's
 * entry rows in order (only committed rows: a failed batch is never seen): the ledger time of every seq,
 * each patient's active identifier links, the orgs that authored or validated the patient's records,
 * access events, emergency declarations and key shares, and which record first referenced each blob.
 * Read rights (docs/api.md section 4) and the access log are answered from it. It lives in memory and is
 * rebuilt at start, like the node's state; `catchUp()` before each decision reads the rows committed since.
 */
import { toHex } from "../core/encoding/bytes.ts";
import { LedgerError } from "../core/errors.ts";
import { META_LEDGER_TIME_PREFIX, type LedgerNode } from "../node/node.ts";
import { MAX_READ_LIMIT } from "../store/types.ts";

/** The basis of an access event (docs/entries.md, access.event). */
export type AccessBasis =
  | { readonly type: "care" }
  | { readonly type: "grant"; readonly grant: string }
  | { readonly type: "emergency"; readonly emergency: string };

/** An accepted access.event. */
export interface AccessEventView {
  readonly entry: string;
  readonly position: bigint;
  readonly time: number;
  readonly patient: string;
  readonly org: string;
  readonly records: readonly string[];
  readonly basis: AccessBasis;
}

/** An accepted emergency.access. */
export interface EmergencyView {
  readonly entry: string;
  readonly position: bigint;
  readonly time: number;
  readonly org: string;
  readonly reason: string;
}

/** What the view knows of one patient. */
export interface PatientView {
  /** Active identifier links: org -> blinded identifiers. */
  readonly links: Map<string, Set<string>>;
  /** Orgs that authored or validated an accepted record of the patient. */
  readonly careOrgs: Set<string>;
  readonly accessEvents: AccessEventView[];
  readonly emergencies: EmergencyView[];
  /** Records whose keys a key.share gave under each grant: grant id -> record ids. */
  readonly shares: Map<string, Set<string>>;
  /** The patient's grants (entry ids), in ledger order. */
  readonly grants: string[];
}

/** The decoded shape of an accepted entry (schema-valid: the validator accepted it). */
interface AcceptedEntry {
  readonly kind: string;
  readonly body: Record<string, unknown>;
}

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

function corrupt(message: string): never {
  throw new LedgerError("STORE_CORRUPT", message);
}

/** The server's derived view of the ledger. */
export class LedgerView {
  readonly #node: LedgerNode;
  #nextSeq = 0n;
  #time = -1;
  /** Ledger-time changes: the first seq of each, ascending. */
  readonly #times: { readonly seq: bigint; readonly time: number }[] = [];
  readonly #patients = new Map<string, PatientView>();
  readonly #blobRecords = new Map<string, string>();
  readonly #accessEvents = new Map<string, AccessEventView>();

  constructor(node: LedgerNode) {
    this.#node = node;
  }

  /** The ledger time of the last processed entry (Unix seconds), -1 before any. */
  get lastTime(): number {
    return this.#time;
  }

  /** Read the entry rows committed since the last call. */
  catchUp(): void {
    const store = this.#node.store;
    for (;;) {
      const rows = store.readEntries(this.#nextSeq, MAX_READ_LIMIT);
      if (rows.length === 0) return;
      for (const row of rows) {
        if (row.seq !== this.#nextSeq) corrupt(`entry rows jump from ${this.#nextSeq} to ${row.seq}`);
        const text = store.getMeta(`${META_LEDGER_TIME_PREFIX}${row.seq}`);
        if (text !== undefined) {
          if (!/^(0|[1-9][0-9]{0,14})$/.test(text)) corrupt(`invalid ledger time at seq ${row.seq}`);
          this.#time = Number(text);
          this.#times.push({ seq: row.seq, time: this.#time });
        } else if (this.#time < 0) {
          corrupt(`no ledger time recorded for seq ${row.seq}`);
        }
        if (row.status === "accepted" && row.position !== null) {
          this.#apply(toHex(row.id), row.position, this.#time, row.bytes);
        }
        this.#nextSeq = row.seq + 1n;
      }
    }
  }

  /** The ledger time of a processed seq (docs/node.md section 2). */
  timeAt(seq: bigint): number {
    let lo = 0;
    let hi = this.#times.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.#times[mid]!.seq <= seq) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) throw new LedgerError("INTERNAL", `no ledger time known for seq ${seq}`);
    return this.#times[found]!.time;
  }

  /** What is known of a patient, or undefined when nothing is. */
  patient(id: string): PatientView | undefined {
    return this.#patients.get(id);
  }

  /** The record that first referenced a blob (hex hash) in ledger order, or undefined. */
  blobRecord(hash: string): string | undefined {
    return this.#blobRecords.get(hash);
  }

  /** An accepted access.event by its entry id. */
  accessEvent(id: string): AccessEventView | undefined {
    return this.#accessEvents.get(id);
  }

  #patientView(id: string): PatientView {
    let view = this.#patients.get(id);
    if (view === undefined) {
      view = {
        links: new Map(),
        careOrgs: new Set(),
        accessEvents: [],
        emergencies: [],
        shares: new Map(),
        grants: [],
      };
      this.#patients.set(id, view);
    }
    return view;
  }

  #apply(id: string, position: bigint, time: number, bytes: Uint8Array): void {
    // Accepted, so canonical, schema-valid JSON (docs/entries.md): a plain parse is enough.
    const entry = JSON.parse(utf8Decoder.decode(bytes)) as AcceptedEntry;
    const body = entry.body;
    const patientId = typeof body.patient === "string" ? body.patient : undefined;
    if (patientId === undefined) return;
    const view = this.#patientView(patientId);
    switch (entry.kind) {
      case "identifier.link": {
        const org = body.org as string;
        const set = view.links.get(org) ?? new Set<string>();
        set.add(body.blinded as string);
        view.links.set(org, set);
        break;
      }
      case "identifier.unlink": {
        const org = body.org as string;
        const set = view.links.get(org);
        set?.delete(body.blinded as string);
        if (set?.size === 0) view.links.delete(org);
        break;
      }
      case "record.append":
      case "record.amend": {
        view.careOrgs.add(body.author as string);
        view.careOrgs.add(body.validator as string);
        const record = body.record as string;
        const hashes = [(body.ciphertext as { hash: string }).hash];
        for (const blob of body.blobs as { hash: string }[]) hashes.push(blob.hash);
        for (const hash of hashes) if (!this.#blobRecords.has(hash)) this.#blobRecords.set(hash, record);
        break;
      }
      case "grant":
        view.grants.push(id);
        break;
      case "key.share": {
        const grant = body.grant as string;
        const set = view.shares.get(grant) ?? new Set<string>();
        for (const key of body.keys as { record: string }[]) set.add(key.record);
        view.shares.set(grant, set);
        break;
      }
      case "access.event": {
        const event: AccessEventView = {
          entry: id,
          position,
          time,
          patient: patientId,
          org: body.org as string,
          records: body.records as string[],
          basis: body.basis as AccessBasis,
        };
        view.accessEvents.push(event);
        this.#accessEvents.set(id, event);
        break;
      }
      case "emergency.access":
        view.emergencies.push({
          entry: id,
          position,
          time,
          org: body.org as string,
          reason: body.reason as string,
        });
        break;
      default:
        break;
    }
  }
}
