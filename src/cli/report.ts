/**
 * How a CLI run reports: one status line (`OK ...` on stdout, `FAIL CODE: ...` or `ERROR CODE: ...` on
 * stderr) or, with --json, one JSON document on stdout; and the exit status that goes with it.
 */
import type { CryptoSuite } from "../core/crypto/suite.ts";
import { isLedgerError } from "../core/errors.ts";
import { CliError, type CliIo } from "./io.ts";

/** Exit status of a run that verified. */
export const EXIT_OK = 0;
/** Exit status of a run whose input did not verify or was malformed. */
export const EXIT_FAIL = 1;
/** Exit status of a run that could not start: bad usage, invalid key, unreadable file. */
export const EXIT_USAGE = 2;

/** Shared state of one run: the I/O, the crypto suite and the exit status so far. */
export interface CliContext {
  readonly io: CliIo;
  readonly crypto: CryptoSuite;
  exitCode: number;
}

/** Report success: the OK line, or the JSON document with `ok: true` and the details. */
export function reportOk(
  ctx: CliContext,
  json: boolean,
  message: string,
  details: Record<string, unknown>,
): void {
  if (json) ctx.io.out(JSON.stringify({ ok: true, message, ...details }));
  else ctx.io.out(message);
  ctx.exitCode = EXIT_OK;
}

/** Report an error from a command action as one line (or one JSON document) and set the exit status. */
export function reportError(ctx: CliContext, json: boolean, err: unknown): void {
  let exitCode = EXIT_FAIL;
  let code = "INTERNAL";
  let message = "unexpected error";
  if (err instanceof CliError) {
    ({ exitCode, code, message } = err);
  } else if (isLedgerError(err)) {
    code = err.code;
    message = err.message;
  } else if (err instanceof Error) {
    message = err.message;
  }
  const prefix = exitCode === EXIT_USAGE ? "ERROR" : "FAIL";
  if (json) ctx.io.out(JSON.stringify({ ok: false, code, message, exitCode }));
  else ctx.io.err(`${prefix} ${code}: ${message.replace(/[\r\n]+/g, " ")}`);
  ctx.exitCode = exitCode;
}
