/**
 * `medledger tlog demo` end to end, as a newcomer runs it: 1. the demo builds a log and verifies its own
 * artefacts; 2. the files it wrote verify again with the auditor's commands; 3. a changed byte in an entry
 * or a checkpoint makes them fail.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { medledger } from "./run.ts";

describe("medledger tlog demo", () => {
  const dir = mkdtempSync(join(tmpdir(), "medledger-demo-test-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const key = (name: string): string => readFileSync(join(dir, name), "utf8").trim();

  it("1. builds a cosigned log and verifies every artefact it wrote", async () => {
    const run = await medledger("tlog", "demo", "--out", dir, "--entries", "21", "--json");
    assert.equal(run.status, 0, run.stderr);
    const report = JSON.parse(run.stdout) as {
      ok: boolean;
      entries: number;
      oldSize: number;
      verifications: { code: number; line: string }[];
    };
    assert.equal(report.ok, true);
    assert.equal(report.entries, 21);
    assert.equal(report.oldSize, 10);
    assert.equal(report.verifications.length, 5);
    for (const v of report.verifications) assert.equal(v.code, 0, v.line);
  });

  it("2. its files verify again with the auditor's commands", async () => {
    const run = await medledger(
      "tlog",
      "verify-proof",
      "--log-key",
      key("log.vkey"),
      "--witness-key",
      key("witness-1.vkey"),
      "--witness-key",
      key("witness-2.vkey"),
      "--quorum",
      "2",
      "--leaf",
      join(dir, "entries/20.json"),
      join(dir, "entries/20.tlog-proof"),
    );
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^OK inclusion of leaf [0-9a-f]{64} at index 20 .* size 21 .*2\/2 witnesses/);
  });

  it("3. a changed byte in an entry or a checkpoint makes verification fail", async () => {
    const entry = join(dir, "entries/10.json");
    const bytes = readFileSync(entry);
    bytes[5] = bytes[5]! ^ 1;
    writeFileSync(entry, bytes);
    const proof = await medledger(
      "tlog",
      "verify-proof",
      "--log-key",
      key("log.vkey"),
      "--leaf",
      entry,
      join(dir, "entries/10.tlog-proof"),
    );
    assert.equal(proof.status, 1);
    assert.match(proof.stderr, /^FAIL PROOF_INVALID: /);

    const checkpoint = join(dir, "checkpoint");
    const text = readFileSync(checkpoint, "utf8");
    writeFileSync(checkpoint, text.replace("\n21\n", "\n22\n"));
    const cp = await medledger("tlog", "verify-checkpoint", "--log-key", key("log.vkey"), checkpoint);
    assert.equal(cp.status, 1);
    assert.match(cp.stderr, /^FAIL SIGNATURE_INVALID: /);
  });

  it("refuses a bad entry count as a usage error", async () => {
    const run = await medledger("tlog", "demo", "--entries", "1");
    assert.equal(run.status, 2);
    assert.match(run.stderr, /between 2 and 1000000/);
  });

  it("prints its version and the list of commands", async () => {
    const version = await medledger("--version");
    assert.equal(version.status, 0);
    assert.equal(
      version.stdout.trim(),
      (
        JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
          version: string;
        }
      ).version,
    );
    const help = await medledger("--help");
    assert.equal(help.status, 0);
    for (const command of ["tlog", "demo", "node", "verify"])
      assert.match(help.stdout, new RegExp(`\\n  ${command}\\b`));
  });
});
