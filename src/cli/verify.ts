/**
 * `medledger verify --data DIR [--log-key VKEY] [--json] [--threads N]`: audit a node's store from scratch
 * (docs/verify.md). Exit 0 with one OK line when everything verifies, 1 with one FAIL line naming the first
 * place that is wrong, 2 on usage errors. Progress goes to standard error when it is a terminal.
 */
import { InvalidArgumentError, type Command } from "commander";
import { isLedgerError } from "../core/errors.ts";
import type { AuditProgress, AuditReport } from "../verify/audit.ts";
import { formatFailure } from "../verify/failure.ts";
import { verifyNodeFolder } from "../verify/node-folder.ts";
import { MAX_POOL_THREADS, defaultThreads } from "../verify/pool.ts";
import { CliError } from "./io.ts";
import { EXIT_FAIL, EXIT_OK, reportError, type CliContext } from "./report.ts";

/** The options of `medledger verify`. */
interface VerifyOptions {
  readonly data: string;
  readonly logKey?: string;
  readonly json?: boolean;
  readonly threads?: number;
}

/** How often the progress line is redrawn. */
const PROGRESS_INTERVAL_MS = 250;

function parseThreads(value: string): number {
  if (!/^(0|[1-9][0-9]?)$/.test(value) || Number(value) > MAX_POOL_THREADS) {
    throw new InvalidArgumentError(`the thread count is an integer in 0..${MAX_POOL_THREADS}`);
  }
  return Number(value);
}

const integer = new Intl.NumberFormat("en-US");

/** A one-line progress display on a terminal, redrawn in place at most every PROGRESS_INTERVAL_MS. */
class ProgressLine {
  readonly #write: (text: string) => void;
  readonly #start = performance.now();
  #last = 0;
  #drawn = false;

  constructor(write: (text: string) => void) {
    this.#write = write;
  }

  update(p: AuditProgress): void {
    const now = performance.now();
    if (now - this.#last < PROGRESS_INTERVAL_MS) return;
    this.#last = now;
    const seconds = (now - this.#start) / 1000;
    let line = `verify: ${p.phase} ${integer.format(p.done)}`;
    if (p.total !== undefined && p.total > 0) {
      const share = p.done / p.total;
      line += `/${integer.format(p.total)} (${(share * 100).toFixed(1)}%)`;
      if (p.phase === "entries" && seconds > 1) {
        const rate = p.done / seconds;
        const eta = rate > 0 ? Math.round((p.total - p.done) / rate) : 0;
        line += ` ${integer.format(Math.round(rate))}/s, ${eta}s left`;
      }
    }
    this.#write(`\r\x1b[K${line}`);
    this.#drawn = true;
  }

  clear(): void {
    if (this.#drawn) this.#write("\r\x1b[K");
  }
}

/** The machine-readable report: every count, the first failure (or null), timings and the exit status. */
function jsonReport(report: AuditReport, exitCode: number): string {
  return JSON.stringify({
    ok: report.ok,
    entries: report.entries,
    accepted: report.accepted,
    rejected: report.rejected,
    checkpoints: report.checkpoints,
    blobs: report.blobs,
    patients: report.patients,
    size: report.size,
    root: report.root,
    indexRoot: report.indexRoot,
    live: report.live,
    threads: report.threads,
    signatures: report.signatures,
    timings: Object.fromEntries(Object.entries(report.timings).map(([k, v]) => [k, Math.round(v)])),
    failure: report.failure,
    exitCode,
  });
}

async function verifyCommand(ctx: CliContext, opts: VerifyOptions): Promise<void> {
  const json = opts.json === true;
  const progress = process.stderr.isTTY === true ? new ProgressLine((t) => ctx.io.writeErr(t)) : undefined;
  let report: AuditReport;
  try {
    report = await verifyNodeFolder({
      dir: opts.data,
      ...(opts.logKey === undefined ? {} : { logKey: opts.logKey }),
      crypto: ctx.crypto,
      threads: opts.threads ?? defaultThreads(),
      ...(progress === undefined ? {} : { onProgress: (p: AuditProgress) => progress.update(p) }),
    });
  } catch (err) {
    // Only a folder that is not a node's, or an unusable --log-key, gets here: the command could not run.
    if (isLedgerError(err, "INVALID_ARGUMENT")) throw new CliError(2, err.code, err.message, { cause: err });
    throw err;
  } finally {
    progress?.clear();
  }
  const exitCode = report.ok ? EXIT_OK : EXIT_FAIL;
  ctx.exitCode = exitCode;
  if (json) {
    ctx.io.out(jsonReport(report, exitCode));
  } else if (report.failure !== null) {
    ctx.io.err(formatFailure(report.failure));
  } else {
    ctx.io.out(
      `OK verified ${report.entries} entries (${report.accepted} accepted, ${report.rejected} rejected), ` +
        `${report.checkpoints} checkpoints, ${report.blobs} blobs; size ${report.size} root ${report.root}`,
    );
  }
}

/** Add `medledger verify` to the program. */
export function registerVerifyCommand(program: Command, ctx: CliContext): void {
  program
    .command("verify")
    .description(
      "audit a node's store from scratch: replay validation, recompute the Merkle log and the patient index, " +
        "check every checkpoint, chain and blob; exit 1 naming the first place that is wrong",
    )
    .requiredOption("--data <dir>", "the node's data folder (node.json, ledger.db)")
    .option("--log-key <vkey>", "your own copy of the log's verifier key (default: the one in node.json)")
    .option("--threads <n>", "signature worker threads; 0 checks everything on one thread", parseThreads)
    .option("--json", "print one JSON document: counts, the first failure, timings")
    .action(async (opts: VerifyOptions) => {
      try {
        await verifyCommand(ctx, opts);
      } catch (err) {
        reportError(ctx, opts.json === true, err);
      }
    });
}
