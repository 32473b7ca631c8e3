/**
 * What every workflow command shares (docs/cli.md, "Workflow conventions"): who acts (`--as KEYFILE`, its
 * passphrase from `--passphrase-file FILE` or MEDLEDGER_PASSPHRASE, never from the command line), which node
 * (`--node URL` or MEDLEDGER_NODE), and what the client trusts: the node's log origin and key pinned in a
 * trust file (default KEYFILE.trust.json, or `--trust FILE`) or given with `--log-key`, with the last
 * verified checkpoint remembered there so that every run checks consistency with the previous one. On first
 * contact without a pinned key the client trusts on first use, with a warning on standard error.
 *
 * Everything here goes through the client SDK (src/sdk/); this file only reads and writes the user's files.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, rename, unlink, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import cliProgress from "cli-progress";
import { Option, type Command } from "commander";
import { z } from "zod";
import { LedgerError, isLedgerError, type ErrorCode } from "../core/errors.ts";
import { fromBase64, fromUtf8, toHex } from "../core/encoding/bytes.ts";
import { parseJson } from "../core/encoding/jcs.ts";
import { parseKeyFile } from "../core/crypto/keyfile.ts";
import { parseNoteVerifierKey } from "../core/note/signed-note.ts";
import {
  MedledgerClient,
  isRejected,
  newTrustState,
  unlockIdentity,
  type Identity,
  type IdentityKind,
  type TrustState,
} from "../sdk/index.ts";
import { CliError } from "./io.ts";
import { EXIT_USAGE, reportError, type CliContext } from "./report.ts";

/** The environment variable of the acting key file's passphrase. */
export const PASSPHRASE_ENV = "MEDLEDGER_PASSPHRASE";
/** The environment variable of the patient's passphrase (commands both an org and a patient sign). */
export const PATIENT_PASSPHRASE_ENV = "MEDLEDGER_PATIENT_PASSPHRASE";
/** The environment variable of the node's URL. */
export const NODE_ENV = "MEDLEDGER_NODE";
/** The trust file's name next to a key file: KEYFILE + this suffix. */
export const TRUST_SUFFIX = ".trust.json";
/** The "format" member of a trust file. */
export const TRUST_FORMAT = "medledger-trust";
/** Bound on a key file (src/core/crypto/keyfile.ts bounds it to 16 KiB). */
export const MAX_KEY_FILE_BYTES = 16 * 1024;
/** Bound on a passphrase file. */
const MAX_PASSPHRASE_FILE_BYTES = 1024 + 2;
/** Bound on a trust file (a checkpoint note with cosignatures is at most 64 KiB). */
const MAX_TRUST_FILE_BYTES = 256 * 1024;
/** A new key file's passphrase has at least this many characters. */
export const MIN_PASSPHRASE_LENGTH = 8;

/** Options every networked workflow command takes. */
export interface NodeOptions {
  readonly node?: string;
  readonly logKey?: string;
  readonly trust?: string;
  readonly json?: boolean;
}

/** Options of a command that acts as one identity. */
export interface ActorOptions extends NodeOptions {
  readonly as: string;
  readonly passphraseFile?: string;
}

/** Options of a command that acts as the patient too. */
export interface PatientKeyOptions {
  readonly patientKey: string;
  readonly patientPassphraseFile?: string;
}

/** A usage error (exit 2): the command could not run as asked. */
export function usage(message: string): CliError {
  return new CliError(EXIT_USAGE, "INVALID_ARGUMENT", message);
}

/** Add `--node`, `--log-key`, `--trust` and `--json`. */
export function addNodeOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("--node <url>", "the node's URL").env(NODE_ENV))
    .option(
      "--log-key <vkey>",
      "pin the node's log key (C2SP verifier key from its operator); default: the trust file, or trust on first use",
    )
    .option(
      "--trust <file>",
      `the trust file: pinned origin and log key, last verified checkpoint (default: KEYFILE${TRUST_SUFFIX})`,
    )
    .option("--json", "print one JSON document on standard output");
}

/** Add `--as KEYFILE` (required) and `--passphrase-file`, then the node options. */
export function addActorOptions(cmd: Command, who: string): Command {
  return addNodeOptions(
    cmd
      .requiredOption("--as <keyfile>", `act as ${who}: its key file`)
      .option(
        "--passphrase-file <file>",
        `a file holding the key file's passphrase (default: the ${PASSPHRASE_ENV} environment variable)`,
      ),
  );
}

/** Add `--patient-key` (required) and `--patient-passphrase-file`. */
export function addPatientKeyOptions(cmd: Command): Command {
  return cmd
    .requiredOption("--patient-key <file>", "the patient's key file (the patient signs too)")
    .option(
      "--patient-passphrase-file <file>",
      `a file holding the patient's passphrase (default: the ${PATIENT_PASSPHRASE_ENV} environment variable)`,
    );
}

/** Help text: examples after the options. */
export function examples(cmd: Command, lines: readonly string[]): Command {
  return cmd.addHelpText("after", `\nExamples:\n${lines.map((l) => `  $ ${l}`).join("\n")}\n`);
}

/** A comma-separated list option parsed against allowed values. */
export function listOf<T extends string>(name: string, allowed: readonly T[]): (value: string) => T[] {
  return (value) => {
    const items = value
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
    if (items.length === 0) throw usage(`${name} needs at least one of ${allowed.join(", ")}`);
    for (const item of items) {
      if (!(allowed as readonly string[]).includes(item)) {
        throw usage(`${name}: ${JSON.stringify(item)} is not one of ${allowed.join(", ")}`);
      }
    }
    return [...new Set(items)] as T[];
  };
}

/** One value of a closed set. */
export function oneOf<T extends string>(name: string, allowed: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(allowed as readonly string[]).includes(value)) {
      throw usage(`${name} must be one of ${allowed.join(", ")}`);
    }
    return value as T;
  };
}

/** A repeatable option: collect every value. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A calendar day YYYY-MM-DD that exists. */
export function dayOption(name: string): (value: string) => string {
  return (value) => {
    if (!/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(value) || !validDay(value)) {
      throw usage(`${name} must be a date YYYY-MM-DD`);
    }
    return value;
  };
}

/** A month YYYY-MM. */
export function monthOption(name: string): (value: string) => string {
  return (value) => {
    if (!/^[0-9]{4}-(0[1-9]|1[0-2])$/.test(value)) throw usage(`${name} must be a month YYYY-MM`);
    return value;
  };
}

function validDay(day: string): boolean {
  const date = new Date(`${day}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === day;
}

/** A 64-hex-digit id (queue ids, entry ids, grant ids). */
export function hashArgument(name: string): (value: string) => string {
  return (value) => {
    if (!/^[0-9a-f]{64}$/.test(value)) throw usage(`${name} must be 64 lower-case hex digits`);
    return value;
  };
}

/** A patient id: 32 to 64 lower-case hex digits. */
export function patientIdOption(value: string): string {
  if (!/^[0-9a-f]{32,64}$/.test(value) || value.length % 2 !== 0) {
    throw usage(
      "--patient must be a patient id (32 to 64 lower-case hex digits, as `patient create` printed)",
    );
  }
  return value;
}

/** An org id: a lower-case slug. */
export function orgIdOption(name: string): (value: string) => string {
  return (value) => {
    if (!/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/.test(value)) {
      throw usage(`${name} must be an org id: a lower-case slug of 1 to 64 characters (a-z, 0-9, -)`);
    }
    return value;
  };
}

// ------------------------------------------------------------------------------------------------------
// Files
// ------------------------------------------------------------------------------------------------------

/** Read a small file (a passphrase, a key file, a trust file); unreadable is a usage error. */
export async function readSmall(ctx: CliContext, path: string, limit: number, what: string): Promise<string> {
  const bytes = await ctx.io.readFile(path, limit, what);
  try {
    return fromUtf8(bytes);
  } catch (cause) {
    throw new CliError(EXIT_USAGE, "MALFORMED_INPUT", `${what} ${JSON.stringify(path)} is not UTF-8`, {
      cause,
    });
  }
}

/** A passphrase from a file (its one line) or from an environment variable; usage error when neither. */
export async function readPassphrase(
  ctx: CliContext,
  file: string | undefined,
  env: string,
  what: string,
  option: string,
): Promise<string> {
  let passphrase: string;
  if (file !== undefined) {
    passphrase = await readSmall(ctx, file, MAX_PASSPHRASE_FILE_BYTES, `${what} passphrase file`);
    // One trailing line break is the file's, not the passphrase's.
    passphrase = passphrase.replace(/\r?\n$/, "");
    if (passphrase.includes("\n")) throw usage(`the passphrase file ${file} must hold one line`);
  } else {
    const value = process.env[env];
    if (value === undefined || value === "") {
      throw usage(
        `no passphrase for ${what}: give ${option} FILE (a file holding it) or set ${env}; ` +
          "a passphrase is never taken on the command line",
      );
    }
    passphrase = value;
  }
  if (passphrase === "") throw usage(`the passphrase for ${what} is empty`);
  return passphrase;
}

/** Unlock a key file into an identity (PASSPHRASE_WRONG, MALFORMED_INPUT... are refusals, exit 1). */
export async function unlockKeyFileAt(ctx: CliContext, path: string, passphrase: string): Promise<Identity> {
  const text = await readSmall(ctx, path, MAX_KEY_FILE_BYTES, "key file");
  try {
    return await unlockIdentity(ctx.crypto, text, passphrase);
  } catch (err) {
    if (isLedgerError(err, "PASSPHRASE_WRONG")) {
      throw new LedgerError(
        "PASSPHRASE_WRONG",
        `the passphrase does not open ${path} (or the file was changed): check --passphrase-file or ${PASSPHRASE_ENV}`,
        { cause: err },
      );
    }
    throw err;
  }
}

/** The public half of a key file, read without its passphrase: who it is and its public keys in hex. */
export async function readPublicKeys(
  ctx: CliContext,
  path: string,
): Promise<{ label: string; kind: string; signKey: string; encKey: string }> {
  const text = await readSmall(ctx, path, MAX_KEY_FILE_BYTES, "key file");
  const file = parseKeyFile(text);
  return {
    label: file.label,
    kind: file.kind,
    signKey: toHex(fromBase64(file.public.signing)),
    encKey: toHex(fromBase64(file.public.encryption)),
  };
}

/** Write a new secret file (mode 0600), refusing to replace one (usage error). */
export async function writeNewSecretFile(path: string, text: string, what: string): Promise<void> {
  try {
    await mkdir(dirname(resolve(path)), { recursive: true, mode: 0o700 });
    await writeFile(path, text, { mode: 0o600, flag: "wx" });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === "EEXIST") {
      throw usage(`${path} already exists: choose another --out, or move the old ${what} away first`);
    }
    throw usage(`cannot write ${what} ${path}: ${typeof code === "string" ? code : "I/O error"}`);
  }
}

/** Replace a file atomically (write a temporary file beside it, then rename), mode 0600. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(tmp, text, { mode: 0o600, flag: "wx" });
    await chmod(tmp, 0o600);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

// ------------------------------------------------------------------------------------------------------
// Trust
// ------------------------------------------------------------------------------------------------------

const TrustFileSchema = z.strictObject({
  format: z.literal(TRUST_FORMAT),
  version: z.literal(1),
  node: z.string().max(2048),
  origin: z.string().min(1).max(255),
  logKey: z.string().min(1).max(1024),
  witnesses: z.array(z.string().min(1).max(1024)).max(64),
  quorum: z.number().int().min(0).max(64),
  checkpoint: z
    .string()
    .max(64 * 1024)
    .nullable(),
});

/** The trust file's JSON for a trust state. */
export function formatTrustFile(node: string, trust: TrustState): string {
  return (
    JSON.stringify(
      {
        format: TRUST_FORMAT,
        version: 1,
        node,
        origin: trust.origin,
        logKey: trust.logKey,
        witnesses: trust.witnesses,
        quorum: trust.quorum,
        checkpoint: trust.checkpoint,
      },
      null,
      2,
    ) + "\n"
  );
}

/** Read a trust file, or null when there is none. A malformed one is a refusal (MALFORMED_INPUT). */
async function readTrustFile(path: string): Promise<TrustState | null> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch (err) {
    if ((err as { code?: unknown }).code === "ENOENT") return null;
    throw usage(`cannot read the trust file ${path}: ${String((err as { code?: unknown }).code)}`);
  }
  let text: string;
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw usage(`the trust file ${path} is not a regular file`);
    if (stat.size > MAX_TRUST_FILE_BYTES)
      throw new LedgerError("TOO_LARGE", `the trust file ${path} is too large`);
    text = await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
  let value: unknown;
  try {
    value = parseJson(text, { maxDepth: 4, maxBytes: MAX_TRUST_FILE_BYTES });
  } catch (cause) {
    throw new LedgerError("MALFORMED_INPUT", `the trust file ${path} is not strict JSON: fix or remove it`, {
      cause,
    });
  }
  const parsed = TrustFileSchema.safeParse(value);
  if (!parsed.success) {
    throw new LedgerError(
      "MALFORMED_INPUT",
      `the trust file ${path} is not a medledger trust file (${parsed.error.issues[0]?.message ?? ""}): fix or remove it`,
    );
  }
  const t = parsed.data;
  return {
    origin: t.origin,
    logKey: t.logKey,
    witnesses: t.witnesses,
    quorum: t.quorum,
    checkpoint: t.checkpoint,
  };
}

/** The origin a log verifier key names (by the C2SP convention the key's name is the log's origin). */
function originOfLogKey(ctx: CliContext, vkey: string): string {
  try {
    return parseNoteVerifierKey(ctx.crypto, vkey).name;
  } catch (cause) {
    throw new CliError(EXIT_USAGE, "KEY_INVALID", "--log-key is not a C2SP Ed25519 verifier key", { cause });
  }
}

/** A connected, trusting client for one identity. */
export interface Session {
  readonly client: MedledgerClient;
  readonly identity: Identity;
  readonly node: string;
  readonly trustFile: string;
}

/** The node URL from --node or MEDLEDGER_NODE (commander fills it from the environment). */
export function nodeUrl(opts: NodeOptions): string {
  const url = opts.node;
  if (url === undefined || url === "") {
    throw usage(`no node: give --node URL (e.g. http://127.0.0.1:8470) or set ${NODE_ENV}`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usage(`--node ${JSON.stringify(url)} is not a URL (e.g. http://127.0.0.1:8470)`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    throw usage("--node must be an http: or https: URL");
  return url;
}

/**
 * Connect as `identity`: load or create the trust file, pin the node (from --log-key, the trust file, or on
 * first use with a warning), verify the node's latest checkpoint and its consistency with the remembered
 * one, and remember it. Every later verified checkpoint (a history's) is remembered too.
 */
export async function connect(
  ctx: CliContext,
  opts: NodeOptions,
  identity: Identity,
  keyFile: string,
): Promise<Session> {
  const node = nodeUrl(opts);
  const trustFile = resolve(opts.trust ?? `${keyFile}${TRUST_SUFFIX}`);
  let trust = await readTrustFile(trustFile);
  if (opts.logKey !== undefined) {
    const origin = originOfLogKey(ctx, opts.logKey);
    if (trust !== null && (trust.logKey !== opts.logKey || trust.origin !== origin)) {
      throw new LedgerError(
        "KEY_INVALID",
        `the trust file ${trustFile} pins log ${trust.origin} with another key than --log-key: ` +
          "if the node's operator really changed it, move the trust file away and run again",
      );
    }
    trust ??= newTrustState({ origin, logKey: opts.logKey });
  }
  const save = async (t: TrustState): Promise<void> => {
    try {
      await writeFileAtomic(trustFile, formatTrustFile(node, t));
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      ctx.io.err(
        `WARN cannot write the trust file ${trustFile} (${typeof code === "string" ? code : "I/O error"}): ` +
          "the next run cannot check consistency with this one; pass --trust FILE in a writable folder",
      );
    }
  };
  if (trust === null) {
    // Trust on first use: pin what the node says, loudly.
    const probe = new MedledgerClient({
      baseUrl: node,
      crypto: ctx.crypto,
      identity,
      trust: newTrustState({ origin: "", logKey: "" }),
    });
    const info = await probe.node();
    trust = newTrustState({ origin: info.origin, logKey: info.logKey });
    ctx.io.err(
      `WARN trust on first use: pinned log ${info.origin} with key ${info.logKey} from ${node} in ${trustFile}. ` +
        "Check this key with the node's operator; pass --log-key to pin it yourself.",
    );
    await save(trust);
  }
  const client = new MedledgerClient({
    baseUrl: node,
    crypto: ctx.crypto,
    identity,
    trust,
    onTrustUpdate: save,
  });
  await client.node();
  await client.checkpoint();
  return { client, identity, node, trustFile };
}

/** Unlock `--as` (with its passphrase) and connect. */
export async function actAs(
  ctx: CliContext,
  opts: ActorOptions,
  kinds: readonly IdentityKind[],
  what: string,
): Promise<Session> {
  const passphrase = await readPassphrase(
    ctx,
    opts.passphraseFile,
    PASSPHRASE_ENV,
    `--as ${opts.as}`,
    "--passphrase-file",
  );
  const identity = await unlockKeyFileAt(ctx, opts.as, passphrase);
  requireKind(identity, kinds, "--as", opts.as, what);
  return connect(ctx, opts, identity, opts.as);
}

/** Unlock the patient's key file of a command both an org and the patient sign. */
export async function unlockPatient(ctx: CliContext, opts: PatientKeyOptions): Promise<Identity> {
  const passphrase = await readPassphrase(
    ctx,
    opts.patientPassphraseFile,
    PATIENT_PASSPHRASE_ENV,
    `--patient-key ${opts.patientKey}`,
    "--patient-passphrase-file",
  );
  const identity = await unlockKeyFileAt(ctx, opts.patientKey, passphrase);
  requireKind(identity, ["patient"], "--patient-key", opts.patientKey, "the patient");
  return identity;
}

/** Refuse a key file of the wrong kind of actor (usage error). */
export function requireKind(
  identity: Identity,
  kinds: readonly IdentityKind[],
  option: string,
  path: string,
  what: string,
): void {
  if (!kinds.includes(identity.kind)) {
    throw usage(
      `${option} ${path} is the key file of ${describeIdentity(identity)}; this command runs as ${what}`,
    );
  }
}

/** "org hospital", "patient 3f2a...", "the consortium key ab12...". */
export function describeIdentity(identity: Identity): string {
  if (identity.kind === "org") return `org ${identity.id}`;
  if (identity.kind === "patient") return `patient ${identity.id}`;
  return `the consortium key ${identity.id.slice(0, 16)}...`;
}

// ------------------------------------------------------------------------------------------------------
// Running and reporting
// ------------------------------------------------------------------------------------------------------

/** What to do about a refusal, appended to its message (docs/errors.md has the full table). */
const HINTS: Partial<Record<ErrorCode, string>> = {
  NOT_PERMITTED: "act as the right identity, or ask the patient for a grant (medledger grant create)",
  AUTH_INVALID:
    "the node does not accept this key: is the org admitted (medledger org admit) or the patient enrolled (medledger patient enroll)? is this machine's clock right?",
  INCONSISTENT_TREE:
    "the node showed a history that does not extend the one you verified before: do not trust it, and tell its operator",
  ORIGIN_MISMATCH: "this node is not the one pinned in the trust file: use --trust FILE for another node",
  RATE_LIMITED: "wait a few seconds and run the command again",
};

/** Run a command action: any failure becomes one report line (or JSON document) and an exit status. */
export function action<A extends unknown[], O extends { readonly json?: boolean }>(
  ctx: CliContext,
  run: (opts: O, ...args: A) => Promise<void>,
): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]): Promise<void> => {
    // commander passes the positional arguments, then the options, then the command.
    const opts = args[args.length - 2] as O;
    const positional = args.slice(0, -2) as A;
    try {
      await run(opts, ...positional);
    } catch (err) {
      reportError(ctx, opts.json === true, withHint(err));
    }
  };
}

function withHint(err: unknown): unknown {
  if (isRejected(err, "CHAIN_BROKEN")) {
    return new LedgerError(
      "ENTRY_INVALID",
      `${err.message}: the patient's chain moved on meanwhile; run the command again ` +
        "(for a queued record, its author runs medledger record resubmit QUEUEID)",
      { cause: err },
    );
  }
  if (!isLedgerError(err) || err instanceof CliError) return err;
  const hint = HINTS[err.code];
  if (hint === undefined) return err;
  return new LedgerError(err.code, `${err.message} (${hint})`, { cause: err });
}

/** A progress bar on standard error when a person watches it (a terminal, and not --json). */
export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

/** A progress bar, or a no-op when standard error is not a terminal or --json was given. */
export function progressBar(json: boolean, label: string): Progress {
  if (json || process.stderr.isTTY !== true) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `${label} [{bar}] {value}/{total}`, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, done);
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(done);
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** Print a JSON document or plain lines. */
export function emit(
  ctx: CliContext,
  json: boolean,
  document: Record<string, unknown>,
  lines: () => string[],
): void {
  if (json) ctx.io.out(JSON.stringify({ ok: true, ...document }, bigintsAsStrings));
  else for (const line of lines()) ctx.io.out(line);
  ctx.exitCode = 0;
}

/** JSON.stringify replacer: bigints as decimal strings (docs/api.md convention), bytes as their length. */
export function bigintsAsStrings(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  return value;
}

/** A short form of a long hex id for people. */
export function short(id: string): string {
  return id.length > 16 ? `${id.slice(0, 12)}...` : id;
}
