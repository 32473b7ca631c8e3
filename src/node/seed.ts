/**
 * Synthetic but well-formed ledger content, for trying a node out, benchmarks and audits (`medledger node
 * seed`). Everything goes through the real path: entries are built and signed by the client SDK's builders
 * (src/sdk/entries.ts) as clients would, submitted with node.submit, judged by the validator, appended and
 * checkpointed. Random bytes are not records: each record is a small FHIR resource in the SDK's record
 * payload (docs/records.md), encrypted by the SDK under a fresh data key, its ciphertext stored as a blob,
 * the data key wrapped with HPKE for the patient, the author and the validator.
 */
import { join } from "node:path";
import { LedgerError } from "../core/errors.ts";
import { toHex } from "../core/encoding/bytes.ts";
import { unlockKeyFile, type KeyFileContents } from "../core/crypto/keyfile.ts";
import type { CryptoSuite, KeyPair } from "../core/crypto/suite.ts";
import { entryId, newRandomId, orgRecipient, patientRecipient } from "../core/ledger/entry.ts";
import { ledgerMonth } from "../core/ledger/state.ts";
import {
  deriveBlindingKey,
  encryptRecord,
  enrollmentEntry,
  identifierEntry,
  recordEntry as recordEntryOf,
  signAs,
  wrapKeyFor,
  type EnvelopeRef,
  type RecordContent,
} from "../sdk/index.ts";
import { NODE_KEYS_DIR, readPassphrase, readSmallFile } from "./config.ts";
import { GENESIS_AUTHOR_ORG, GENESIS_VALIDATOR_ORG, orgKeyFile } from "./init.ts";
import type { LedgerNode } from "./node.ts";

/** The record format is the SDK's (docs/records.md); re-exported for callers of the seeder. */
export { RECORD_AAD_PREFIX, recordAad } from "../sdk/index.ts";
/** The identifier system of seeded MRNs. */
export const SEED_MRN_SYSTEM = "urn:medledger:demo:mrn";
/** Bounds of `node seed`. */
export const MAX_SEED_PATIENTS = 1_000_000;
/** Bound on records per seeded patient. */
export const MAX_SEED_RECORDS_PER_PATIENT = 1000;
/** Entries per submit() call while seeding. */
const SEED_CHUNK = 1000;
/** submit() calls in flight while seeding: enough to keep the node busy while the next chunk is built. */
const SEED_IN_FLIGHT = 4;
/** Clinical months are spread over the three years before the ledger month. */
const SEED_MONTHS_BACK = 36;

/** An org the seeder signs for. */
export interface SeedOrg {
  readonly id: string;
  readonly keys: KeyFileContents;
}

/** The demo actors of a data folder: the author org, the validator org, and the author's blinding key. */
export interface SeedActors {
  readonly author: SeedOrg;
  readonly validator: SeedOrg;
  /** The author org's secret key for blinding MRNs (DESIGN.md section 6). */
  readonly blindingKey: Uint8Array;
}

/** A synthetic patient: keys as the patient's own device would hold them, and the chain head. */
export interface SeedPatient {
  readonly id: string;
  readonly sign: KeyPair;
  readonly enc: KeyPair;
  /** Id of the patient's latest entry built so far, or null before enrolment. */
  head: string | null;
}

/** Unlock the demo orgs' key files of a data folder with the passphrases in keys/PASSPHRASES.txt. */
export async function loadSeedActors(crypto: CryptoSuite, dir: string): Promise<SeedActors> {
  const unlock = async (org: string): Promise<SeedOrg> => {
    const file = orgKeyFile(org);
    const bytes = await readSmallFile(join(dir, NODE_KEYS_DIR, file), `${NODE_KEYS_DIR}/${file}`);
    return { id: org, keys: await unlockKeyFile(crypto, bytes, await readPassphrase(dir, file)) };
  };
  const author = await unlock(GENESIS_AUTHOR_ORG);
  const validator = await unlock(GENESIS_VALIDATOR_ORG);
  return { author, validator, blindingKey: await seedBlindingKey(crypto, author.keys) };
}

/**
 * The demo hospital's MRN blinding key: the SDK's derivation for every org (deriveBlindingKey, from the
 * org's key file), so seeded links are found again by MRN through the SDK.
 */
export function seedBlindingKey(crypto: CryptoSuite, org: KeyFileContents): Promise<Uint8Array> {
  return deriveBlindingKey(crypto, org.signing.secretKey);
}

/** A fresh patient with fresh keys and a random pseudonymous id. */
export async function newSeedPatient(crypto: CryptoSuite): Promise<SeedPatient> {
  const [sign, enc] = await Promise.all([crypto.ed25519Generate(), crypto.x25519Generate()]);
  return { id: newRandomId(crypto), sign, enc, head: null };
}

/** Advance the patient's chain to the entry and return its bytes. */
function chained(crypto: CryptoSuite, patient: SeedPatient, bytes: Uint8Array): Uint8Array {
  patient.head = entryId(crypto, bytes);
  return bytes;
}

/** patient.enroll by the author org, signed by the patient and the org. */
export async function enrollEntry(
  crypto: CryptoSuite,
  actors: SeedActors,
  patient: SeedPatient,
): Promise<Uint8Array> {
  const org = { id: actors.author.id, signing: actors.author.keys.signing };
  const signed = await enrollmentEntry(crypto, org, {
    id: patient.id,
    signing: patient.sign,
    encryption: patient.enc,
  });
  return chained(crypto, patient, signed.bytes);
}

/** identifier.link of an MRN at the author org, blinded with its key, signed by the patient and the org. */
export async function linkEntry(
  crypto: CryptoSuite,
  actors: SeedActors,
  patient: SeedPatient,
  mrn: string,
): Promise<Uint8Array> {
  if (patient.head === null) throw new LedgerError("INVALID_ARGUMENT", "enrol the patient first");
  const org = { id: actors.author.id, signing: actors.author.keys.signing, blindingKey: actors.blindingKey };
  const signed = await identifierEntry(
    crypto,
    "identifier.link",
    org,
    { id: patient.id, signing: patient.sign },
    patient.head,
    SEED_MRN_SYSTEM,
    mrn,
  );
  return chained(crypto, patient, signed.bytes);
}

/** The synthetic records: a record type, a title and a FHIR R4 resource dated on a day. */
const RECORDS = [
  (day: string) => ({
    type: "clinical-note" as const,
    title: "Heart rate",
    resource: {
      resourceType: "Observation",
      status: "final",
      category: [{ coding: [{ code: "vital-signs" }] }],
      code: { coding: [{ system: "http://loinc.org", code: "8867-4", display: "Heart rate" }] },
      effectiveDateTime: day,
      valueQuantity: { value: 0, unit: "/min" },
    },
  }),
  (day: string) => ({
    type: "laboratory-result" as const,
    title: "HbA1c",
    resource: {
      resourceType: "Observation",
      status: "final",
      category: [{ coding: [{ code: "laboratory" }] }],
      code: { coding: [{ system: "http://loinc.org", code: "4548-4", display: "Hemoglobin A1c" }] },
      effectiveDateTime: day,
      valueQuantity: { value: 0, unit: "%" },
    },
  }),
  (day: string) => ({
    type: "consultation" as const,
    title: "Consultation",
    resource: {
      resourceType: "Encounter",
      status: "finished",
      class: { code: "AMB", display: "ambulatory" },
      period: { start: day, end: day },
    },
  }),
  (day: string) => ({
    type: "prescription" as const,
    title: "Amoxicillin",
    resource: {
      resourceType: "MedicationRequest",
      status: "active",
      intent: "order",
      medicationCodeableConcept: { text: "Amoxicillin 500 mg capsule" },
      authoredOn: day,
    },
  }),
] as const;

/** A small synthetic record (docs/records.md payload) dated within `month`, about `patient`. */
export function syntheticRecord(crypto: CryptoSuite, patient: string, month: string): RecordContent {
  const [r0, r1, r2] = crypto.randomBytes(3);
  const date = `${month}-${String(1 + (r1! % 28)).padStart(2, "0")}`;
  const { type, title, resource } = RECORDS[r0! % RECORDS.length]!(date);
  const out: Record<string, unknown> = { ...resource, subject: { reference: `Patient/${patient}` } };
  if ("valueQuantity" in resource) {
    const unit = resource.valueQuantity.unit;
    out.valueQuantity = { value: unit === "%" ? 4 + (r2! % 60) / 10 : 50 + (r2! % 60), unit };
  }
  return { type, sensitivity: "normal", date, title, resource: out };
}

/** A month `back` months before the month of a ledger time (YYYY-MM). */
export function monthsBefore(time: number, back: number): string {
  const [y, m] = ledgerMonth(time).split("-").map(Number) as [number, number];
  const index = y * 12 + (m - 1) - back;
  return `${Math.floor(index / 12)}-${String((index % 12) + 1).padStart(2, "0")}`;
}

/**
 * record.append by the author org, attested by the validator org, encrypted by the SDK (docs/records.md):
 * the payload blob is stored with `putBlob` and the entry carries its SHA-256 and size.
 */
export async function recordEntry(
  crypto: CryptoSuite,
  actors: SeedActors,
  patient: SeedPatient,
  month: string,
  putBlob: (bytes: Uint8Array) => Uint8Array,
): Promise<Uint8Array> {
  if (patient.head === null) throw new LedgerError("INVALID_ARGUMENT", "enrol the patient first");
  const header = { patient: patient.id, record: newRandomId(crypto), author: actors.author.id, month };
  const encrypted = await encryptRecord(crypto, header, syntheticRecord(crypto, patient.id, month));
  let envelopes: EnvelopeRef[];
  try {
    if (toHex(putBlob(encrypted.ciphertext)) !== encrypted.ciphertextRef.hash) {
      throw new LedgerError("INTERNAL", "the blob store returned another hash");
    }
    envelopes = await wrapKeyFor(
      crypto,
      [
        { to: orgRecipient(actors.author.id), publicKey: actors.author.keys.encryption.publicKey },
        { to: orgRecipient(actors.validator.id), publicKey: actors.validator.keys.encryption.publicKey },
        { to: patientRecipient(patient.id), publicKey: patient.enc.publicKey },
      ],
      encrypted.dataKey,
      encrypted.aad,
    );
  } finally {
    encrypted.dataKey.fill(0);
  }
  const entry = recordEntryOf(encrypted, {
    prev: patient.head,
    validator: actors.validator.id,
    withheldFromPatient: false,
    envelopes,
  });
  const signed = await signAs(crypto, entry, [
    ["author", actors.author.keys],
    ["validator", actors.validator.keys],
  ]);
  return chained(crypto, patient, signed.bytes);
}

/** What seeding did. */
export interface SeedSummary {
  readonly patients: number;
  readonly entries: number;
  readonly accepted: number;
  readonly rejected: number;
  /** Rejection codes and how often they occurred (none expected). */
  readonly reasons: Readonly<Record<string, number>>;
  readonly blobBytes: number;
  readonly size: bigint;
  readonly root: string;
  readonly seconds: number;
  readonly entriesPerSecond: number;
}

/** What seedNode needs. */
export interface SeedOptions {
  readonly patients: number;
  readonly recordsPerPatient: number;
  /** Told after each chunk is durable: entries done so far, out of `total`. */
  readonly onProgress?: (done: number, total: number) => void;
  /** The clock for back-dating months (Unix seconds; default: the system clock). */
  readonly now?: () => number;
}

/**
 * Fill a node: for each of N patients, an enrolment, one MRN link and M records. Entries are built while
 * earlier chunks are being processed; each chunk is one submit() call, so a patient's chain reaches the
 * node in order.
 */
export async function seedNode(
  crypto: CryptoSuite,
  node: LedgerNode,
  actors: SeedActors,
  options: SeedOptions,
): Promise<SeedSummary> {
  const { patients, recordsPerPatient } = options;
  if (!Number.isSafeInteger(patients) || patients < 1 || patients > MAX_SEED_PATIENTS) {
    throw new LedgerError("INVALID_ARGUMENT", `patients must be 1..${MAX_SEED_PATIENTS}`);
  }
  if (
    !Number.isSafeInteger(recordsPerPatient) ||
    recordsPerPatient < 0 ||
    recordsPerPatient > MAX_SEED_RECORDS_PER_PATIENT
  ) {
    throw new LedgerError(
      "INVALID_ARGUMENT",
      `records per patient must be 0..${MAX_SEED_RECORDS_PER_PATIENT}`,
    );
  }
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const total = patients * (2 + recordsPerPatient);
  const started = performance.now();
  let done = 0;
  let accepted = 0;
  let blobBytes = 0;
  const reasons: Record<string, number> = {};
  const inFlight = new Set<Promise<void>>();
  // Blobs wait for their chunk and are stored in one transaction (one fsync) before it is submitted.
  let blobs: Uint8Array[] = [];
  const putBlob = (bytes: Uint8Array): Uint8Array => {
    blobBytes += bytes.length;
    blobs.push(bytes);
    return crypto.sha256(bytes);
  };
  const send = async (chunk: Uint8Array[]): Promise<void> => {
    const results = await node.submit(chunk);
    for (const r of results) {
      if (r.accepted) accepted++;
      else reasons[r.reason] = (reasons[r.reason] ?? 0) + 1;
    }
    done += results.length;
    options.onProgress?.(done, total);
  };
  let chunk: Uint8Array[] = [];
  const flush = async (): Promise<void> => {
    if (chunk.length === 0) return;
    const pending = blobs;
    node.store.transaction(() => pending.forEach((blob) => node.store.putBlob(blob)));
    const sending = send(chunk);
    chunk = [];
    blobs = [];
    const tracked: Promise<void> = sending.finally(() => inFlight.delete(tracked));
    // Handled here too, so a failure seen first by another await is not an unhandled rejection.
    tracked.catch(() => undefined);
    inFlight.add(tracked);
    if (inFlight.size >= SEED_IN_FLIGHT) await Promise.race(inFlight);
  };
  const firstPatient = node.state.patients.size;
  for (let p = 0; p < patients; p++) {
    const patient = await newSeedPatient(crypto);
    chunk.push(await enrollEntry(crypto, actors, patient));
    chunk.push(
      await linkEntry(crypto, actors, patient, `MRN-${String(firstPatient + p + 1).padStart(8, "0")}`),
    );
    for (let r = 0; r < recordsPerPatient; r++) {
      const back = crypto.randomBytes(1)[0]! % SEED_MONTHS_BACK;
      chunk.push(await recordEntry(crypto, actors, patient, monthsBefore(now(), back), putBlob));
      if (chunk.length >= SEED_CHUNK) await flush();
    }
    if (chunk.length >= SEED_CHUNK) await flush();
  }
  await flush();
  await Promise.all(inFlight);
  const seconds = (performance.now() - started) / 1000;
  return {
    patients,
    entries: total,
    accepted,
    rejected: total - accepted,
    reasons,
    blobBytes,
    size: node.size,
    root: toHex(node.root()),
    seconds,
    entriesPerSecond: total / seconds,
  };
}
