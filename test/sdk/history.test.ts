/**
 * History verification (docs/api.md, "History") against pages built from a real in-process node with the
 * server's own page builder (src/server/history.ts), then every tampering refused with its code:
 *
 *   1. the honest history verifies, in one page or many, and moves the remembered checkpoint forward;
 *   2. an entry changed, dropped, added (another patient's, or a duplicate) or reordered: PROOF_INVALID;
 *   3. an inclusion proof hash, the index proof, the chain head or length changed: PROOF_INVALID;
 *   4. the checkpoint's signature, size or root changed, or a key other than the pinned one: SIGNATURE_INVALID;
 *      a checkpoint signed by the real log key over a forged tree: PROOF_INVALID; the page's size: CHECKPOINT_INVALID;
 *   5. a witness quorum not met: QUORUM_NOT_MET; met with a cosignature: verified;
 *   6. a checkpoint inconsistent with the remembered one (a fork, same size other root, bad proof): INCONSISTENT_TREE;
 *   7. a patient without entries is proven absent; a tampered proof of absence is refused;
 *   8. any single byte flipped in any entry or proof is refused (fast-check).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { fromBase64, toBase64, toHex, utf8 } from "../../src/core/encoding/bytes.ts";
import { isLedgerError, type ErrorCode } from "../../src/core/errors.ts";
import { consistencyProofFromNodes } from "../../src/core/merkle/proofs.ts";
import { parseSignedCheckpoint, signCheckpoint } from "../../src/core/note/checkpoint.ts";
import { cosignCheckpoint, cosignatureSigner } from "../../src/core/note/cosignature.ts";
import { ed25519NoteSigner } from "../../src/core/note/signed-note.ts";
import { nodeCrypto as crypto } from "../../src/platform/node-crypto.ts";
import { buildHistoryPage, type HistoryPageJson } from "../../src/server/history.ts";
import { HttpError } from "../../src/server/errors.ts";
import { enrollmentEntry } from "../../src/sdk/entries.ts";
import {
  HistoryPageSchema,
  HistoryVerifier,
  parseResponse,
  verifyAbsence,
  type TrustState,
  type VerifiedHistory,
} from "../../src/sdk/index.ts";
import { accept, enrolled, newIdentity, record, startRegion, type Region } from "./support.ts";

const sha = (data: Uint8Array): Uint8Array => crypto.sha256(data);

type Mutable<T> = T extends readonly (infer U)[]
  ? Mutable<U>[]
  : T extends object
    ? { -readonly [K in keyof T]: Mutable<T[K]> }
    : T;
type Page = Mutable<HistoryPageJson>;

function refusedWith(code: ErrorCode): (err: unknown) => boolean {
  return (err) => {
    assert.ok(isLedgerError(err), `expected a LedgerError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, `${err.code}: ${err.message}`);
    return true;
  };
}

/** Every page of a patient's history as the server would answer, as JSON values. */
function pagesOf(region: Region, patient: string, limit = 500, size?: bigint): Page[] {
  const pages: Page[] = [];
  let after: bigint | undefined;
  let pageSize = size;
  for (;;) {
    const page = buildHistoryPage(region.node, patient, {
      limit,
      ...(after === undefined ? {} : { after }),
      ...(pageSize === undefined ? {} : { size: pageSize }),
    });
    pages.push(JSON.parse(JSON.stringify(page)) as Page);
    if (page.next === null) return pages;
    after = BigInt(page.next);
    pageSize = BigInt(page.size);
  }
}

function consistencyOf(region: Region) {
  return async (from: bigint, to: bigint): Promise<Uint8Array[]> =>
    consistencyProofFromNodes(sha, region.node.store.merkleNodes, from, to);
}

/** Verify JSON pages exactly as the client does: strict parse, schema, then the verifier. */
async function verify(
  region: Region,
  pages: readonly unknown[],
  trust: TrustState = region.trust(),
  fetchConsistency = consistencyOf(region),
  patient?: string,
): Promise<VerifiedHistory> {
  const parsed = pages.map((p) =>
    parseResponse(utf8(JSON.stringify(p)), HistoryPageSchema, "history", 64 * 1024 * 1024),
  );
  const first = parsed[0]!;
  const verifier = await HistoryVerifier.start(
    crypto,
    trust,
    patient ?? first.patient,
    first,
    fetchConsistency,
  );
  for (const page of parsed) await verifier.add(page);
  return verifier.finish();
}

const clone = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

function flipBase64(text: string, index: number, bit = 1): string {
  const bytes = fromBase64(text);
  bytes[index % bytes.length]! ^= bit;
  return toBase64(bytes);
}

describe("history verification against a real node", () => {
  let region: Region;
  let ana: string;
  let ben: string;
  let anaLength: number;

  before(async () => {
    region = await startRegion(crypto);
    const a = await enrolled(region, region.hospital);
    const b = await enrolled(region, region.hospital);
    ana = a.patient.id;
    ben = b.patient.id;
    let anaHead = a.head;
    let benHead = b.head;
    // Interleaved, so the two chains' positions interleave in the log.
    for (let i = 0; i < 6; i++) {
      anaHead = (await record(region, i % 2 === 0 ? region.hospital : region.lab, a.patient, anaHead)).entry
        .id;
      if (i < 3) benHead = (await record(region, region.lab, b.patient, benHead)).entry.id;
    }
    anaLength = 7;
  });
  after(async () => region.close());

  it("1. the honest history verifies, in one page or in pages of two, and advances the trust", async () => {
    const one = await verify(region, pagesOf(region, ana));
    assert.equal(one.entries.length, anaLength);
    assert.equal(one.entries[0]!.entry.kind, "patient.enroll");
    assert.equal(one.advances, true);
    const paged = pagesOf(region, ana, 2);
    assert.equal(paged.length, 4);
    const many = await verify(region, paged);
    assert.deepEqual(
      many.entries.map((e) => e.id),
      one.entries.map((e) => e.id),
    );
    // Remembering this checkpoint, the same one verifies again and does not advance.
    const trust = { ...region.trust(), checkpoint: one.note };
    assert.equal((await verify(region, pagesOf(region, ana), trust)).advances, false);
  });

  it("2. an entry changed, dropped, added or reordered is refused (PROOF_INVALID)", async () => {
    const honest = pagesOf(region, ana)[0]!;
    const changed = clone(honest);
    changed.entries[3]!.bytes = flipBase64(changed.entries[3]!.bytes, 40);
    await assert.rejects(verify(region, [changed]), refusedWith("PROOF_INVALID"));
    // Changed with its id recomputed: the inclusion proof no longer leads to the root.
    const recomputed = clone(changed);
    recomputed.entries[3]!.id = toHex(sha(fromBase64(recomputed.entries[3]!.bytes)));
    await assert.rejects(verify(region, [recomputed]), refusedWith("PROOF_INVALID"));
    for (const drop of [0, 3, anaLength - 1]) {
      const dropped = clone(honest);
      dropped.entries.splice(drop, 1);
      await assert.rejects(verify(region, [dropped]), refusedWith("PROOF_INVALID"));
    }
    // Ben's entry, with its own valid inclusion proof, slipped into Ana's history in ledger order.
    const benEntry = pagesOf(region, ben)[0]!.entries[1]!;
    const added = clone(honest);
    added.entries.push(benEntry);
    added.entries.sort((x, y) => Number(BigInt(x.position) - BigInt(y.position)));
    await assert.rejects(verify(region, [added]), refusedWith("PROOF_INVALID"));
    const duplicated = clone(honest);
    duplicated.entries.splice(2, 0, duplicated.entries[2]!);
    await assert.rejects(verify(region, [duplicated]), refusedWith("PROOF_INVALID"));
    const reordered = clone(honest);
    [reordered.entries[2], reordered.entries[3]] = [reordered.entries[3]!, reordered.entries[2]!];
    await assert.rejects(verify(region, [reordered]), refusedWith("PROOF_INVALID"));
    // A page that claims to be another patient's.
    await assert.rejects(
      verify(region, [honest], region.trust(), consistencyOf(region), ben),
      refusedWith("PROOF_INVALID"),
    );
  });

  it("3. an inclusion proof, the index proof, the chain head or length changed is refused (PROOF_INVALID)", async () => {
    const honest = pagesOf(region, ana)[0]!;
    const inclusion = clone(honest);
    inclusion.entries[1]!.inclusion[0] = flipBase64(inclusion.entries[1]!.inclusion[0]!, 5);
    await assert.rejects(verify(region, [inclusion]), refusedWith("PROOF_INVALID"));
    const shorter = clone(honest);
    shorter.entries[1]!.inclusion.pop();
    await assert.rejects(verify(region, [shorter]), refusedWith("PROOF_INVALID"));
    const index = clone<Page & { indexProof: { siblings: string[] } }>(honest);
    index.indexProof.siblings[0] = flipBase64(index.indexProof.siblings[0]!, 9);
    await assert.rejects(verify(region, [index]), refusedWith("PROOF_INVALID"));
    const bitmap = clone<Page & { indexProof: { depth: number } }>(honest);
    bitmap.indexProof.depth += 1;
    await assert.rejects(verify(region, [bitmap]), refusedWith("PROOF_INVALID"));
    const length = clone(honest);
    length.chain = { ...length.chain, length: length.chain.length - 1 };
    length.entries.pop();
    await assert.rejects(verify(region, [length]), refusedWith("PROOF_INVALID"));
    const head = clone(honest);
    head.chain = { ...head.chain, head: head.entries[anaLength - 2]!.id };
    await assert.rejects(verify(region, [head]), refusedWith("PROOF_INVALID"));
    // Pages that do not hang on one checkpoint: the second page answered against a later tree.
    const [first] = pagesOf(region, ana, 3);
    const b = await enrolled(region, region.lab);
    void b;
    const later = pagesOf(region, ana, 3, region.node.size);
    await assert.rejects(verify(region, [first!, later[1]!, later[2]!]), refusedWith("PROOF_INVALID"));
  });

  it("4. a checkpoint changed, signed by another key, or over a forged tree is refused", async () => {
    const honest = pagesOf(region, ana)[0]!;
    const lines = honest.checkpoint.split("\n");
    // Signature line: "— <name> <base64>"; flip a byte of the signature.
    const sigIndex = lines.findIndex((l) => l.startsWith("\u2014 "));
    const sigLine = lines[sigIndex]!;
    const cut = sigLine.lastIndexOf(" ") + 1;
    const badSig = clone(honest);
    badSig.checkpoint = [
      ...lines.slice(0, sigIndex),
      sigLine.slice(0, cut) + flipBase64(sigLine.slice(cut), 30),
      ...lines.slice(sigIndex + 1),
    ].join("\n");
    await assert.rejects(verify(region, [badSig]), refusedWith("SIGNATURE_INVALID"));
    const size = clone(honest);
    size.checkpoint = [lines[0], String(BigInt(lines[1]!) + 1n), ...lines.slice(2)].join("\n");
    await assert.rejects(verify(region, [size]), refusedWith("SIGNATURE_INVALID"));
    const root = clone(honest);
    root.checkpoint = [lines[0], lines[1], flipBase64(lines[2]!, 0), ...lines.slice(3)].join("\n");
    await assert.rejects(verify(region, [root]), refusedWith("SIGNATURE_INVALID"));
    const pageSize = clone(honest);
    pageSize.size = String(BigInt(honest.size) - 1n);
    await assert.rejects(verify(region, [pageSize]), refusedWith("CHECKPOINT_INVALID"));
    // Signed by a key of the same name that is not the pinned one.
    const { checkpoint } = parseSignedCheckpoint(honest.checkpoint);
    const impostor = await ed25519NoteSigner(crypto, region.logSigner.name, crypto.randomBytes(32));
    const other = clone(honest);
    other.checkpoint = await signCheckpoint(checkpoint, [impostor]);
    await assert.rejects(verify(region, [other]), refusedWith("SIGNATURE_INVALID"));
    // The real log key over a forged root (a compromised sequencer): the inclusion proofs give it away.
    const forged = clone(honest);
    forged.checkpoint = await signCheckpoint({ ...checkpoint, rootHash: crypto.randomBytes(32) }, [
      region.logSigner,
    ]);
    await assert.rejects(verify(region, [forged]), refusedWith("PROOF_INVALID"));
    // And with a forged patient-index root, the index proof does.
    const forgedIndex = clone(honest);
    forgedIndex.checkpoint = await signCheckpoint(
      { ...checkpoint, extensions: [`patient-index ${toBase64(crypto.randomBytes(32))}`] },
      [region.logSigner],
    );
    await assert.rejects(verify(region, [forgedIndex]), refusedWith("PROOF_INVALID"));
    const noIndex = clone(honest);
    noIndex.checkpoint = await signCheckpoint({ ...checkpoint, extensions: [] }, [region.logSigner]);
    await assert.rejects(verify(region, [noIndex]), refusedWith("CHECKPOINT_INVALID"));
  });

  it("5. a witness quorum is required when the trust state asks for one", async () => {
    const honest = pagesOf(region, ana)[0]!;
    const witness = await cosignatureSigner(crypto, "witness.example/w1", crypto.randomBytes(32));
    const trust: TrustState = { ...region.trust(), witnesses: [witness.verifier.verifierKey], quorum: 1 };
    await assert.rejects(verify(region, [honest], trust), refusedWith("QUORUM_NOT_MET"));
    const cosigned = clone(honest);
    cosigned.checkpoint = await cosignCheckpoint(honest.checkpoint, witness);
    assert.equal((await verify(region, [cosigned], trust)).entries.length, anaLength);
    // A cosignature by the known witness key that does not verify fails the whole checkpoint.
    const lines = cosigned.checkpoint.trimEnd().split("\n");
    const last = lines.pop()!;
    const cut = last.lastIndexOf(" ") + 1;
    const badCosig = clone(honest);
    badCosig.checkpoint = [...lines, last.slice(0, cut) + flipBase64(last.slice(cut), 20)].join("\n") + "\n";
    await assert.rejects(verify(region, [badCosig], trust), refusedWith("SIGNATURE_INVALID"));
  });

  it("6. a checkpoint inconsistent with the remembered one is refused (INCONSISTENT_TREE)", async () => {
    // A fork: a second node with the same log key and genesis, then other entries.
    const fork = await startRegion(crypto, { logSigner: region.logSigner, actors: region });
    try {
      const other = await newIdentity(crypto, "patient", toHex(crypto.randomBytes(16)));
      await accept(fork.node, [await enrollmentEntry(crypto, fork.hospital, other)]);
      const forkNote = fork.node.checkpoint()!.note;
      const remembered: TrustState = { ...region.trust(), checkpoint: forkNote };
      await assert.rejects(
        verify(region, pagesOf(region, ana), remembered),
        refusedWith("INCONSISTENT_TREE"),
      );
      // Same size, other root.
      const sameSize = pagesOf(region, ana)[0]!;
      const { checkpoint } = parseSignedCheckpoint(sameSize.checkpoint);
      const twin = await signCheckpoint({ ...checkpoint, rootHash: crypto.randomBytes(32) }, [
        region.logSigner,
      ]);
      await assert.rejects(
        verify(region, [sameSize], { ...region.trust(), checkpoint: twin }),
        refusedWith("INCONSISTENT_TREE"),
      );
    } finally {
      await fork.close();
    }
    // An honest older checkpoint, but the node's consistency proof is tampered with.
    const older = region.node.store.checkpointAt(5n)!;
    const trust: TrustState = { ...region.trust(), checkpoint: older };
    assert.equal((await verify(region, pagesOf(region, ana), trust)).advances, true);
    const tampered = async (from: bigint, to: bigint) => {
      const proof = await consistencyOf(region)(from, to);
      proof[0] = crypto.randomBytes(32);
      return proof;
    };
    await assert.rejects(
      verify(region, pagesOf(region, ana), trust, tampered),
      refusedWith("INCONSISTENT_TREE"),
    );
    // The node serves an older checkpoint than the remembered one: consistent, so accepted, not advancing.
    const b = await enrolled(region, region.lab);
    void b;
    const newest = region.node.checkpoint()!.note;
    const anaEnd = BigInt(pagesOf(region, ana)[0]!.entries.at(-1)!.position) + 1n;
    assert.ok(anaEnd < region.node.size);
    const stale = pagesOf(region, ana, 500, anaEnd);
    const verified = await verify(region, stale, { ...region.trust(), checkpoint: newest });
    assert.equal(verified.advances, false);
  });

  it("7. a patient without entries is proven absent; a tampered proof of absence is refused", async () => {
    const nobody = toHex(crypto.randomBytes(16));
    let body: { indexProof: unknown; checkpoint: string; size: string } | undefined;
    try {
      buildHistoryPage(region.node, nobody);
    } catch (err) {
      assert.ok(err instanceof HttpError);
      body = (err as HttpError & { extra: typeof body }).extra;
    }
    assert.ok(body !== undefined);
    const ok = await verifyAbsence(
      crypto,
      region.trust(),
      nobody,
      body.checkpoint,
      BigInt(body.size),
      body.indexProof,
      consistencyOf(region),
    );
    assert.equal(ok.advances, true);
    // The same proof does not show that Ana is absent.
    await assert.rejects(
      verifyAbsence(
        crypto,
        region.trust(),
        ana,
        body.checkpoint,
        BigInt(body.size),
        body.indexProof,
        consistencyOf(region),
      ),
      refusedWith("PROOF_INVALID"),
    );
    // Ana's membership proof is no proof of absence.
    const anaPage = pagesOf(region, ana)[0]!;
    await assert.rejects(
      verifyAbsence(
        crypto,
        region.trust(),
        ana,
        anaPage.checkpoint,
        BigInt(anaPage.size),
        anaPage.indexProof,
        consistencyOf(region),
      ),
      refusedWith("PROOF_INVALID"),
    );
  });

  it("8. any byte flipped in an entry or a proof is refused (fast-check)", async () => {
    const honest = pagesOf(region, ana)[0]!;
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: anaLength - 1 }),
        fc.boolean(),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        async (k, inEntry, offset, bit) => {
          const page = clone(honest);
          const entry = page.entries[k]!;
          if (inEntry || entry.inclusion.length === 0)
            entry.bytes = flipBase64(entry.bytes, offset, 1 << bit);
          else {
            const i = offset % entry.inclusion.length;
            entry.inclusion[i] = flipBase64(entry.inclusion[i]!, offset, 1 << bit);
          }
          await assert.rejects(verify(region, [page]), (err) => isLedgerError(err));
        },
      ),
      { numRuns: 60 },
    );
  });
});
