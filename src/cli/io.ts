/**
 * The CLI's outside world: where lines are written and how files are read. Files are read with a size
 * bound before a byte of them is parsed. The process-backed implementation lives here; tests can pass
 * their own.
 */
import { open } from "node:fs/promises";
import { LedgerError, type ErrorCode } from "../core/errors.ts";

/** Bound on checkpoint, tlog-proof and consistency-proof files. */
export const MAX_NOTE_FILE_BYTES = 1024 * 1024;

/** Bound on a leaf (entry) file. */
export const MAX_LEAF_FILE_BYTES = 16 * 1024 * 1024;

/** A failure that ends the command with a given exit status (2: the command could not run as asked). */
export class CliError extends Error {
  readonly exitCode: number;
  readonly code: ErrorCode;

  constructor(exitCode: number, code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CliError";
    this.exitCode = exitCode;
    this.code = code;
  }
}

/** What the CLI needs from its environment. */
export interface CliIo {
  /** Write a line (without its newline) to standard output. */
  out(line: string): void;
  /** Write a line (without its newline) to standard error. */
  err(line: string): void;
  /** Write raw text to standard output (help text, keys). */
  writeOut(text: string): void;
  /** Write raw text to standard error (commander's messages). */
  writeErr(text: string): void;
  /** Read a whole file of at most `limit` bytes; see readBoundedFile for the errors. */
  readFile(path: string, limit: number, what: string): Promise<Uint8Array>;
}

/**
 * Read a regular file of at most `limit` bytes. A file that cannot be opened or is not a regular file is a
 * CliError with exit status 2 (the command could not run); a file over the bound is a TOO_LARGE
 * LedgerError (the input was refused, exit status 1). Reads at most limit + 1 bytes even if the file grows.
 */
export async function readBoundedFile(path: string, limit: number, what: string): Promise<Uint8Array> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch (cause) {
    throw new CliError(
      2,
      "INVALID_ARGUMENT",
      `cannot read ${what} ${JSON.stringify(path)}: ${describeFsError(cause)}`,
      { cause },
    );
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile())
      throw new CliError(
        2,
        "INVALID_ARGUMENT",
        `cannot read ${what} ${JSON.stringify(path)}: not a regular file`,
      );
    if (stat.size > limit) throw new LedgerError("TOO_LARGE", `${what} is larger than ${limit} bytes`);
    const buffer = new Uint8Array(Math.min(stat.size, limit) + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > limit) throw new LedgerError("TOO_LARGE", `${what} is larger than ${limit} bytes`);
      if (length === buffer.length) break;
    }
    return buffer.slice(0, length);
  } catch (cause) {
    if (cause instanceof CliError || cause instanceof LedgerError) throw cause;
    throw new CliError(
      2,
      "INVALID_ARGUMENT",
      `cannot read ${what} ${JSON.stringify(path)}: ${describeFsError(cause)}`,
      { cause },
    );
  } finally {
    await handle.close();
  }
}

function describeFsError(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case "ENOENT":
      return "no such file";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EISDIR":
      return "is a directory";
    default:
      return typeof code === "string" ? code : "read error";
  }
}

/** The CLI environment of the running process. */
export const processIo: CliIo = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
  writeOut: (text) => void process.stdout.write(text),
  writeErr: (text) => void process.stderr.write(text),
  readFile: readBoundedFile,
};
