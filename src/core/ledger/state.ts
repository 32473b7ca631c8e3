/**
 * The ledger state (DESIGN.md section 2, "Validation is deterministic"): everything the validator needs to
 * judge the next entry, and what the node needs to serve it (orgs and their keys and roles, patients and
 * their keys, per-patient chain heads and lengths for the patient index, records, grants). Pure and in
 * memory; rebuilt by replaying the accepted entries in log order. Only applyEntry changes it, through
 * `commit`, and only after every check has passed, so a rejected entry changes nothing.
 */
import { LedgerError } from "../errors.ts";
import { fromHex, toHex } from "../encoding/bytes.ts";
import { canonicalBytes, type JsonValue } from "../encoding/jcs.ts";
import type { CryptoSuite } from "../crypto/suite.ts";
import type { OrgRole } from "./schema.ts";

/** Where an entry sits in the ordered stream: its sequence number and the ledger time of its batch. */
export interface Position {
  /** Index of the entry in the ordered stream (accepted and rejected entries alike), from 0. */
  readonly seq: number;
  /** Ledger time: Unix seconds (UTC) assigned to the entry's batch by the ordering engine. */
  readonly time: number;
}

/** The consortium's k-of-n Ed25519 keys (genesis). */
export interface ConsortiumState {
  readonly threshold: number;
  readonly keys: readonly string[];
}

/** An admitted org. */
export interface OrgState {
  readonly id: string;
  readonly roles: readonly OrgRole[];
  /** Ed25519 public key, hex. */
  readonly signKey: string;
  /** X25519 public key, hex. */
  readonly encKey: string;
  /** Sequence number of the entry that admitted it. */
  readonly admittedAt: number;
  /** Sequence number of the entry that retired it, or null while active. */
  readonly retiredAt: number | null;
}

/** An enrolled patient and the head of the patient's chain. */
export interface PatientState {
  readonly id: string;
  readonly signKey: string;
  readonly encKey: string;
  readonly enrolledBy: string;
  /** Id of the patient's latest accepted entry. */
  readonly head: string;
  /** Number of accepted entries in the patient's chain (enrolment included). */
  readonly length: number;
}

/** A record version (append or amendment). */
export interface RecordState {
  readonly id: string;
  readonly patient: string;
  readonly author: string;
  readonly validator: string;
  readonly withheldFromPatient: boolean;
  /** Clinical month, YYYY-MM. */
  readonly month: string;
  /** Id of the entry that created it. */
  readonly entry: string;
  readonly seq: number;
  readonly supersedes: string | null;
  readonly supersededBy: string | null;
  readonly erased: boolean;
}

/** A grant from a patient to an org; its id is the id of the grant entry. */
export interface GrantState {
  readonly id: string;
  readonly patient: string;
  readonly grantee: string;
  /** Last day (UTC, inclusive) on which the grant is in force. */
  readonly expires: string;
  readonly revoked: boolean;
  readonly seq: number;
}

/** A break-glass declaration; its id is the id of the emergency.access entry. */
export interface EmergencyState {
  readonly id: string;
  readonly patient: string;
  readonly org: string;
  readonly seq: number;
  readonly time: number;
}

/** One change made by an accepted entry. */
export type StateChange =
  | { readonly type: "genesis"; readonly origin: string; readonly consortium: ConsortiumState }
  | { readonly type: "org"; readonly org: OrgState }
  | { readonly type: "patient"; readonly patient: PatientState }
  | { readonly type: "record"; readonly record: RecordState }
  | { readonly type: "grant"; readonly grant: GrantState }
  | { readonly type: "emergency"; readonly emergency: EmergencyState }
  | { readonly type: "link"; readonly org: string; readonly blinded: string; readonly patient: string }
  | { readonly type: "unlink"; readonly org: string; readonly blinded: string };

/** Seconds in a day. */
const DAY_SECONDS = 86_400;
/** Largest ledger time accepted: 9999-12-31T23:59:59Z. */
export const MAX_LEDGER_TIME = 253_402_300_799;

/** The last day ledgerDay computed: a batch's entries share one ledger time, so mostly one day. */
let lastDay = { day: Number.NaN, text: "" };

/** The UTC day (YYYY-MM-DD) of a ledger time; pure, no clock. */
export function ledgerDay(time: number): string {
  const day = Math.floor(time / DAY_SECONDS);
  if (day !== lastDay.day) {
    lastDay = { day, text: new Date(day * DAY_SECONDS * 1000).toISOString().slice(0, 10) };
  }
  return lastDay.text;
}

/** The UTC month (YYYY-MM) of a ledger time. */
export function ledgerMonth(time: number): string {
  return ledgerDay(time).slice(0, 7);
}

function sortedValues<V>(map: ReadonlyMap<string, V>): V[] {
  return [...map.keys()].sort().map((k) => map.get(k)!);
}

/** The in-memory ledger state. */
export class LedgerState {
  /** The crypto suite used to hash and verify (a capability, not state). */
  readonly crypto: CryptoSuite;
  #origin: string | null = null;
  #consortium: ConsortiumState | null = null;
  readonly #orgs = new Map<string, OrgState>();
  readonly #patients = new Map<string, PatientState>();
  readonly #records = new Map<string, RecordState>();
  readonly #grants = new Map<string, GrantState>();
  // Grant ids per patient, so a record append looks at its patient's grants only.
  readonly #grantsByPatient = new Map<string, string[]>();
  readonly #emergencies = new Map<string, EmergencyState>();
  readonly #identifiers = new Map<string, string>();
  readonly #entryIds = new Set<string>();
  #accepted = 0;
  #last: Position | null = null;
  // Running hash over the ids of accepted entries, in order: commits the accepted sequence in 32 bytes.
  #acceptedHash: Uint8Array = new Uint8Array(32);

  /** An empty state, before genesis. */
  constructor(crypto: CryptoSuite) {
    this.crypto = crypto;
  }

  /** The log origin named by genesis, or null before genesis. */
  get origin(): string | null {
    return this.#origin;
  }
  /** The consortium keys and threshold, or null before genesis. */
  get consortium(): ConsortiumState | null {
    return this.#consortium;
  }
  /** Number of accepted entries. */
  get accepted(): number {
    return this.#accepted;
  }
  /** Position of the last accepted entry, or null when none was accepted. */
  get lastPosition(): Position | null {
    return this.#last;
  }
  /** Every org ever admitted, by id (retired ones included). */
  get orgs(): ReadonlyMap<string, OrgState> {
    return this.#orgs;
  }
  /** Every enrolled patient, by pseudonymous id. */
  get patients(): ReadonlyMap<string, PatientState> {
    return this.#patients;
  }
  /** Every record version, by record id. */
  get records(): ReadonlyMap<string, RecordState> {
    return this.#records;
  }
  /** Every grant, by grant entry id. */
  get grants(): ReadonlyMap<string, GrantState> {
    return this.#grants;
  }
  /** Every emergency declaration, by entry id. */
  get emergencies(): ReadonlyMap<string, EmergencyState> {
    return this.#emergencies;
  }

  /** True when an entry with this id was accepted. */
  hasEntry(id: string): boolean {
    return this.#entryIds.has(id);
  }

  /** True when the org is admitted and not retired. */
  isOrgActive(id: string): boolean {
    const org = this.#orgs.get(id);
    return org !== undefined && org.retiredAt === null;
  }

  /** The patient an org's blinded identifier is linked to, if any (DESIGN.md section 6). */
  identifierOwner(org: string, blinded: string): string | undefined {
    return this.#identifiers.get(`${org}/${blinded}`);
  }

  /** The head and length of a patient's chain as the patient index stores them (DESIGN.md section 2). */
  chainHead(patientId: string): { head: Uint8Array; length: number } | undefined {
    const patient = this.#patients.get(patientId);
    return patient === undefined ? undefined : { head: fromHex(patient.head), length: patient.length };
  }

  /** True when the grant is in force at a ledger time: not revoked, not expired, grantee still active. */
  isGrantActive(grant: GrantState, time: number): boolean {
    return !grant.revoked && ledgerDay(time) <= grant.expires && this.isOrgActive(grant.grantee);
  }

  /** The grants of a patient in force at a ledger time, sorted by id. */
  activeGrants(patientId: string, time: number): GrantState[] {
    const ids = [...(this.#grantsByPatient.get(patientId) ?? [])].sort();
    return ids.map((id) => this.#grants.get(id)!).filter((g) => this.isGrantActive(g, time));
  }

  /**
   * Check that a position may follow the last accepted one: sequence numbers increase and ledger time
   * never goes back. A violation is a bug in the caller's ordered stream, not in an entry: INVALID_ARGUMENT.
   */
  checkPosition(position: Position): void {
    const { seq, time } = position;
    if (!Number.isSafeInteger(seq) || seq < 0 || !Number.isSafeInteger(time) || time < 0) {
      throw new LedgerError("INVALID_ARGUMENT", "position seq and time must be non-negative integers");
    }
    if (time > MAX_LEDGER_TIME) throw new LedgerError("INVALID_ARGUMENT", "ledger time beyond year 9999");
    const last = this.#last;
    if (last !== null && (seq <= last.seq || time < last.time)) {
      throw new LedgerError("INVALID_ARGUMENT", "positions must increase and ledger time must not go back");
    }
  }

  /**
   * Apply the changes of an accepted entry (called by applyEntry only, after every check passed): record
   * its id and position, advance the patient's chain when `chain` names one, then apply each change.
   */
  commit(id: string, position: Position, chain: string | null, changes: readonly StateChange[]): void {
    this.#entryIds.add(id);
    this.#accepted++;
    this.#last = { seq: position.seq, time: position.time };
    const link = new Uint8Array(64);
    link.set(this.#acceptedHash, 0);
    link.set(fromHex(id), 32);
    this.#acceptedHash = this.crypto.sha256(link);
    if (chain !== null) {
      const patient = this.#patients.get(chain)!;
      this.#patients.set(chain, { ...patient, head: id, length: patient.length + 1 });
    }
    for (const change of changes) {
      switch (change.type) {
        case "genesis":
          this.#origin = change.origin;
          this.#consortium = change.consortium;
          break;
        case "org":
          this.#orgs.set(change.org.id, change.org);
          break;
        case "patient":
          this.#patients.set(change.patient.id, change.patient);
          break;
        case "record":
          this.#records.set(change.record.id, change.record);
          break;
        case "grant":
          if (!this.#grants.has(change.grant.id)) {
            const ids = this.#grantsByPatient.get(change.grant.patient) ?? [];
            ids.push(change.grant.id);
            this.#grantsByPatient.set(change.grant.patient, ids);
          }
          this.#grants.set(change.grant.id, change.grant);
          break;
        case "emergency":
          this.#emergencies.set(change.emergency.id, change.emergency);
          break;
        case "link":
          this.#identifiers.set(`${change.org}/${change.blinded}`, change.patient);
          break;
        case "unlink":
          this.#identifiers.delete(`${change.org}/${change.blinded}`);
          break;
      }
    }
  }

  /** A deterministic JSON snapshot of the whole state (maps sorted by key), for digests and audits. */
  toJson(): JsonValue {
    const identifiers = [...this.#identifiers.keys()].sort().map((key) => {
      const [org, blinded] = key.split("/") as [string, string];
      return { org, blinded, patient: this.#identifiers.get(key)! };
    });
    // Every stored value is a plain object of strings, numbers, booleans, null and arrays: JSON as is.
    const snapshot = {
      origin: this.#origin,
      consortium: this.#consortium,
      accepted: this.#accepted,
      acceptedHash: toHex(this.#acceptedHash),
      last: this.#last,
      orgs: sortedValues(this.#orgs),
      patients: sortedValues(this.#patients),
      records: sortedValues(this.#records),
      grants: sortedValues(this.#grants),
      emergencies: sortedValues(this.#emergencies),
      identifiers,
    };
    return snapshot as unknown as JsonValue;
  }

  /** SHA-256 (hex) of the canonical JSON of toJson(): equal on every node that accepted the same entries. */
  digest(): string {
    return toHex(this.crypto.sha256(canonicalBytes(this.toJson(), { maxDepth: 16, maxBytes: 2 ** 31 })));
  }
}
