/**
 * `medledger tlog`: offline verification of a C2SP transparency log's artefacts (c2sp.org/tlog-checkpoint,
 * c2sp.org/tlog-cosignature, c2sp.org/tlog-proof, RFC 9162 consistency proofs), and two helpers to make
 * test material (keygen, cosign). Every file is read with a size bound and parsed strictly by the core.
 */
import { InvalidArgumentError, type Command } from "commander";
import { fromUtf8, toBase64, toHex } from "../core/encoding/bytes.ts";
import { LedgerError } from "../core/errors.ts";
import { emptyTreeHash, leafHash } from "../core/merkle/hash.ts";
import { verifyConsistency } from "../core/merkle/proofs.ts";
import { verifyCheckpoint, type CheckpointPolicy, type VerifiedCheckpoint } from "../core/note/checkpoint.ts";
import {
  cosignCheckpoint,
  generateCosignatureKey,
  parseCosignatureSignerKey,
  parseCosignatureVerifierKey,
} from "../core/note/cosignature.ts";
import { checkQuorum } from "../core/note/quorum.ts";
import {
  generateNoteKey,
  isValidKeyName,
  parseNoteVerifierKey,
  type NoteVerifier,
} from "../core/note/signed-note.ts";
import { parseHashLines, verifyTlogProof } from "../core/note/tlog-proof.ts";
import { CliError, MAX_LEAF_FILE_BYTES, MAX_NOTE_FILE_BYTES } from "./io.ts";
import { reportError, reportOk, type CliContext } from "./report.ts";

/** Options shared by the verify commands. */
interface PolicyOptions {
  readonly logKey: string;
  readonly witnessKey?: string[];
  readonly quorum: number;
  readonly origin?: string;
  readonly json?: boolean;
}

interface ProofOptions extends PolicyOptions {
  readonly leaf: string;
}

interface ConsistencyOptions extends PolicyOptions {
  readonly old: string;
  readonly new: string;
}

interface KeygenOptions {
  readonly witness?: boolean;
  readonly json?: boolean;
}

interface CosignOptions {
  readonly logKey: string;
  readonly keyFile: string;
  readonly time?: bigint;
  readonly origin?: string;
  readonly json?: boolean;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function parseQuorum(value: string): number {
  if (!/^(0|[1-9][0-9]{0,5})$/.test(value))
    throw new InvalidArgumentError("the quorum must be a non-negative integer");
  return Number(value);
}

function parseTime(value: string): bigint {
  if (!/^(0|[1-9][0-9]{0,18})$/.test(value)) throw new InvalidArgumentError("the time must be POSIX seconds");
  const t = BigInt(value);
  if (t > (1n << 63n) - 1n) throw new InvalidArgumentError("the time must be below 2^63");
  return t;
}

/** Run a key parser and turn its failure into a usage error naming the option. */
function parseKeyOption<T>(option: string, parse: () => T): T {
  try {
    return parse();
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : "invalid key";
    throw new CliError(2, "KEY_INVALID", `${option}: ${why}`, { cause });
  }
}

/** Build the checkpoint policy from the options; every problem with the options is a usage error. */
function policyFrom(ctx: CliContext, opts: PolicyOptions): CheckpointPolicy {
  const logKey = parseKeyOption("--log-key", () => parseNoteVerifierKey(ctx.crypto, opts.logKey));
  const witnesses: NoteVerifier[] = (opts.witnessKey ?? []).map((k) =>
    parseKeyOption("--witness-key", () => parseCosignatureVerifierKey(ctx.crypto, k)),
  );
  try {
    checkQuorum({ keys: witnesses, threshold: opts.quorum }, witnesses);
  } catch (cause) {
    throw new CliError(2, "INVALID_ARGUMENT", `--quorum: ${(cause as Error).message}`, { cause });
  }
  // The C2SP convention: the log's key name is its origin (tlog-checkpoint "Signatures").
  const origin = opts.origin ?? logKey.name;
  if (origin.length === 0 || /\p{Cc}/u.test(origin)) {
    throw new CliError(2, "INVALID_ARGUMENT", "--origin must be non-empty and on one line");
  }
  return { origin, logKey, witnesses, quorum: opts.quorum };
}

function witnessSummary(v: VerifiedCheckpoint): string {
  const q = v.quorum;
  return `signed by log, ${q.signed.length}/${q.total} witnesses${q.threshold > 0 ? ` (quorum ${q.threshold})` : ""}`;
}

function checkpointDetails(v: VerifiedCheckpoint): Record<string, unknown> {
  return {
    origin: v.checkpoint.origin,
    size: v.checkpoint.size.toString(),
    rootHash: toBase64(v.checkpoint.rootHash),
    logKey: v.logKey.verifierKey,
    witnesses: v.quorum.signed.map((w) => w.name),
    witnessKeys: v.quorum.total,
    quorum: v.quorum.threshold,
  };
}

/** Wrap an action so that every outcome is one report and an exit status, never a stack trace. */
function action<T extends { readonly json?: boolean }>(
  ctx: CliContext,
  body: (opts: T, argument: string) => Promise<void>,
): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]) => {
    // commander calls actions with the one declared argument, then the options, then the command.
    const argument = args[0] as string;
    const opts = args[1] as T;
    try {
      await body(opts, argument);
    } catch (err) {
      reportError(ctx, opts.json === true, err);
    }
  };
}

async function verifyCheckpointCommand(ctx: CliContext, opts: PolicyOptions, file: string): Promise<void> {
  const policy = policyFrom(ctx, opts);
  const bytes = await ctx.io.readFile(file, MAX_NOTE_FILE_BYTES, "checkpoint file");
  const v = await verifyCheckpoint(bytes, policy);
  const cp = v.checkpoint;
  reportOk(
    ctx,
    opts.json === true,
    `OK checkpoint ${cp.origin} size ${cp.size} root ${toBase64(cp.rootHash)} ${witnessSummary(v)}`,
    checkpointDetails(v),
  );
}

async function verifyProofCommand(ctx: CliContext, opts: ProofOptions, file: string): Promise<void> {
  const policy = policyFrom(ctx, opts);
  const proofBytes = await ctx.io.readFile(file, MAX_NOTE_FILE_BYTES, "proof file");
  const leaf = await ctx.io.readFile(opts.leaf, MAX_LEAF_FILE_BYTES, "leaf file");
  const hash = leafHash((data) => ctx.crypto.sha256(data), leaf);
  const v = await verifyTlogProof(ctx.crypto, proofBytes, hash, policy);
  const cp = v.checkpoint.checkpoint;
  reportOk(
    ctx,
    opts.json === true,
    `OK inclusion of leaf ${toHex(hash)} at index ${v.proof.index} in ${cp.origin} size ${cp.size} root ${toBase64(cp.rootHash)} ${witnessSummary(v.checkpoint)}`,
    {
      ...checkpointDetails(v.checkpoint),
      index: v.proof.index.toString(),
      leafHash: toHex(hash),
      ...(v.proof.extra === undefined ? {} : { extra: toBase64(v.proof.extra) }),
    },
  );
}

async function verifyConsistencyCommand(
  ctx: CliContext,
  opts: ConsistencyOptions,
  file: string,
): Promise<void> {
  const policy = policyFrom(ctx, opts);
  const oldBytes = await ctx.io.readFile(opts.old, MAX_NOTE_FILE_BYTES, "old checkpoint file");
  const newBytes = await ctx.io.readFile(opts.new, MAX_NOTE_FILE_BYTES, "new checkpoint file");
  const proofBytes = await ctx.io.readFile(file, MAX_NOTE_FILE_BYTES, "proof file");
  const older = await verifyCheckpoint(oldBytes, policy);
  const newer = await verifyCheckpoint(newBytes, policy);
  const proof = parseHashLines(proofBytes, "consistency proof");
  const a = older.checkpoint;
  const b = newer.checkpoint;
  const sha = (data: Uint8Array): Uint8Array => ctx.crypto.sha256(data);
  if (a.size > b.size) {
    throw new LedgerError(
      "INCONSISTENT_TREE",
      `the new checkpoint (size ${b.size}) is smaller than the old one (size ${a.size})`,
    );
  }
  if (a.size === 0n) {
    // The empty tree is a prefix of every tree; RFC 9162 section 2.1.4 defines no proof for it.
    if (proof.length !== 0)
      throw new LedgerError("PROOF_INVALID", "a consistency proof from the empty tree must be empty");
    if (toHex(a.rootHash) !== toHex(emptyTreeHash(sha))) {
      throw new LedgerError("PROOF_INVALID", "the old checkpoint has size 0 but not the empty tree's root");
    }
  } else {
    verifyConsistency(sha, { size1: a.size, size2: b.size, root1: a.rootHash, root2: b.rootHash, proof });
  }
  reportOk(
    ctx,
    opts.json === true,
    `OK consistency ${b.origin} size ${a.size} -> ${b.size} root ${toBase64(a.rootHash)} -> ${toBase64(b.rootHash)} ${witnessSummary(newer)}`,
    {
      origin: b.origin,
      oldSize: a.size.toString(),
      newSize: b.size.toString(),
      oldRootHash: toBase64(a.rootHash),
      newRootHash: toBase64(b.rootHash),
      witnesses: newer.quorum.signed.map((w) => w.name),
      oldWitnesses: older.quorum.signed.map((w) => w.name),
      quorum: newer.quorum.threshold,
    },
  );
}

async function keygenCommand(ctx: CliContext, opts: KeygenOptions, name: string): Promise<void> {
  if (!isValidKeyName(name)) {
    throw new CliError(
      2,
      "INVALID_ARGUMENT",
      "the key name must be non-empty with no spaces, '+' or control characters",
    );
  }
  const keys =
    opts.witness === true
      ? await generateCosignatureKey(ctx.crypto, name)
      : await generateNoteKey(ctx.crypto, name);
  if (opts.json === true) reportOk(ctx, true, "OK key generated", { ...keys });
  else ctx.io.writeOut(`${keys.signerKey}\n${keys.verifierKey}\n`);
}

async function cosignCommand(ctx: CliContext, opts: CosignOptions, file: string): Promise<void> {
  const policy = policyFrom(ctx, {
    logKey: opts.logKey,
    witnessKey: [],
    quorum: 0,
    ...(opts.origin === undefined ? {} : { origin: opts.origin }),
  });
  const keyText = fromUtf8(await ctx.io.readFile(opts.keyFile, 4096, "key file"));
  const skey = keyText.endsWith("\n") ? keyText.slice(0, -1) : keyText;
  const time = opts.time;
  const signer = await parseCosignatureSignerKey(
    ctx.crypto,
    skey,
    time === undefined ? undefined : () => time,
  ).catch((cause: unknown) => {
    throw new CliError(
      2,
      "KEY_INVALID",
      `--key-file: ${cause instanceof Error ? cause.message : "invalid key"}`,
      { cause },
    );
  });
  const bytes = await ctx.io.readFile(file, MAX_NOTE_FILE_BYTES, "checkpoint file");
  await verifyCheckpoint(bytes, policy);
  const cosigned = await cosignCheckpoint(bytes, signer);
  if (opts.json === true)
    reportOk(ctx, true, "OK checkpoint cosigned", {
      checkpoint: cosigned,
      witnessKey: signer.verifier.verifierKey,
    });
  else ctx.io.writeOut(cosigned);
}

function addPolicyOptions(cmd: Command): Command {
  return cmd
    .requiredOption(
      "--log-key <vkey>",
      "the log's verifier key: name+keyid+base64(0x01 || Ed25519 public key)",
    )
    .option(
      "--witness-key <vkey>",
      "a witness's cosignature key: name+keyid+base64(0x04 || public key); repeatable",
      collect,
    )
    .option("--quorum <k>", "how many distinct witness keys must have cosigned", parseQuorum, 0)
    .option("--origin <origin>", "expected checkpoint origin (default: the log key's name)")
    .option("--json", "print one JSON document instead of a status line");
}

/** Add `medledger tlog` and its subcommands to the program. */
export function registerTlogCommands(program: Command, ctx: CliContext): Command {
  const tlog = program
    .command("tlog")
    .description("verify C2SP checkpoints, witness cosignatures, inclusion and consistency proofs");

  addPolicyOptions(
    tlog
      .command("verify-checkpoint")
      .description("verify a signed checkpoint: log signature, origin and a quorum of witness cosignatures")
      .argument("<checkpoint-file>", "the signed checkpoint (C2SP tlog-checkpoint)"),
  ).action(action<PolicyOptions>(ctx, (opts, file) => verifyCheckpointCommand(ctx, opts, file)));

  addPolicyOptions(
    tlog
      .command("verify-proof")
      .description("verify that a leaf is in the log: a C2SP tlog-proof under a checkpoint that verifies")
      .requiredOption("--leaf <file>", "the leaf (entry) bytes; its RFC 9162 leaf hash is proved")
      .argument("<proof-file>", "the proof (C2SP tlog-proof, .tlog-proof)"),
  ).action(action<ProofOptions>(ctx, (opts, file) => verifyProofCommand(ctx, opts, file)));

  addPolicyOptions(
    tlog
      .command("verify-consistency")
      .description("verify that the new checkpoint's tree extends the old one's (RFC 9162 consistency proof)")
      .requiredOption("--old <file>", "the older signed checkpoint")
      .requiredOption("--new <file>", "the newer signed checkpoint")
      .argument("<proof-file>", "the consistency proof: one base64 hash per line"),
  ).action(action<ConsistencyOptions>(ctx, (opts, file) => verifyConsistencyCommand(ctx, opts, file)));

  tlog
    .command("keygen")
    .description(
      "generate a log key (or a witness key with --witness); prints the signer key, then the verifier key",
    )
    .argument("<name>", "the key name, e.g. example.com/log")
    .option("--witness", "make a cosignature/v1 witness key (type 0x04) instead of a log key (0x01)")
    .option("--json", "print one JSON document")
    .action(action<KeygenOptions>(ctx, (opts, name) => keygenCommand(ctx, opts, name)));

  tlog
    .command("cosign")
    .description(
      "test helper: verify a checkpoint's log signature, add a witness cosignature, print the result",
    )
    .requiredOption("--log-key <vkey>", "the log's verifier key")
    .requiredOption(
      "--key-file <file>",
      "file holding the witness signer key PRIVATE+KEY+name+keyid+base64(0x04 || seed)",
    )
    .option("--time <seconds>", "cosignature timestamp in POSIX seconds (default: now)", parseTime)
    .option("--origin <origin>", "expected checkpoint origin (default: the log key's name)")
    .option("--json", "print one JSON document")
    .argument("<checkpoint-file>", "the signed checkpoint")
    .action(action<CosignOptions>(ctx, (opts, file) => cosignCommand(ctx, opts, file)));
  return tlog;
}
