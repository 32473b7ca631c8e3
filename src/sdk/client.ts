/**
 * The client (docs/sdk.md): every workflow of every actor against one node, over signed HTTP
 * (docs/api.md), trusting nothing the node returns before verifying it. Entries are built and signed here
 * (./entries.ts), records encrypted and decrypted here (./records.ts, ./grants.ts), histories verified here
 * (./history.ts). The node never sees a private key or a plaintext it was not granted.
 */
import { LedgerError } from "../core/errors.ts";
import { fromHex, toBase64, toHex } from "../core/encoding/bytes.ts";
import type { CryptoSuite } from "../core/crypto/suite.ts";
import {
  blindIdentifier,
  entryId,
  newRandomId,
  parseEntry,
  signingMessage,
  verifySignature,
} from "../core/ledger/entry.ts";
import { sortByClinicalTime } from "../core/ledger/history.ts";
import {
  EMERGENCY_REASONS,
  DaySchema,
  HashSchema,
  RandomIdSchema,
  type Entry,
  type EntryKind,
  type OrgRole,
} from "../core/ledger/schema.ts";
import { ledgerDay, ledgerMonth } from "../core/ledger/state.ts";
import { parseUint64, type VerifiedCheckpoint } from "../core/note/checkpoint.ts";
import {
  AttestResponseSchema,
  BlobStoredSchema,
  ConsistencyProofSchema,
  HistoryPageSchema,
  LookupResponseSchema,
  NodeInfoSchema,
  OrgsResponseSchema,
  PatientInfoSchema,
  QueueCreatedSchema,
  QueueItemSchema,
  QueueListSchema,
  RejectResponseSchema,
  SubmitResponseSchema,
  type HistoryPage,
  type OrgInfo,
  type PatientInfo,
  type QueueItem,
  type SubmitResult,
} from "./api.ts";
import {
  accessEventEntry,
  emergencyEntry,
  enrollmentEntry,
  grantEntry,
  grantRevokeEntry,
  identifierEntry,
  keyShareEntries,
  orgAdmitEntry,
  recordEntry,
  signAs,
  type AccessBasis,
  type SignedEntry,
} from "./entries.ts";
import { RejectedError } from "./errors.ts";
import {
  grantInForce,
  newScope,
  openScope,
  scopeCovers,
  sealScope,
  type GrantScope,
  type Purpose,
} from "./grants.ts";
import {
  HistoryVerifier,
  verifyAbsence,
  viewOf,
  type GrantView,
  type LedgerView,
  type RecordVersion,
  type VerifiedHistory,
} from "./history.ts";
import { MAX_HISTORY_RESPONSE, NodeError, Transport, type RequestSigner } from "./http.ts";
import type { Identity } from "./identity.ts";
import {
  decryptAttachment,
  decryptPayload,
  encryptRecord,
  monthOf,
  recordAad,
  unwrapKey,
  wrapKey,
  wrapKeyFor,
  type RecordHeader,
  type RecordPayload,
  type RecordType,
  type RestrictedCategory,
  type Sensitivity,
} from "./records.ts";
import { trustPolicy, verifyTrustedCheckpoint, type TrustState } from "./trust.ts";
import { checkRecordPayload, type PayloadFinding, type QueueRejectReason } from "./validation.ts";

/** Entries per POST /v1/entries (docs/api.md section 1). */
const MAX_SUBMISSION = 100;
/** Items per page of a paged read. */
const PAGE_LIMIT = 500;
/** Uploads in flight at once. */
const CONCURRENCY = 4;
/**
 * Records read (downloaded and decrypted) at once. A history reads one blob per record, each a signed
 * request: more in flight overlaps the node's work and the network's round trips with the client's own
 * (bench/http.ts). Bounded, so a long history never opens more than this many requests at a time.
 */
const READ_CONCURRENCY = 16;
/** How often an access event or key share is rebuilt on a moved chain head before giving up. */
const CHAIN_RETRIES = 3;
/** An emergency declaration opens access for 72 hours of ledger time (docs/entries.md). */
const EMERGENCY_WINDOW_SECONDS = 72 * 3600;
/** The header that names the access event a download is made under (docs/api.md section 4). */
export const ACCESS_HEADER = "medledger-access";

/** How the client is set up. */
export interface ClientOptions {
  /** The node's base URL, e.g. "https://node.example". */
  readonly baseUrl: string;
  readonly crypto: CryptoSuite;
  /** Who acts; needed for every signed request. */
  readonly identity?: Identity;
  /** What the client pins and remembers (docs/sdk.md); the client keeps its own copy. */
  readonly trust: TrustState;
  /** The fetch to use (default: the global one). */
  readonly fetch?: typeof fetch;
  /** The clock, Unix milliseconds (default Date.now). */
  readonly now?: () => number;
  /** Told whenever the trust state changes (a newer checkpoint was verified), to persist it. */
  readonly onTrustUpdate?: (trust: TrustState) => void | Promise<void>;
}

/** What GET /v1/node says. */
export interface NodeInfo {
  readonly origin: string;
  readonly logKey: string;
  readonly witnessKey: string | null;
  readonly size: bigint;
}

/** A record as its author gives it (docs/records.md section 1). */
export interface RecordInput {
  /** The patient's pseudonymous id. */
  readonly patient: string;
  /** The validator org that will attest it. */
  readonly validator: string;
  readonly type: RecordType;
  readonly sensitivity: Sensitivity;
  /** The clinical date, YYYY-MM-DD. */
  readonly date: string;
  readonly title: string;
  /** One FHIR R4 resource as JSON. */
  readonly resource: Record<string, unknown>;
  readonly attachments?: readonly {
    readonly name: string;
    readonly contentType: string;
    readonly bytes: Uint8Array;
  }[];
}

/** What a grant gives (docs/records.md section 4). */
export interface GrantInput {
  readonly grantee: string;
  readonly categories: readonly RecordType[];
  readonly restricted?: readonly RestrictedCategory[];
  readonly from?: string | null;
  readonly to?: string | null;
  readonly purpose: Purpose;
  /** Last day in force, YYYY-MM-DD (UTC). */
  readonly expires: string;
}

/** What a validator sees when it opens a queue item. */
export interface OpenedQueueItem {
  readonly item: QueueItem;
  /** The decrypted payload; null for a psychotherapy note (the validator attests without reading it). */
  readonly payload: RecordPayload | null;
  /** What the validator's checks found; empty when the record may be attested. */
  readonly findings: readonly PayloadFinding[];
}

/** Where a record version stands for the reader. */
export type RecordStatus = "decrypted" | "withheld" | "no-key" | "no-access" | "erased";

/** A decrypted attachment. */
export interface Attachment {
  readonly name: string;
  readonly contentType: string;
  readonly bytes: Uint8Array;
}

/** A record version in a history. */
export interface HistoryRecord {
  readonly id: string;
  readonly author: string;
  readonly validator: string;
  readonly withheldFromPatient: boolean;
  readonly supersedes: string | null;
  readonly supersededBy: string | null;
  readonly erased: boolean;
  /**
   * decrypted: read; withheld: a psychotherapy note of another org (or of the patient's own history);
   * no-key: no envelope for the reader; no-access: an envelope, but no read basis any more (revoked or
   * expired grant); erased: the ciphertext was destroyed.
   */
  readonly status: RecordStatus;
  readonly payload?: RecordPayload;
  readonly attachments?: readonly Attachment[];
}

/** One entry of a verified history. */
export interface HistoryItem {
  readonly position: bigint;
  readonly seq: bigint;
  readonly id: string;
  readonly kind: EntryKind;
  readonly ledgerTime: number;
  /** The clinical month: a record's own month, else the month of the ledger time. */
  readonly month: string;
  readonly verified: { readonly inclusion: true; readonly chain: true; readonly signatures: true };
  readonly entry: Entry;
  readonly record?: HistoryRecord;
}

/** A patient's history, verified complete, in clinical order. */
export interface History {
  readonly patient: string;
  readonly checkpoint: {
    readonly size: bigint;
    readonly rootHash: Uint8Array;
    readonly indexRoot: Uint8Array;
    readonly note: string;
  };
  readonly complete: true;
  readonly items: readonly HistoryItem[];
}

/** Options of history(). */
export interface HistoryOptions {
  /** Told as entries are verified: done of total. */
  readonly onProgress?: (done: number, total: number) => void;
  /** Download and decrypt attachments too (default true). */
  readonly attachments?: boolean;
}

/** The closed set of break-glass reasons (docs/entries.md, emergency.access). */
export type EmergencyReason = (typeof EMERGENCY_REASONS)[number];

/** One line of the access log. */
export type AccessLogEvent =
  | {
      readonly type: "access";
      readonly entry: string;
      readonly position: bigint;
      readonly ledgerTime: number;
      readonly org: string;
      readonly records: readonly string[];
      readonly basis: AccessBasis;
    }
  | {
      readonly type: "emergency";
      readonly entry: string;
      readonly position: bigint;
      readonly ledgerTime: number;
      readonly org: string;
      readonly reason: string;
    };

/** A record the reader holds a key envelope for, and how it may fetch the ciphertext. */
interface Readable {
  readonly version: RecordVersion;
  readonly env: string;
  readonly basis: AccessBasis | null;
}

/** What reading a history produced, before it is shaped for the caller. */
interface ReadResult {
  readonly statuses: Map<string, HistoryRecord>;
  /** Data keys of the decrypted records, when asked to keep them (the caller zeroes them). */
  readonly keys: Map<string, Uint8Array>;
}

/** The signed, verifying client of one node. */
export class MedledgerClient {
  readonly crypto: CryptoSuite;
  readonly identity: Identity | undefined;
  readonly #http: Transport;
  readonly #now: () => number;
  readonly #onTrustUpdate: ((trust: TrustState) => void | Promise<void>) | undefined;
  #trust: TrustState;

  constructor(options: ClientOptions) {
    this.crypto = options.crypto;
    this.identity = options.identity;
    this.#now = options.now ?? (() => Date.now());
    const fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#http = new Transport({
      baseUrl: options.baseUrl,
      crypto: options.crypto,
      fetch: fetchFn,
      now: this.#now,
    });
    this.#trust = copyTrust(options.trust);
    this.#onTrustUpdate = options.onTrustUpdate;
  }

  /** A copy of the current trust state (with the last verified checkpoint). */
  get trust(): TrustState {
    return copyTrust(this.#trust);
  }

  // ---------------------------------------------------------------------------------------------------
  // Node
  // ---------------------------------------------------------------------------------------------------

  /**
   * What the node says about itself. When the trust state pins an origin or log key, a node naming
   * another is refused (ORIGIN_MISMATCH, KEY_INVALID); with nothing pinned, the caller may pin what it sees
   * (trust on first use, with a warning to the user).
   */
  async node(): Promise<NodeInfo> {
    const info = await this.#http.json({ method: "GET", path: "/v1/node" }, NodeInfoSchema);
    if (this.#trust.origin !== "" && info.origin !== this.#trust.origin) {
      throw new LedgerError(
        "ORIGIN_MISMATCH",
        `the node serves log ${info.origin}, not the pinned ${this.#trust.origin}`,
      );
    }
    if (this.#trust.logKey !== "" && info.logKey !== this.#trust.logKey) {
      throw new LedgerError("KEY_INVALID", "the node's log key is not the pinned one");
    }
    return info;
  }

  /** The node's latest checkpoint, verified (signature, quorum, consistency) and then remembered. */
  async checkpoint(): Promise<VerifiedCheckpoint> {
    trustPolicy(this.crypto, this.#trust);
    const note = await this.#http.text({ method: "GET", path: "/v1/checkpoint" });
    const { verified, advances } = await verifyTrustedCheckpoint(this.crypto, this.#trust, note, (from, to) =>
      this.#consistency(from, to),
    );
    if (advances) await this.#remember(note);
    return verified;
  }

  async #consistency(from: bigint, to: bigint): Promise<readonly Uint8Array[]> {
    const proof = await this.#http.json(
      { method: "GET", path: "/v1/proofs/consistency", query: { from, to } },
      ConsistencyProofSchema,
    );
    if (proof.from !== from || proof.to !== to) {
      throw new LedgerError("PROOF_INVALID", "the node answered a consistency proof between other sizes");
    }
    return proof.proof;
  }

  async #remember(note: string): Promise<void> {
    this.#trust = { ...copyTrust(this.#trust), checkpoint: note };
    await this.#onTrustUpdate?.(copyTrust(this.#trust));
  }

  // ---------------------------------------------------------------------------------------------------
  // Entries
  // ---------------------------------------------------------------------------------------------------

  /** Submit entries (signed by the client's identity, which must sign each); one verdict each, in order. */
  async submit(entries: readonly Uint8Array[]): Promise<SubmitResult[]> {
    return this.#submitAs(this.#me(), entries);
  }

  async #submitAs(signer: RequestSigner, entries: readonly Uint8Array[]): Promise<SubmitResult[]> {
    const results: SubmitResult[] = [];
    for (let i = 0; i < entries.length; i += MAX_SUBMISSION) {
      const part = entries.slice(i, i + MAX_SUBMISSION);
      const response = await this.#http.json(
        { method: "POST", path: "/v1/entries", body: { entries: part.map((e) => toBase64(e)) }, signer },
        SubmitResponseSchema,
      );
      if (response.results.length !== part.length) {
        throw new LedgerError("MALFORMED_INPUT", "the node answered a different number of verdicts");
      }
      response.results.forEach((r, k) => {
        if (r.id !== entryId(this.crypto, part[k]!)) {
          throw new LedgerError("MALFORMED_INPUT", "the node's verdicts name other entries than those sent");
        }
      });
      results.push(...response.results);
    }
    return results;
  }

  /** Submit entries that must all be accepted; the first refusal is a RejectedError. */
  async #submitAccepted(signer: RequestSigner, entries: readonly Uint8Array[]): Promise<SubmitResult[]> {
    const results = await this.#submitAs(signer, entries);
    for (const r of results) if (!r.accepted) throw new RejectedError(r.reason, r.detail);
    return results;
  }

  // ---------------------------------------------------------------------------------------------------
  // Consortium and orgs
  // ---------------------------------------------------------------------------------------------------

  /** Admit an org (org.admit signed by the consortium members given; the first one sends it). */
  async admitOrg(
    input: {
      readonly orgId: string;
      readonly roles: readonly OrgRole[];
      readonly signKey: string;
      readonly encKey: string;
    },
    consortiumSigners: readonly Identity[],
  ): Promise<SubmitResult> {
    if (consortiumSigners.length === 0 || consortiumSigners.some((s) => s.kind !== "consortium")) {
      throw new LedgerError("INVALID_ARGUMENT", "an org is admitted by consortium identities");
    }
    const entry = await orgAdmitEntry(this.crypto, input, consortiumSigners);
    const [result] = await this.#submitAccepted(consortiumSigners[0]!, [entry.bytes]);
    return result!;
  }

  /** Every org the node knows, with its keys, roles and whether it is active. */
  async orgs(): Promise<OrgInfo[]> {
    return (
      await this.#http.json({ method: "GET", path: "/v1/orgs", signer: this.#me() }, OrgsResponseSchema)
    ).orgs;
  }

  // ---------------------------------------------------------------------------------------------------
  // Patients and identifiers
  // ---------------------------------------------------------------------------------------------------

  /** Enrol a patient: the client's org vouches for the patient, both sign. */
  async enrollPatient(patient: Identity): Promise<SubmitResult> {
    const org = this.#org();
    if (patient.kind !== "patient") throw new LedgerError("INVALID_ARGUMENT", "enrol a patient identity");
    const entry = await enrollmentEntry(this.crypto, org, patient);
    const [result] = await this.#submitAccepted(org, [entry.bytes]);
    return result!;
  }

  /** Link one of the org's identifiers (an MRN) to the patient, blinded; the org and the patient sign. */
  linkIdentifier(patient: Identity, system: string, value: string): Promise<SubmitResult> {
    return this.#identifier("identifier.link", patient, system, value);
  }

  /** Undo a link. */
  unlinkIdentifier(patient: Identity, system: string, value: string): Promise<SubmitResult> {
    return this.#identifier("identifier.unlink", patient, system, value);
  }

  async #identifier(
    kind: "identifier.link" | "identifier.unlink",
    patient: Identity,
    system: string,
    value: string,
  ): Promise<SubmitResult> {
    const org = this.#org();
    if (patient.kind !== "patient") throw new LedgerError("INVALID_ARGUMENT", "link to a patient identity");
    const blindingKey = org.blindingKey!;
    return this.#onHead(patient, patient.id, async (head) => {
      const entry = await identifierEntry(
        this.crypto,
        kind,
        { ...org, blindingKey },
        patient,
        head,
        system,
        value,
      );
      return [entry.bytes];
    }).then((r) => r[0]!);
  }

  /** The patient linked to one of the org's own identifiers, or null (the node never sees the MRN). */
  async findPatient(system: string, value: string): Promise<string | null> {
    const org = this.#org();
    const blinded = await blindIdentifier(this.crypto, org.blindingKey!, system, value);
    try {
      const found = await this.#http.json(
        { method: "POST", path: "/v1/lookup", body: { blinded }, signer: org },
        LookupResponseSchema,
      );
      return found.patient;
    } catch (err) {
      if (err instanceof LedgerError && err.code === "NOT_FOUND") return null;
      throw err;
    }
  }

  /** What the node says about a patient (head, grants with encrypted scopes, orgs), signed as `signer`. */
  async #patientInfo(patient: string, signer: RequestSigner): Promise<PatientInfo> {
    checkPatientId(patient);
    const info = await this.#http.json(
      { method: "GET", path: `/v1/patients/${patient}`, signer },
      PatientInfoSchema,
    );
    if (info.id !== patient)
      throw new LedgerError("MALFORMED_INPUT", "the node answered about another patient");
    return info;
  }

  /**
   * Build entries on the patient's current chain head and submit them as `signer`; when the chain moved
   * meanwhile (CHAIN_BROKEN), build them again on the new head, a few times.
   */
  async #onHead(
    signer: RequestSigner,
    patient: string,
    build: (head: string) => Promise<readonly Uint8Array[]>,
    firstHead?: string,
  ): Promise<SubmitResult[]> {
    let head = firstHead ?? (await this.#patientInfo(patient, signer)).chain.head;
    for (let attempt = 0; ; attempt++) {
      const entries = await build(head);
      const results = await this.#submitAs(signer, entries);
      const refused = results.find((r) => !r.accepted);
      if (refused === undefined) return results;
      if (refused.accepted) throw new LedgerError("INTERNAL", "unreachable");
      const firstRefused = results.indexOf(refused);
      if (refused.reason !== "CHAIN_BROKEN" || firstRefused > 0 || attempt >= CHAIN_RETRIES) {
        throw new RejectedError(refused.reason, refused.detail);
      }
      head = (await this.#patientInfo(patient, signer)).chain.head;
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Records
  // ---------------------------------------------------------------------------------------------------

  /**
   * Write a record (the client's identity is the author org): check the content, encrypt it, wrap the key
   * for the patient, the author, the validator and every active grantee whose scope covers it (a
   * psychotherapy note for the author only), upload the ciphertext, and queue the author-signed entry for
   * the validator.
   */
  addRecord(input: RecordInput): Promise<{ queueId: string; record: string }> {
    return this.#writeRecord(input, undefined);
  }

  /** A new version of one of the org's records, superseding it (never overwriting it). */
  amendRecord(
    input: RecordInput & { readonly supersedes: string },
  ): Promise<{ queueId: string; record: string }> {
    if (!RandomIdSchema.safeParse(input.supersedes).success) {
      throw new LedgerError("INVALID_ARGUMENT", "supersedes must be a record id");
    }
    return this.#writeRecord(input, input.supersedes);
  }

  async #writeRecord(
    input: RecordInput,
    supersedes: string | undefined,
  ): Promise<{ queueId: string; record: string }> {
    const org = this.#org();
    checkPatientId(input.patient);
    if (!DaySchema.safeParse(input.date).success) {
      throw new LedgerError("INVALID_ARGUMENT", "the clinical date must be a day YYYY-MM-DD");
    }
    const info = await this.#patientInfo(input.patient, org);
    const orgs = await this.#orgKeys(info);
    const validator = orgs.get(input.validator);
    if (validator === undefined || !validator.active || !validator.roles.includes("validator")) {
      throw new LedgerError("INVALID_ARGUMENT", `${input.validator} is not an active validator org`);
    }
    if (input.validator === org.id)
      throw new LedgerError("INVALID_ARGUMENT", "an org cannot validate its own record");
    const month = monthOf(input.date);
    const withheld = input.sensitivity === "psychotherapy-note";
    const header: RecordHeader = {
      patient: input.patient,
      record: newRandomId(this.crypto),
      author: org.id,
      month,
    };
    const content = {
      type: input.type,
      sensitivity: input.sensitivity,
      date: input.date,
      title: input.title,
      resource: input.resource,
      ...(input.attachments === undefined ? {} : { attachments: input.attachments }),
    };
    const encrypted = await encryptRecord(this.crypto, header, content);
    try {
      const findings = checkRecordPayload(encrypted.payload, {
        patient: input.patient,
        month,
        withheldFromPatient: withheld,
        today: this.#today(),
      });
      if (findings.length > 0) {
        throw new LedgerError("INVALID_ARGUMENT", findings.map((f) => `${f.reason}: ${f.detail}`).join("; "));
      }
      const readers = [{ to: org.keyid, publicKey: org.encryption.publicKey }];
      if (!withheld) {
        readers.push({ to: `patient:${info.id}`, publicKey: fromHex(info.encKey) });
        readers.push({ to: `org:${validator.id}`, publicKey: fromHex(validator.encKey) });
        for (const grantee of await this.#granteesFor(info, orgs, encrypted.payload)) readers.push(grantee);
      }
      const envelopes = await wrapKeyFor(this.crypto, readers, encrypted.dataKey, encrypted.aad);
      await this.#uploadBlobs([encrypted.ciphertext, ...encrypted.chunks.flat()]);
      const unsigned = recordEntry(encrypted, {
        prev: info.chain.head,
        validator: validator.id,
        withheldFromPatient: withheld,
        envelopes,
        ...(supersedes === undefined ? {} : { supersedes }),
      });
      const signed = await signAs(this.crypto, unsigned, [["author", org]]);
      const queued = await this.#http.json(
        { method: "POST", path: "/v1/queue", body: { entry: toBase64(signed.bytes) }, signer: org },
        QueueCreatedSchema,
      );
      return { queueId: queued.queueId, record: header.record };
    } finally {
      encrypted.dataKey.fill(0);
    }
  }

  /**
   * Queue a refused or stale record again on the patient's current chain head (after the ledger refused its
   * attestation with CHAIN_BROKEN): same record, ciphertext and envelopes (none of them binds the chain
   * link), a new author signature. Returns the new queue id.
   */
  async resubmitRecord(queueId: string): Promise<{ queueId: string; record: string }> {
    const org = this.#org();
    const item = await this.#queueItem(queueId, org);
    const entry = parseEntry(item.entry);
    if ((entry.kind !== "record.append" && entry.kind !== "record.amend") || entry.body.author !== org.id) {
      throw new LedgerError("NOT_PERMITTED", "only the author resubmits its record");
    }
    const info = await this.#patientInfo(entry.body.patient, org);
    const rebuilt = { ...entry, body: { ...entry.body, prev: info.chain.head }, sigs: [] };
    const signed = await signAs(this.crypto, rebuilt as Entry, [["author", org]]);
    const queued = await this.#http.json(
      { method: "POST", path: "/v1/queue", body: { entry: toBase64(signed.bytes) }, signer: org },
      QueueCreatedSchema,
    );
    return { queueId: queued.queueId, record: entry.body.record };
  }

  /** The grantees a new record must be wrapped for: active grants whose scope the author can read and which cover it. */
  async #granteesFor(
    info: PatientInfo,
    orgs: ReadonlyMap<string, { readonly encKey: string; readonly active: boolean }>,
    payload: RecordPayload,
  ): Promise<{ to: string; publicKey: Uint8Array }[]> {
    const org = this.#org();
    const today = this.#today();
    const out: { to: string; publicKey: Uint8Array }[] = [];
    for (const grant of info.grants) {
      const grantee = orgs.get(grant.grantee);
      if (!grant.active || grantee === undefined) continue;
      if (
        !grantInForce(
          { revoked: grant.revoked, expires: grant.expires, granteeActive: grantee.active },
          today,
        )
      ) {
        continue;
      }
      // An author that cannot read the scope wraps nothing; the patient's client closes the gap (syncGrants).
      if (!grant.scope.envelopes.some((e) => e.to === org.keyid)) continue;
      let scope: GrantScope;
      try {
        scope = await openScope(this.crypto, org.keyid, org.encryption, {
          patient: info.id,
          grantee: grant.grantee,
          scopeHash: grant.scopeHash,
          scope: grant.scope,
        });
      } catch {
        continue;
      }
      if (
        scopeCovers(scope, {
          type: payload.type,
          sensitivity: payload.sensitivity,
          month: monthOf(payload.date),
        })
      ) {
        out.push({ to: `org:${grant.grantee}`, publicKey: fromHex(grantee.encKey) });
      }
    }
    return out;
  }

  /** Org keys and roles: those the patient's record lists, completed from GET /v1/orgs. */
  async #orgKeys(
    info?: PatientInfo,
  ): Promise<
    Map<string, { id: string; roles: readonly OrgRole[]; encKey: string; signKey?: string; active: boolean }>
  > {
    const out = new Map<
      string,
      { id: string; roles: readonly OrgRole[]; encKey: string; signKey?: string; active: boolean }
    >();
    for (const o of await this.orgs()) out.set(o.id, o);
    for (const o of info?.orgs ?? []) if (!out.has(o.id)) out.set(o.id, o);
    return out;
  }

  async #uploadBlobs(blobs: readonly Uint8Array[]): Promise<void> {
    const org = this.#org();
    await mapLimit(blobs, CONCURRENCY, async (blob) => {
      const hash = toHex(this.crypto.sha256(blob));
      const stored = await this.#http.json(
        { method: "PUT", path: `/v1/blobs/${hash}`, body: blob, signer: org },
        BlobStoredSchema,
      );
      if (stored.hash !== hash || stored.size !== blob.length) {
        throw new LedgerError("MALFORMED_INPUT", "the node stored another blob than the one sent");
      }
    });
  }

  /** The validation queue of the client's org, as validator or as author, optionally by status. */
  async queue(
    role: "validator" | "author",
    status?: "pending" | "attested" | "rejected",
  ): Promise<QueueItem[]> {
    const org = this.#org();
    const items: QueueItem[] = [];
    const seen = new Set<string>();
    let after: string | undefined;
    for (;;) {
      const page = await this.#http.json(
        { method: "GET", path: "/v1/queue", query: { role, status, limit: PAGE_LIMIT, after }, signer: org },
        QueueListSchema,
      );
      for (const item of page.items) {
        if (!seen.has(item.queueId)) items.push(item);
        seen.add(item.queueId);
      }
      if (page.next === null || page.items.length === 0 || page.next === after) return items;
      after = page.next;
    }
  }

  async #queueItem(queueId: string, org: Identity): Promise<QueueItem> {
    if (!HashSchema.safeParse(queueId).success)
      throw new LedgerError("INVALID_ARGUMENT", "a queue id is an entry id");
    const item = await this.#http.json(
      { method: "GET", path: `/v1/queue/${queueId}`, signer: org },
      QueueItemSchema,
    );
    if (item.queueId !== queueId || entryId(this.crypto, item.entry) !== queueId) {
      throw new LedgerError("MALFORMED_INPUT", "the node answered another queue item");
    }
    return item;
  }

  /**
   * Open a queue item as its validator: check the author's signature, decrypt the payload with the
   * validator's envelope and run the validator's checks (FHIR resourceType for the record type, patient
   * references, clinical date, sensitivity label). A psychotherapy note is attested unread.
   */
  async openQueueItem(queueId: string): Promise<OpenedQueueItem> {
    return this.#openItem(await this.#queueItem(queueId, this.#org()));
  }

  async #openItem(item: QueueItem): Promise<OpenedQueueItem> {
    const org = this.#org();
    const entry = parseEntry(item.entry);
    if (entry.kind !== "record.append" && entry.kind !== "record.amend") {
      throw new LedgerError("MALFORMED_INPUT", "a queue item holds a record entry");
    }
    const body = entry.body;
    if (body.validator !== org.id)
      throw new LedgerError("NOT_PERMITTED", `this record names ${body.validator} as validator`);
    const orgs = await this.#orgKeys();
    const findings: PayloadFinding[] = [];
    const author = orgs.get(body.author);
    const authorSig = entry.sigs.filter((s) => s.role === "author");
    if (author === undefined || !author.active || !author.roles.includes("author")) {
      findings.push({ reason: "AUTHOR_UNKNOWN", detail: `${body.author} is not an active author org` });
    } else if (
      authorSig.length !== 1 ||
      authorSig[0]!.key !== author.signKey ||
      !(await verifySignature(this.crypto, entry, authorSig[0]!))
    ) {
      throw new LedgerError("SIGNATURE_INVALID", `the queued record is not signed by ${body.author}`);
    }
    if (body.withheldFromPatient) return { item, payload: null, findings };
    const envelope = body.envelopes.find((e) => e.to === org.keyid);
    if (envelope === undefined) {
      findings.push({ reason: "OTHER", detail: "the record's key is not wrapped for the validator" });
      return { item, payload: null, findings };
    }
    const header: RecordHeader = {
      patient: body.patient,
      record: body.record,
      author: body.author,
      month: body.month,
    };
    const dataKey = await unwrapKey(this.crypto, org.keyid, org.encryption, envelope.env, recordAad(header));
    let payload: RecordPayload;
    try {
      const blob = await this.#blob(body.ciphertext, org, undefined);
      payload = await decryptPayload(this.crypto, dataKey, header, blob);
    } catch (err) {
      if (err instanceof LedgerError && err.code === "MALFORMED_INPUT") {
        findings.push({ reason: "FHIR_INVALID", detail: err.message });
        return { item, payload: null, findings };
      }
      throw err;
    } finally {
      dataKey.fill(0);
    }
    findings.push(
      ...checkRecordPayload(payload, {
        patient: body.patient,
        month: body.month,
        withheldFromPatient: body.withheldFromPatient,
        today: this.#today(),
      }),
    );
    return { item, payload, findings };
  }

  /**
   * Attest a record as its validator: open it, refuse (INVALID_ARGUMENT) when the checks found anything
   * (reject it instead), else sign it in the validator role; the node appends it and answers the ledger's
   * verdict (a refusal is a RejectedError; CHAIN_BROKEN: the author resubmits it).
   */
  async validateRecord(queueId: string): Promise<SubmitResult> {
    const org = this.#org();
    const item = await this.#queueItem(queueId, org);
    if (item.status !== "pending") {
      throw new LedgerError("INVALID_ARGUMENT", `the queue item is ${item.status}, not pending`);
    }
    const opened = await this.#openItem(item);
    if (opened.findings.length > 0) {
      throw new LedgerError(
        "INVALID_ARGUMENT",
        `the record fails the validator's checks (${opened.findings.map((f) => `${f.reason}: ${f.detail}`).join("; ")}); reject it`,
      );
    }
    const entry = parseEntry(opened.item.entry);
    const signature = await this.crypto.ed25519Sign(
      org.signing.secretKey,
      signingMessage(entry, "validator"),
    );
    const answer = await this.#http.json(
      {
        method: "POST",
        path: `/v1/queue/${queueId}/attest`,
        body: { signature: toBase64(signature) },
        signer: org,
      },
      AttestResponseSchema,
    );
    if (answer.status === "rejected") throw new RejectedError(answer.reason, "");
    if (!answer.result.accepted) throw new RejectedError(answer.result.reason, answer.result.detail);
    return answer.result;
  }

  /** Reject a queue item as its validator, with a reason the author sees (the note stays on the node). */
  async rejectRecord(queueId: string, reason: QueueRejectReason, note?: string): Promise<void> {
    const org = this.#org();
    if (!HashSchema.safeParse(queueId).success)
      throw new LedgerError("INVALID_ARGUMENT", "a queue id is an entry id");
    if (note !== undefined && note.length > 500)
      throw new LedgerError("INVALID_ARGUMENT", "a note has at most 500 characters");
    await this.#http.json(
      {
        method: "POST",
        path: `/v1/queue/${queueId}/reject`,
        body: { reason, ...(note === undefined ? {} : { note }) },
        signer: org,
      },
      RejectResponseSchema,
    );
  }

  // ---------------------------------------------------------------------------------------------------
  // Grants (the client's identity is the patient)
  // ---------------------------------------------------------------------------------------------------

  /**
   * Grant an org access: the scope is encrypted for the patient, the grantee and every active author org
   * (scope readers, so they can wrap new records in scope); then the keys of the existing records in scope
   * are shared with the grantee in key.share entries of up to 256 records.
   */
  async grant(input: GrantInput): Promise<{ grant: string; shared: number }> {
    const patient = this.#patient();
    if (!DaySchema.safeParse(input.expires).success || input.expires < this.#today()) {
      throw new LedgerError("INVALID_ARGUMENT", "expires must be a day YYYY-MM-DD, today or later");
    }
    const orgs = await this.orgs();
    const grantee = orgs.find((o) => o.id === input.grantee);
    if (grantee === undefined || !grantee.active) {
      throw new LedgerError("INVALID_ARGUMENT", `${input.grantee} is not an active org`);
    }
    const scope = newScope(this.crypto, {
      categories: input.categories,
      ...(input.restricted === undefined ? {} : { restricted: input.restricted }),
      from: input.from ?? null,
      to: input.to ?? null,
      purpose: input.purpose,
    });
    // Read first: the records in scope are known only from their decrypted payloads.
    const read = await this.#readVerified(patient.id, { attachments: false, keepKeys: true });
    try {
      const readers = [
        { to: patient.keyid, publicKey: patient.encryption.publicKey },
        { to: `org:${grantee.id}`, publicKey: fromHex(grantee.encKey) },
        ...orgs
          .filter((o) => o.active && o.roles.includes("author"))
          .map((o) => ({ to: `org:${o.id}`, publicKey: fromHex(o.encKey) })),
      ];
      const sealed = await sealScope(this.crypto, patient.id, grantee.id, scope, readers);
      const toShare = await this.#sharesFor(read.view, read.result, grantee, scope, new Set());
      let grantId = "";
      await this.#onHead(
        patient,
        patient.id,
        async (head) => {
          const g = await grantEntry(this.crypto, patient, head, grantee.id, input.expires, sealed);
          grantId = g.id;
          const shares = await keyShareEntries(this.crypto, patient, g.id, g.id, toShare);
          return [g.bytes, ...shares.map((s) => s.bytes)];
        },
        read.history.chain.head,
      );
      return { grant: grantId, shared: toShare.length };
    } finally {
      for (const key of read.result.keys.values()) key.fill(0);
    }
  }

  /** The key envelopes for `grantee` of the records in `scope` it cannot open yet (skipping `already`). */
  async #sharesFor(
    view: LedgerView,
    result: ReadResult,
    grantee: { readonly id: string; readonly encKey: string },
    scope: GrantScope,
    already: Set<string>,
  ): Promise<{ record: string; env: string }[]> {
    const to = `org:${grantee.id}`;
    const granteeKey = fromHex(grantee.encKey);
    const today = this.#today();
    const shares: { record: string; env: string }[] = [];
    for (const [id, version] of view.records) {
      if (already.has(id)) continue;
      const status = result.statuses.get(id);
      const key = result.keys.get(id);
      if (
        status?.payload === undefined ||
        key === undefined ||
        version.erased ||
        version.body.withheldFromPatient
      )
        continue;
      const payload = status.payload;
      if (
        !scopeCovers(scope, {
          type: payload.type,
          sensitivity: payload.sensitivity,
          month: version.body.month,
        })
      )
        continue;
      if (version.body.envelopes.some((e) => e.to === to)) continue;
      const sharedInForce = [...view.grants.values()].some(
        (g) =>
          g.body.grantee === grantee.id &&
          g.shared.has(id) &&
          grantInForce({ revoked: g.revoked, expires: g.body.expires, granteeActive: true }, today),
      );
      if (sharedInForce) continue;
      const header = headerOf(version);
      shares.push({
        record: id,
        env: (await wrapKey(this.crypto, to, granteeKey, key, recordAad(header))).env,
      });
      already.add(id);
    }
    return shares;
  }

  /** End a grant: no more wrapping for the grantee, no more ciphertext released to it. Not an erasure. */
  async revoke(grantId: string): Promise<SubmitResult> {
    const patient = this.#patient();
    if (!HashSchema.safeParse(grantId).success)
      throw new LedgerError("INVALID_ARGUMENT", "a grant id is an entry id");
    const [result] = await this.#onHead(patient, patient.id, async (head) => [
      (await grantRevokeEntry(this.crypto, patient, head, grantId)).bytes,
    ]);
    return result!;
  }

  /**
   * Share with each grantee in force the keys of in-scope records it still lacks (records written by an
   * author that could not read the grant's scope, or written after the grant by one that did not wrap).
   */
  async syncGrants(): Promise<{ shared: number }> {
    const patient = this.#patient();
    const read = await this.#readVerified(patient.id, { attachments: false, keepKeys: true });
    try {
      const orgs = new Map((await this.orgs()).map((o) => [o.id, o]));
      const today = this.#today();
      const perGrant: { grant: string; keys: { record: string; env: string }[] }[] = [];
      const done = new Map<string, Set<string>>();
      for (const grant of read.view.grants.values()) {
        const org = orgs.get(grant.body.grantee);
        if (org === undefined) continue;
        if (
          !grantInForce(
            { revoked: grant.revoked, expires: grant.body.expires, granteeActive: org.active },
            today,
          )
        ) {
          continue;
        }
        const scope = await openScope(this.crypto, patient.keyid, patient.encryption, grant.body);
        const already = done.get(grant.body.grantee) ?? new Set<string>();
        done.set(grant.body.grantee, already);
        const keys = await this.#sharesFor(read.view, read.result, org, scope, already);
        if (keys.length > 0) perGrant.push({ grant: grant.id, keys });
      }
      if (perGrant.length === 0) return { shared: 0 };
      await this.#onHead(
        patient,
        patient.id,
        async (head) => {
          const out: Uint8Array[] = [];
          let prev = head;
          for (const { grant, keys } of perGrant) {
            const entries = await keyShareEntries(this.crypto, patient, prev, grant, keys);
            out.push(...entries.map((e) => e.bytes));
            prev = entries[entries.length - 1]!.id;
          }
          return out;
        },
        read.history.chain.head,
      );
      return { shared: perGrant.reduce((n, g) => n + g.keys.length, 0) };
    } finally {
      for (const key of read.result.keys.values()) key.fill(0);
    }
  }

  /**
   * Break-glass (the client's identity is an org): declare an emergency for a patient with a reason code.
   * For 72 hours of ledger time the org has a read basis; the patient and auditors see the declaration.
   * The entry links to the patient's chain head, which the node shows only to callers with a read basis
   * already: an org without one passes `head` (from the patient, or from an earlier read).
   */
  async declareEmergency(
    patientId: string,
    reason: EmergencyReason,
    options: { readonly head?: string } = {},
  ): Promise<{ emergency: string }> {
    const org = this.#org();
    checkPatientId(patientId);
    if (!(EMERGENCY_REASONS as readonly string[]).includes(reason)) {
      throw new LedgerError("INVALID_ARGUMENT", `the reason is one of ${EMERGENCY_REASONS.join(", ")}`);
    }
    if (options.head !== undefined && !HashSchema.safeParse(options.head).success) {
      throw new LedgerError("INVALID_ARGUMENT", "head must be an entry id");
    }
    let id = "";
    await this.#onHead(
      org,
      patientId,
      async (head) => {
        const e = await emergencyEntry(this.crypto, org, patientId, head, reason);
        id = e.id;
        return [e.bytes];
      },
      options.head,
    );
    return { emergency: id };
  }

  // ---------------------------------------------------------------------------------------------------
  // Reading
  // ---------------------------------------------------------------------------------------------------

  /**
   * The patient's whole history, verified complete (docs/api.md, "History"), every record the caller holds
   * a key for decrypted, in clinical order. An org reader first records an access event (docs/records.md
   * section 5). A failed proof is an error, never a shorter history.
   */
  async history(patientId: string, options: HistoryOptions = {}): Promise<History> {
    const read = await this.#readVerified(patientId, {
      attachments: options.attachments ?? true,
      keepKeys: false,
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
    });
    const { history } = read;
    const items = history.entries.map((e): HistoryItem & { position: bigint } => {
      const entry = e.entry;
      const record =
        entry.kind === "record.append" || entry.kind === "record.amend"
          ? read.result.statuses.get(entry.body.record)
          : undefined;
      return {
        position: e.position,
        seq: e.seq,
        id: e.id,
        kind: entry.kind,
        ledgerTime: e.ledgerTime,
        month:
          entry.kind === "record.append" || entry.kind === "record.amend"
            ? entry.body.month
            : ledgerMonth(e.ledgerTime),
        verified: { inclusion: true, chain: true, signatures: true },
        entry,
        ...(record === undefined ? {} : { record }),
      };
    });
    const sorted = sortByClinicalTime(
      items.map((item) => ({
        item,
        entry: item.entry,
        position: { seq: Number(item.position), time: item.ledgerTime },
      })),
    ).map((x) => x.item);
    const cp = history.checkpoint.checkpoint;
    return {
      patient: history.patient,
      checkpoint: { size: cp.size, rootHash: cp.rootHash, indexRoot: history.indexRoot, note: history.note },
      complete: true,
      items: sorted,
    };
  }

  /** Who obtained which record keys, when and on which basis, from the verified history. */
  async accessLog(patientId: string): Promise<AccessLogEvent[]> {
    const history = await this.#verifiedHistory(patientId);
    const out: AccessLogEvent[] = [];
    for (const e of history.entries) {
      const { entry } = e;
      if (entry.kind === "access.event") {
        out.push({
          type: "access",
          entry: e.id,
          position: e.position,
          ledgerTime: e.ledgerTime,
          org: entry.body.org,
          records: entry.body.records,
          basis: entry.body.basis,
        });
      } else if (entry.kind === "emergency.access") {
        out.push({
          type: "emergency",
          entry: e.id,
          position: e.position,
          ledgerTime: e.ledgerTime,
          org: entry.body.org,
          reason: entry.body.reason,
        });
      }
    }
    return out;
  }

  /** Fetch every page of a patient's history and verify it; remember its checkpoint when it is newer. */
  async #verifiedHistory(
    patientId: string,
    onProgress?: (done: number, total: number) => void,
  ): Promise<VerifiedHistory> {
    checkPatientId(patientId);
    const me = this.#me();
    trustPolicy(this.crypto, this.#trust);
    const consistency = (from: bigint, to: bigint): Promise<readonly Uint8Array[]> =>
      this.#consistency(from, to);
    const fetchPage = (after: bigint | undefined, size: bigint | undefined): Promise<HistoryPage> =>
      this.#http.json(
        {
          method: "GET",
          path: `/v1/patients/${patientId}/history`,
          query: { limit: PAGE_LIMIT, after, size },
          signer: me,
        },
        HistoryPageSchema,
        MAX_HISTORY_RESPONSE,
      );
    let page: HistoryPage;
    try {
      page = await fetchPage(undefined, undefined);
    } catch (err) {
      if (err instanceof NodeError && err.code === "NOT_FOUND") await this.#absent(patientId, err);
      throw err;
    }
    const orgKeys = new Map((await this.orgs()).map((o) => [o.id, o.signKey]));
    const verifier = await HistoryVerifier.start(this.crypto, this.#trust, patientId, page, consistency, {
      orgs: orgKeys,
    });
    for (;;) {
      await verifier.add(page);
      onProgress?.(verifier.progress.done, verifier.progress.total);
      if (page.next === null) break;
      page = await fetchPage(page.next, verifier.size);
    }
    const verified = verifier.finish();
    if (verified.advances) await this.#remember(verified.note);
    return verified;
  }

  /** A history 404: verify its proof of absence, then report NOT_FOUND (or the failed proof). */
  async #absent(patientId: string, err: NodeError): Promise<never> {
    const body = err.body;
    if (body?.indexProof === undefined || body.checkpoint === undefined || body.size === undefined) {
      throw new LedgerError("PROOF_INVALID", "the node says the patient has no entries but proves nothing", {
        cause: err,
      });
    }
    const size = parseUint64(body.size);
    if (size === undefined)
      throw new LedgerError("MALFORMED_INPUT", "the node's size is not a decimal uint64");
    const { advances } = await verifyAbsence(
      this.crypto,
      this.#trust,
      patientId,
      body.checkpoint,
      size,
      body.indexProof,
      (f, t) => this.#consistency(f, t),
    );
    if (advances) await this.#remember(body.checkpoint);
    throw new LedgerError(
      "NOT_FOUND",
      `patient ${patientId} has no entries (proven against the checkpoint of size ${size})`,
    );
  }

  /** Verify the history and decrypt what the caller may read (recording access events for an org first). */
  async #readVerified(
    patientId: string,
    options: { attachments: boolean; keepKeys: boolean; onProgress?: (done: number, total: number) => void },
  ): Promise<{ history: VerifiedHistory; view: LedgerView; result: ReadResult }> {
    const history = await this.#verifiedHistory(patientId, options.onProgress);
    const view = viewOf(history);
    const result = await this.#decryptRecords(history, view, options);
    return { history, view, result };
  }

  async #decryptRecords(
    history: VerifiedHistory,
    view: LedgerView,
    options: { attachments: boolean; keepKeys: boolean },
  ): Promise<ReadResult> {
    const me = this.#me();
    const statuses = new Map<string, HistoryRecord>();
    const keys = new Map<string, Uint8Array>();
    const readable: Readable[] = [];
    for (const [id, version] of view.records) {
      const status = this.#plan(version, view);
      if (typeof status === "string") statuses.set(id, recordOf(version, status));
      else readable.push(status);
    }
    const events =
      me.kind === "org" ? await this.#recordAccess(history, readable) : new Map<string, string>();
    await mapLimit(readable, READ_CONCURRENCY, async (r) => {
      const header = headerOf(r.version);
      const aad = recordAad(header);
      const key = await unwrapKey(this.crypto, me.keyid, me.encryption, r.env, aad);
      try {
        const access = events.get(header.record);
        const blob = await this.#blob(r.version.body.ciphertext, me, access);
        const payload = await decryptPayload(this.crypto, key, header, blob);
        let attachments: Attachment[] | undefined;
        if (options.attachments) attachments = await this.#attachments(r.version, payload, key, aad, access);
        statuses.set(header.record, {
          ...recordOf(r.version, "decrypted"),
          payload,
          ...(attachments === undefined ? {} : { attachments }),
        });
        if (options.keepKeys) keys.set(header.record, key);
      } finally {
        if (!options.keepKeys) key.fill(0);
      }
    });
    return { statuses, keys };
  }

  /** Whether and how the caller can read a record version: a status, or the envelope and basis to use. */
  #plan(version: RecordVersion, view: LedgerView): RecordStatus | Readable {
    const me = this.#me();
    const body = version.body;
    if (version.erased) return "erased";
    const isAuthor = me.kind === "org" && me.id === body.author;
    if (body.withheldFromPatient && !isAuthor) return "withheld";
    const own = body.envelopes.find((e) => e.to === me.keyid)?.env;
    if (me.kind !== "org") return own === undefined ? "no-key" : { version, env: own, basis: null };
    // An org holds a key through the record's own envelopes, or through a key share of a grant in force
    // (a share under a revoked or expired grant gives no right to the ciphertext: docs/api.md section 4).
    const today = this.#today();
    const inForce = (g: GrantView): boolean =>
      grantInForce({ revoked: g.revoked, expires: g.body.expires, granteeActive: true }, today);
    const mine = [...view.grants.values()].filter((g) => g.body.grantee === me.id);
    const sharing = mine.filter((g) => g.shared.has(body.record));
    const liveShare = sharing.find(inForce);
    const env = own ?? liveShare?.shared.get(body.record);
    if (env === undefined) return sharing.length > 0 ? "no-access" : "no-key";
    const care = isAuthor || (body.validator === me.id && !body.withheldFromPatient);
    if (care) return { version, env, basis: { type: "care" } };
    const grant = liveShare ?? mine.filter(inForce).at(-1);
    if (grant !== undefined) return { version, env, basis: { type: "grant", grant: grant.id } };
    const nowSeconds = Math.floor(this.#now() / 1000);
    const emergency = [...view.emergencies.entries()]
      .filter(([, e]) => e.org === me.id && nowSeconds - e.ledgerTime <= EMERGENCY_WINDOW_SECONDS)
      .at(-1);
    if (emergency !== undefined)
      return { version, env, basis: { type: "emergency", emergency: emergency[0] } };
    return "no-access";
  }

  /** Append the access events an org must record before it downloads ciphertext; record id -> event id. */
  async #recordAccess(history: VerifiedHistory, readable: readonly Readable[]): Promise<Map<string, string>> {
    const org = this.#org();
    const groups = new Map<string, { basis: AccessBasis; records: string[] }>();
    for (const r of readable) {
      if (r.basis === null) continue;
      const key = JSON.stringify(r.basis);
      const group = groups.get(key) ?? { basis: r.basis, records: [] };
      group.records.push(r.version.body.record);
      groups.set(key, group);
    }
    const planned: { basis: AccessBasis; records: string[] }[] = [];
    for (const { basis, records } of groups.values()) {
      records.sort();
      for (let i = 0; i < records.length; i += 256)
        planned.push({ basis, records: records.slice(i, i + 256) });
    }
    const events = new Map<string, string>();
    if (planned.length === 0) return events;
    let built: SignedEntry[] = [];
    await this.#onHead(
      org,
      history.patient,
      async (head) => {
        built = [];
        let prev = head;
        for (const p of planned) {
          const e = await accessEventEntry(this.crypto, org, history.patient, prev, p.records, p.basis);
          built.push(e);
          prev = e.id;
        }
        return built.map((e) => e.bytes);
      },
      history.chain.head,
    );
    planned.forEach((p, i) => p.records.forEach((record) => events.set(record, built[i]!.id)));
    return events;
  }

  /** Download a blob the entry names and check it is that blob (DECRYPTION_FAILED otherwise). */
  async #blob(
    ref: { readonly hash: string; readonly size: number },
    signer: RequestSigner,
    access: string | undefined,
  ): Promise<Uint8Array> {
    const bytes = await this.#http.bytes(
      {
        method: "GET",
        path: `/v1/blobs/${ref.hash}`,
        signer,
        ...(access === undefined ? {} : { headers: { [ACCESS_HEADER]: access } }),
      },
      ref.size,
    );
    if (bytes.length !== ref.size || toHex(this.crypto.sha256(bytes)) !== ref.hash) {
      throw new LedgerError("DECRYPTION_FAILED", `blob ${ref.hash} is not the ciphertext its entry names`);
    }
    return bytes;
  }

  async #attachments(
    version: RecordVersion,
    payload: RecordPayload,
    key: Uint8Array,
    aad: Uint8Array,
    access: string | undefined,
  ): Promise<Attachment[]> {
    const me = this.#me();
    const sizes = new Map(version.body.blobs.map((b) => [b.hash, b.size]));
    const out: Attachment[] = [];
    for (const [i, meta] of payload.attachments.entries()) {
      const chunks: Uint8Array[] = [];
      for (const hash of meta.chunks) {
        const size = sizes.get(hash);
        if (size === undefined) {
          throw new LedgerError(
            "DECRYPTION_FAILED",
            `chunk ${hash} of record ${version.body.record} is not in its entry`,
          );
        }
        chunks.push(await this.#blob({ hash, size }, me, access));
      }
      out.push({
        name: meta.name,
        contentType: meta.contentType,
        bytes: await decryptAttachment(this.crypto, key, aad, i, meta, chunks),
      });
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------------------
  // Helpers
  // ---------------------------------------------------------------------------------------------------

  #me(): Identity {
    if (this.identity === undefined)
      throw new LedgerError("INVALID_ARGUMENT", "this needs an identity: pass one to the client");
    return this.identity;
  }

  #org(): Identity {
    const me = this.#me();
    if (me.kind !== "org")
      throw new LedgerError("INVALID_ARGUMENT", "this is done as an org: unlock an org key file");
    return me;
  }

  #patient(): Identity {
    const me = this.#me();
    if (me.kind !== "patient")
      throw new LedgerError("INVALID_ARGUMENT", "this is done as the patient: unlock a patient key file");
    return me;
  }

  /** Today, UTC, by the client's clock. */
  #today(): string {
    return ledgerDay(Math.floor(this.#now() / 1000));
  }
}

function copyTrust(trust: TrustState): TrustState {
  return {
    origin: trust.origin,
    logKey: trust.logKey,
    witnesses: [...trust.witnesses],
    quorum: trust.quorum,
    checkpoint: trust.checkpoint,
  };
}

function checkPatientId(id: string): void {
  if (!RandomIdSchema.safeParse(id).success) {
    throw new LedgerError("INVALID_ARGUMENT", "a patient id is 16 to 32 random bytes in lower-case hex");
  }
}

function headerOf(version: RecordVersion): RecordHeader {
  const { patient, record, author, month } = version.body;
  return { patient, record, author, month };
}

function recordOf(version: RecordVersion, status: RecordStatus): HistoryRecord {
  const body = version.body;
  return {
    id: body.record,
    author: body.author,
    validator: body.validator,
    withheldFromPatient: body.withheldFromPatient,
    supersedes: body.supersedes ?? null,
    supersededBy: version.supersededBy,
    erased: version.erased,
    status,
  };
}

/** Run `fn` over the items with at most `limit` in flight; the first failure rejects. */
async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
