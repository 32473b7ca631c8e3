/**
 * C2SP tlog-checkpoint and tlog-proof: the 17 signed checkpoints of the Tessera test log, every one-bit
 * change refused, strict body parsing, and tlog-proof parsing, formatting and verification against real
 * inclusion proofs of the test log.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { bytesEqual, toBase64, utf8 } from "../../src/core/encoding/bytes.ts";
import { isLedgerError, type ErrorCode } from "../../src/core/errors.ts";
import { leafHash } from "../../src/core/merkle/hash.ts";
import { MerkleTree } from "../../src/core/merkle/tree.ts";
import {
  formatCheckpoint,
  openCheckpoint,
  parseCheckpoint,
  parseUint64,
  signCheckpoint,
  verifyCheckpoint,
  type Checkpoint,
} from "../../src/core/note/checkpoint.ts";
import { cosignCheckpoint, cosignatureSigner } from "../../src/core/note/cosignature.ts";
import {
  ed25519NoteSigner,
  formatNote,
  parseNote,
  parseNoteVerifierKey,
} from "../../src/core/note/signed-note.ts";
import {
  createTlogProof,
  formatHashLines,
  formatTlogProof,
  parseHashLines,
  parseTlogProof,
  verifyTlogProof,
} from "../../src/core/note/tlog-proof.ts";
import { nodeCrypto as crypto } from "../../src/platform/node-crypto.ts";
import { webCrypto } from "../../src/platform/web-crypto.ts";
import {
  TESSERA_LOG_VKEY,
  TESSERA_ORIGIN,
  tesseraCheckpoint,
  tesseraEntries,
  tesseraLeafHashes,
} from "./support/tessera.ts";

const sha = (data: Uint8Array): Uint8Array => crypto.sha256(data);
const logKey = parseNoteVerifierKey(crypto, TESSERA_LOG_VKEY);

async function rejects(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isLedgerError(err, code), `expected ${code}, got ${String(err)}`);
    return true;
  });
}

function throwsCode(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isLedgerError(err, code), `expected ${code}, got ${String(err)}`);
    return true;
  });
}

function tesseraTree(): MerkleTree {
  const tree = MerkleTree.create(sha);
  tree.appendMany(tesseraEntries());
  return tree;
}

describe("tlog-checkpoint: the Tessera test log", () => {
  const tree = tesseraTree();

  for (let size = 0; size <= 15; size++) {
    it(`verifies checkpoint.${size} and its root is the RFC 9162 root of the first ${size} entries`, async () => {
      const opened = await openCheckpoint(tesseraCheckpoint(size), TESSERA_ORIGIN, logKey);
      assert.equal(opened.checkpoint.origin, TESSERA_ORIGIN);
      assert.equal(opened.checkpoint.size, BigInt(size));
      assert.deepEqual(opened.checkpoint.extensions, []);
      assert.ok(bytesEqual(opened.checkpoint.rootHash, tree.rootAt(BigInt(size))));
      assert.equal(formatCheckpoint(opened.checkpoint), opened.note.text);
    });
  }

  it("verifies every checkpoint with the WebCrypto suite too", async () => {
    const webKey = parseNoteVerifierKey(webCrypto, TESSERA_LOG_VKEY);
    for (let size = 0; size <= 15; size++) {
      const opened = await openCheckpoint(tesseraCheckpoint(size), TESSERA_ORIGIN, webKey);
      assert.equal(opened.checkpoint.size, BigInt(size));
    }
  });

  it("verifies the latest checkpoint, which is checkpoint.15", async () => {
    const opened = await openCheckpoint(tesseraCheckpoint(), TESSERA_ORIGIN, logKey);
    assert.equal(opened.checkpoint.size, 15n);
    assert.equal(tesseraCheckpoint(), tesseraCheckpoint(15));
  });

  it("has leaf hashes equal to the level-0 tile", () => {
    const leaves = tesseraLeafHashes(15);
    const entries = tesseraEntries();
    assert.equal(entries.length, 15);
    entries.forEach((e, i) => assert.ok(bytesEqual(leafHash(sha, e), leaves[i]!), `leaf ${i}`));
  });

  it("refuses every one-bit change anywhere in every checkpoint", async () => {
    for (const size of [undefined, ...Array.from({ length: 16 }, (_, i) => i)]) {
      const bytes = utf8(tesseraCheckpoint(size));
      for (let i = 0; i < bytes.length; i++) {
        const mutated = bytes.slice();
        mutated[i]! ^= 0x01;
        await assert.rejects(openCheckpoint(mutated, TESSERA_ORIGIN, logKey), `checkpoint.${size} byte ${i}`);
      }
    }
  });

  it("refuses a wrong origin, and a checkpoint not signed by the log key", async () => {
    await rejects(openCheckpoint(tesseraCheckpoint(), "example.com/other", logKey), "ORIGIN_MISMATCH");
    const pair = await crypto.ed25519Generate();
    const witness = await cosignatureSigner(crypto, "w.example", pair.secretKey, () => 1n);
    const text = parseNote(tesseraCheckpoint()).text;
    const witnessOnly = await signCheckpoint(parseCheckpoint(text), [witness]);
    await rejects(
      openCheckpoint(witnessOnly, TESSERA_ORIGIN, logKey, [witness.verifier]),
      "SIGNATURE_INVALID",
    );
    const other = await ed25519NoteSigner(crypto, TESSERA_ORIGIN, crypto.randomBytes(32));
    await rejects(openCheckpoint(tesseraCheckpoint(), TESSERA_ORIGIN, other.verifier), "SIGNATURE_INVALID");
  });

  it("applies a witness quorum", async () => {
    const w = await Promise.all(
      ["w1", "w2", "w3"].map(async (n) =>
        cosignatureSigner(crypto, `${n}.example`, crypto.randomBytes(32), () => 1_700_000_000n),
      ),
    );
    const keys = w.map((s) => s.verifier);
    const cosigned = await cosignCheckpoint(await cosignCheckpoint(tesseraCheckpoint(), w[0]!), w[1]!);
    const ok = await verifyCheckpoint(cosigned, {
      origin: TESSERA_ORIGIN,
      logKey,
      witnesses: keys,
      quorum: 2,
    });
    assert.equal(ok.quorum.signed.length, 2);
    await rejects(
      verifyCheckpoint(cosigned, { origin: TESSERA_ORIGIN, logKey, witnesses: keys, quorum: 3 }),
      "QUORUM_NOT_MET",
    );
    await rejects(
      verifyCheckpoint(cosigned, { origin: TESSERA_ORIGIN, logKey, witnesses: keys, quorum: 4 }),
      "INVALID_ARGUMENT",
    );
    await rejects(
      verifyCheckpoint(tesseraCheckpoint(), { origin: TESSERA_ORIGIN, logKey, quorum: 1 }),
      "INVALID_ARGUMENT",
    );
    assert.equal(
      (await verifyCheckpoint(tesseraCheckpoint(), { origin: TESSERA_ORIGIN, logKey })).quorum.total,
      0,
    );
    // Signature order does not matter: the witness lines first, then the log's.
    const parsed = parseNote(cosigned);
    const reordered = formatNote({ text: parsed.text, signatures: [...parsed.signatures].reverse() });
    const r = await verifyCheckpoint(reordered, {
      origin: TESSERA_ORIGIN,
      logKey,
      witnesses: keys,
      quorum: 2,
    });
    assert.equal(r.logKey, logKey);
    assert.equal(r.witnesses.length, 2);
  });
});

describe("tlog-checkpoint: body parsing", () => {
  const root = toBase64(new Uint8Array(32).fill(7));

  it("accepts the three lines and extension lines", () => {
    const cp = parseCheckpoint(`o.example/log\n18446744073709551615\n${root}\next one\next two\n`);
    assert.equal(cp.size, (1n << 64n) - 1n);
    assert.deepEqual(cp.extensions, ["ext one", "ext two"]);
    assert.equal(parseCheckpoint(`o\n0\n${root}\n`).size, 0n);
  });

  it("refuses malformed bodies with CHECKPOINT_INVALID", () => {
    const bad = [
      "",
      "\n",
      "o\n",
      "o\n1\n",
      `o\n1\n${root}`,
      `\n1\n${root}\n`,
      `o\n\n${root}\n`,
      `o\n01\n${root}\n`,
      `o\n-1\n${root}\n`,
      `o\n+1\n${root}\n`,
      `o\n1.0\n${root}\n`,
      `o\n 1\n${root}\n`,
      `o\n1 \n${root}\n`,
      `o\n0x10\n${root}\n`,
      `o\n18446744073709551616\n${root}\n`,
      `o\n99999999999999999999999\n${root}\n`,
      `o\n1\n\n`,
      `o\n1\n${toBase64(new Uint8Array(31))}\n`,
      `o\n1\n${toBase64(new Uint8Array(33))}\n`,
      `o\n1\n${root.slice(0, -1)}\n`,
      `o\n1\n${root.replace("=", "")}\n`,
      `o\n1\n${root.replace("B", "-")}\n`,
      `o\n1\n${root}\n\n`,
      `o\n1\n${root}\next\n\n`,
      `o\n1\n${root}\r\n`,
      `o\r\n1\n${root}\n`,
    ];
    for (const text of bad) throwsCode(() => parseCheckpoint(text), "CHECKPOINT_INVALID");
  });

  it("parses decimal sizes strictly", () => {
    assert.equal(parseUint64("0"), 0n);
    assert.equal(parseUint64("4294967296"), 1n << 32n);
    for (const s of ["", "00", "-0", "1e3", "١", "18446744073709551616"])
      assert.equal(parseUint64(s), undefined, s);
  });

  it("round-trips random checkpoints: parse(format(x)) = x (property)", () => {
    const line = fc
      .string({ unit: "grapheme", minLength: 1, maxLength: 40 })
      .filter((s) => !/\p{Cc}/u.test(s));
    const checkpoint = fc.record({
      origin: line,
      size: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      rootHash: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      extensions: fc.array(line, { maxLength: 4 }),
    });
    fc.assert(
      fc.property(checkpoint, (cp: Checkpoint) => {
        const text = formatCheckpoint(cp);
        const back = parseCheckpoint(text);
        assert.equal(back.origin, cp.origin);
        assert.equal(back.size, cp.size);
        assert.ok(bytesEqual(back.rootHash, cp.rootHash));
        assert.deepEqual(back.extensions, cp.extensions);
        assert.equal(formatCheckpoint(back), text);
      }),
    );
  });

  it("signs and opens a checkpoint with a fresh log key", async () => {
    const signer = await ed25519NoteSigner(crypto, "medledger.example/log", crypto.randomBytes(32));
    const cp: Checkpoint = {
      origin: "medledger.example/log",
      size: 1n << 40n,
      rootHash: new Uint8Array(32).fill(9),
      extensions: ["x"],
    };
    const signed = await signCheckpoint(cp, [signer]);
    const opened = await openCheckpoint(signed, "medledger.example/log", signer.verifier);
    assert.equal(opened.checkpoint.size, 1n << 40n);
    assert.deepEqual(opened.checkpoint.extensions, ["x"]);
    assert.throws(() => formatCheckpoint({ ...cp, size: -1n }));
    assert.throws(() => formatCheckpoint({ ...cp, origin: "a\nb" }));
    assert.throws(() => formatCheckpoint({ ...cp, rootHash: new Uint8Array(31) }));
  });
});

describe("tlog-proof", () => {
  const tree = tesseraTree();
  const entries = tesseraEntries();
  const cp15 = tesseraCheckpoint(15);
  const policy = { origin: TESSERA_ORIGIN, logKey };

  it("parses the grammar of tlog-proof 'Format' and formats it back byte for byte", () => {
    const proof = tree.inclusionProof(5n, 15n);
    const text = createTlogProof(5n, proof, cp15);
    assert.ok(text.startsWith(`c2sp.org/tlog-proof@v1\nindex 5\n${toBase64(proof[0]!)}\n`));
    assert.ok(text.endsWith(`\n\n${cp15}`));
    const parsed = parseTlogProof(text);
    assert.equal(parsed.index, 5n);
    assert.equal(parsed.extra, undefined);
    assert.equal(parsed.proof.length, proof.length);
    assert.equal(parsed.checkpoint, cp15);
    assert.equal(formatTlogProof(parsed), text);
    const withExtra = createTlogProof(5n, proof, cp15, utf8("context"));
    assert.ok(withExtra.startsWith(`c2sp.org/tlog-proof@v1\nextra ${toBase64(utf8("context"))}\nindex 5\n`));
    assert.deepEqual(parseTlogProof(withExtra).extra, utf8("context"));
    assert.equal(formatTlogProof(parseTlogProof(withExtra)), withExtra);
  });

  it("round-trips random proofs (property)", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 14n }),
        fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { maxLength: 64 }),
        fc.option(fc.uint8Array({ minLength: 1, maxLength: 64 }), { nil: undefined }),
        (index, proof, extra) => {
          const text = createTlogProof(index, proof, cp15, extra);
          const back = parseTlogProof(text);
          assert.equal(back.index, index);
          assert.equal(back.proof.length, proof.length);
          back.proof.forEach((h, i) => assert.ok(bytesEqual(h, proof[i]!)));
          assert.equal(formatTlogProof(back), text);
        },
      ),
    );
  });

  it("verifies a real inclusion proof for every entry of every tree size", async () => {
    for (let size = 1n; size <= 15n; size++) {
      for (let index = 0n; index < size; index++) {
        const text = createTlogProof(
          index,
          tree.inclusionProof(index, size),
          tesseraCheckpoint(Number(size)),
        );
        const ok = await verifyTlogProof(crypto, text, leafHash(sha, entries[Number(index)]!), policy);
        assert.equal(ok.checkpoint.checkpoint.size, size);
      }
    }
  });

  it("refuses a wrong leaf, a wrong index, a tampered hash and a forged checkpoint", async () => {
    const text = createTlogProof(5n, tree.inclusionProof(5n, 15n), cp15);
    await rejects(verifyTlogProof(crypto, text, leafHash(sha, utf8("sixx")), policy), "PROOF_INVALID");
    await rejects(verifyTlogProof(crypto, text, leafHash(sha, entries[4]!), policy), "PROOF_INVALID");
    const wrongIndex = text.replace("index 5\n", "index 4\n");
    await rejects(verifyTlogProof(crypto, wrongIndex, leafHash(sha, entries[5]!), policy), "PROOF_INVALID");
    const shortProof = createTlogProof(5n, tree.inclusionProof(5n, 15n).slice(1), cp15);
    await rejects(verifyTlogProof(crypto, shortProof, leafHash(sha, entries[5]!), policy), "PROOF_INVALID");
    const hashes = tree.inclusionProof(5n, 15n);
    hashes[1] = hashes[1]!.slice();
    hashes[1][0]! ^= 1;
    await rejects(
      verifyTlogProof(crypto, createTlogProof(5n, hashes, cp15), leafHash(sha, entries[5]!), policy),
      "PROOF_INVALID",
    );
    const forged = text.replace(parseNote(cp15).text.split("\n")[2]!, toBase64(new Uint8Array(32)));
    await rejects(verifyTlogProof(crypto, forged, leafHash(sha, entries[5]!), policy), "SIGNATURE_INVALID");
    await rejects(
      verifyTlogProof(crypto, text, leafHash(sha, entries[5]!), { ...policy, origin: "x" }),
      "ORIGIN_MISMATCH",
    );
  });

  it("refuses each malformation with a clear error", () => {
    const proof = tree.inclusionProof(5n, 15n);
    const good = createTlogProof(5n, proof, cp15);
    const h0 = toBase64(proof[0]!);
    const cases: [string, string, ErrorCode][] = [
      ["empty", "", "MALFORMED_INPUT"],
      ["no header", good.replace("c2sp.org/tlog-proof@v1\n", ""), "MALFORMED_INPUT"],
      ["wrong version", good.replace("@v1", "@v2"), "MALFORMED_INPUT"],
      ["header with CR", good.replace("@v1\n", "@v1\r\n"), "MALFORMED_INPUT"],
      ["truncated header", "c2sp.org/tlog-proof@v1", "MALFORMED_INPUT"],
      ["no index", good.replace("index 5\n", ""), "MALFORMED_INPUT"],
      ["index leading zero", good.replace("index 5\n", "index 05\n"), "MALFORMED_INPUT"],
      ["index negative", good.replace("index 5\n", "index -5\n"), "MALFORMED_INPUT"],
      ["index two spaces", good.replace("index 5\n", "index  5\n"), "MALFORMED_INPUT"],
      ["index beyond the tree", good.replace("index 5\n", "index 15\n"), "INDEX_OUT_OF_RANGE"],
      ["index beyond 64 bits", good.replace("index 5\n", "index 18446744073709551616\n"), "MALFORMED_INPUT"],
      ["extra line before index", good.replace("index 5\n", "junk\nindex 5\n"), "MALFORMED_INPUT"],
      ["empty extra", good.replace("index 5\n", "extra \nindex 5\n"), "MALFORMED_INPUT"],
      ["extra without space", good.replace("index 5\n", "extra\nindex 5\n"), "MALFORMED_INPUT"],
      ["extra bad base64", good.replace("index 5\n", "extra a\nindex 5\n"), "MALFORMED_INPUT"],
      ["extra after index", good.replace("index 5\n", "index 5\nextra YQ==\n"), "MALFORMED_INPUT"],
      ["bad base64 hash", good.replace(h0, `${h0.slice(0, -2)}!=`), "MALFORMED_INPUT"],
      ["truncated hash", good.replace(h0, h0.slice(0, -4)), "MALFORMED_INPUT"],
      ["33-byte hash", good.replace(h0, toBase64(new Uint8Array(33))), "MALFORMED_INPUT"],
      ["hash with trailing space", good.replace(h0, `${h0} `), "MALFORMED_INPUT"],
      [
        "no blank line before the checkpoint",
        good.replace("\n\nexample.com", "\nexample.com"),
        "MALFORMED_INPUT",
      ],
      ["two blank lines", good.replace("\n\nexample.com", "\n\n\nexample.com"), "CHECKPOINT_INVALID"],
      ["no checkpoint", good.slice(0, good.indexOf("\n\n") + 2), "MALFORMED_INPUT"],
      ["truncated checkpoint", good.slice(0, -1), "MALFORMED_INPUT"],
      ["truncated in the signature", good.slice(0, -20), "MALFORMED_INPUT"],
      ["a line after the checkpoint", `${good}trailing\n`, "MALFORMED_INPUT"],
      [
        "65 hashes",
        createTlogProof(5n, [], cp15).replace("index 5\n", `index 5\n${`${h0}\n`.repeat(65)}`),
        "MALFORMED_INPUT",
      ],
      ["too large", good + "x".repeat(1024 * 1024), "TOO_LARGE"],
      ["byte order mark", `\ufeff${good}`, "MALFORMED_INPUT"],
    ];
    for (const [what, text, code] of cases) {
      assert.throws(
        () => parseTlogProof(text),
        (err: unknown) => isLedgerError(err, code),
        what,
      );
    }
    throwsCode(() => createTlogProof(15n, proof, cp15), "INVALID_ARGUMENT");
    throwsCode(() => createTlogProof(0n, [new Uint8Array(31)], cp15), "INVALID_ARGUMENT");
    throwsCode(() => createTlogProof(0n, [], cp15, new Uint8Array(0)), "INVALID_ARGUMENT");
  });

  it("parses hash-per-line consistency proofs strictly", () => {
    const proof = tree.consistencyProof(7n, 15n);
    const text = formatHashLines(proof);
    assert.equal(parseHashLines(text).length, proof.length);
    assert.deepEqual(parseHashLines(""), []);
    throwsCode(() => parseHashLines(text.slice(0, -1)), "MALFORMED_INPUT");
    throwsCode(() => parseHashLines(`${text}\n`), "MALFORMED_INPUT");
    throwsCode(() => parseHashLines(text.replace("\n", "\r\n")), "MALFORMED_INPUT");
    throwsCode(() => parseHashLines(`${text}AAAA\n`), "MALFORMED_INPUT");
    throwsCode(() => parseHashLines(`\ufeff${text}`), "MALFORMED_INPUT");
    throwsCode(() => parseHashLines("x".repeat(10_000)), "TOO_LARGE");
  });
});
