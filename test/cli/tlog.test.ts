/**
 * `medledger tlog` end to end: the real command run as a child process (through tsx, so no build is
 * needed) on files made from the Tessera test log in a temporary directory. Asserts the status line,
 * the JSON document and the exit status (0 verified, 1 refused, 2 usage) of every case.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { toBase64, utf8 } from "../../src/core/encoding/bytes.ts";
import { MerkleTree } from "../../src/core/merkle/tree.ts";
import { parseNote } from "../../src/core/note/signed-note.ts";
import { createTlogProof, formatHashLines } from "../../src/core/note/tlog-proof.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { medledger, type Run } from "./run.ts";
import { TESSERA_LOG_VKEY, tesseraCheckpoint, tesseraEntries } from "../unit/support/tessera.ts";
const ROOT15 = "rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs=";

function assertOk(run: Run, prefix: string): void {
  assert.equal(run.status, 0, `exit ${run.status}: ${run.stderr}`);
  assert.ok(run.stdout.startsWith(prefix), run.stdout);
  assert.equal(run.stdout.trimEnd().split("\n").length, 1, "one line");
}

function assertFail(run: Run, code: string): void {
  assert.equal(run.status, 1, `exit ${run.status}: ${run.stdout}${run.stderr}`);
  assert.equal(run.stdout, "");
  assert.ok(run.stderr.startsWith(`FAIL ${code}: `), run.stderr);
  assert.equal(run.stderr.trimEnd().split("\n").length, 1, "one line");
  assert.ok(!run.stderr.includes("    at "), "no stack trace");
}

function assertUsage(run: Run): void {
  assert.equal(run.status, 2, `exit ${run.status}: ${run.stdout}${run.stderr}`);
  assert.equal(run.stdout, "");
  assert.ok(!run.stderr.includes("    at "), "no stack trace");
}

describe("medledger tlog (child process)", { concurrency: 8 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "medledger-cli-"));
  const file = (name: string): string => join(dir, name);
  const write = (name: string, content: string | Uint8Array): string => {
    writeFileSync(file(name), content);
    return file(name);
  };
  const sha = (d: Uint8Array): Uint8Array => nodeCrypto.sha256(d);
  const tree = MerkleTree.create(sha);
  tree.appendMany(tesseraEntries());
  let w1Vkey = "";
  let w2Vkey = "";

  const cp15 = write("checkpoint.15", tesseraCheckpoint(15));
  const cp7 = write("checkpoint.7", tesseraCheckpoint(7));
  const cp0 = write("checkpoint.0", tesseraCheckpoint(0));
  const proof5 = createTlogProof(5n, tree.inclusionProof(5n, 15n), tesseraCheckpoint(15));
  const proofFile = write("six.tlog-proof", proof5);
  const leafFile = write("six", "six");
  const consistency = tree.consistencyProof(7n, 15n);
  const consistencyFile = write("7-15.proof", formatHashLines(consistency));
  const empty = write("empty.proof", "");

  before(async () => {
    // 1. Two witnesses make their keys with the CLI's keygen.
    for (const [n, name] of [
      [1, "witness.example/w1"],
      [2, "witness.example/w2"],
    ] as const) {
      const run = await medledger("tlog", "keygen", "--witness", name);
      assert.equal(run.status, 0, run.stderr);
      const [skey, vkey] = run.stdout.trimEnd().split("\n") as [string, string];
      assert.ok(skey.startsWith(`PRIVATE+KEY+${name}+`));
      write(`w${n}.key`, `${skey}\n`);
      if (n === 1) w1Vkey = vkey;
      else w2Vkey = vkey;
    }
    // 2. Witness 1 cosigns checkpoint 15 after checking the log's signature.
    const run = await medledger(
      "tlog",
      "cosign",
      "--log-key",
      TESSERA_LOG_VKEY,
      "--key-file",
      file("w1.key"),
      "--time",
      "1700000000",
      cp15,
    );
    assert.equal(run.status, 0, run.stderr);
    write("checkpoint.15.cosigned", run.stdout);
    assert.equal(parseNote(run.stdout).signatures.length, 2);
    write("six-cosigned.tlog-proof", createTlogProof(5n, tree.inclusionProof(5n, 15n), run.stdout));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  describe("verify-checkpoint", { concurrency: 8 }, () => {
    it("accepts the real checkpoint under the log key (exit 0)", async () => {
      const run = await medledger("tlog", "verify-checkpoint", "--log-key", TESSERA_LOG_VKEY, cp15);
      assertOk(
        run,
        `OK checkpoint example.com/log/testdata size 15 root ${ROOT15} signed by log, 0/0 witnesses`,
      );
    });

    it("accepts a witness-cosigned checkpoint with --quorum 1", async () => {
      const run = await medledger(
        "tlog",
        "verify-checkpoint",
        "--log-key",
        TESSERA_LOG_VKEY,
        "--witness-key",
        w1Vkey,
        "--quorum",
        "1",
        file("checkpoint.15.cosigned"),
      );
      assertOk(run, "OK checkpoint example.com/log/testdata size 15 ");
      assert.ok(run.stdout.includes("1/1 witnesses (quorum 1)"), run.stdout);
    });

    it("refuses it with --quorum 2 of two witnesses, or under the wrong witness key (exit 1)", async () => {
      assertFail(
        await medledger(
          "tlog",
          "verify-checkpoint",
          "--log-key",
          TESSERA_LOG_VKEY,
          "--witness-key",
          w1Vkey,
          "--witness-key",
          w2Vkey,
          "--quorum",
          "2",
          file("checkpoint.15.cosigned"),
        ),
        "QUORUM_NOT_MET",
      );
      assertFail(
        await medledger(
          "tlog",
          "verify-checkpoint",
          "--log-key",
          TESSERA_LOG_VKEY,
          "--witness-key",
          w2Vkey,
          "--quorum",
          "1",
          file("checkpoint.15.cosigned"),
        ),
        "QUORUM_NOT_MET",
      );
    });

    it("refuses --quorum 2 with a single witness key as a usage error (exit 2)", async () => {
      const run = await medledger(
        "tlog",
        "verify-checkpoint",
        "--log-key",
        TESSERA_LOG_VKEY,
        "--witness-key",
        w1Vkey,
        "--quorum",
        "2",
        cp15,
      );
      assertUsage(run);
      assert.ok(run.stderr.startsWith("ERROR INVALID_ARGUMENT: --quorum"), run.stderr);
    });

    it("refuses a flipped byte, a wrong origin and a checkpoint signed by another key (exit 1)", async () => {
      const bytes = utf8(tesseraCheckpoint(15));
      bytes[30]! ^= 1;
      assertFail(
        await medledger("tlog", "verify-checkpoint", "--log-key", TESSERA_LOG_VKEY, write("flipped", bytes)),
        "SIGNATURE_INVALID",
      );
      assertFail(
        await medledger(
          "tlog",
          "verify-checkpoint",
          "--log-key",
          TESSERA_LOG_VKEY,
          "--origin",
          "example.com/other",
          cp15,
        ),
        "ORIGIN_MISMATCH",
      );
      const other = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
      assertFail(await medledger("tlog", "verify-checkpoint", "--log-key", other, cp15), "SIGNATURE_INVALID");
      assertFail(
        await medledger(
          "tlog",
          "verify-checkpoint",
          "--log-key",
          TESSERA_LOG_VKEY,
          write("garbage", "not a note"),
        ),
        "MALFORMED_INPUT",
      );
      assertFail(
        await medledger(
          "tlog",
          "verify-checkpoint",
          "--log-key",
          TESSERA_LOG_VKEY,
          write("big", "x".repeat(1024 * 1024 + 1)),
        ),
        "TOO_LARGE",
      );
    });

    it("prints one JSON document with --json", async () => {
      const ok = await medledger("tlog", "verify-checkpoint", "--json", "--log-key", TESSERA_LOG_VKEY, cp15);
      assert.equal(ok.status, 0);
      const doc = JSON.parse(ok.stdout) as Record<string, unknown>;
      assert.equal(doc.ok, true);
      assert.equal(doc.size, "15");
      assert.equal(doc.rootHash, ROOT15);
      assert.equal(doc.origin, "example.com/log/testdata");
      const bad = await medledger(
        "tlog",
        "verify-checkpoint",
        "--json",
        "--log-key",
        TESSERA_LOG_VKEY,
        "--origin",
        "x",
        cp15,
      );
      assert.equal(bad.status, 1);
      const failDoc = JSON.parse(bad.stdout) as Record<string, unknown>;
      assert.equal(failDoc.ok, false);
      assert.equal(failDoc.code, "ORIGIN_MISMATCH");
      assert.equal(typeof failDoc.message, "string");
      const usage = await medledger("tlog", "verify-checkpoint", "--json", "--bogus", cp15);
      assert.equal(usage.status, 2);
      assert.equal((JSON.parse(usage.stdout) as Record<string, unknown>).ok, false);
    });
  });

  describe("verify-proof", { concurrency: 8 }, () => {
    it("accepts a real Tessera entry at its index (exit 0)", async () => {
      const run = await medledger(
        "tlog",
        "verify-proof",
        "--log-key",
        TESSERA_LOG_VKEY,
        "--leaf",
        leafFile,
        proofFile,
      );
      assertOk(run, "OK inclusion of leaf ");
      assert.ok(
        run.stdout.includes(`at index 5 in example.com/log/testdata size 15 root ${ROOT15}`),
        run.stdout,
      );
    });

    it("accepts it under a cosigned checkpoint with --quorum 1, refuses it with the wrong witness", async () => {
      const args = [
        "tlog",
        "verify-proof",
        "--log-key",
        TESSERA_LOG_VKEY,
        "--leaf",
        leafFile,
        "--quorum",
        "1",
      ];
      assertOk(
        await medledger(...args, "--witness-key", w1Vkey, file("six-cosigned.tlog-proof")),
        "OK inclusion of leaf ",
      );
      assertFail(
        await medledger(...args, "--witness-key", w2Vkey, file("six-cosigned.tlog-proof")),
        "QUORUM_NOT_MET",
      );
      assertFail(await medledger(...args, "--witness-key", w1Vkey, proofFile), "QUORUM_NOT_MET");
    });

    it("refuses a modified leaf, a wrong index, an index beyond the tree and a truncated proof (exit 1)", async () => {
      const base = ["tlog", "verify-proof", "--log-key", TESSERA_LOG_VKEY, "--leaf"];
      assertFail(await medledger(...base, write("sixx", "sixx"), proofFile), "PROOF_INVALID");
      assertFail(await medledger(...base, write("seven", "seven"), proofFile), "PROOF_INVALID");
      assertFail(
        await medledger(...base, leafFile, write("index4", proof5.replace("index 5\n", "index 4\n"))),
        "PROOF_INVALID",
      );
      assertFail(
        await medledger(...base, leafFile, write("index15", proof5.replace("index 5\n", "index 15\n"))),
        "INDEX_OUT_OF_RANGE",
      );
      assertFail(
        await medledger(...base, leafFile, write("truncated", proof5.slice(0, 60))),
        "MALFORMED_INPUT",
      );
      assertFail(
        await medledger(...base, leafFile, write("truncated-end", proof5.slice(0, -1))),
        "MALFORMED_INPUT",
      );
      assertFail(
        await medledger(...base, leafFile, write("extra-line", proof5.replace("index 5\n", "index 5\n\n"))),
        "CHECKPOINT_INVALID",
      );
      const h = toBase64(tree.inclusionProof(5n, 15n)[0]!);
      assertFail(
        await medledger(...base, leafFile, write("bad-b64", proof5.replace(h, `${h.slice(0, -2)}*=`))),
        "MALFORMED_INPUT",
      );
    });

    it("prints JSON with the index and leaf hash", async () => {
      const run = await medledger(
        "tlog",
        "verify-proof",
        "--json",
        "--log-key",
        TESSERA_LOG_VKEY,
        "--leaf",
        leafFile,
        proofFile,
      );
      assert.equal(run.status, 0, run.stderr);
      const doc = JSON.parse(run.stdout) as Record<string, unknown>;
      assert.equal(doc.ok, true);
      assert.equal(doc.index, "5");
      assert.equal(doc.size, "15");
    });
  });

  describe("verify-consistency", { concurrency: 8 }, () => {
    const base = ["tlog", "verify-consistency", "--log-key", TESSERA_LOG_VKEY];

    it("accepts 7 -> 15 with the RFC 9162 proof (exit 0)", async () => {
      const run = await medledger(...base, "--old", cp7, "--new", cp15, consistencyFile);
      assertOk(run, "OK consistency example.com/log/testdata size 7 -> 15 ");
    });

    it("accepts 0 -> 15 and 15 -> 15 with empty proofs", async () => {
      assertOk(
        await medledger(...base, "--old", cp0, "--new", cp15, empty),
        "OK consistency example.com/log/testdata size 0 -> 15 ",
      );
      assertOk(
        await medledger(...base, "--old", cp15, "--new", cp15, empty),
        "OK consistency example.com/log/testdata size 15 -> 15 ",
      );
    });

    it("refuses swapped and modified proofs, and old/new swapped (exit 1)", async () => {
      const reversed = write("reversed.proof", formatHashLines([...consistency].reverse()));
      assertFail(await medledger(...base, "--old", cp7, "--new", cp15, reversed), "PROOF_INVALID");
      const modified = consistency.map((h) => h.slice());
      modified[0]![3]! ^= 1;
      assertFail(
        await medledger(
          ...base,
          "--old",
          cp7,
          "--new",
          cp15,
          write("modified.proof", formatHashLines(modified)),
        ),
        "PROOF_INVALID",
      );
      assertFail(await medledger(...base, "--old", cp15, "--new", cp7, consistencyFile), "INCONSISTENT_TREE");
      assertFail(await medledger(...base, "--old", cp7, "--new", cp15, empty), "PROOF_INVALID");
      assertFail(
        await medledger(
          ...base,
          "--old",
          cp7,
          "--new",
          cp15,
          write("trunc.proof", formatHashLines(consistency).slice(0, -1)),
        ),
        "MALFORMED_INPUT",
      );
      assertFail(
        await medledger(
          ...base,
          "--old",
          cp7,
          "--new",
          cp15,
          write("short.proof", formatHashLines(consistency.slice(1))),
        ),
        "PROOF_INVALID",
      );
      const wrongOld = write("checkpoint.6", tesseraCheckpoint(6));
      assertFail(
        await medledger(...base, "--old", wrongOld, "--new", cp15, consistencyFile),
        "PROOF_INVALID",
      );
    });

    it("prints JSON", async () => {
      const run = await medledger(...base, "--json", "--old", cp7, "--new", cp15, consistencyFile);
      const doc = JSON.parse(run.stdout) as Record<string, unknown>;
      assert.equal(run.status, 0);
      assert.equal(doc.ok, true);
      assert.equal(doc.oldSize, "7");
      assert.equal(doc.newSize, "15");
    });
  });

  describe("usage", { concurrency: 8 }, () => {
    it("prints help for the program and every subcommand (exit 0)", async () => {
      const top = await medledger("--help");
      assert.equal(top.status, 0);
      assert.ok(top.stdout.includes("tlog"), top.stdout);
      const tlog = await medledger("tlog", "--help");
      assert.equal(tlog.status, 0);
      for (const sub of ["verify-checkpoint", "verify-proof", "verify-consistency", "keygen", "cosign"]) {
        assert.ok(tlog.stdout.includes(sub), sub);
        const help = await medledger("tlog", sub, "--help");
        assert.equal(help.status, 0, sub);
        assert.ok(help.stdout.startsWith(`Usage: medledger tlog ${sub}`), help.stdout);
      }
    });

    it("exits 2 on an unknown option, a missing argument or option, a bad key or quorum, and an unreadable file", async () => {
      assertUsage(
        await medledger("tlog", "verify-checkpoint", "--log-key", TESSERA_LOG_VKEY, "--bogus", cp15),
      );
      assertUsage(await medledger("tlog", "verify-checkpoint", "--log-key", TESSERA_LOG_VKEY));
      assertUsage(await medledger("tlog", "verify-checkpoint", cp15));
      assertUsage(await medledger("tlog", "verify-checkpoint", "--log-key", TESSERA_LOG_VKEY, cp15, cp7));
      assertUsage(await medledger("tlog", "verify-proof", "--log-key", TESSERA_LOG_VKEY, proofFile));
      assertUsage(
        await medledger("tlog", "verify-checkpoint", "--log-key", TESSERA_LOG_VKEY, "--quorum", "one", cp15),
      );
      assertUsage(
        await medledger("tlog", "verify-checkpoint", "--log-key", TESSERA_LOG_VKEY, "--quorum", "-1", cp15),
      );
      assertUsage(await medledger("tlog", "nope"));
      assertUsage(await medledger());
      const badKey = await medledger(
        "tlog",
        "verify-checkpoint",
        "--log-key",
        TESSERA_LOG_VKEY.replace("33d7b496", "33d7b497"),
        cp15,
      );
      assertUsage(badKey);
      assert.ok(badKey.stderr.startsWith("ERROR KEY_INVALID: --log-key"), badKey.stderr);
      assertUsage(
        await medledger(
          "tlog",
          "verify-checkpoint",
          "--log-key",
          TESSERA_LOG_VKEY,
          "--witness-key",
          TESSERA_LOG_VKEY,
          cp15,
        ),
      );
      const missing = await medledger(
        "tlog",
        "verify-checkpoint",
        "--log-key",
        TESSERA_LOG_VKEY,
        file("does-not-exist"),
      );
      assertUsage(missing);
      assert.ok(
        missing.stderr.startsWith("ERROR INVALID_ARGUMENT: cannot read checkpoint file"),
        missing.stderr,
      );
      assertUsage(await medledger("tlog", "verify-checkpoint", "--log-key", TESSERA_LOG_VKEY, dir));
    });

    it("generates log keys that the verify commands accept", async () => {
      const run = await medledger("tlog", "keygen", "--json", "medledger.example/log");
      assert.equal(run.status, 0);
      const doc = JSON.parse(run.stdout) as { ok: boolean; signerKey: string; verifierKey: string };
      assert.ok(doc.signerKey.startsWith("PRIVATE+KEY+medledger.example/log+"));
      const check = await medledger(
        "tlog",
        "verify-checkpoint",
        "--log-key",
        doc.verifierKey,
        "--origin",
        "example.com/log/testdata",
        cp15,
      );
      assertFail(check, "SIGNATURE_INVALID");
      assertUsage(await medledger("tlog", "keygen", "bad name"));
      assert.equal(readFileSync(cp15, "utf8"), tesseraCheckpoint(15));
    });
  });
});
