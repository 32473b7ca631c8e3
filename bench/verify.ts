/**
 * Benchmark of `medledger verify` (not a test: it prints figures and asserts nothing on time). Usage:
 *
 *     node --import tsx bench/verify.ts DIR [PATIENTS RECORDS_PER_PATIENT]
 *
 * With PATIENTS and RECORDS_PER_PATIENT, DIR is made first with the node's own `medledger node init` and
 * `medledger node seed`; without, DIR must already be a node folder. Then the same run measures the raw
 * Ed25519 verification rate of one thread (the floor an audit cannot beat: every entry carries two
 * signatures) and audits DIR on one thread and with one worker per core, printing wall time, CPU time,
 * the machine's load, the extrapolation to 1,000,000 entries and the ratio to the Ed25519 ceiling.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { utf8 } from "../src/core/encoding/bytes.ts";
import { nodeCrypto } from "../src/platform/node-crypto.ts";
import { verifyNodeFolder } from "../src/verify/node-folder.ts";

const MAIN = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const [dir, patients, records] = process.argv.slice(2);
if (dir === undefined) {
  process.stderr.write("usage: bench/verify.ts DIR [PATIENTS RECORDS_PER_PATIENT]\n");
  process.exit(2);
}

function medledger(...args: string[]): void {
  const run = spawnSync(process.execPath, ["--import", "tsx", MAIN, ...args], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`medledger ${args.join(" ")}: ${run.stderr}`);
  process.stdout.write(run.stdout);
}

if (patients !== undefined && records !== undefined) {
  if (!existsSync(dir)) medledger("node", "init", "--data", dir);
  const started = performance.now();
  medledger("node", "seed", "--data", dir, "--patients", patients, "--records-per-patient", records);
  process.stdout.write(`seeded in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
}

/** Microseconds per Ed25519 verification of a 1.2 KB message (about an entry's signed content), one thread. */
async function verifyMicros(): Promise<number> {
  const key = await nodeCrypto.ed25519Generate();
  const message = utf8("x".repeat(1200));
  const signature = await nodeCrypto.ed25519Sign(key.secretKey, message);
  for (let i = 0; i < 500; i++) await nodeCrypto.ed25519Verify(key.publicKey, message, signature);
  const n = 4000;
  const start = performance.now();
  for (let i = 0; i < n; i++) await nodeCrypto.ed25519Verify(key.publicKey, message, signature);
  return ((performance.now() - start) * 1000) / n;
}

const cores = availableParallelism();
const fmt = (x: number, digits = 1): string => x.toFixed(digits);
const load = (): string =>
  loadavg()
    .map((l) => fmt(l, 2))
    .join(" ");
for (const threads of [0, cores]) {
  const loadBefore = load();
  const micros = await verifyMicros();
  const cpu = process.cpuUsage();
  const start = performance.now();
  const report = await verifyNodeFolder({ dir, crypto: nodeCrypto, threads });
  const wall = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  if (!report.ok) throw new Error(`the audit failed: ${JSON.stringify(report.failure)}`);
  const perEntry = wall / report.entries;
  // The floor: two signatures per entry, verified on every core and nothing else done.
  const ceiling = (2 * micros * report.entries) / 1e6 / cores;
  process.stdout.write(
    [
      `threads ${report.threads} (asked ${threads}), ${cores} cores, load ${loadBefore} -> ${load()}`,
      `  ${report.entries} entries, ${report.checkpoints} checkpoints, ${report.blobs} blobs, ${report.patients} patients`,
      `  wall ${fmt(wall)} s (entries ${fmt(report.timings.entriesMs / 1000)} s), ${fmt(report.entries / wall, 0)} entries/s, ` +
        `process CPU ${fmt((used.user + used.system) / 1e6)} s, peak RSS ${fmt(process.resourceUsage().maxRSS / 1024, 0)} MB`,
      `  signatures: ${report.signatures.prechecked} pre-checked by workers, ${report.signatures.inline} inline`,
      `  raw Ed25519 verify ${fmt(micros)} us/op (one thread, same run): ceiling ${fmt(ceiling)} s for this log, ` +
        `audit/ceiling ${fmt(wall / ceiling, 2)}`,
      `  extrapolated to 1,000,000 entries: ${fmt((perEntry * 1e6) / 60)} min ` +
        `(Ed25519 ceiling ${fmt((2 * micros) / cores / 60, 1)} min)`,
      "",
    ].join("\n"),
  );
}
