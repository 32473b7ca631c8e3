/**
 * The page side of test/browser/core-in-chromium.test.ts: the pure core and the WebCrypto suite, bundled
 * for the browser, run against the vectors Node hands in (RFC 9180, RFC 8032, C2SP signed notes and
 * checkpoints, transparency-dev/merkle probes, RFC 8785, RFC 9421 and RFC 9530) and against artefacts the node suite made. It
 * expects nothing of its own: every expected value comes from Node, so a case cannot pass by agreeing
 * with itself. It reports cases passed per group, failures with reasons, and artefacts for Node to check.
 *
 * No node: import here or in anything this imports: the test bundles it with esbuild for the browser.
 */
import { bytesEqual, fromBase64, fromHex, toBase64, toHex, utf8 } from "../../src/core/encoding/bytes.ts";
import { canonicalBytes, canonicalize, parseJson } from "../../src/core/encoding/jcs.ts";
import { isLedgerError } from "../../src/core/errors.ts";
import {
  decodeEnvelope,
  encodeEnvelope,
  envelopeFromJson,
  openEnvelope,
  sealEnvelope,
} from "../../src/core/crypto/envelope.ts";
import { Hpke, type HpkeAeadId } from "../../src/core/crypto/hpke.ts";
import {
  createKeyFile,
  encodeKeyFile,
  generateKeyFileKeys,
  unlockKeyFile,
} from "../../src/core/crypto/keyfile.ts";
import { contentDigest, verifyContentDigest } from "../../src/core/http/content-digest.ts";
import {
  createMessageSignature,
  serializeSignatureParams,
  signatureBase,
  verifyMessageSignature,
  type HttpRequest,
} from "../../src/core/http/message-signatures.ts";
import { createRequestVerifier, signRequest } from "../../src/core/http/request-auth.ts";
import { leafHash, type Sha256 } from "../../src/core/merkle/hash.ts";
import { verifyConsistency, verifyInclusion } from "../../src/core/merkle/proofs.ts";
import { MerkleTree } from "../../src/core/merkle/tree.ts";
import { openCheckpoint } from "../../src/core/note/checkpoint.ts";
import {
  generateNoteKey,
  openNote,
  parseNoteSignerKey,
  parseNoteVerifierKey,
  signNote,
} from "../../src/core/note/signed-note.ts";
import { createTlogProof, verifyTlogProof } from "../../src/core/note/tlog-proof.ts";
import {
  MemoryIndexStore,
  PatientIndex,
  encodeIndexProof,
  patientIndexKey,
  verifyMembership,
  verifyNonMembership,
} from "../../src/core/patient-index/index.ts";
import { webCrypto } from "../../src/platform/web-crypto.ts";
import {
  GROUPS,
  type BrowserInput,
  type BrowserOutputs,
  type BrowserReport,
  type CaseFailure,
  type Group,
  type WireRequest,
} from "./protocol.ts";

const crypto = webCrypto;
const sha: Sha256 = (data) => crypto.sha256(data);
/** scrypt cost of the key files made here: the lowest the key file format accepts (allowWeakKdf). */
const CHEAP_KDF = { kdf: { N: 1024, r: 8, p: 1 }, allowWeakKdf: true } as const;

/**
 * Count every call to crypto.subtle, so Node can see that the suite really ran on the browser's own
 * WebCrypto and not on a pure-JS fallback. The methods are wrapped, not replaced.
 */
function countSubtleCalls(): Record<string, number> {
  const counts: Record<string, number> = {};
  const proto = SubtleCrypto.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const method of [
    "importKey",
    "exportKey",
    "sign",
    "verify",
    "deriveBits",
    "encrypt",
    "decrypt",
    "digest",
  ]) {
    const original = proto[method];
    if (typeof original !== "function") continue;
    proto[method] = function (this: SubtleCrypto, ...args: unknown[]) {
      counts[method] = (counts[method] ?? 0) + 1;
      return original.apply(this, args);
    };
  }
  return counts;
}

const subtleCalls = countSubtleCalls();

/** A failed expectation inside a case. */
class Mismatch extends Error {}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Mismatch(what);
}

function same(
  actual: string | number | bigint | boolean,
  expected: string | number | bigint | boolean,
  what: string,
) {
  if (actual !== expected) throw new Mismatch(`${what}: got ${String(actual)}, want ${String(expected)}`);
}

/** The error code a LedgerError carries, "ok" when fn returns; any other exception is a failure. */
async function outcome(fn: () => unknown): Promise<string> {
  try {
    await fn();
    return "ok";
  } catch (err) {
    if (isLedgerError(err)) return err.code;
    throw err;
  }
}

async function refused(fn: () => unknown, what: string, ...codes: string[]): Promise<void> {
  const got = await outcome(fn);
  check(got !== "ok", `${what} was accepted`);
  if (codes.length > 0) check(codes.includes(got), `${what}: got ${got}, want ${codes.join(" or ")}`);
}

function describeError(err: unknown): string {
  if (err instanceof Mismatch) return err.message;
  if (err instanceof Error) return `${err.name}${isLedgerError(err) ? ` ${err.code}` : ""}: ${err.message}`;
  return String(err);
}

/** Runs cases, counting the ones that pass and keeping the reason of each failure. */
class Runner {
  readonly passed = Object.fromEntries(GROUPS.map((g) => [g, 0])) as Record<Group, number>;
  readonly failures: CaseFailure[] = [];

  async case(group: Group, name: string, fn: () => Promise<void> | void): Promise<void> {
    try {
      await fn();
      this.passed[group]++;
    } catch (err) {
      this.failures.push({ group, name, reason: describeError(err) });
    }
  }

  /** A step a group needs before its cases (a failure here leaves the group short of cases). */
  async setup<T>(group: Group, name: string, fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await fn();
    } catch (err) {
      this.failures.push({ group, name: `setup: ${name}`, reason: describeError(err) });
      return undefined;
    }
  }
}

/** (a) RFC 9180 appendix A through the core HPKE on WebCrypto. */
async function hpkeVectors(run: Runner, input: BrowserInput): Promise<void> {
  for (const v of input.hpke) {
    const hpke = new Hpke(crypto, v.aead_id as HpkeAeadId);
    const info = fromHex(v.info);
    const ephemeral = { secretKey: fromHex(v.skEm), publicKey: fromHex(v.pkEm) };

    await run.case("hpke", `${v.name}: DeriveKeyPair (7.1.3)`, async () => {
      const e = await hpke.deriveKeyPair(fromHex(v.ikmE));
      const r = await hpke.deriveKeyPair(fromHex(v.ikmR));
      same(toHex(e.secretKey), v.skEm, "skEm");
      same(toHex(e.publicKey), v.pkEm, "pkEm");
      same(toHex(r.secretKey), v.skRm, "skRm");
      same(toHex(r.publicKey), v.pkRm, "pkRm");
    });

    await run.case("hpke", `${v.name}: Encap and Decap (4.1)`, async () => {
      const { enc, sharedSecret } = await hpke.encap(fromHex(v.pkRm), { ephemeral });
      same(toHex(enc), v.enc, "enc");
      same(toHex(sharedSecret), v.shared_secret, "shared_secret (Encap)");
      same(
        toHex(await hpke.decap(fromHex(v.enc), fromHex(v.skRm))),
        v.shared_secret,
        "shared_secret (Decap)",
      );
    });

    await run.case("hpke", `${v.name}: KeySchedule (5.1)`, async () => {
      const schedule = await hpke.keySchedule(fromHex(v.shared_secret), info);
      same(toHex(schedule.key), v.key, "key");
      same(toHex(schedule.baseNonce), v.base_nonce, "base_nonce");
      same(toHex(await schedule.exporterSecret()), v.exporter_secret, "exporter_secret");
    });

    // Every encryption, in sequence order through one sender and one recipient context (5.2); the
    // sequence numbers the vector skips are spent on empty messages, as the RFC's generator did.
    const contexts = await run.setup("hpke", `${v.name}: contexts`, async () => {
      const { context: sender } = await hpke.setupBaseS(fromHex(v.pkRm), info, { ephemeral });
      const recipient = await hpke.setupBaseR(fromHex(v.enc), fromHex(v.skRm), info);
      return { sender, recipient };
    });
    if (contexts !== undefined) {
      const listed = new Map(v.encryptions.map((e) => [e.seq, e]));
      const last = Math.max(...listed.keys());
      for (let seq = 0; seq <= last; seq++) {
        const e = listed.get(seq);
        const aad = e === undefined ? new Uint8Array(0) : fromHex(e.aad);
        const pt = e === undefined ? new Uint8Array(0) : fromHex(e.pt);
        // Both contexts advance on every message, whatever the case's verdict, so one bad case does not
        // put the next ones out of step.
        const step = async () => {
          const ct = await contexts.sender.seal(aad, pt);
          return { ct, opened: await contexts.recipient.open(aad, ct) };
        };
        if (e === undefined) {
          if ((await run.setup("hpke", `${v.name}: message seq ${seq}`, step)) === undefined) break;
          continue;
        }
        await run.case("hpke", `${v.name}: encryption seq ${seq}`, async () => {
          const { ct, opened } = await step();
          same(toHex(ct), e.ct, "ct");
          same(toHex(opened), e.pt, "pt");
        });
      }
    }

    await run.case("hpke", `${v.name}: single-shot Seal and Open (6.1), a changed ct refused`, async () => {
      const e = v.encryptions[0]!;
      const sealed = await hpke.seal(fromHex(v.pkRm), info, fromHex(e.aad), fromHex(e.pt), { ephemeral });
      same(toHex(sealed.ct), e.ct, "ct");
      const opened = await hpke.open(fromHex(v.enc), fromHex(v.skRm), info, fromHex(e.aad), sealed.ct);
      same(toHex(opened), e.pt, "pt");
      const changed = sealed.ct.slice();
      changed[0]! ^= 1;
      await refused(
        () => hpke.open(fromHex(v.enc), fromHex(v.skRm), info, fromHex(e.aad), changed),
        "a changed ciphertext",
        "DECRYPTION_FAILED",
      );
    });
  }
}

/** (b) RFC 8032 section 7.1 on WebCrypto's Ed25519. */
async function ed25519Vectors(run: Runner, input: BrowserInput): Promise<void> {
  for (const v of input.ed25519) {
    const secret = fromHex(v.secret);
    const message = fromHex(v.message);
    await run.case("ed25519", `RFC 8032 ${v.name}: public key, signature, verification`, async () => {
      same(toHex(await crypto.ed25519PublicKey(secret)), v.public, "public key");
      const signature = await crypto.ed25519Sign(secret, message);
      same(toHex(signature), v.signature, "signature");
      check(
        await crypto.ed25519Verify(fromHex(v.public), message, signature),
        "the signature does not verify",
      );
    });
    await run.case("ed25519", `RFC 8032 ${v.name}: a changed message or signature is refused`, async () => {
      const signature = fromHex(v.signature);
      const otherMessage = Uint8Array.of(...message, 0);
      check(!(await crypto.ed25519Verify(fromHex(v.public), otherMessage, signature)), "changed message");
      const otherSignature = signature.slice();
      otherSignature[0]! ^= 1;
      check(!(await crypto.ed25519Verify(fromHex(v.public), message, otherSignature)), "changed signature");
    });
  }
}

/** (b, c) Signed notes: the published vectors, and notes signed on one side verified on the other. */
async function signedNotes(
  run: Runner,
  input: BrowserInput,
): Promise<Pick<BrowserOutputs, "note" | "noteVerifierKey">> {
  for (const v of input.notes) {
    await run.case("signed-note", `verifies ${v.what}`, async () => {
      const verifier = parseNoteVerifierKey(crypto, v.verifier_key);
      const opened = await openNote(v.note, [verifier]);
      same(opened.text, v.note.slice(0, v.note.lastIndexOf("\n\n") + 1), "text");
      same(opened.signedBy.length, 1, "verified signatures");
    });
    await run.case("signed-note", `refuses a changed text byte of ${v.what}`, async () => {
      const verifier = parseNoteVerifierKey(crypto, v.verifier_key);
      const changed = (v.note[0] === "X" ? "Y" : "X") + v.note.slice(1);
      await refused(() => openNote(changed, [verifier]), "a changed note", "SIGNATURE_INVALID");
    });
  }
  await run.case("signed-note", "verifies a note the node suite signed", async () => {
    const opened = await openNote(input.fromNode.note, [
      parseNoteVerifierKey(crypto, input.fromNode.noteVerifierKey),
    ]);
    same(opened.signedBy.length, 1, "verified signatures");
  });
  let out = { note: "", noteVerifierKey: "" };
  await run.case("signed-note", "signs a note for Node with a fresh key (and verifies it here)", async () => {
    const keys = await generateNoteKey(crypto, "browser.medledger.example/test");
    const note = await signNote(input.fromNode.textToSign, [
      await parseNoteSignerKey(crypto, keys.signerKey),
    ]);
    await openNote(note, [parseNoteVerifierKey(crypto, keys.verifierKey)]);
    out = { note, noteVerifierKey: keys.verifierKey };
  });
  return out;
}

/** (c) Every Tessera checkpoint under the log key, its root against the tree built here; tlog-proofs. */
async function tesseraLog(run: Runner, input: BrowserInput): Promise<void> {
  const { origin, verifierKey, entries, checkpoints } = input.tessera;
  const logKey = parseNoteVerifierKey(crypto, verifierKey);
  const leaves = entries.map((e) => fromHex(e));
  const tree = MerkleTree.create(sha);
  tree.appendMany(leaves);
  for (const cp of checkpoints) {
    await run.case(
      "checkpoint",
      `${cp.name} verifies; its root is that of the first ${cp.size} entries`,
      async () => {
        const opened = await openCheckpoint(cp.text, origin, logKey);
        same(opened.checkpoint.size, BigInt(cp.size), "size");
        check(bytesEqual(opened.checkpoint.rootHash, tree.rootAt(BigInt(cp.size))), "root hash");
      },
    );
    await run.case("checkpoint", `${cp.name} with a changed byte is refused`, async () => {
      const at = cp.text.indexOf("\n") + 1;
      const changed = cp.text.slice(0, at) + (cp.text[at] === "1" ? "2" : "1") + cp.text.slice(at + 1);
      await refused(
        () => openCheckpoint(changed, origin, logKey),
        "a changed checkpoint",
        "SIGNATURE_INVALID",
      );
    });
  }
  const bySize = new Map(checkpoints.map((cp) => [cp.size, cp.text]));
  for (let size = 1; size <= leaves.length; size++) {
    await run.case("tlog-proof", `every entry of the tree of size ${size}`, async () => {
      const checkpoint = bySize.get(size);
      check(checkpoint !== undefined, `no checkpoint for size ${size}`);
      for (let index = 0; index < size; index++) {
        const text = createTlogProof(
          BigInt(index),
          tree.inclusionProof(BigInt(index), BigInt(size)),
          checkpoint!,
        );
        const verified = await verifyTlogProof(crypto, text, leafHash(sha, leaves[index]!), {
          origin,
          logKey,
        });
        same(verified.proof.index, BigInt(index), "index");
        const other = leafHash(sha, leaves[(index + 1) % leaves.length]!);
        await refused(
          () => verifyTlogProof(crypto, text, other, { origin, logKey }),
          "another leaf",
          "PROOF_INVALID",
        );
      }
    });
  }
}

/** (d) transparency-dev/merkle probes: the verdict of each must be the one it wants. */
async function merkleProbes(run: Runner, input: BrowserInput): Promise<void> {
  const hash = (v: string | null) => (v === null ? new Uint8Array(0) : fromBase64(v));
  const hashes = (v: readonly string[] | null) => (v === null ? [] : v.map((h) => fromBase64(h)));
  for (const p of input.merkle) {
    const group: Group = p.kind === "inclusion" ? "merkle-inclusion" : "merkle-consistency";
    await run.case(group, p.name, async () => {
      const got = await outcome(() =>
        p.kind === "inclusion"
          ? verifyInclusion(sha, {
              index: BigInt(p.leafIdx),
              size: BigInt(p.treeSize),
              leafHash: hash(p.leafHash),
              proof: hashes(p.proof),
              root: hash(p.root),
            })
          : verifyConsistency(sha, {
              size1: BigInt(p.size1),
              size2: BigInt(p.size2),
              root1: hash(p.root1),
              root2: hash(p.root2),
              proof: hashes(p.proof),
            }),
      );
      if (p.wantErr) check(got !== "ok", "verified, but the probe wants an error");
      else same(got, "ok", "verdict");
    });
  }
}

/** (e) RFC 8785: the page's canonical form of each value is Node's. */
async function jcs(run: Runner, input: BrowserInput): Promise<void> {
  for (const [i, v] of input.jcs.entries()) {
    await run.case("jcs", `value ${i}: ${v.text.slice(0, 40)}`, () => {
      same(canonicalize(parseJson(v.text)), v.canonical, "canonical text");
      same(toHex(canonicalBytes(parseJson(utf8(v.text)))), v.bytes, "canonical bytes");
    });
  }
}

/** (f) Key envelopes: Node's open here, one sealed here goes back to Node. */
async function envelopes(
  run: Runner,
  input: BrowserInput,
): Promise<Pick<BrowserOutputs, "envelope" | "envelopeDataKey">> {
  const n = input.fromNode.envelope;
  const binding = { info: fromHex(n.info), aad: fromHex(n.aad) };
  await run.case("envelope", "opens an envelope the node suite sealed (binary form)", async () => {
    same(
      toHex(await openEnvelope(crypto, fromHex(n.recipientSecret), fromHex(n.binary), binding)),
      n.dataKey,
      "data key",
    );
  });
  await run.case("envelope", "opens an envelope the node suite sealed (JSON form)", async () => {
    const envelope = envelopeFromJson(JSON.parse(n.json));
    same(
      toHex(await openEnvelope(crypto, fromHex(n.recipientSecret), envelope, binding)),
      n.dataKey,
      "data key",
    );
  });
  await run.case("envelope", "refuses Node's envelope under another aad or with a changed byte", async () => {
    const secret = fromHex(n.recipientSecret);
    await refused(
      () => openEnvelope(crypto, secret, fromHex(n.binary), { ...binding, aad: utf8("x") }),
      "another aad",
      "DECRYPTION_FAILED",
    );
    const changed = fromHex(n.binary);
    changed[changed.length - 1]! ^= 1;
    await refused(
      () => openEnvelope(crypto, secret, changed, binding),
      "a changed envelope",
      "DECRYPTION_FAILED",
    );
  });
  await run.case("envelope", "seals and opens with a key generated here", async () => {
    const r = await crypto.x25519Generate();
    const dataKey = crypto.randomBytes(32);
    const envelope = await sealEnvelope(crypto, r.publicKey, dataKey, binding);
    check(
      bytesEqual(await openEnvelope(crypto, r, decodeEnvelope(encodeEnvelope(envelope)), binding), dataKey),
      "data key",
    );
  });
  let out = { envelope: "", envelopeDataKey: "" };
  await run.case("envelope", "seals a data key for Node's recipient", async () => {
    const dataKey = crypto.randomBytes(32);
    const envelope = await sealEnvelope(crypto, fromHex(input.fromNode.recipientPublic), dataKey, {
      info: fromHex(input.fromNode.envelopeInfo),
      aad: fromHex(input.fromNode.envelopeAad),
    });
    out = { envelope: toHex(encodeEnvelope(envelope)), envelopeDataKey: toHex(dataKey) };
  });
  return out;
}

/** (g) Key files: Node's unlocks here, one made here goes back to Node. */
async function keyFiles(
  run: Runner,
  input: BrowserInput,
): Promise<
  Pick<BrowserOutputs, "keyFile" | "keyFilePassphrase" | "keyFileSigningPublic" | "keyFileEncryptionPublic">
> {
  const n = input.fromNode;
  await run.case("keyfile", "unlocks a key file the node suite made", async () => {
    const keys = await unlockKeyFile(crypto, n.keyFile, n.passphrase);
    same(toBase64(keys.signing.publicKey), n.keyFileSigningPublic, "signing public key");
    same(toBase64(keys.encryption.publicKey), n.keyFileEncryptionPublic, "encryption public key");
    await refused(
      () => unlockKeyFile(crypto, n.keyFile, `${n.passphrase}!`),
      "a wrong passphrase",
      "PASSPHRASE_WRONG",
    );
  });
  const passphrase = "caf\u00e9 in the browser, " + toHex(crypto.randomBytes(4));
  let out = { keyFile: "", keyFilePassphrase: "", keyFileSigningPublic: "", keyFileEncryptionPublic: "" };
  await run.case("keyfile", "makes a key file here that unlocks here", async () => {
    const keys = await generateKeyFileKeys(crypto, "patient", "Ana's browser");
    const file = await createKeyFile(
      crypto,
      {
        kind: "patient",
        label: keys.label,
        signingSecretKey: keys.signing.secretKey,
        encryptionSecretKey: keys.encryption.secretKey,
      },
      passphrase,
      CHEAP_KDF,
    );
    const text = encodeKeyFile(file);
    const opened = await unlockKeyFile(crypto, text, passphrase);
    check(bytesEqual(opened.signing.secretKey, keys.signing.secretKey), "signing secret key");
    check(bytesEqual(opened.encryption.secretKey, keys.encryption.secretKey), "encryption secret key");
    out = {
      keyFile: text,
      keyFilePassphrase: passphrase,
      keyFileSigningPublic: toBase64(keys.signing.publicKey),
      keyFileEncryptionPublic: toBase64(keys.encryption.publicKey),
    };
  });
  return out;
}

/** The patient index: Node's root, and proofs that verify here and go back to Node. */
async function patientIndex(
  run: Runner,
  input: BrowserInput,
): Promise<Pick<BrowserOutputs, "indexRoot" | "indexProofs">> {
  const { patients, absent, root } = input.patientIndex;
  const index = new PatientIndex(sha, new MemoryIndexStore());
  const proofs: { id: string; proof: string }[] = [];
  await run.case("patient-index", `${patients.length} patients give Node's root`, () => {
    index.update(
      patients.map((p) => ({
        key: patientIndexKey(sha, p.id),
        value: { head: fromHex(p.head), length: p.length },
      })),
    );
    same(toHex(index.root), root, "root");
  });
  for (const p of patients) {
    await run.case("patient-index", `membership of ${p.id}`, () => {
      const key = patientIndexKey(sha, p.id);
      const found = index.lookup(key);
      check(found.proof.type === "membership", "not a membership proof");
      if (found.proof.type !== "membership") return;
      verifyMembership(sha, index.root, key, { head: fromHex(p.head), length: p.length }, found.proof);
      proofs.push({ id: p.id, proof: toHex(encodeIndexProof(found.proof)) });
    });
  }
  for (const id of absent) {
    await run.case("patient-index", `non-membership of ${id}`, () => {
      const key = patientIndexKey(sha, id);
      const found = index.lookup(key);
      check(found.value === undefined && found.proof.type === "non-membership", "not a non-membership proof");
      if (found.proof.type !== "non-membership") return;
      verifyNonMembership(sha, index.root, key, found.proof);
      proofs.push({ id, proof: toHex(encodeIndexProof(found.proof)) });
    });
  }
  return { indexRoot: toHex(index.root), indexProofs: proofs };
}

function fromWire(request: WireRequest): HttpRequest {
  return { ...request, body: request.body === null ? undefined : fromHex(request.body) };
}

function fromBase64url(text: string): Uint8Array {
  return fromBase64(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
}

/** Request authentication: RFC 9421 B.1.4 and B.2.6, RFC 9530, Node's signed request, one for Node. */
async function httpAuth(
  run: Runner,
  input: BrowserInput,
): Promise<Pick<BrowserOutputs, "httpRequest" | "httpKeyid" | "httpPublicKey">> {
  const { rfc9421: v, contentDigests, deprecatedDigests } = input.httpAuth;
  const seed = fromBase64(v.key.pkcs8_private_key_base64).slice(-32);
  const publicKey = fromBase64(v.key.spki_public_key_base64).slice(-32);
  const request: HttpRequest = { ...v.request, body: utf8(v.request.body) };
  const params = { created: v.b26.created, keyid: v.b26.keyid };

  await run.case("http-auth", "RFC 9421 B.1.4: the key's PKCS#8, SPKI and JWK forms agree", async () => {
    check(bytesEqual(fromBase64url(v.key.jwk.d), seed), "JWK d is not the PKCS#8 seed");
    check(bytesEqual(fromBase64url(v.key.jwk.x), publicKey), "JWK x is not the SPKI key");
    check(bytesEqual(await crypto.ed25519PublicKey(seed), publicKey), "the seed's public key");
  });
  await run.case("http-auth", "RFC 9421 B.2.6: the signature base byte for byte", () => {
    const serialized = serializeSignatureParams(v.b26.components, params);
    same(signatureBase(request, v.b26.components, serialized), v.b26.signature_base, "signature base");
  });
  await run.case("http-auth", "RFC 9421 B.2.6: Signature-Input and Signature reproduced", async () => {
    const fields = await createMessageSignature(crypto, request, {
      label: v.b26.label,
      components: v.b26.components,
      params,
      secretKey: seed,
    });
    same(fields.signatureInput, v.b26.signature_input, "Signature-Input");
    same(fields.signature, v.b26.signature, "Signature");
  });
  await run.case(
    "http-auth",
    "RFC 9421 B.2.6: the published signature verifies, not on a changed request",
    async () => {
      const signed = {
        ...request,
        headers: {
          ...v.request.headers,
          "Signature-Input": v.b26.signature_input,
          Signature: v.b26.signature,
        },
      };
      await verifyMessageSignature(crypto, signed, v.b26.label, publicKey);
      await refused(
        () => verifyMessageSignature(crypto, { ...signed, method: "PUT" }, v.b26.label, publicKey),
        "a changed method",
        "SIGNATURE_INVALID",
      );
      same(
        verifyContentDigest(crypto, v.request.headers["Content-Digest"]!, request.body!).join(),
        "sha-512",
        "digest",
      );
    },
  );
  for (const d of contentDigests) {
    await run.case("http-auth", `RFC 9530 ${d.what}`, async () => {
      const algorithm = d.field.startsWith("sha-512") ? "sha-512" : "sha-256";
      same(contentDigest(crypto, utf8(d.content), algorithm), d.field, "Content-Digest");
      verifyContentDigest(crypto, d.field, utf8(d.content));
      await refused(
        () => verifyContentDigest(crypto, d.field, utf8(d.content + "!")),
        "changed content",
        "DIGEST_MISMATCH",
      );
    });
  }
  for (const d of deprecatedDigests) {
    await run.case("http-auth", `RFC 9530 refused alone: ${d.what}`, async () => {
      await refused(
        () => verifyContentDigest(crypto, d.field, utf8(d.content)),
        d.what,
        "UNSUPPORTED_ALGORITHM",
      );
    });
  }

  const { keyid, nowMs } = input.httpAuth;
  const nodeKey = fromHex(input.httpAuth.publicKey);
  await run.case("http-auth", "a request the node suite signed verifies here, once", async () => {
    const verifier = createRequestVerifier({
      crypto,
      clock: () => nowMs,
      resolveKey: (k) => (k === keyid ? nodeKey : undefined),
    });
    const signed = fromWire(input.httpAuth.signedRequest);
    const verified = await verifier.verify(signed);
    same(verified.keyid, keyid, "keyid");
    await refused(() => verifier.verify(signed), "a replay", "AUTH_REPLAYED");
    const tampered = { ...signed, body: utf8('{"kind":"grant","to":"org:any"}') };
    await refused(
      () => createRequestVerifier({ crypto, clock: () => nowMs, resolveKey: () => nodeKey }).verify(tampered),
      "a changed body",
      "DIGEST_MISMATCH",
    );
  });

  let out = {
    httpRequest: { method: "", url: "", headers: {}, body: null } as WireRequest,
    httpKeyid: "",
    httpPublicKey: "",
  };
  await run.case("http-auth", "signs a request here for Node", async () => {
    const keys = await crypto.ed25519Generate();
    const body = utf8('{"kind":"record","from":"the browser"}');
    const unsigned = {
      method: "PUT",
      url: "https://node.medledger.example/v1/blobs/x?part=2",
      headers: { "content-type": "application/octet-stream" },
    };
    const browserKeyid = "org:browser-clinic";
    const added = await signRequest(
      crypto,
      { ...unsigned, body },
      { keyid: browserKeyid, secretKey: keys.secretKey, clock: () => nowMs },
    );
    out = {
      httpRequest: { ...unsigned, headers: { ...unsigned.headers, ...added }, body: toHex(body) },
      httpKeyid: browserKeyid,
      httpPublicKey: toHex(keys.publicKey),
    };
  });
  return out;
}

globalThis.medledgerRunCore = async (input: BrowserInput): Promise<BrowserReport> => {
  const run = new Runner();
  // A group that throws outside its cases is reported, and the other groups still run.
  const group = <T>(name: Group, fn: () => Promise<T>, fallback: T) =>
    run.setup(name, "the group", fn).then((out) => out ?? fallback);
  await group("hpke", () => hpkeVectors(run, input), undefined);
  await group("ed25519", () => ed25519Vectors(run, input), undefined);
  const notes = await group("signed-note", () => signedNotes(run, input), { note: "", noteVerifierKey: "" });
  await group("checkpoint", () => tesseraLog(run, input), undefined);
  await group("merkle-inclusion", () => merkleProbes(run, input), undefined);
  await group("jcs", () => jcs(run, input), undefined);
  const envelope = await group("envelope", () => envelopes(run, input), {
    envelope: "",
    envelopeDataKey: "",
  });
  const keyFile = await group("keyfile", () => keyFiles(run, input), {
    keyFile: "",
    keyFilePassphrase: "",
    keyFileSigningPublic: "",
    keyFileEncryptionPublic: "",
  });
  const index = await group("patient-index", () => patientIndex(run, input), {
    indexRoot: "",
    indexProofs: [],
  });
  const http = await group("http-auth", () => httpAuth(run, input), {
    httpRequest: { method: "", url: "", headers: {}, body: null },
    httpKeyid: "",
    httpPublicKey: "",
  });
  return {
    userAgent: navigator.userAgent,
    isSecureContext: globalThis.isSecureContext,
    suite: crypto.name,
    subtleCalls: { ...subtleCalls },
    passed: run.passed,
    failures: run.failures,
    outputs: { ...notes, ...envelope, ...keyFile, ...index, ...http },
  };
};
