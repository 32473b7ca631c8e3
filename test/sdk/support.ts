/**
 * A small region for the SDK's tests, on a real in-process node over the memory store: a consortium key,
 * a hospital and a laboratory (authors), a validator, and patients whose entries are built and signed with
 * the SDK's own builders (src/sdk/entries.ts), encrypted with its record format, and judged by the real
 * validator. Ciphertext goes to the node's blob store.
 */
import assert from "node:assert/strict";
import { toHex } from "../../src/core/encoding/bytes.ts";
import type { CryptoSuite } from "../../src/core/crypto/suite.ts";
import { buildEntry } from "../../src/core/ledger/entry.ts";
import { generateNoteKey, parseNoteSignerKey, type NoteSigner } from "../../src/core/note/signed-note.ts";
import { createNode, type LedgerNode } from "../../src/node/node.ts";
import { MemoryStore } from "../../src/store/index.ts";
import {
  encryptRecord,
  enrollmentEntry,
  identityFromKeys,
  newTrustState,
  recordEntry,
  signAs,
  wrapKeyFor,
  type Identity,
  type RecordContent,
  type SignedEntry,
  type TrustState,
} from "../../src/sdk/index.ts";

/** 2026-11-02T09:00:00Z; each batch a minute later. */
export const T0 = Date.UTC(2026, 10, 2, 9) / 1000;
export const ORIGIN = "sdk.medledger.example/log";

/** A node and the actors of a test. */
export interface Region {
  readonly crypto: CryptoSuite;
  readonly node: LedgerNode;
  readonly logSigner: NoteSigner;
  readonly consortium: Identity;
  readonly hospital: Identity;
  readonly lab: Identity;
  readonly validator: Identity;
  /** The node's clock (seconds), advanced a minute per batch. */
  readonly clock: { now: number };
  trust(): TrustState;
  close(): Promise<void>;
}

/** A fresh identity of a kind. */
export async function newIdentity(
  crypto: CryptoSuite,
  kind: "org" | "patient" | "consortium",
  id: string,
): Promise<Identity> {
  const [signing, encryption] = await Promise.all([crypto.ed25519Generate(), crypto.x25519Generate()]);
  return identityFromKeys(crypto, kind, id, signing, encryption);
}

/** Start a node over the memory store with its genesis; `logSigner` and `genesis` let two nodes share them. */
export async function startRegion(
  crypto: CryptoSuite,
  shared?: {
    readonly logSigner: NoteSigner;
    readonly actors: Pick<Region, "consortium" | "hospital" | "lab" | "validator">;
  },
): Promise<Region> {
  const logSigner =
    shared?.logSigner ??
    (await parseNoteSignerKey(crypto, (await generateNoteKey(crypto, ORIGIN)).signerKey));
  const consortium = shared?.actors.consortium ?? (await newIdentity(crypto, "consortium", ""));
  const hospital = shared?.actors.hospital ?? (await newIdentity(crypto, "org", "hospital"));
  const lab = shared?.actors.lab ?? (await newIdentity(crypto, "org", "lab"));
  const validator = shared?.actors.validator ?? (await newIdentity(crypto, "org", "validator"));
  const clock = { now: T0 };
  const node = await createNode({
    store: new MemoryStore(),
    config: { origin: ORIGIN, logKey: logSigner.verifier.verifierKey },
    logSigner,
    crypto,
    verifyWorkers: 0,
    now: () => (clock.now += 60),
  });
  const org = (o: Identity, roles: ("author" | "validator")[]) => ({
    id: o.id,
    roles,
    signKey: toHex(o.signing.publicKey),
    encKey: toHex(o.encryption.publicKey),
  });
  const genesis = await signAs(
    crypto,
    buildEntry("genesis", {
      origin: ORIGIN,
      consortium: { threshold: 1, keys: [toHex(consortium.signing.publicKey)] },
      orgs: [org(hospital, ["author"]), org(lab, ["author"]), org(validator, ["validator"])],
    }),
    [["consortium", consortium]],
  );
  await accept(node, [genesis]);
  return {
    crypto,
    node,
    logSigner,
    consortium,
    hospital,
    lab,
    validator,
    clock,
    trust: () => newTrustState({ origin: ORIGIN, logKey: logSigner.verifier.verifierKey }),
    close: () => node.close(),
  };
}

/** Submit entries that must all be accepted. */
export async function accept(node: LedgerNode, entries: readonly SignedEntry[]): Promise<void> {
  const results = await node.submit(entries.map((e) => e.bytes));
  for (const r of results) assert.ok(r.accepted, `refused: ${r.accepted ? "" : `${r.reason} ${r.detail}`}`);
}

/** A patient enrolled by an org; returns the patient and its chain head. */
export async function enrolled(region: Region, by: Identity): Promise<{ patient: Identity; head: string }> {
  const patient = await newIdentity(region.crypto, "patient", toHex(region.crypto.randomBytes(16)));
  const e = await enrollmentEntry(region.crypto, by, patient);
  await accept(region.node, [e]);
  return { patient, head: e.id };
}

/** A lab result (or any content) by `author`, attested by the validator, wrapped for the usual readers. */
export async function record(
  region: Region,
  author: Identity,
  patient: Identity,
  prev: string,
  content: Partial<RecordContent> = {},
  extraReaders: readonly Identity[] = [],
): Promise<{ entry: SignedEntry; record: string }> {
  const { crypto } = region;
  const full: RecordContent = {
    type: "laboratory-result",
    sensitivity: "normal",
    date: "2026-10-14",
    title: "HbA1c",
    resource: {
      resourceType: "Observation",
      status: "final",
      subject: { reference: `Patient/${patient.id}` },
    },
    ...content,
  };
  const header = {
    patient: patient.id,
    record: toHex(crypto.randomBytes(16)),
    author: author.id,
    month: full.date.slice(0, 7),
  };
  const encrypted = await encryptRecord(crypto, header, full);
  const withheld = full.sensitivity === "psychotherapy-note";
  const readers = withheld ? [author] : [author, region.validator, patient, ...extraReaders];
  const envelopes = await wrapKeyFor(
    crypto,
    readers.map((r) => ({ to: r.keyid, publicKey: r.encryption.publicKey })),
    encrypted.dataKey,
    encrypted.aad,
  );
  for (const blob of [encrypted.ciphertext, ...encrypted.chunks.flat()]) region.node.store.putBlob(blob);
  const entry = await signAs(
    crypto,
    recordEntry(encrypted, {
      prev,
      validator: region.validator.id,
      withheldFromPatient: withheld,
      envelopes,
    }),
    [
      ["author", author],
      ["validator", region.validator],
    ],
  );
  await accept(region.node, [entry]);
  return { entry, record: header.record };
}
