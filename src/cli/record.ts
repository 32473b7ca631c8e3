/**
 * `medledger record add|amend|queue|show|validate|reject|resubmit`: an author org writes an encrypted record
 * (one FHIR R4 resource, optional attachments) into the validator's queue; the validator opens it, checks it
 * and attests it (it is then appended to the ledger) or rejects it with a reason the author sees. An
 * amendment is a new record that supersedes an earlier one, never an overwrite. See docs/cli.md.
 */
import { basename, extname } from "node:path";
import type { Command } from "commander";
import { LedgerError } from "../core/errors.ts";
import { parseJson } from "../core/encoding/jcs.ts";
import {
  QUEUE_REJECT_REASONS,
  RECORD_TYPES,
  SENSITIVITIES,
  type MedledgerClient,
  type QueueItem,
  type QueueRejectReason,
  type RecordInput,
  type RecordType,
  type Sensitivity,
} from "../sdk/index.ts";
import type { CliContext } from "./report.ts";
import {
  action,
  actAs,
  addActorOptions,
  collect,
  dayOption,
  emit,
  examples,
  hashArgument,
  oneOf,
  orgIdOption,
  patientIdOption,
  usage,
  type ActorOptions,
} from "./session.ts";

/** Bound on a FHIR resource file. */
export const MAX_RESOURCE_FILE_BYTES = 16 * 1024 * 1024;
/** Bound on one attachment file. */
export const MAX_ATTACHMENT_FILE_BYTES = 64 * 1024 * 1024;
/** How often `--wait` asks the node about the queue item. */
const WAIT_INTERVAL_MS = 1000;

interface AddOptions extends ActorOptions {
  readonly patient: string;
  readonly type: RecordType;
  readonly sensitivity: Sensitivity;
  readonly date: string;
  readonly title: string;
  readonly resource: string;
  readonly attach?: string[];
  readonly validator: string;
  readonly wait?: boolean;
}

interface AmendOptions extends AddOptions {
  readonly supersedes: string;
}

interface QueueOptions extends ActorOptions {
  readonly role: "validator" | "author";
  readonly status?: "pending" | "attested" | "rejected";
}

interface RejectOptions extends ActorOptions {
  readonly reason: QueueRejectReason;
  readonly note?: string;
}

/** Media types by file extension, for attachments (anything else is application/octet-stream). */
const MEDIA_TYPES: Readonly<Record<string, string>> = {
  ".dcm": "application/dicom",
  ".pdf": "application/pdf",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".txt": "text/plain",
  ".json": "application/json",
  ".xml": "application/xml",
  ".csv": "text/csv",
};

/** The media type of an attachment, from its extension. */
export function mediaTypeOf(path: string): string {
  return MEDIA_TYPES[extname(path).toLowerCase()] ?? "application/octet-stream";
}

async function readResource(ctx: CliContext, path: string): Promise<Record<string, unknown>> {
  const bytes = await ctx.io.readFile(path, MAX_RESOURCE_FILE_BYTES, "FHIR resource file");
  let value: unknown;
  try {
    value = parseJson(bytes, { maxDepth: 64, maxBytes: MAX_RESOURCE_FILE_BYTES });
  } catch (cause) {
    throw new LedgerError("MALFORMED_INPUT", `${path} is not strict JSON: fix the FHIR resource`, { cause });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new LedgerError("MALFORMED_INPUT", `${path} must hold one FHIR R4 resource (a JSON object)`);
  }
  return value as Record<string, unknown>;
}

async function recordInput(ctx: CliContext, opts: AddOptions): Promise<RecordInput> {
  const resource = await readResource(ctx, opts.resource);
  const attachments = [];
  for (const path of opts.attach ?? []) {
    attachments.push({
      name: basename(path),
      contentType: mediaTypeOf(path),
      bytes: await ctx.io.readFile(path, MAX_ATTACHMENT_FILE_BYTES, "attachment"),
    });
  }
  if ([...opts.title].length > 200) throw usage("--title has at most 200 characters");
  return {
    patient: opts.patient,
    validator: opts.validator,
    type: opts.type,
    sensitivity: opts.sensitivity,
    date: opts.date,
    title: opts.title,
    resource,
    ...(attachments.length === 0 ? {} : { attachments }),
  };
}

/** Poll the author's queue until the item is attested or rejected. */
async function waitFor(client: MedledgerClient, queueId: string): Promise<QueueItem> {
  for (;;) {
    const item = (await client.queue("author")).find((i) => i.queueId === queueId);
    if (item === undefined)
      throw new LedgerError("NOT_FOUND", `queue item ${queueId} is not in this org's queue`);
    if (item.status !== "pending") return item;
    await new Promise((done) => setTimeout(done, WAIT_INTERVAL_MS));
  }
}

/** A rejected item as a refusal: the validator's reason (or the ledger's) and what to do. */
function rejectedError(item: QueueItem): LedgerError {
  const reason =
    item.reason ?? (item.result !== null && !item.result.accepted ? item.result.reason : "OTHER");
  const note = item.note === null ? "" : `: ${item.note}`;
  const todo =
    reason === "CHAIN_BROKEN"
      ? ` (the patient's chain moved on while it waited: medledger record resubmit ${item.queueId})`
      : " (fix the record and add it again)";
  return new LedgerError("ENTRY_INVALID", `the record was rejected: ${reason}${note}${todo}`);
}

async function addCommand(ctx: CliContext, opts: AddOptions | AmendOptions): Promise<void> {
  const input = await recordInput(ctx, opts);
  const { client, identity } = await actAs(ctx, opts, ["org"], "the author org");
  const supersedes = "supersedes" in opts ? opts.supersedes : undefined;
  const queued =
    supersedes === undefined
      ? await client.addRecord(input)
      : await client.amendRecord({ ...input, supersedes });
  const json = opts.json === true;
  const details = {
    queueId: queued.queueId,
    record: queued.record,
    patient: opts.patient,
    author: identity.id,
    validator: opts.validator,
    ...(supersedes === undefined ? {} : { supersedes }),
  };
  if (opts.wait !== true) {
    emit(ctx, json, { message: `OK queued ${queued.queueId}`, status: "pending", ...details }, () => [
      `OK queued ${queued.queueId} (record ${queued.record}) for ${opts.validator} to validate`,
      `  ${opts.validator} runs: medledger record show ${queued.queueId} ... then record validate or record reject`,
    ]);
    return;
  }
  if (!json)
    ctx.io.err(
      `queued ${queued.queueId}; waiting for ${opts.validator} to validate or reject it (Ctrl-C stops waiting)`,
    );
  const item = await waitFor(client, queued.queueId);
  if (item.status === "rejected") throw rejectedError(item);
  const position = item.result?.accepted === true ? item.result.position : null;
  emit(
    ctx,
    json,
    {
      message: `OK record ${queued.record} attested`,
      status: item.status,
      entry: item.result?.id ?? null,
      position,
      ...details,
    },
    () => [
      `OK record ${queued.record} attested by ${opts.validator} and appended at position ${String(position)}`,
    ],
  );
}

function itemJson(item: QueueItem): Record<string, unknown> {
  return {
    queueId: item.queueId,
    status: item.status,
    kind: item.kind,
    author: item.author,
    validator: item.validator,
    patient: item.patient,
    submittedAt: item.submittedAt,
    reason: item.reason,
    note: item.note,
    result: item.result,
  };
}

function when(seconds: number): string {
  return `${new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

async function queueCommand(ctx: CliContext, opts: QueueOptions): Promise<void> {
  const { client, identity } = await actAs(ctx, opts, ["org"], "an org (validator or author)");
  const items = await client.queue(opts.role, opts.status);
  emit(ctx, opts.json === true, { org: identity.id, role: opts.role, items: items.map(itemJson) }, () => {
    if (items.length === 0)
      return [
        `no ${opts.status ?? ""}${opts.status === undefined ? "" : " "}queue items with ${identity.id} as ${opts.role}`,
      ];
    return items.map((i) => {
      const reason = i.reason === null ? "" : ` ${i.reason}${i.note === null ? "" : `: ${i.note}`}`;
      return `${i.queueId}  ${i.status.padEnd(8)}  ${i.kind.padEnd(13)}  ${i.author} -> ${i.validator}  patient ${i.patient}  ${when(i.submittedAt)}${reason}`;
    });
  });
}

async function showCommand(ctx: CliContext, opts: ActorOptions, queueId: string): Promise<void> {
  const { client } = await actAs(ctx, opts, ["org"], "the record's validator");
  const opened = await client.openQueueItem(queueId);
  const { item, payload, findings } = opened;
  emit(ctx, opts.json === true, { item: itemJson(item), payload, findings }, () => {
    const lines = [
      `queue item ${item.queueId}: ${item.status}, ${item.kind} by ${item.author} for patient ${item.patient}, queued ${when(item.submittedAt)}`,
    ];
    if (payload === null) {
      lines.push(
        findings.length === 0
          ? "  content: not shown (a psychotherapy note is attested without being read: only its author holds its key)"
          : "  content: could not be read",
      );
    } else {
      lines.push(`  ${payload.type}, ${payload.sensitivity}, ${payload.date}: ${payload.title}`);
      for (const a of payload.attachments)
        lines.push(`  attachment ${a.name} (${a.contentType}, ${a.size} bytes)`);
      lines.push("  resource:");
      for (const l of JSON.stringify(payload.resource, null, 2).split("\n")) lines.push(`    ${l}`);
    }
    if (findings.length === 0)
      lines.push(`checks: nothing found; attest it with medledger record validate ${item.queueId}`);
    else {
      lines.push("checks found:");
      for (const f of findings) lines.push(`  ${f.reason}: ${f.detail}`);
      lines.push(`reject it with medledger record reject ${item.queueId} --reason ${findings[0]!.reason}`);
    }
    return lines;
  });
}

async function validateCommand(ctx: CliContext, opts: ActorOptions, queueId: string): Promise<void> {
  const { client, identity } = await actAs(ctx, opts, ["org"], "the record's validator");
  const result = await client.validateRecord(queueId);
  const position = result.accepted ? result.position : null;
  emit(
    ctx,
    opts.json === true,
    {
      message: `OK attested ${queueId}`,
      queueId,
      validator: identity.id,
      entry: result.id,
      seq: result.seq,
      position,
    },
    () => [`OK attested ${queueId}: appended as entry ${result.id} at position ${String(position)}`],
  );
}

async function rejectCommand(ctx: CliContext, opts: RejectOptions, queueId: string): Promise<void> {
  if (opts.note !== undefined && [...opts.note].length > 500)
    throw usage("--note has at most 500 characters");
  const { client } = await actAs(ctx, opts, ["org"], "the record's validator");
  await client.rejectRecord(queueId, opts.reason, opts.note);
  emit(
    ctx,
    opts.json === true,
    {
      message: `OK rejected ${queueId}`,
      queueId,
      status: "rejected",
      reason: opts.reason,
      note: opts.note ?? null,
    },
    () => [`OK rejected ${queueId} (${opts.reason}); its author sees the reason, the note stays on the node`],
  );
}

async function resubmitCommand(ctx: CliContext, opts: ActorOptions, queueId: string): Promise<void> {
  const { client } = await actAs(ctx, opts, ["org"], "the record's author");
  const queued = await client.resubmitRecord(queueId);
  emit(
    ctx,
    opts.json === true,
    {
      message: `OK queued ${queued.queueId}`,
      queueId: queued.queueId,
      record: queued.record,
      replaces: queueId,
      status: "pending",
    },
    () => [
      `OK queued ${queued.queueId} (record ${queued.record}) on the patient's current chain head, replacing ${queueId}`,
    ],
  );
}

function addRecordOptions(cmd: Command): Command {
  return cmd
    .requiredOption("--patient <id>", "the patient's pseudonymous id", patientIdOption)
    .requiredOption(
      "--type <type>",
      `the record type: ${RECORD_TYPES.join(", ")}`,
      oneOf("--type", RECORD_TYPES),
    )
    .option(
      "--sensitivity <label>",
      `the sensitivity label: ${SENSITIVITIES.join(", ")}`,
      oneOf("--sensitivity", SENSITIVITIES),
      "normal",
    )
    .requiredOption("--date <YYYY-MM-DD>", "the clinical date (when it happened)", dayOption("--date"))
    .requiredOption("--title <text>", "a short human title (at most 200 characters)")
    .requiredOption(
      "--resource <file>",
      "the FHIR R4 resource, as JSON (Encounter, Observation, ImagingStudy...)",
    )
    .option("--attach <file>", "a file to attach (an image, a PDF); repeatable", collect)
    .requiredOption("--validator <org>", "the validator org that will attest it", orgIdOption("--validator"))
    .option("--wait", "wait until the validator attests or rejects it");
}

/** Add `medledger record add|amend|queue|show|validate|reject|resubmit`. */
export function registerRecordCommands(program: Command, ctx: CliContext): void {
  const record = program
    .command("record")
    .description("records: write (author), review, validate or reject (validator), amend");
  const node = "--node http://127.0.0.1:8470";
  examples(
    addActorOptions(
      addRecordOptions(
        record
          .command("add")
          .description("write an encrypted record into the validator's queue; prints the queue id"),
      ),
      "the author org",
    ),
    [
      "medledger record add --as lab.json --passphrase-file lab.pass " +
        node +
        " \\\n      --patient 3f2a... --type laboratory-result --date 2026-10-14 --title HbA1c \\\n" +
        "      --resource hba1c.json --validator lab-qa --wait",
      "medledger record add ... --type image --resource study.json --attach chest.dcm --validator imaging-qa",
    ],
  ).action(action(ctx, (opts: AddOptions) => addCommand(ctx, opts)));

  examples(
    addActorOptions(
      addRecordOptions(
        record
          .command("amend")
          .description(
            "write a new version of one of the org's records, superseding it (never overwriting it)",
          )
          .requiredOption("--supersedes <record>", "the record id this version replaces", (v: string) => {
            if (!/^[0-9a-f]{32,64}$/.test(v)) throw usage("--supersedes must be a record id (hex)");
            return v;
          }),
      ),
      "the author org",
    ),
    [
      "medledger record amend --supersedes 9c1d... --patient 3f2a... --type laboratory-result ... --validator lab-qa",
    ],
  ).action(action(ctx, (opts: AmendOptions) => addCommand(ctx, opts)));

  examples(
    addActorOptions(
      record
        .command("queue")
        .description("list the validation queue: items naming this org as validator (default) or as author")
        .option(
          "--role <role>",
          "validator or author",
          oneOf("--role", ["validator", "author"] as const),
          "validator",
        )
        .option(
          "--status <status>",
          "pending, attested or rejected",
          oneOf("--status", ["pending", "attested", "rejected"] as const),
        ),
      "an org",
    ),
    [
      `medledger record queue --status pending --as lab-qa.json --passphrase-file lab-qa.pass ${node}`,
      `medledger record queue --role author --as lab.json --passphrase-file lab.pass ${node}`,
    ],
  ).action(action(ctx, (opts: QueueOptions) => queueCommand(ctx, opts)));

  examples(
    addActorOptions(
      record
        .command("show")
        .description(
          "as the validator: decrypt a queued record and show it for review, with the checks' findings",
        )
        .argument("<queue-id>", "the queue id", hashArgument("the queue id")),
      "the record's validator",
    ),
    [`medledger record show 5e0f... --as lab-qa.json --passphrase-file lab-qa.pass ${node}`],
  ).action(action(ctx, (opts: ActorOptions, id: string) => showCommand(ctx, opts, id)));

  examples(
    addActorOptions(
      record
        .command("validate")
        .description("as the validator: attest a queued record; the node appends it to the ledger")
        .argument("<queue-id>", "the queue id", hashArgument("the queue id")),
      "the record's validator",
    ),
    [`medledger record validate 5e0f... --as lab-qa.json --passphrase-file lab-qa.pass ${node}`],
  ).action(action(ctx, (opts: ActorOptions, id: string) => validateCommand(ctx, opts, id)));

  examples(
    addActorOptions(
      record
        .command("reject")
        .description("as the validator: reject a queued record with a reason its author sees")
        .argument("<queue-id>", "the queue id", hashArgument("the queue id"))
        .requiredOption(
          "--reason <code>",
          QUEUE_REJECT_REASONS.join(", "),
          oneOf("--reason", QUEUE_REJECT_REASONS),
        )
        .option(
          "--note <text>",
          "a note for the author (at most 500 characters; kept on the node, never in the ledger)",
        ),
      "the record's validator",
    ),
    [
      `medledger record reject 5e0f... --reason PATIENT_MISMATCH --note "wrong specimen label" --as lab-qa.json ${node}`,
    ],
  ).action(action(ctx, (opts: RejectOptions, id: string) => rejectCommand(ctx, opts, id)));

  examples(
    addActorOptions(
      record
        .command("resubmit")
        .description(
          "as the author: queue a record again on the patient's current chain head (after CHAIN_BROKEN)",
        )
        .argument("<queue-id>", "the queue id of the refused or stale item", hashArgument("the queue id")),
      "the record's author",
    ),
    [`medledger record resubmit 5e0f... --as lab.json --passphrase-file lab.pass ${node}`],
  ).action(action(ctx, (opts: ActorOptions, id: string) => resubmitCommand(ctx, opts, id)));
}
