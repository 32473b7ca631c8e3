/**
 * The witness endpoint (C2SP tlog-witness add-checkpoint) of a node that witnesses its own log and one
 * foreign log: 1. the node's own checkpoints come cosigned; 2. a newer checkpoint with a consistency proof
 * that does not verify is 422, with the right proof 200 and a cosignature that verifies (and the stored
 * checkpoint gathers it); 3. a stale old size is 409 with the latest cosigned size as text/x.tlog.size;
 * 4. a checkpoint signature that does not verify is 403, an unknown origin 404, a malformed body 400;
 * 5. the latest cosigned size per origin survives a restart.
 */
import assert from "node:assert/strict";
import { rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { toBase64, utf8 } from "../../src/core/encoding/bytes.ts";
import { MerkleTree } from "../../src/core/merkle/tree.ts";
import { signCheckpoint } from "../../src/core/note/checkpoint.ts";
import { cosignatureTimestamp, parseCosignatureVerifierKey } from "../../src/core/note/cosignature.ts";
import { generateNoteKey, openNote, parseNote, parseNoteSignerKey } from "../../src/core/note/signed-note.ts";
import { crypto, enroll, startHarness, type Harness } from "./harness.ts";

const sha = (data: Uint8Array): Uint8Array => crypto.sha256(data);
const FOREIGN = "foreign.example/log";

describe("the witness endpoint (C2SP tlog-witness)", () => {
  let h: Harness;
  let foreignKey: { signerKey: string; verifierKey: string };
  const foreign = MerkleTree.create(sha);

  before(async () => {
    foreignKey = await generateNoteKey(crypto, FOREIGN);
    h = await startHarness({}, { witnessLogs: [{ origin: FOREIGN, logKey: foreignKey.verifierKey }] });
  });
  after(async () => h.close());

  const add = (body: string) =>
    h.call("POST", "/v1/witness/add-checkpoint", {
      body: utf8(body),
      headers: { "content-type": "text/plain" },
    });
  const request = (old: bigint | string, proof: readonly string[], note: string) =>
    `old ${old}\n${proof.map((p) => `${p}\n`).join("")}\n${note}`;
  const witness = () => parseCosignatureVerifierKey(crypto, h.server.witnessKey);
  const foreignCheckpoint = async (size: number) => {
    while (foreign.size < BigInt(size)) foreign.append(utf8(`foreign leaf ${foreign.size}`));
    const signer = await parseNoteSignerKey(crypto, foreignKey.signerKey);
    return signCheckpoint(
      { origin: FOREIGN, size: BigInt(size), rootHash: foreign.rootAt(BigInt(size)), extensions: [] },
      [signer],
    );
  };

  let s0: bigint;
  let s1: bigint;

  it("1. the node's own checkpoints come cosigned by its witness", async () => {
    s0 = h.node.size;
    const note = (await h.call("GET", "/v1/checkpoint")).text;
    const opened = await openNote(note, [witness()]);
    assert.equal(opened.signedBy.length, 1);
  });

  it("2. a newer checkpoint: a bad proof is 422, the right one 200 with a cosignature that verifies", async () => {
    await enroll(h, h.hospital);
    await enroll(h, h.hospital);
    s1 = h.node.size;
    const note = (await h.call("GET", `/v1/checkpoints/${s1}`)).text;
    const proof = (await h.call("GET", `/v1/proofs/consistency?from=${s0}&to=${s1}`)).json<{
      proof: string[];
    }>().proof;
    const bad = [...proof];
    bad[0] = toBase64(crypto.sha256(utf8("not a node")));
    const refused = await add(request(s0, bad, note));
    assert.equal(refused.status, 422);
    assert.equal(refused.json<{ error: { code: string } }>().error.code, "PROOF_INVALID");
    const answer = await add(request(s0, proof, note));
    assert.equal(answer.status, 200, answer.text);
    assert.match(answer.text, /^— server\.medledger\.example\/log\/witness [A-Za-z0-9+/=]+\n$/);
    const opened = await openNote(note + answer.text, [witness()]);
    assert.equal(opened.signedBy[0]?.verifierKey, h.server.witnessKey);
    const line = parseNote(note + answer.text).signatures.at(-1)!;
    const stamped = Number(cosignatureTimestamp(line.signature));
    assert.ok(Math.abs(stamped - Date.now() / 1000) < 60, "timestamped now");
    const stored = (await h.call("GET", `/v1/checkpoints/${s1}`)).text;
    assert.ok(stored.endsWith(answer.text), "the stored checkpoint gathered the cosignature");
  });

  it("3. a stale old size: 409, text/x.tlog.size, the latest cosigned size", async () => {
    const note = (await h.call("GET", `/v1/checkpoints/${s1}`)).text;
    for (const old of [s0, 0n]) {
      const answer = await add(request(old, [], note));
      assert.equal(answer.status, 409);
      assert.equal(answer.headers.get("content-type"), "text/x.tlog.size");
      assert.equal(answer.text, `${s1}\n`);
    }
    const same = await add(request(s1, [], note));
    assert.equal(same.status, 200, "the same checkpoint again is cosigned again");
  });

  it("4. a bad signature 403, an unknown origin 404, malformed 400", async () => {
    const note = (await h.call("GET", `/v1/checkpoints/${s1}`)).text;
    const parsed = parseNote(note);
    const logLine = note.split("\n").find((l) => l.startsWith("— server.medledger.example/log "))!;
    const sig = logLine.split(" ")[2]!;
    const flipped = sig.slice(0, 10) + (sig[10] === "A" ? "B" : "A") + sig.slice(11);
    const forged = `${parsed.text}\n${logLine.replace(sig, flipped)}\n`;
    const bad = await add(request(s1, [], forged));
    assert.equal(bad.status, 403);
    assert.equal(bad.json<{ error: { code: string } }>().error.code, "SIGNATURE_INVALID");
    const impostor = await parseNoteSignerKey(crypto, (await generateNoteKey(crypto, "impostor")).signerKey);
    const unsigned = await signCheckpoint(
      { origin: h.node.origin, size: s1, rootHash: h.node.root(), extensions: [] },
      [impostor],
    );
    assert.equal((await add(request(s1, [], unsigned))).status, 403, "no signature from the log's key");
    const other = await parseNoteSignerKey(
      crypto,
      (await generateNoteKey(crypto, "elsewhere.example/log")).signerKey,
    );
    const elsewhere = await signCheckpoint(
      { origin: "elsewhere.example/log", size: 1n, rootHash: new Uint8Array(32), extensions: [] },
      [other],
    );
    const unknown = await add(request(0n, [], elsewhere));
    assert.equal(unknown.status, 404);
    for (const body of [
      "hello",
      "old 01\n\n" + note,
      `old ${s1 + 5n}\n\n${note}`,
      `old ${s1}\nnot base64\n\n${note}`,
      "",
    ]) {
      const answer = await add(body);
      assert.equal(answer.status, 400, body.slice(0, 20));
      assert.ok(
        ["MALFORMED_INPUT", "CHECKPOINT_INVALID"].includes(
          answer.json<{ error: { code: string } }>().error.code,
        ),
      );
    }
  });

  it("5. a foreign log: cosigned from size 0, and its latest size survives a restart", async () => {
    const three = await foreignCheckpoint(3);
    const first = await add(request(0n, [], three));
    assert.equal(first.status, 200, first.text);
    const key = h.server.witnessKey;
    await h.restart();
    assert.equal(h.server.witnessKey, key, "the witness key is kept in keys/witness.key");
    const five = await foreignCheckpoint(5);
    const stale = await add(request(0n, [], five));
    assert.equal(stale.status, 409);
    assert.equal(stale.text, "3\n", "the cosigned size was kept across the restart");
    const proof = foreign.consistencyProof(3n, 5n).map((p) => toBase64(p));
    const next = await add(request(3n, proof, five));
    assert.equal(next.status, 200);
    const opened = await openNote(five + next.text, [witness()]);
    assert.equal(opened.signedBy.length, 1);
  });

  it("6. a data folder without keys/witness.key gets one (mode 0600) when the API starts", async () => {
    const path = join(h.dir, "keys", "witness.key");
    const before = h.server.witnessKey;
    rmSync(path);
    await h.restart();
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.notEqual(h.server.witnessKey, before);
    const note = (await h.call("GET", "/v1/checkpoint")).text;
    assert.equal((await openNote(note, [witness()])).signedBy.length, 1, "the new key cosigns");
  });
});
