/**
 * `medledger history` and `medledger access-log`: the patient's whole history, verified complete against a
 * checkpoint the client trusts and decrypted on this machine, in clinical order, with each entry's
 * verification and decryption status; and every release of the patient's record keys (who, which records,
 * when, on which basis). A failed proof or a missing piece is an error (exit 1), never a shorter history.
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { toHex } from "../core/encoding/bytes.ts";
import type { Attachment, History, HistoryItem, Identity } from "../sdk/index.ts";
import type { CliContext } from "./report.ts";
import {
  action,
  actAs,
  addActorOptions,
  emit,
  examples,
  patientIdOption,
  progressBar,
  short,
  usage,
  type ActorOptions,
} from "./session.ts";

interface HistoryOptions extends ActorOptions {
  readonly patient?: string;
  readonly out?: string;
}

/** A file name safe to write in --out: letters, digits, dot, dash and underscore; no leading dot. */
export function safeFileName(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "_");
  return cleaned.slice(0, 200) === "" ? "attachment" : cleaned.slice(0, 200);
}

function patientOf(opts: HistoryOptions, identity: Identity): string {
  if (opts.patient !== undefined) return opts.patient;
  if (identity.kind === "patient") return identity.id;
  throw usage("--patient ID is needed when acting as an org (the patient's pseudonymous id)");
}

function time(seconds: number): string {
  return `${new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

function basisText(basis: { type: string; grant?: string; emergency?: string }): string {
  if (basis.type === "grant") return `under grant ${short(basis.grant ?? "")}`;
  if (basis.type === "emergency") return `in an emergency (${short(basis.emergency ?? "")})`;
  return "as the record's author or validator (care)";
}

const STATUS_TEXT: Readonly<Record<string, string>> = {
  decrypted: "decrypted",
  withheld: "withheld",
  "no-key": "no key for you",
  "no-access": "no longer accessible",
  erased: "erased",
};

/** One line about a history item, for people. */
function describe(item: HistoryItem): string {
  const e = item.entry;
  switch (e.kind) {
    case "genesis":
      return "the ledger's genesis";
    case "org.admit":
      return `org ${e.body.org.id} admitted`;
    case "org.retire":
      return `org ${e.body.org} retired`;
    case "patient.enroll":
      return `enrolled by ${e.body.org}`;
    case "identifier.link":
      return `${e.body.org} linked one of its identifiers (stored blinded)`;
    case "identifier.unlink":
      return `${e.body.org} unlinked one of its identifiers`;
    case "grant":
      return `grant ${short(item.id)} to ${e.body.grantee}, in force until ${e.body.expires}`;
    case "grant.revoke":
      return `grant ${short(e.body.grant)} revoked`;
    case "key.share":
      return `the keys of ${e.body.keys.length} record(s) shared under grant ${short(e.body.grant)}`;
    case "access.event":
      return `${e.body.org} obtained the keys of ${e.body.records.length} record(s) ${basisText(e.body.basis)}`;
    case "emergency.access":
      return `${e.body.org} declared emergency access (${e.body.reason})`;
    case "record.erase":
      return `record ${short(e.body.record)} erased (by its ${e.body.by})`;
    case "record.append":
    case "record.amend": {
      const r = item.record;
      if (r === undefined) return "record";
      const who = `by ${r.author}, validated by ${r.validator}`;
      const version =
        (r.supersedes === null ? "" : `; amends ${short(r.supersedes)}`) +
        (r.supersededBy === null ? "" : `; superseded by ${short(r.supersededBy)}`);
      if (r.status === "withheld") {
        return `a psychotherapy note ${who}, withheld from the patient: it exists, its content is not shown${version}`;
      }
      if (r.payload === undefined) return `a record ${who}${version}`;
      const p = r.payload;
      const label = p.sensitivity === "normal" ? "" : ` (${p.sensitivity})`;
      const files =
        p.attachments.length === 0 ? "" : `; ${p.attachments.map((a) => `${a.name} ${a.size} B`).join(", ")}`;
      return `${p.type}${label} ${p.date} "${p.title}" ${who}${files}${version}`;
    }
  }
}

function itemJson(item: HistoryItem, files: ReadonlyMap<string, string[]>): Record<string, unknown> {
  const r = item.record;
  return {
    position: item.position,
    seq: item.seq,
    id: item.id,
    kind: item.kind,
    month: item.month,
    ledgerTime: item.ledgerTime,
    verified: item.verified,
    summary: describe(item),
    ...(r === undefined
      ? {}
      : {
          record: {
            id: r.id,
            status: r.status,
            author: r.author,
            validator: r.validator,
            withheldFromPatient: r.withheldFromPatient,
            supersedes: r.supersedes,
            supersededBy: r.supersededBy,
            erased: r.erased,
            ...(r.payload === undefined
              ? {}
              : {
                  type: r.payload.type,
                  sensitivity: r.payload.sensitivity,
                  date: r.payload.date,
                  title: r.payload.title,
                  resource: r.payload.resource,
                  attachments: r.payload.attachments.map((a, i) => ({
                    name: a.name,
                    contentType: a.contentType,
                    size: a.size,
                    ...(files.get(r.id)?.[i] === undefined ? {} : { file: files.get(r.id)![i] }),
                  })),
                }),
          },
        }),
  };
}

/** Write the decrypted attachments into DIR/<record id>-<name> (folder 0700, files 0600). */
async function writeAttachments(out: string, history: History): Promise<Map<string, string[]>> {
  const dir = resolve(out);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const written = new Map<string, string[]>();
  for (const item of history.items) {
    const r = item.record;
    const attachments: readonly Attachment[] = r?.attachments ?? [];
    if (r === undefined || attachments.length === 0) continue;
    const paths: string[] = [];
    for (const [i, a] of attachments.entries()) {
      const path = join(dir, `${r.id.slice(0, 16)}-${i}-${safeFileName(a.name)}`);
      await writeFile(path, a.bytes, { mode: 0o600 });
      await chmod(path, 0o600);
      paths.push(path);
    }
    written.set(r.id, paths);
  }
  return written;
}

async function historyCommand(ctx: CliContext, opts: HistoryOptions): Promise<void> {
  const json = opts.json === true;
  const { client, identity } = await actAs(
    ctx,
    opts,
    ["patient", "org"],
    "the patient or an org with a grant",
  );
  const patient = patientOf(opts, identity);
  const bar = progressBar(json, "verifying");
  let history: History;
  try {
    history = await client.history(patient, {
      attachments: opts.out !== undefined,
      onProgress: (done, total) => bar.update(done, total),
    });
  } finally {
    bar.stop();
  }
  const files =
    opts.out === undefined ? new Map<string, string[]>() : await writeAttachments(opts.out, history);
  const counts: Record<string, number> = {};
  for (const item of history.items) {
    if (item.record !== undefined) counts[item.record.status] = (counts[item.record.status] ?? 0) + 1;
  }
  const records = history.items.filter((i) => i.record !== undefined).length;
  const cp = history.checkpoint;
  emit(
    ctx,
    json,
    {
      patient: history.patient,
      reader: identity.keyid,
      complete: history.complete,
      checkpoint: { size: cp.size, rootHash: toHex(cp.rootHash), indexRoot: toHex(cp.indexRoot) },
      entries: history.items.length,
      records,
      statuses: counts,
      items: history.items.map((i) => itemJson(i, files)),
    },
    () => {
      const lines = [
        `History of patient ${history.patient}, read as ${identity.keyid}: ${history.items.length} entries, ${records} records`,
        `Complete and verified against checkpoint size ${cp.size} root ${toHex(cp.rootHash).slice(0, 16)}...: ` +
          "every entry included in the log, chained, signatures checked; the patient index proves nothing was left out.",
        "",
        "month    ledger time           status          entry",
      ];
      for (const item of history.items) {
        const status =
          item.record === undefined ? "verified" : (STATUS_TEXT[item.record.status] ?? item.record.status);
        lines.push(`${item.month}  ${time(item.ledgerTime)}  ${status.padEnd(14)}  ${describe(item)}`);
      }
      const summary = Object.entries(counts)
        .map(([s, n]) => `${n} ${STATUS_TEXT[s] ?? s}`)
        .join(", ");
      lines.push("", `records: ${summary === "" ? "none" : summary}`);
      if (files.size > 0) lines.push(`attachments written to ${resolve(opts.out!)}`);
      return lines;
    },
  );
}

interface LogLine {
  type: "access" | "emergency";
  entry: string;
  position: bigint;
  ledgerTime: number;
  org: string;
  records?: { id: string; title?: string; type?: string; date?: string }[];
  basis?: unknown;
  reason?: string;
}

async function accessLogCommand(ctx: CliContext, opts: HistoryOptions): Promise<void> {
  const json = opts.json === true;
  const { client, identity } = await actAs(ctx, opts, ["patient", "org"], "the patient");
  const patient = patientOf(opts, identity);
  const events: LogLine[] = [];
  if (identity.kind === "patient") {
    // The patient reads its own history (no access event) to show each record's title next to its id.
    const bar = progressBar(json, "verifying");
    let history: History;
    try {
      history = await client.history(patient, { attachments: false, onProgress: (d, t) => bar.update(d, t) });
    } finally {
      bar.stop();
    }
    const titles = new Map<string, { title?: string; type?: string; date?: string }>();
    for (const item of history.items) {
      const p = item.record?.payload;
      if (item.record !== undefined)
        titles.set(item.record.id, p === undefined ? {} : { title: p.title, type: p.type, date: p.date });
    }
    const ordered = [...history.items].sort((a, b) =>
      a.position < b.position ? -1 : a.position > b.position ? 1 : 0,
    );
    for (const item of ordered) {
      const e = item.entry;
      if (e.kind === "access.event") {
        events.push({
          type: "access",
          entry: item.id,
          position: item.position,
          ledgerTime: item.ledgerTime,
          org: e.body.org,
          records: e.body.records.map((id) => ({ id, ...(titles.get(id) ?? {}) })),
          basis: e.body.basis,
        });
      } else if (e.kind === "emergency.access") {
        events.push({
          type: "emergency",
          entry: item.id,
          position: item.position,
          ledgerTime: item.ledgerTime,
          org: e.body.org,
          reason: e.body.reason,
        });
      }
    }
  } else {
    for (const e of await client.accessLog(patient)) {
      events.push(
        e.type === "access"
          ? { ...e, records: e.records.map((id) => ({ id })) }
          : {
              type: e.type,
              entry: e.entry,
              position: e.position,
              ledgerTime: e.ledgerTime,
              org: e.org,
              reason: e.reason,
            },
      );
    }
  }
  emit(
    ctx,
    json,
    { patient, events: events.map((e) => ({ ...e, time: new Date(e.ledgerTime * 1000).toISOString() })) },
    () => {
      const lines = [
        `Access log of patient ${patient}: ${events.length} event(s), from the verified history`,
      ];
      for (const e of events) {
        if (e.type === "emergency") {
          lines.push(`${time(e.ledgerTime)}  ${e.org}  declared emergency access (${e.reason ?? ""})`);
          continue;
        }
        const names = (e.records ?? []).map((r) =>
          r.title === undefined ? short(r.id) : `"${r.title}" (${r.type}, ${r.date})`,
        );
        lines.push(
          `${time(e.ledgerTime)}  ${e.org}  obtained the keys of ${names.length} record(s) ${basisText(e.basis as { type: string })}: ${names.join(", ")}`,
        );
      }
      return lines;
    },
  );
}

/** Add `medledger history` and `medledger access-log`. */
export function registerHistoryCommands(program: Command, ctx: CliContext): void {
  const node = "--node http://127.0.0.1:8470";
  examples(
    addActorOptions(
      program
        .command("history")
        .description(
          "a patient's whole history, verified complete and decrypted here, in clinical order, with each entry's status",
        )
        .option(
          "--patient <id>",
          "the patient's id (default: yours, when acting as the patient)",
          patientIdOption,
        )
        .option("--out <dir>", "write the decrypted attachments (images, PDFs) into this folder"),
      "the patient, or an org the patient granted access",
    ),
    [
      `medledger history --as ana.json --passphrase-file ana.pass ${node}`,
      `medledger history --patient 3f2a... --as imaging.json --passphrase-file imaging.pass ${node} --out ./ana-files`,
      `medledger history --as ana.json --passphrase-file ana.pass ${node} --json > history.json`,
    ],
  ).action(action(ctx, (opts: HistoryOptions) => historyCommand(ctx, opts)));

  examples(
    addActorOptions(
      program
        .command("access-log")
        .description("every release of a patient's record keys: who, which records, when, under which grant")
        .option(
          "--patient <id>",
          "the patient's id (default: yours, when acting as the patient)",
          patientIdOption,
        ),
      "the patient",
    ),
    [`medledger access-log --as ana.json --passphrase-file ana.pass ${node}`],
  ).action(action(ctx, (opts: HistoryOptions) => accessLogCommand(ctx, opts)));
}
