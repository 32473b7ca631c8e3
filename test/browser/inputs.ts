/**
 * The Node side of the browser test's input: the published vectors read from test/vectors, and artefacts
 * made with the node suite (a signed note, key envelopes, a key file, a patient index) for the page to
 * verify or open. Also what the page must have run: the number of cases per group.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { encodeEnvelope, envelopeToJson, sealEnvelope } from "../../src/core/crypto/envelope.ts";
import { createKeyFile, encodeKeyFile, generateKeyFileKeys } from "../../src/core/crypto/keyfile.ts";
import type { KeyPair } from "../../src/core/crypto/suite.ts";
import { fromHex, toBase64, toHex, utf8 } from "../../src/core/encoding/bytes.ts";
import { canonicalBytes, canonicalize, parseJson } from "../../src/core/encoding/jcs.ts";
import { signRequest } from "../../src/core/http/request-auth.ts";
import { generateNoteKey, parseNoteSignerKey, signNote } from "../../src/core/note/signed-note.ts";
import { MemoryIndexStore, PatientIndex, patientIndexKey } from "../../src/core/patient-index/index.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { TESSERA_LOG_VKEY, TESSERA_ORIGIN, tesseraEntries, tesseraPath } from "../unit/support/tessera.ts";
import type { BrowserInput, Ed25519Vector, Group, HpkeVector, MerkleProbe } from "./protocol.ts";
import ed25519Vectors from "../vectors/rfc8032/ed25519.json" with { type: "json" };
import rfc9421 from "../vectors/rfc9421/ed25519.json" with { type: "json" };
import rfc9530 from "../vectors/rfc9530/content-digest.json" with { type: "json" };

const VECTORS = fileURLToPath(new URL("../vectors/", import.meta.url));

/** RFC 8032 section 7.1 (test/vectors/rfc8032; the unit tests hold the node suite to the same). */
const ED25519_VECTORS: readonly Ed25519Vector[] = ed25519Vectors.vectors;

/** JSON texts whose RFC 8785 form the page must give exactly as Node does. */
const JCS_TEXTS: readonly string[] = [
  // RFC 8785 section 3.2.2 (without 1E30, which is outside the safe-integer range we accept).
  '{\n  "numbers": [333333333.33333329, 4.50, 2e-3, 0.000000000000000000000000001],\n' +
    '  "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",\n' +
    '  "literals": [null, true, false]\n}',
  // RFC 8785 section 3.2.3: members sorted by UTF-16 code units.
  '{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew Letter Dalet With Dagesh",' +
    '"1":"One","\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control",' +
    '"\\u00f6":"Latin Small Letter O With Diaeresis"}',
  // RFC 8785 appendix B numbers within the safe range.
  "[0, -0, 5e-324, -5e-324, 2.2250738585072014e-308, 9007199254740991, -9007199254740991, 0.000001, " +
    "9.999999999999997e-7, 123456789012345.6, 1e-7, 100]",
  '{"ctrl":"\\u0000\\u001f\\u007f","line":"\\u2028","nfd":"e\\u0301","raw":"é☃😀"}',
  '[{"b":[],"a":{},"c":[[[]]]},null,true,false,"",{"":""}]',
  '{"__proto__":{"polluted":true},"constructor":1}',
];

/** Eight patients, as in the patient-index regression vector of test/unit/patient-index.test.ts. */
const PATIENTS = Array.from({ length: 8 }, (_, i) => ({
  id: `patient-${i}`,
  head: toHex(nodeCrypto.sha256(utf8(`head-${i}`))),
  length: i + 1,
}));

/** The regression root of those eight patients (test/unit/patient-index.test.ts). */
export const PATIENT_INDEX_ROOT = "254c23fbe3fc90494ef6d7af38ccb09b2263bc2864ac86cae267f1836a41cd50";

function walkJson(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? walkJson(join(dir, e.name)) : e.name.endsWith(".json") ? [join(dir, e.name)] : [],
    )
    .sort();
}

/**
 * The transparency-dev/merkle probes. Sizes and indices are uint64 (some are 2^64 - 1): they are read as
 * text, before JSON.parse would round them to doubles.
 */
function merkleProbes(): MerkleProbe[] {
  const root = join(VECTORS, "merkle", "testdata");
  return (["inclusion", "consistency"] as const).flatMap((kind) =>
    walkJson(join(root, kind)).map((file) => {
      const text = readFileSync(file, "utf8").replace(
        /"(leafIdx|treeSize|size1|size2)":\s*(\d+)/g,
        '"$1": "$2"',
      );
      const probe = JSON.parse(text) as Record<string, unknown>;
      return { ...probe, kind, name: relative(root, file) } as MerkleProbe;
    }),
  );
}

/** Every signed checkpoint of the Tessera test log: checkpoint.0 .. checkpoint.15 and the latest. */
function tesseraCheckpoints(): BrowserInput["tessera"]["checkpoints"] {
  return readdirSync(tesseraPath("."))
    .filter((name) => /^checkpoint(\.\d+)?$/.test(name))
    .sort()
    .map((name) => {
      const text = readFileSync(tesseraPath(name), "utf8");
      return { name, size: Number(text.split("\n")[1]), text };
    });
}

/** What Node keeps to check the page's artefacts. */
export interface NodeSide {
  /** The recipient the page seals an envelope to. */
  readonly recipient: KeyPair;
  readonly envelopeBinding: { readonly info: Uint8Array; readonly aad: Uint8Array };
}

/** Build the page's input: vectors from test/vectors, artefacts from the node suite. */
export async function buildInput(): Promise<{ input: BrowserInput; node: NodeSide }> {
  const hpke = (
    JSON.parse(readFileSync(join(VECTORS, "hpke", "rfc9180-x25519-base.json"), "utf8")) as {
      vectors: HpkeVector[];
    }
  ).vectors;
  const notes = (
    JSON.parse(readFileSync(join(VECTORS, "signed-note", "notes.json"), "utf8")) as {
      valid: BrowserInput["notes"];
    }
  ).valid;

  const noteKey = await generateNoteKey(nodeCrypto, "node.medledger.example/test");
  const note = await signNote("signed by the node suite\n", [
    await parseNoteSignerKey(nodeCrypto, noteKey.signerKey),
  ]);

  const pageRecipient = await nodeCrypto.x25519Generate();
  const dataKey = nodeCrypto.randomBytes(32);
  const binding = { info: utf8("reader: the browser"), aad: utf8("entry header") };
  const envelope = await sealEnvelope(nodeCrypto, pageRecipient.publicKey, dataKey, binding);

  const recipient = await nodeCrypto.x25519Generate();
  const envelopeBinding = { info: utf8("reader: node"), aad: utf8("another entry header") };

  const passphrase = "correct horse battery staple";
  const keys = await generateKeyFileKeys(nodeCrypto, "org", "clinic");
  const keyFile = await createKeyFile(
    nodeCrypto,
    {
      kind: "org",
      label: keys.label,
      signingSecretKey: keys.signing.secretKey,
      encryptionSecretKey: keys.encryption.secretKey,
    },
    passphrase,
    { kdf: { N: 1024, r: 8, p: 1 }, allowWeakKdf: true },
  );

  const sha = (data: Uint8Array) => nodeCrypto.sha256(data);
  const index = new PatientIndex(sha, new MemoryIndexStore());
  index.update(
    PATIENTS.map((p) => ({
      key: patientIndexKey(sha, p.id),
      value: { head: fromHex(p.head), length: p.length },
    })),
  );

  // A request signed by the node suite, for the page to verify with the web suite.
  const httpKey = await nodeCrypto.ed25519Generate();
  const httpKeyid = `patient:${"c0".repeat(16)}`;
  const httpNowMs = 1_700_000_000_000;
  const httpBody = utf8('{"kind":"grant","to":"org:lab"}');
  const httpUnsigned = {
    method: "POST",
    url: "https://node.medledger.example/v1/entries?dry-run=1",
    headers: { "content-type": "application/json" },
  };
  const httpAdded = await signRequest(
    nodeCrypto,
    { ...httpUnsigned, body: httpBody },
    { keyid: httpKeyid, secretKey: httpKey.secretKey, clock: () => httpNowMs },
  );

  const input: BrowserInput = {
    hpke,
    ed25519: ED25519_VECTORS,
    notes,
    tessera: {
      origin: TESSERA_ORIGIN,
      verifierKey: TESSERA_LOG_VKEY,
      entries: tesseraEntries().map((e) => toHex(e)),
      checkpoints: tesseraCheckpoints(),
    },
    merkle: merkleProbes(),
    jcs: JCS_TEXTS.map((text) => ({
      text,
      canonical: canonicalize(parseJson(text)),
      bytes: toHex(canonicalBytes(parseJson(text))),
    })),
    fromNode: {
      note,
      noteVerifierKey: noteKey.verifierKey,
      textToSign: "signed in the browser\n",
      envelope: {
        recipientSecret: toHex(pageRecipient.secretKey),
        binary: toHex(encodeEnvelope(envelope)),
        json: JSON.stringify(envelopeToJson(envelope)),
        info: toHex(binding.info),
        aad: toHex(binding.aad),
        dataKey: toHex(dataKey),
      },
      recipientPublic: toHex(recipient.publicKey),
      envelopeInfo: toHex(envelopeBinding.info),
      envelopeAad: toHex(envelopeBinding.aad),
      keyFile: encodeKeyFile(keyFile),
      passphrase,
      keyFileSigningPublic: toBase64(keys.signing.publicKey),
      keyFileEncryptionPublic: toBase64(keys.encryption.publicKey),
    },
    httpAuth: {
      rfc9421,
      contentDigests: rfc9530.vectors,
      deprecatedDigests: rfc9530.deprecated,
      signedRequest: {
        ...httpUnsigned,
        headers: { ...httpUnsigned.headers, ...httpAdded },
        body: toHex(httpBody),
      },
      keyid: httpKeyid,
      publicKey: toHex(httpKey.publicKey),
      nowMs: httpNowMs,
    },
    patientIndex: {
      patients: PATIENTS,
      absent: ["patient-8", "patient-9", "nobody"],
      root: toHex(index.root),
    },
  };
  return { input, node: { recipient, envelopeBinding } };
}

/** How many cases each group of test/browser/entry.ts runs for this input. */
export function expectedCases(input: BrowserInput): Record<Group, number> {
  return {
    // DeriveKeyPair, Encap/Decap, KeySchedule, single-shot, and one per listed encryption.
    hpke: input.hpke.reduce((n, v) => n + 4 + v.encryptions.length, 0),
    ed25519: 2 * input.ed25519.length,
    // Each vector verified and refused when changed; Node's note verified; a note signed for Node.
    "signed-note": 2 * input.notes.length + 2,
    checkpoint: 2 * input.tessera.checkpoints.length,
    "tlog-proof": input.tessera.entries.length,
    "merkle-inclusion": input.merkle.filter((p) => p.kind === "inclusion").length,
    "merkle-consistency": input.merkle.filter((p) => p.kind === "consistency").length,
    jcs: input.jcs.length,
    envelope: 5,
    keyfile: 2,
    "patient-index": 1 + input.patientIndex.patients.length + input.patientIndex.absent.length,
    // The B.1.4 key, the B.2.6 base, signature and verification; each digest vector; Node's request; one for Node.
    "http-auth": 4 + input.httpAuth.contentDigests.length + input.httpAuth.deprecatedDigests.length + 2,
  };
}
