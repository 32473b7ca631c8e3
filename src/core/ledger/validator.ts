/**
 * The deterministic validator (DESIGN.md section 2, "Validation is deterministic"; docs/entries.md, "Rules").
 * applyEntry judges one entry of the ordered stream against the state built from the entries before it:
 * no clock (ledger time comes from the entry's position), no randomness, no I/O, and a fixed order of
 * checks, so every node reaches the same verdict, the same rejection code and the same state. A rejected
 * entry changes nothing: checks only read the state, and the changes are committed after the last check.
 */
import { LedgerError } from "../errors.ts";
import { bytesEqual, fromUtf8, toHex } from "../encoding/bytes.ts";
import {
  decodeEntry,
  entryId,
  orgRecipient,
  patientRecipient,
  signedContentOf,
  verifySignature,
} from "./entry.ts";
import { precheckVerified, type EntryPrecheck } from "./precheck.ts";
import { reject, type Rejection } from "./rejections.ts";
import type { BodyOf, Entry, EntryKind, OrgRole, SignatureRole } from "./schema.ts";
import {
  ledgerDay,
  ledgerMonth,
  type LedgerState,
  type OrgState,
  type PatientState,
  type Position,
  type RecordState,
  type StateChange,
} from "./state.ts";

/** The verdict on one entry; an accepted entry comes with its decoded form. */
export type ApplyResult = { readonly accepted: true; readonly id: string; readonly entry: Entry } | Rejection;

/** How long a break-glass declaration covers access events: 72 hours of ledger time. */
export const EMERGENCY_WINDOW_SECONDS = 72 * 3600;

/** Who must sign an entry: one principal in a role, or k of the consortium keys. */
type Signer =
  | { readonly role: "consortium"; readonly keys: ReadonlySet<string>; readonly threshold: number }
  | { readonly role: Exclude<SignatureRole, "consortium">; readonly key: string; readonly who: string };

/** What a rule produces when every check passed: the patient whose chain advances and the changes. */
interface Accept {
  readonly chain: string | null;
  readonly changes: readonly StateChange[];
}

/** What the signature check needs. */
interface SigContext {
  readonly state: LedgerState;
  readonly entry: Entry;
  /** The entry's canonical bytes (its signed content is cut out of them when a signature is verified). */
  readonly bytes: Uint8Array;
  /** Signatures a pre-check of these bytes verified (precheck.ts): bit i for signature i. */
  readonly verified: number;
}

interface Context<K extends EntryKind> extends SigContext {
  readonly body: BodyOf<K>;
  readonly id: string;
  readonly position: Position;
}

type Rule<K extends EntryKind> = (ctx: Context<K>) => Promise<Rejection | Accept>;

function isRejection<T extends object>(value: T | Rejection | undefined): value is Rejection {
  return value !== undefined && "reason" in value;
}

/**
 * Signatures (docs/entries.md, rule 4): every signature's role must be expected (else UNEXPECTED_SIGNATURE,
 * also for a second signature in a one-signer role); its key must be the registered key of the principal
 * in that role, or a consortium key (else BAD_SIGNATURE); every expected role must be signed, the
 * consortium by at least k keys (else MISSING_SIGNATURE); then every signature must verify (BAD_SIGNATURE).
 */
async function checkSignatures(ctx: SigContext, signers: readonly Signer[]): Promise<Rejection | undefined> {
  const counts = new Map<SignatureRole, number>();
  for (const sig of ctx.entry.sigs) {
    const signer = signers.find((s) => s.role === sig.role);
    if (signer === undefined) {
      return reject("UNEXPECTED_SIGNATURE", `a ${ctx.entry.kind} takes no signature in role ${sig.role}`);
    }
    const count = (counts.get(sig.role) ?? 0) + 1;
    counts.set(sig.role, count);
    if (signer.role === "consortium") {
      if (!signer.keys.has(sig.key)) {
        return reject("BAD_SIGNATURE", "a consortium signature by a key outside the consortium");
      }
    } else {
      if (count > 1) return reject("UNEXPECTED_SIGNATURE", `more than one signature in role ${sig.role}`);
      if (sig.key !== signer.key) {
        return reject(
          "BAD_SIGNATURE",
          `the ${sig.role} signature is not by the key registered for ${signer.who}`,
        );
      }
    }
  }
  for (const signer of signers) {
    const need = signer.role === "consortium" ? signer.threshold : 1;
    const have = counts.get(signer.role) ?? 0;
    if (have < need) {
      return reject(
        "MISSING_SIGNATURE",
        `${need} signature(s) in role ${signer.role} required, ${have} present`,
      );
    }
  }
  // A signature the pre-check verified is not verified again; any other is verified here, so a missing or
  // partial pre-check changes nothing but the time taken.
  const sigs = ctx.entry.sigs;
  if (sigs.every((_, i) => precheckVerified(ctx.verified, i))) return undefined;
  let content: Uint8Array | undefined;
  const results = await Promise.all(
    sigs.map((sig, i) => {
      if (precheckVerified(ctx.verified, i)) return Promise.resolve(true);
      content ??= signedContentOf(ctx.bytes, ctx.entry);
      return verifySignature(ctx.state.crypto, ctx.entry, sig, content);
    }),
  );
  const bad = results.indexOf(false);
  if (bad >= 0) return reject("BAD_SIGNATURE", `the ${ctx.entry.sigs[bad]!.role} signature does not verify`);
  return undefined;
}

function consortiumSigner(state: LedgerState): Signer {
  const consortium = state.consortium!;
  return { role: "consortium", keys: new Set(consortium.keys), threshold: consortium.threshold };
}

/** An admitted, active org holding a role (when one is asked for). */
function activeOrg(state: LedgerState, id: string, role?: OrgRole): OrgState | Rejection {
  const org = state.orgs.get(id);
  if (org === undefined) return reject("UNKNOWN_ORG", `org ${id} was never admitted`);
  if (org.retiredAt !== null)
    return reject("ORG_RETIRED", `org ${id} was retired at position ${org.retiredAt}`);
  if (role !== undefined && !org.roles.includes(role)) {
    return reject("ROLE_MISSING", `org ${id} does not hold the ${role} role`);
  }
  return org;
}

function enrolled(state: LedgerState, id: string): PatientState | Rejection {
  return state.patients.get(id) ?? reject("PATIENT_UNKNOWN", `patient ${id} is not enrolled`);
}

function chainLinks(patient: PatientState, prev: string): Rejection | undefined {
  if (prev === patient.head) return undefined;
  return reject("CHAIN_BROKEN", `prev must be ${patient.head}, the id of the patient's latest entry`);
}

/** A record version of this patient that is not erased. */
function liveRecord(state: LedgerState, patient: string, id: string): RecordState | Rejection {
  const record = state.records.get(id);
  if (record === undefined || record.patient !== patient) {
    return reject("RECORD_UNKNOWN", `record ${id} is not a record of this patient`);
  }
  if (record.erased) return reject("RECORD_ERASED", `record ${id} was erased`);
  return record;
}

/**
 * Recipients (docs/entries.md, "Key envelopes"): first no envelope outside `allowed` (ENVELOPE_FORBIDDEN:
 * a leak is worse than a gap), then every `required` recipient present (ENVELOPE_MISSING).
 */
function checkRecipients(
  present: readonly string[],
  required: readonly string[],
  allowed: ReadonlySet<string>,
): Rejection | undefined {
  for (const to of present) {
    if (!allowed.has(to)) return reject("ENVELOPE_FORBIDDEN", `no key envelope may be made for ${to}`);
  }
  const have = new Set(present);
  for (const to of required) {
    if (!have.has(to)) return reject("ENVELOPE_MISSING", `a key envelope for ${to} is required`);
  }
  return undefined;
}

function orgDeclared(decl: BodyOf<"org.admit">["org"], seq: number): OrgState {
  return {
    id: decl.id,
    roles: decl.roles,
    signKey: decl.signKey,
    encKey: decl.encKey,
    admittedAt: seq,
    retiredAt: null,
  };
}

const genesis: Rule<"genesis"> = async (ctx) => {
  const { body } = ctx;
  const { threshold, keys } = body.consortium;
  const bad = await checkSignatures(ctx, [{ role: "consortium", keys: new Set(keys), threshold }]);
  if (bad) return bad;
  const signKeys = new Set(body.orgs.map((o) => o.signKey));
  const encKeys = new Set(body.orgs.map((o) => o.encKey));
  if (signKeys.size !== body.orgs.length || encKeys.size !== body.orgs.length) {
    return reject("ORG_EXISTS", "two genesis orgs share a key");
  }
  return {
    chain: null,
    changes: [
      { type: "genesis", origin: body.origin, consortium: { threshold, keys } },
      ...body.orgs.map((o): StateChange => ({ type: "org", org: orgDeclared(o, ctx.position.seq) })),
    ],
  };
};

const orgAdmit: Rule<"org.admit"> = async (ctx) => {
  const { state, body } = ctx;
  const bad = await checkSignatures(ctx, [consortiumSigner(state)]);
  if (bad) return bad;
  if (state.orgs.has(body.org.id))
    return reject("ORG_EXISTS", `org id ${body.org.id} is taken (ids are never reused)`);
  for (const org of state.orgs.values()) {
    if (org.signKey === body.org.signKey || org.encKey === body.org.encKey) {
      return reject("ORG_EXISTS", `a key of ${body.org.id} is already registered to org ${org.id}`);
    }
  }
  return { chain: null, changes: [{ type: "org", org: orgDeclared(body.org, ctx.position.seq) }] };
};

const orgRetire: Rule<"org.retire"> = async (ctx) => {
  const { state, body } = ctx;
  const bad = await checkSignatures(ctx, [consortiumSigner(state)]);
  if (bad) return bad;
  const org = activeOrg(state, body.org);
  if (isRejection(org)) return org;
  return { chain: null, changes: [{ type: "org", org: { ...org, retiredAt: ctx.position.seq } }] };
};

const patientEnroll: Rule<"patient.enroll"> = async (ctx) => {
  const { state, body } = ctx;
  const org = activeOrg(state, body.org);
  if (isRejection(org)) return org;
  const bad = await checkSignatures(ctx, [
    { role: "patient", key: body.signKey, who: `patient ${body.patient}` },
    { role: "org", key: org.signKey, who: `org ${org.id}` },
  ]);
  if (bad) return bad;
  if (state.patients.has(body.patient))
    return reject("PATIENT_EXISTS", `patient ${body.patient} is enrolled`);
  const patient: PatientState = {
    id: body.patient,
    signKey: body.signKey,
    encKey: body.encKey,
    enrolledBy: org.id,
    head: ctx.id,
    length: 1,
  };
  return { chain: null, changes: [{ type: "patient", patient }] };
};

/** Common prelude of a patient entry signed by the patient alone: enrolled, signed, chained. */
async function patientSigned(
  ctx: SigContext,
  body: { readonly patient: string; readonly prev: string },
  extra?: () => Rejection | undefined,
): Promise<PatientState | Rejection> {
  const patient = enrolled(ctx.state, body.patient);
  if (isRejection(patient)) return patient;
  const early = extra?.();
  if (early) return early;
  const bad = await checkSignatures(ctx, [
    { role: "patient", key: patient.signKey, who: `patient ${patient.id}` },
  ]);
  if (bad) return bad;
  return chainLinks(patient, body.prev) ?? patient;
}

/**
 * Common prelude of an entry by an org about a patient: signed by the org and, when `patientSigns`, also by
 * the patient (identifier link and unlink); by the org alone for access events and emergency access.
 */
async function orgAboutPatient(
  ctx: SigContext,
  body: { readonly patient: string; readonly prev: string; readonly org: string },
  patientSigns: boolean,
): Promise<PatientState | Rejection> {
  const { state } = ctx;
  const patient = enrolled(state, body.patient);
  if (isRejection(patient)) return patient;
  const org = activeOrg(state, body.org);
  if (isRejection(org)) return org;
  const signers: Signer[] = [{ role: "org", key: org.signKey, who: `org ${org.id}` }];
  if (patientSigns) signers.push({ role: "patient", key: patient.signKey, who: `patient ${patient.id}` });
  const bad = await checkSignatures(ctx, signers);
  if (bad) return bad;
  return chainLinks(patient, body.prev) ?? patient;
}

const identifierLink: Rule<"identifier.link"> = async (ctx) => {
  const patient = await orgAboutPatient(ctx, ctx.body, true);
  if (isRejection(patient)) return patient;
  const { org, blinded } = ctx.body;
  const owner = ctx.state.identifierOwner(org, blinded);
  if (owner !== undefined) return reject("IDENTIFIER_LINKED", `this identifier of ${org} is already linked`);
  return { chain: patient.id, changes: [{ type: "link", org, blinded, patient: patient.id }] };
};

const identifierUnlink: Rule<"identifier.unlink"> = async (ctx) => {
  const patient = await orgAboutPatient(ctx, ctx.body, true);
  if (isRejection(patient)) return patient;
  const { org, blinded } = ctx.body;
  if (ctx.state.identifierOwner(org, blinded) !== patient.id) {
    return reject("IDENTIFIER_UNKNOWN", `this identifier of ${org} is not linked to the patient`);
  }
  return { chain: patient.id, changes: [{ type: "unlink", org, blinded }] };
};

/** record.append and record.amend (docs/entries.md, rules R1 to R8). */
async function recordVersion(
  ctx: SigContext & { readonly id: string; readonly position: Position },
  body: BodyOf<"record.append"> | BodyOf<"record.amend">,
): Promise<Rejection | Accept> {
  const { state, position } = ctx;
  const patient = enrolled(state, body.patient);
  if (isRejection(patient)) return patient;
  const author = activeOrg(state, body.author, "author");
  if (isRejection(author)) return author;
  const validator = activeOrg(state, body.validator, "validator");
  if (isRejection(validator)) return validator;
  if (author.id === validator.id) {
    return reject("SELF_ATTESTATION", "the validator must be another org than the author");
  }
  const bad = await checkSignatures(ctx, [
    { role: "author", key: author.signKey, who: `org ${author.id}` },
    { role: "validator", key: validator.signKey, who: `org ${validator.id}` },
  ]);
  if (bad) return bad;
  const broken = chainLinks(patient, body.prev);
  if (broken) return broken;
  if (state.records.has(body.record)) return reject("DUPLICATE_RECORD", `record id ${body.record} is taken`);
  const changes: StateChange[] = [];
  let supersedes: string | null = null;
  if ("supersedes" in body) {
    const old = liveRecord(state, patient.id, body.supersedes);
    if (isRejection(old)) return old;
    if (old.supersededBy !== null) {
      return reject("RECORD_SUPERSEDED", `record ${old.id} was already amended by ${old.supersededBy}`);
    }
    if (old.author !== author.id)
      return reject("NOT_PERMITTED", `only ${old.author} may amend record ${old.id}`);
    supersedes = old.id;
    changes.push({ type: "record", record: { ...old, supersededBy: body.record } });
  }
  if (body.month > ledgerMonth(position.time)) {
    return reject("TIME_INVALID", `clinical month ${body.month} is after the ledger month`);
  }
  // DESIGN.md section 4: psychotherapy notes are wrapped for the authoring org only, never the patient.
  const authorTo = orgRecipient(author.id);
  let required: string[];
  let allowed: Set<string>;
  if (body.withheldFromPatient) {
    required = [authorTo];
    allowed = new Set(required);
  } else {
    required = [patientRecipient(patient.id), authorTo, orgRecipient(validator.id)];
    allowed = new Set(required);
    for (const grant of state.activeGrants(patient.id, position.time))
      allowed.add(orgRecipient(grant.grantee));
  }
  const envelopes = checkRecipients(
    body.envelopes.map((e) => e.to),
    required,
    allowed,
  );
  if (envelopes) return envelopes;
  changes.push({
    type: "record",
    record: {
      id: body.record,
      patient: patient.id,
      author: author.id,
      validator: validator.id,
      withheldFromPatient: body.withheldFromPatient,
      month: body.month,
      entry: ctx.id,
      seq: position.seq,
      supersedes,
      supersededBy: null,
      erased: false,
    },
  });
  return { chain: patient.id, changes };
}

const recordErase: Rule<"record.erase"> = async (ctx) => {
  const { state, body } = ctx;
  const patient = enrolled(state, body.patient);
  if (isRejection(patient)) return patient;
  const record = state.records.get(body.record);
  if (record === undefined || record.patient !== patient.id) {
    return reject("RECORD_UNKNOWN", `record ${body.record} is not a record of this patient`);
  }
  let signer: Signer;
  if (body.by === "author") {
    const author = activeOrg(state, record.author);
    if (isRejection(author)) return author;
    signer = { role: "author", key: author.signKey, who: `org ${author.id}` };
  } else {
    signer = { role: "patient", key: patient.signKey, who: `patient ${patient.id}` };
  }
  const bad = await checkSignatures(ctx, [signer]);
  if (bad) return bad;
  const broken = chainLinks(patient, body.prev);
  if (broken) return broken;
  if (record.erased) return reject("RECORD_ERASED", `record ${record.id} was already erased`);
  return { chain: patient.id, changes: [{ type: "record", record: { ...record, erased: true } }] };
};

const grant: Rule<"grant"> = async (ctx) => {
  const { state, body, position } = ctx;
  const patient = await patientSigned(ctx, body, () => {
    const grantee = activeOrg(state, body.grantee);
    return isRejection(grantee) ? grantee : undefined;
  });
  if (isRejection(patient)) return patient;
  if (body.expires < ledgerDay(position.time)) {
    return reject("TIME_INVALID", `the grant expires (${body.expires}) before the ledger day`);
  }
  // Scope readers (docs/records.md section 4): the grantee and the patient must be able to read the scope;
  // the patient may also let active orgs read it, so that authors can wrap new records in scope.
  const required = [orgRecipient(body.grantee), patientRecipient(patient.id)];
  const allowed = new Set(required);
  for (const org of state.orgs.values()) if (org.retiredAt === null) allowed.add(orgRecipient(org.id));
  const scope = checkRecipients(
    body.scope.envelopes.map((e) => e.to),
    required,
    allowed,
  );
  if (scope) return scope;
  return {
    chain: patient.id,
    changes: [
      {
        type: "grant",
        grant: {
          id: ctx.id,
          patient: patient.id,
          grantee: body.grantee,
          expires: body.expires,
          revoked: false,
          seq: position.seq,
        },
      },
    ],
  };
};

const grantRevoke: Rule<"grant.revoke"> = async (ctx) => {
  const { state, body } = ctx;
  const patient = await patientSigned(ctx, ctx.body);
  if (isRejection(patient)) return patient;
  const found = state.grants.get(body.grant);
  if (found === undefined || found.patient !== patient.id) {
    return reject("GRANT_UNKNOWN", `grant ${body.grant} is not a grant of this patient`);
  }
  if (found.revoked) return reject("GRANT_INACTIVE", `grant ${found.id} was already revoked`);
  return { chain: patient.id, changes: [{ type: "grant", grant: { ...found, revoked: true } }] };
};

const keyShare: Rule<"key.share"> = async (ctx) => {
  const { state, body, position } = ctx;
  const patient = await patientSigned(ctx, ctx.body);
  if (isRejection(patient)) return patient;
  const found = state.grants.get(body.grant);
  if (found === undefined || found.patient !== patient.id) {
    return reject("GRANT_UNKNOWN", `grant ${body.grant} is not a grant of this patient`);
  }
  if (!state.isGrantActive(found, position.time)) {
    return reject("GRANT_INACTIVE", `grant ${found.id} is revoked, expired or its grantee retired`);
  }
  for (const { record: id } of body.keys) {
    const record = liveRecord(state, patient.id, id);
    if (isRejection(record)) return record;
    if (record.withheldFromPatient) {
      return reject("ENVELOPE_FORBIDDEN", `record ${id} is withheld from the patient and is never shared`);
    }
  }
  return { chain: patient.id, changes: [] };
};

const accessEvent: Rule<"access.event"> = async (ctx) => {
  const { state, body, position } = ctx;
  const patient = await orgAboutPatient(ctx, ctx.body, false);
  if (isRejection(patient)) return patient;
  const records: RecordState[] = [];
  for (const id of body.records) {
    const record = liveRecord(state, patient.id, id);
    if (isRejection(record)) return record;
    records.push(record);
  }
  const { basis } = body;
  if (basis.type === "grant") {
    const found = state.grants.get(basis.grant);
    if (found === undefined || found.patient !== patient.id) {
      return reject("GRANT_UNKNOWN", `grant ${basis.grant} is not a grant of this patient`);
    }
    if (found.grantee !== body.org)
      return reject("NOT_PERMITTED", `grant ${found.id} is not for ${body.org}`);
    if (!state.isGrantActive(found, position.time)) {
      return reject("GRANT_INACTIVE", `grant ${found.id} is revoked, expired or its grantee retired`);
    }
  } else if (basis.type === "emergency") {
    const found = state.emergencies.get(basis.emergency);
    if (
      found === undefined ||
      found.patient !== patient.id ||
      found.org !== body.org ||
      position.time - found.time > EMERGENCY_WINDOW_SECONDS
    ) {
      return reject(
        "EMERGENCY_UNKNOWN",
        "no emergency declaration by this org for this patient in the last 72 h",
      );
    }
  }
  for (const record of records) {
    const care = record.author === body.org || (record.validator === body.org && !record.withheldFromPatient);
    if (basis.type === "care" ? !care : record.withheldFromPatient) {
      return reject(
        "NOT_PERMITTED",
        `${body.org} may not obtain the keys of record ${record.id} on this basis`,
      );
    }
  }
  return { chain: patient.id, changes: [] };
};

const emergencyAccess: Rule<"emergency.access"> = async (ctx) => {
  const { body, position } = ctx;
  const patient = await orgAboutPatient(ctx, ctx.body, false);
  if (isRejection(patient)) return patient;
  return {
    chain: patient.id,
    changes: [
      {
        type: "emergency",
        emergency: { id: ctx.id, patient: patient.id, org: body.org, seq: position.seq, time: position.time },
      },
    ],
  };
};

const RULES: { readonly [K in EntryKind]: Rule<K> } = {
  genesis,
  "org.admit": orgAdmit,
  "org.retire": orgRetire,
  "patient.enroll": patientEnroll,
  "identifier.link": identifierLink,
  "identifier.unlink": identifierUnlink,
  "record.append": (ctx) => recordVersion(ctx, ctx.body),
  "record.amend": (ctx) => recordVersion(ctx, ctx.body),
  "record.erase": recordErase,
  grant,
  "grant.revoke": grantRevoke,
  "key.share": keyShare,
  "access.event": accessEvent,
  "emergency.access": emergencyAccess,
};

/**
 * The entry a pre-check vouches for, when it was made for these very bytes (same SHA-256); undefined
 * otherwise. The bytes are then known to be canonical, schema-valid JSON, so a plain JSON.parse gives the
 * value decodeEntry would (the guard below only catches a pre-check that was not made by precheckEntry).
 */
function prechecked(bytes: Uint8Array, digest: Uint8Array, precheck: EntryPrecheck): Entry | undefined {
  if (!bytesEqual(digest, precheck.digest)) return undefined;
  if (precheck.entry !== undefined) return precheck.entry;
  let value: unknown;
  try {
    value = JSON.parse(fromUtf8(bytes));
  } catch {
    return undefined;
  }
  const entry = value as Partial<Entry> | null;
  if (
    typeof entry !== "object" ||
    entry === null ||
    !Array.isArray(entry.sigs) ||
    typeof entry.kind !== "string" ||
    !Object.hasOwn(RULES, entry.kind)
  ) {
    return undefined;
  }
  return entry as Entry;
}

async function judge(
  state: LedgerState,
  bytes: Uint8Array,
  position: Position,
  precheck: EntryPrecheck | undefined,
): Promise<ApplyResult> {
  let entry: Entry | undefined;
  let id: string | undefined;
  let verified = 0;
  if (precheck !== undefined) {
    const digest = state.crypto.sha256(bytes);
    id = toHex(digest);
    entry = prechecked(bytes, digest, precheck);
    if (entry !== undefined) verified = precheck.verified;
  }
  if (entry === undefined) {
    const decoded = decodeEntry(bytes);
    if (!decoded.ok) return reject(decoded.reason, decoded.detail);
    entry = decoded.entry;
  }
  id ??= entryId(state.crypto, bytes);
  if (state.hasEntry(id)) return reject("DUPLICATE_ID", `entry ${id} was already accepted`);
  if ((state.consortium === null) !== (entry.kind === "genesis")) {
    return reject("GENESIS_MISPLACED", "genesis must be the first accepted entry, and only the first");
  }
  const ctx: Context<EntryKind> = { state, entry, body: entry.body, id, position, bytes, verified };
  const rule = RULES[entry.kind] as Rule<EntryKind>;
  const outcome = await rule(ctx);
  if (isRejection(outcome)) return outcome;
  state.commit(id, position, outcome.chain, outcome.changes);
  return { accepted: true, id, entry };
}

/**
 * Judge one entry of the ordered stream at its position and, when accepted, apply it to the state. Total
 * on hostile bytes: the answer is a verdict, never a throw. Throws INVALID_ARGUMENT only when the
 * position does not follow the last accepted one (a broken stream, not a bad entry).
 *
 * `precheck`, from precheckEntry (precheck.ts), possibly on another thread, saves the strict decoding and
 * the signature verifications it vouches for; it is used only when its digest is the SHA-256 of `bytes`.
 * The verdict, the rejection code and the state are the same with it or without it.
 */
export async function applyEntry(
  state: LedgerState,
  bytes: Uint8Array,
  position: Position,
  precheck?: EntryPrecheck,
): Promise<ApplyResult> {
  state.checkPosition(position);
  try {
    return await judge(state, bytes, position, precheck);
  } catch (err) {
    if (err instanceof LedgerError) throw err;
    throw new LedgerError("INTERNAL", "the validator failed unexpectedly", { cause: err });
  }
}
