/**
 * `medledger node`: create a node's data folder (init), run the node (start), and fill it with synthetic
 * records (seed). See docs/node.md. Exit status as everywhere in the CLI (docs/cli.md): 0 done, 1 refused
 * or failed, 2 could not run as asked (bad options, a folder that is not empty, a node already running).
 */
import { resolve } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import cliProgress from "cli-progress";
import { isLedgerError, type ErrorCode } from "../core/errors.ts";
import { toHex } from "../core/encoding/bytes.ts";
import { initNode } from "../node/init.ts";
import { createNode, type LedgerNode } from "../node/node.ts";
import { MAX_SEED_PATIENTS, MAX_SEED_RECORDS_PER_PATIENT, loadSeedActors, seedNode } from "../node/seed.ts";
import { createServer } from "../server/app.ts";
import { CliError } from "./io.ts";
import { EXIT_FAIL, EXIT_USAGE, reportError, reportOk, type CliContext } from "./report.ts";

interface DataOptions {
  readonly data: string;
  readonly json?: boolean;
}

interface InitOptions extends DataOptions {
  readonly origin?: string;
  readonly force?: boolean;
}

interface StartOptions extends DataOptions {
  readonly host: string;
  readonly port: number;
}

/** The default port of `node start` ("84" for the ledger, "70" as in 8070; no registered service). */
export const DEFAULT_PORT = 8470;

interface SeedCliOptions extends DataOptions {
  readonly patients: number;
  readonly recordsPerPatient: number;
}

/** Errors that mean "the command could not run as asked" (exit 2) rather than "it failed" (exit 1). */
const USAGE_CODES: ReadonlySet<ErrorCode> = new Set(["CONFLICT", "INVALID_ARGUMENT", "KEY_INVALID"]);

function asUsage(err: unknown): unknown {
  if (isLedgerError(err) && USAGE_CODES.has(err.code)) {
    return new CliError(EXIT_USAGE, err.code, err.message, { cause: err });
  }
  return err;
}

function integerOption(name: string, min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^[0-9]{1,7}$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    }
    return Number(value);
  };
}

function readyLine(node: LedgerNode, url: string): string {
  return `READY medledger node ${node.origin} size ${node.size} root ${toHex(node.root())} url ${url}`;
}

async function initCommand(ctx: CliContext, opts: InitOptions): Promise<void> {
  const dir = resolve(opts.data);
  const result = await initNode({
    dir,
    crypto: ctx.crypto,
    ...(opts.origin === undefined ? {} : { origin: opts.origin }),
    force: opts.force === true,
  }).catch((err: unknown) => {
    throw asUsage(err);
  });
  reportOk(
    ctx,
    opts.json === true,
    `OK node ${result.origin} created in ${dir}: genesis ${result.genesis}, size ${result.size}, root ${result.root}`,
    { ...result, size: result.size.toString() },
  );
}

/** Run until SIGTERM or SIGINT; the node (and the demo) keep serving meanwhile. */
export function untilSignal(): Promise<string> {
  return new Promise((done) => {
    // A timer keeps the event loop alive even while the HTTP server has no connection.
    const keepAlive = setInterval(() => undefined, 2 ** 30);
    const stop = (signal: string): void => {
      clearInterval(keepAlive);
      process.off("SIGTERM", onTerm);
      process.off("SIGINT", onInt);
      done(signal);
    };
    const onTerm = (): void => stop("SIGTERM");
    const onInt = (): void => stop("SIGINT");
    process.on("SIGTERM", onTerm);
    process.on("SIGINT", onInt);
  });
}

async function startCommand(ctx: CliContext, opts: StartOptions): Promise<void> {
  const json = opts.json === true;
  const dir = resolve(opts.data);
  const node = await createNode({
    dir,
    crypto: ctx.crypto,
    onBatchError: (err) => {
      const code = isLedgerError(err) ? err.code : "INTERNAL";
      const message = err instanceof Error ? err.message : "unexpected error";
      ctx.io.err(`WARN batch failed, its submitters were told: ${code}: ${message.replace(/[\r\n]+/g, " ")}`);
    },
  }).catch((err: unknown) => {
    throw asUsage(err);
  });
  let url: string;
  let server;
  try {
    server = await createServer({ node, crypto: ctx.crypto, dataDir: dir, log: (line) => ctx.io.err(line) });
    url = await server.listen({ host: opts.host, port: opts.port });
  } catch (err) {
    await server?.close();
    await node.close();
    const code = (err as { code?: unknown } | null)?.code;
    if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") {
      throw new CliError(
        EXIT_USAGE,
        "INVALID_ARGUMENT",
        `cannot listen on ${opts.host}:${opts.port}: ${String(code)}`,
      );
    }
    throw asUsage(err);
  }
  if (json) {
    ctx.io.out(
      JSON.stringify({
        ok: true,
        event: "ready",
        origin: node.origin,
        size: node.size.toString(),
        root: toHex(node.root()),
        url,
        witnessKey: server.witnessKey,
      }),
    );
  } else ctx.io.out(readyLine(node, url));
  const signal = await untilSignal();
  // Stop taking requests and finish those in flight, then let the node commit what it queued.
  await server.close();
  await node.close();
  if (json) ctx.io.out(JSON.stringify({ ok: true, event: "stopped", signal, size: node.size.toString() }));
  else ctx.io.out("STOPPED");
}

async function seedCommand(ctx: CliContext, opts: SeedCliOptions): Promise<void> {
  const dir = resolve(opts.data);
  const json = opts.json === true;
  const node = await createNode({ dir, crypto: ctx.crypto }).catch((err: unknown) => {
    throw asUsage(err);
  });
  try {
    const actors = await loadSeedActors(ctx.crypto, dir);
    const total = opts.patients * (2 + opts.recordsPerPatient);
    // A progress bar only for a person watching: stderr must be a terminal, and never with --json.
    const bar =
      !json && process.stderr.isTTY
        ? new cliProgress.SingleBar(
            {
              stream: process.stderr,
              format: "seeding [{bar}] {percentage}% {value}/{total} entries | {eta}s left",
            },
            cliProgress.Presets.shades_classic,
          )
        : null;
    bar?.start(total, 0);
    let summary;
    try {
      summary = await seedNode(ctx.crypto, node, actors, {
        patients: opts.patients,
        recordsPerPatient: opts.recordsPerPatient,
        onProgress: (done) => bar?.update(done),
      });
    } finally {
      bar?.stop();
    }
    const details = {
      ...summary,
      size: summary.size.toString(),
      seconds: Number(summary.seconds.toFixed(3)),
      entriesPerSecond: Math.round(summary.entriesPerSecond),
    };
    const line =
      `${summary.patients} patients: ${summary.entries} entries (${summary.accepted} accepted, ` +
      `${summary.rejected} rejected), tree size ${summary.size}, root ${summary.root}, ` +
      `${details.seconds} s, ${details.entriesPerSecond} entries/s`;
    if (summary.rejected > 0) {
      const reasons = Object.entries(summary.reasons)
        .map(([code, n]) => `${code} x${n}`)
        .join(", ");
      if (json)
        ctx.io.out(
          JSON.stringify({ ok: false, code: "INTERNAL", message: line, exitCode: EXIT_FAIL, ...details }),
        );
      else ctx.io.err(`FAIL INTERNAL: seeded entries were rejected (${reasons}): ${line}`);
      ctx.exitCode = EXIT_FAIL;
      return;
    }
    reportOk(ctx, json, `OK seeded ${line}`, details);
  } finally {
    await node.close();
  }
}

/** Add `medledger node init|start|seed` to the program. */
export function registerNodeCommands(program: Command, ctx: CliContext): void {
  const node = program.command("node").description("create, run and fill a medledger node (docs/node.md)");
  const action =
    <O extends DataOptions>(run: (ctx: CliContext, opts: O) => Promise<void>) =>
    async (opts: O): Promise<void> => {
      try {
        await run(ctx, opts);
      } catch (err) {
        reportError(ctx, opts.json === true, err);
      }
    };
  node
    .command("init")
    .description("create a node: its keys, its store, and a genesis with one hospital and one validator org")
    .requiredOption("--data <dir>", "the node's data folder (created; must be empty unless --force)")
    .option("--origin <name>", "the log origin (default: medledger.example/node-<random>)")
    .option("--force", "replace the node files of a folder that is not empty")
    .option("--json", "print one JSON document")
    .action(action(initCommand));
  node
    .command("start")
    .description("run the node and its HTTP API until SIGTERM or SIGINT; prints a READY line, then STOPPED")
    .requiredOption("--data <dir>", "the node's data folder")
    .option("--host <address>", "the address the HTTP API listens on", "127.0.0.1")
    .option(
      "--port <n>",
      `the HTTP API's port (0: a free one, shown in the READY line; default ${DEFAULT_PORT})`,
      integerOption("--port", 0, 65535),
      DEFAULT_PORT,
    )
    .option("--json", "print JSON lines (ready, stopped) instead of text")
    .action(action(startCommand));
  node
    .command("seed")
    .description("fill a stopped node with synthetic patients, MRN links and encrypted, validated records")
    .requiredOption("--data <dir>", "the node's data folder")
    .requiredOption(
      "--patients <n>",
      `patients to enrol (1 to ${MAX_SEED_PATIENTS})`,
      integerOption("--patients", 1, MAX_SEED_PATIENTS),
    )
    .requiredOption(
      "--records-per-patient <m>",
      `records per patient (0 to ${MAX_SEED_RECORDS_PER_PATIENT})`,
      integerOption("--records-per-patient", 0, MAX_SEED_RECORDS_PER_PATIENT),
    )
    .option("--json", "print one JSON document")
    .action(action(seedCommand));
}
