/**
 * `medledger tlog demo`: a self-contained tour of the verifiable log core. It builds a small log of
 * pseudonymous demo entries, signs two checkpoints with a log key, has two witnesses cosign them, writes
 * every artefact an auditor would hold (verifier keys, checkpoints, entries, C2SP tlog-proofs, an RFC 9162
 * consistency proof) into a folder, then verifies them with the same `medledger tlog` commands a user would
 * run, and prints those commands. (`medledger demo` runs a whole node with demo records: src/cli/demo.ts.)
 */
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { toHex } from "../core/encoding/bytes.ts";
import { canonicalBytes } from "../core/encoding/jcs.ts";
import { MerkleTree } from "../core/merkle/tree.ts";
import { signCheckpoint } from "../core/note/checkpoint.ts";
import {
  cosignCheckpoint,
  generateCosignatureKey,
  parseCosignatureSignerKey,
} from "../core/note/cosignature.ts";
import { generateNoteKey, parseNoteSignerKey } from "../core/note/signed-note.ts";
import { createTlogProof, formatHashLines } from "../core/note/tlog-proof.ts";
import type { CliIo } from "./io.ts";
import { EXIT_FAIL, EXIT_OK, reportError, reportOk, type CliContext } from "./report.ts";

/** The demo log's origin (and its key name, as C2SP tlog-checkpoint recommends). */
export const DEMO_ORIGIN = "demo.medledger.example/log";

interface DemoOptions {
  readonly out?: string;
  readonly entries: number;
  readonly json?: boolean;
}

function parseEntryCount(value: string): number {
  if (!/^[1-9][0-9]{0,6}$/.test(value) || Number(value) < 2 || Number(value) > 1_000_000) {
    throw new InvalidArgumentError("the number of entries must be between 2 and 1000000");
  }
  return Number(value);
}

/** A demo entry: pseudonymous ids, hashes, sizes and a coarse time only, as every ledger entry (DESIGN.md 2). */
function demoEntry(ctx: CliContext, seq: number): Uint8Array {
  const random = (n: number): string => toHex(ctx.crypto.randomBytes(n));
  return canonicalBytes({
    v: 1,
    kind: "demo",
    seq,
    patient: `pt_${random(16)}`,
    payloadSha256: random(32),
    payloadBytes: 512 + (seq % 7) * 100,
    day: "2026-11-25",
  });
}

/** Run a tlog command through the CLI itself, capturing its one-line report. */
async function runTlog(
  ctx: CliContext,
  run: RunCli,
  args: string[],
): Promise<{ code: number; line: string }> {
  const lines: string[] = [];
  const io: CliIo = {
    ...ctx.io,
    out: (line) => lines.push(line),
    err: (line) => lines.push(line),
  };
  const code = await run(["tlog", ...args], io, ctx.crypto);
  return { code, line: lines.join(" ") };
}

type RunCli = (argv: readonly string[], io: CliIo, crypto: CliContext["crypto"]) => Promise<number>;

async function demoCommand(ctx: CliContext, run: RunCli, opts: DemoOptions): Promise<void> {
  const crypto = ctx.crypto;
  const dir = resolve(opts.out ?? (await mkdtemp(join(tmpdir(), "medledger-demo-"))));
  await mkdir(join(dir, "entries"), { recursive: true });
  const file = (name: string): string => join(dir, name);

  // 1. Keys: the log's checkpoint key and two witnesses (C2SP signed-note and tlog-cosignature keys).
  const logKey = await generateNoteKey(crypto, DEMO_ORIGIN);
  const witnessKeys = [
    await generateCosignatureKey(crypto, "witness-a.medledger.example"),
    await generateCosignatureKey(crypto, "witness-b.medledger.example"),
  ];
  const logSigner = await parseNoteSignerKey(crypto, logKey.signerKey);
  const witnesses = await Promise.all(witnessKeys.map((k) => parseCosignatureSignerKey(crypto, k.signerKey)));
  await writeFile(file("log.vkey"), `${logKey.verifierKey}\n`);
  for (const [i, k] of witnessKeys.entries())
    await writeFile(file(`witness-${i + 1}.vkey`), `${k.verifierKey}\n`);

  // 2. The log: append entries; the first half ends with an older checkpoint, all of them with the newer.
  const tree = MerkleTree.create((data) => crypto.sha256(data));
  const entries: Uint8Array[] = [];
  const oldSize = Math.floor(opts.entries / 2);
  const cosigned = async (size: bigint): Promise<string> => {
    let note = await signCheckpoint(
      { origin: DEMO_ORIGIN, size, rootHash: tree.rootAt(size), extensions: [] },
      [logSigner],
    );
    for (const w of witnesses) note = await cosignCheckpoint(note, w);
    return note;
  };
  let oldCheckpoint = "";
  for (let i = 0; i < opts.entries; i++) {
    const entry = demoEntry(ctx, i);
    entries.push(entry);
    tree.append(entry);
    if (i + 1 === oldSize) oldCheckpoint = await cosigned(BigInt(oldSize));
  }
  const newCheckpoint = await cosigned(tree.size);
  await writeFile(file("checkpoint.old"), oldCheckpoint);
  await writeFile(file("checkpoint"), newCheckpoint);

  // 3. Proofs: a tlog-proof for the first, a middle and the last entry; one consistency proof.
  const proved = [...new Set([0, Math.floor(opts.entries / 2), opts.entries - 1])];
  for (const i of proved) {
    await writeFile(file(`entries/${i}.json`), entries[i]!);
    const proof = tree.inclusionProof(BigInt(i), tree.size);
    await writeFile(file(`entries/${i}.tlog-proof`), createTlogProof(BigInt(i), proof, newCheckpoint));
  }
  await writeFile(
    file("consistency.proof"),
    formatHashLines(tree.consistencyProof(BigInt(oldSize), tree.size)),
  );

  // 4. Verify everything with the auditor's commands, as a user would run them.
  const policy = [
    "--log-key",
    logKey.verifierKey,
    ...witnessKeys.flatMap((k) => ["--witness-key", k.verifierKey]),
    "--quorum",
    "2",
  ];
  const commands: string[][] = [
    ["verify-checkpoint", ...policy, file("checkpoint")],
    ...proved.map((i) => [
      "verify-proof",
      ...policy,
      "--leaf",
      file(`entries/${i}.json`),
      file(`entries/${i}.tlog-proof`),
    ]),
    [
      "verify-consistency",
      ...policy,
      "--old",
      file("checkpoint.old"),
      "--new",
      file("checkpoint"),
      file("consistency.proof"),
    ],
  ];
  const results: { command: string; code: number; line: string }[] = [];
  for (const args of commands) {
    const r = await runTlog(ctx, run, args);
    // Shown with the keys read from their files, so the line can be pasted into a shell.
    const keyFiles = new Map([
      [logKey.verifierKey, file("log.vkey")],
      ...witnessKeys.map((k, i) => [k.verifierKey, file(`witness-${i + 1}.vkey`)] as const),
    ]);
    const shown = args
      .map((a) => {
        const keyFile = keyFiles.get(a);
        return keyFile === undefined ? a : `"$(cat ${keyFile})"`;
      })
      .join(" ");
    results.push({ command: `medledger tlog ${shown}`, ...r });
  }
  const failed = results.filter((r) => r.code !== EXIT_OK);
  const summary = {
    dir,
    origin: DEMO_ORIGIN,
    entries: opts.entries,
    oldSize,
    rootHex: toHex(tree.root()),
    logKey: logKey.verifierKey,
    witnessKeys: witnessKeys.map((k) => k.verifierKey),
    verifications: results,
  };
  if (failed.length > 0) {
    ctx.exitCode = EXIT_FAIL;
    if (opts.json === true) ctx.io.out(JSON.stringify({ ok: false, code: "INTERNAL", ...summary }));
    else for (const r of failed) ctx.io.err(`FAIL ${r.command}\n  ${r.line}`);
    return;
  }
  if (opts.json === true) {
    reportOk(ctx, true, "demo log written and verified", summary);
    return;
  }
  const say = (line = ""): void => ctx.io.out(line);
  say(
    `medledger tlog demo: a log of ${opts.entries} pseudonymous entries, checkpoints cosigned by 2 witnesses`,
  );
  say(`  folder:       ${dir}`);
  say(`  log key:      ${logKey.verifierKey}`);
  say(`  checkpoints:  size ${oldSize} (checkpoint.old) and size ${opts.entries} (checkpoint)`);
  say(`  root:         ${summary.rootHex}`);
  say();
  say("Verified, as an auditor would (run these yourself; change a byte in any file and watch them fail):");
  for (const r of results) {
    say(`  $ ${r.command}`);
    say(`    ${r.line}`);
  }
  reportOk(ctx, false, "OK tlog demo verified", {});
}

/** Add `medledger tlog demo`. `run` is the CLI itself, used to run the tlog commands. */
export function registerTlogDemoCommand(tlog: Command, ctx: CliContext, run: RunCli): void {
  tlog
    .command("demo")
    .description("build a small demo log, write its checkpoints and proofs, and verify them as an auditor")
    .option("--out <dir>", "folder for the demo files (default: a new temporary folder)")
    .option("--entries <n>", "number of demo entries (2 to 1000000)", parseEntryCount, 16)
    .option("--json", "print one JSON document")
    .action(async (opts: DemoOptions) => {
      try {
        await demoCommand(ctx, run, opts);
      } catch (err) {
        reportError(ctx, opts.json === true, err);
      }
    });
}
