/**
 * Who may read what (docs/api.md section 4), decided on the server too, so that a stolen org key without a
 * grant, or a revoked grantee, cannot even collect ciphertext. Every decision is made against the ledger
 * state and the server's ledger view at "ledger now": the node's clock, but never before the last ledger
 * time (the time the next batch would get), so grants expire and windows close exactly as the validator
 * would judge them.
 */
import { fromHex, fromUtf8 } from "../core/encoding/bytes.ts";
import { LedgerError } from "../core/errors.ts";
import type { LedgerState, RecordState } from "../core/ledger/state.ts";
import { EMERGENCY_WINDOW_SECONDS } from "../core/ledger/validator.ts";
import type { LedgerStore } from "../store/types.ts";
import type { LedgerView } from "./ledger-view.ts";
import type { LocalStore } from "./local-store.ts";

/** How long an access event lets its org download the records it names: one hour of ledger time. */
export const ACCESS_EVENT_WINDOW_SECONDS = 3600;

/** The header naming the access event an org downloads ciphertext under. */
export const ACCESS_HEADER = "medledger-access";

/** An authenticated caller (docs/api.md section 2). */
export type Caller =
  | { readonly kind: "org"; readonly id: string; readonly keyid: string; readonly signKey: string }
  | { readonly kind: "patient"; readonly id: string; readonly keyid: string; readonly signKey: string }
  | { readonly kind: "consortium"; readonly id: string; readonly keyid: string; readonly signKey: string };

function refuse(message: string): never {
  throw new LedgerError("NOT_PERMITTED", message);
}

/** Ledger now: the clock (Unix seconds), never before the last ledger time. */
export function ledgerNow(view: LedgerView, clockSeconds: number): number {
  return Math.max(clockSeconds, view.lastTime);
}

/** True when an org has an active grant of the patient at `now`. */
export function hasActiveGrant(state: LedgerState, patient: string, org: string, now: number): boolean {
  return state.activeGrants(patient, now).some((g) => g.grantee === org);
}

/** True when an org declared an emergency for the patient within the last 72 hours of ledger time. */
export function hasRecentEmergency(view: LedgerView, patient: string, org: string, now: number): boolean {
  const emergencies = view.patient(patient)?.emergencies ?? [];
  return emergencies.some((e) => e.org === org && now - e.time <= EMERGENCY_WINDOW_SECONDS);
}

/**
 * The read basis of docs/api.md section 4: the patient; an org with an active grant; an org with a care
 * relationship (enrolled the patient, holds an active identifier link, authored or validated one of the
 * patient's accepted records); an org with an emergency declaration in the last 72 hours.
 */
export function hasReadBasis(
  state: LedgerState,
  view: LedgerView,
  caller: Caller,
  patient: string,
  now: number,
): boolean {
  if (caller.kind === "patient") return caller.id === patient;
  if (caller.kind !== "org") return false;
  const enrolled = state.patients.get(patient);
  if (enrolled === undefined) return false;
  const org = caller.id;
  if (enrolled.enrolledBy === org) return true;
  const known = view.patient(patient);
  if (known?.links.has(org) === true || known?.careOrgs.has(org) === true) return true;
  return hasActiveGrant(state, patient, org, now) || hasRecentEmergency(view, patient, org, now);
}

/** Throw NOT_PERMITTED unless the caller has a read basis for the patient. */
export function requireReadBasis(
  state: LedgerState,
  view: LedgerView,
  caller: Caller,
  patient: string,
  now: number,
): void {
  if (!hasReadBasis(state, view, caller, patient, now)) {
    refuse(
      "you have no read basis for this patient (docs/api.md section 4): a grant, a care relationship or an emergency declaration",
    );
  }
}

/** True when R's entry wraps its data key for the org (`org:<id>` among its envelopes). */
function entryHasEnvelope(store: LedgerStore, record: RecordState, org: string): boolean {
  const row = store.entryById(fromHex(record.entry));
  if (row === undefined) return false;
  const entry = JSON.parse(fromUtf8(row.bytes)) as { body: { envelopes?: { to: string }[] } };
  return (entry.body.envelopes ?? []).some((e) => e.to === `org:${org}`);
}

/** What checkBlobRelease needs. */
export interface BlobReleaseInput {
  readonly state: LedgerState;
  readonly view: LedgerView;
  readonly store: LedgerStore;
  readonly local: LocalStore;
  readonly caller: Caller;
  /** The blob's SHA-256, lower-case hex. */
  readonly hash: string;
  /** The medledger-access header, when sent. */
  readonly accessEvent: string | undefined;
  readonly now: number;
}

/**
 * Decide whether a stored blob may be released to the caller (docs/api.md section 4, GET /v1/blobs);
 * throws NOT_PERMITTED saying why not. A blob belongs to the record that first referenced it in ledger
 * order (a later record naming the same hash gains nothing), or to the pending queue items naming it.
 */
export function checkBlobRelease(input: BlobReleaseInput): void {
  const { state, view, store, local, caller, hash, now } = input;
  if (caller.kind === "org") {
    // The validator and the author of a pending queue item read its blobs without an access event.
    const readers = local.pendingBlobReaders(hash);
    if (readers.some((r) => r.validator === caller.id || r.author === caller.id)) return;
  }
  const recordId = view.blobRecord(hash);
  const record = recordId === undefined ? undefined : state.records.get(recordId);
  if (record === undefined) refuse("this blob belongs to no record you may read");
  if (record.erased) refuse("the record this blob belongs to was erased");
  if (caller.kind === "patient") {
    if (caller.id !== record.patient) refuse("this blob belongs to another patient's record");
    if (record.withheldFromPatient) {
      refuse("this record is a psychotherapy note, withheld from the patient (docs/records.md section 3)");
    }
    return;
  }
  if (caller.kind !== "org") refuse("only the patient and orgs with access may download ciphertext");
  const org = caller.id;
  if (input.accessEvent === undefined) {
    refuse(
      `an org downloads ciphertext only under its access event: append an access.event naming the record, then send ${ACCESS_HEADER}: <its entry id>`,
    );
  }
  const event = view.accessEvent(input.accessEvent);
  if (event === undefined) refuse(`${ACCESS_HEADER} names no accepted access event`);
  if (event.org !== org || event.patient !== record.patient || !event.records.includes(record.id)) {
    refuse(`the access event of ${ACCESS_HEADER} is not yours for this record`);
  }
  if (now - event.time > ACCESS_EVENT_WINDOW_SECONDS) {
    refuse("the access event is more than an hour old: append a new one");
  }
  const basis = event.basis;
  if (basis.type === "care") {
    const care = record.author === org || (record.validator === org && !record.withheldFromPatient);
    if (!care) refuse("you are not the author or validator of this record");
    return;
  }
  if (record.withheldFromPatient) refuse("a withheld record is released to its author only");
  if (basis.type === "grant") {
    const grant = state.grants.get(basis.grant);
    const grantOk =
      grant !== undefined &&
      grant.patient === record.patient &&
      grant.grantee === org &&
      state.isGrantActive(grant, now);
    if (!grantOk) refuse("the grant of this access event is revoked, expired or not yours");
  } else {
    const declared = state.emergencies.get(basis.emergency);
    const recent =
      declared !== undefined &&
      declared.org === org &&
      declared.patient === record.patient &&
      now - declared.time <= EMERGENCY_WINDOW_SECONDS;
    if (!recent) refuse("the emergency of this access event is not yours or is over 72 hours old");
  }
  // It must hold an envelope for R: in R's entry, or in a key.share under an active grant of the patient.
  const shares = view.patient(record.patient)?.shares;
  const shared = state
    .activeGrants(record.patient, now)
    .some((g) => g.grantee === org && shares?.get(g.id)?.has(record.id) === true);
  if (!shared && !entryHasEnvelope(store, record, org)) refuse("you hold no key envelope for this record");
}
