/**
 * `medledger node` as an operator runs it, each command a real child process: 1. `node init` creates a data
 * folder and refuses to overwrite it; 2. `node seed` fills it through the node with 5 patients x 3 records;
 * 3. `node start` opens it and its HTTP API on a free port (--port 0), prints its READY line with the seeded
 * size and the URL, answers over HTTP, and on SIGTERM prints STOPPED and exits 0; 4. a second `node seed`
 * while the node runs is refused (exit 2); 5. with --json the ready line is JSON with the URL.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { medledger } from "../cli/run.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

/** A running `medledger node start`: its READY line, then a way to stop it. */
interface Started {
  readonly ready: string;
  stop(): Promise<{ status: number | null; stdout: string; stderr: string }>;
  readonly exited: Promise<{ status: number | null; stdout: string; stderr: string }>;
}

function start(dir: string, ...extra: string[]): Promise<Started> {
  return new Promise((resolve, reject) => {
    const args = ["--import", "tsx", MAIN, "node", "start", "--data", dir, "--port", "0", ...extra];
    const child = spawn(process.execPath, args, { cwd: ROOT });
    let stdout = "";
    let stderr = "";
    const exited = new Promise<{ status: number | null; stdout: string; stderr: string }>((done) =>
      child.on("close", (status) => done({ status, stdout, stderr })),
    );
    child.on("error", reject);
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      const line = stdout.split("\n").find((l) => l.startsWith("READY ") || l.includes('"event":"ready"'));
      if (line !== undefined) {
        resolve({
          ready: line,
          exited,
          stop: () => {
            child.kill("SIGTERM");
            return exited;
          },
        });
      }
    });
    void exited.then((r) => reject(new Error(`node start exited before READY (${r.status}): ${r.stderr}`)));
  });
}

describe("medledger node init, seed and start", () => {
  const root = mkdtempSync(join(tmpdir(), "medledger-node-cli-"));
  const dir = join(root, "data");
  after(() => rmSync(root, { recursive: true, force: true }));

  it("1. node init creates a data folder with the genesis, and refuses to overwrite it", async () => {
    const run = await medledger(
      "node",
      "init",
      "--data",
      dir,
      "--origin",
      "cli.medledger.example/log",
      "--json",
    );
    assert.equal(run.status, 0, run.stderr);
    const report = JSON.parse(run.stdout) as { ok: boolean; origin: string; size: string; root: string };
    assert.equal(report.ok, true);
    assert.equal(report.origin, "cli.medledger.example/log");
    assert.equal(report.size, "1");
    const again = await medledger("node", "init", "--data", dir);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /^ERROR CONFLICT: /);
  });

  it("2. node seed fills it through the node: 5 patients x (enrolment, link, 3 records)", async () => {
    const run = await medledger(
      "node",
      "seed",
      "--data",
      dir,
      "--patients",
      "5",
      "--records-per-patient",
      "3",
      "--json",
    );
    assert.equal(run.status, 0, run.stderr);
    const report = JSON.parse(run.stdout) as {
      ok: boolean;
      entries: number;
      accepted: number;
      rejected: number;
      size: string;
      blobBytes: number;
    };
    assert.equal(report.ok, true);
    assert.equal(report.entries, 25);
    assert.equal(report.accepted, 25);
    assert.equal(report.rejected, 0);
    assert.equal(report.size, "26");
    assert.ok(report.blobBytes > 15 * 28, "each record stored a real ciphertext blob");
  });

  it("3. node start prints READY with the seeded size and its URL, serves HTTP, and stops cleanly on SIGTERM", async () => {
    const node = await start(dir);
    const ready =
      /^READY medledger node cli\.medledger\.example\/log size 26 root [0-9a-f]{64} url (http:\/\/127\.0\.0\.1:(\d+))$/.exec(
        node.ready,
      );
    assert.ok(ready !== null, node.ready);
    assert.notEqual(ready[2], "0", "--port 0 picks a free port and the line shows it");
    const health = await fetch(`${ready[1]}/v1/health`);
    assert.deepEqual(await health.json(), { ok: true, size: "26" });
    // 4. While it runs, nothing else may sequence the same folder.
    const seed = await medledger(
      "node",
      "seed",
      "--data",
      dir,
      "--patients",
      "1",
      "--records-per-patient",
      "0",
    );
    assert.equal(seed.status, 2);
    assert.match(seed.stderr, /ERROR CONFLICT: the node is already running/);
    const stopped = await node.stop();
    assert.equal(stopped.status, 0, stopped.stderr);
    assert.deepEqual(stopped.stdout.trim().split("\n").slice(-1), ["STOPPED"]);
  });

  it("5. node start --json prints JSON lines with the URL and the witness key", async () => {
    const node = await start(dir, "--json");
    const ready = JSON.parse(node.ready) as {
      ok: boolean;
      event: string;
      url: string;
      size: string;
      witnessKey: string;
    };
    assert.equal(ready.event, "ready");
    assert.equal(ready.size, "26");
    assert.match(ready.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const info = (await (await fetch(`${ready.url}/v1/node`)).json()) as { witnessKey: string };
    assert.equal(info.witnessKey, ready.witnessKey);
    const stopped = await node.stop();
    assert.equal(stopped.status, 0, stopped.stderr);
    const last = JSON.parse(stopped.stdout.trim().split("\n").at(-1)!) as { event: string };
    assert.equal(last.event, "stopped");
  });

  it("bad options are usage errors", async () => {
    const run = await medledger(
      "node",
      "seed",
      "--data",
      dir,
      "--patients",
      "0",
      "--records-per-patient",
      "1",
    );
    assert.equal(run.status, 2);
    const missing = await medledger("node", "start", "--data", join(root, "nothing-here"));
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /^ERROR INVALID_ARGUMENT: cannot read node\.json/);
  });
});
