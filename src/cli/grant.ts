/**
 * `medledger grant create|revoke|sync|list`, as the patient: give an org access to a scope of records
 * (categories, restricted categories named explicitly, a clinical-month range, a purpose, an expiry); the
 * keys of the records already in scope are shared at once; revoke it; catch up grantees on records their
 * authors could not wrap for them; list the grants. See docs/records.md section 4 and docs/cli.md.
 */
import type { Command } from "commander";
import { ledgerDay } from "../core/ledger/state.ts";
import {
  PURPOSES,
  RECORD_TYPES,
  RESTRICTED_CATEGORIES,
  grantInForce,
  openScope,
  type Purpose,
  type RecordType,
  type RestrictedCategory,
} from "../sdk/index.ts";
import type { CliContext } from "./report.ts";
import {
  action,
  actAs,
  addActorOptions,
  dayOption,
  emit,
  examples,
  hashArgument,
  listOf,
  monthOption,
  oneOf,
  orgIdOption,
  progressBar,
  usage,
  type ActorOptions,
} from "./session.ts";

interface CreateOptions extends ActorOptions {
  readonly to: string;
  readonly categories: RecordType[];
  readonly restricted?: RestrictedCategory[];
  readonly from?: string;
  readonly until?: string;
  readonly purpose: Purpose;
  readonly expires: string;
}

/** One grant as `grant list` shows it. */
interface GrantLine {
  readonly grant: string;
  readonly grantee: string;
  readonly expires: string;
  readonly revoked: boolean;
  readonly active: boolean;
  readonly scope: {
    readonly categories: readonly string[];
    readonly restricted: readonly string[];
    readonly from: string | null;
    readonly until: string | null;
    readonly purpose: string;
  };
  readonly shared: number;
  readonly ledgerTime: number;
}

/** What a revocation cannot undo: printed by `grant revoke` (docs/records.md section 4). */
export const REVOCATION_LIMITS =
  "Revocation stops all future sharing and the node releases no more ciphertext to the grantee, but it cannot " +
  "undo what the grantee already downloaded and decrypted: copies it made are outside the ledger's reach. " +
  "A revocation is not an erasure.";

async function createCommand(ctx: CliContext, opts: CreateOptions): Promise<void> {
  if (opts.from !== undefined && opts.until !== undefined && opts.from > opts.until) {
    throw usage("--from must not be after --until");
  }
  const { client, identity } = await actAs(ctx, opts, ["patient"], "the patient");
  const result = await client.grant({
    grantee: opts.to,
    categories: opts.categories,
    ...(opts.restricted === undefined ? {} : { restricted: opts.restricted }),
    from: opts.from ?? null,
    to: opts.until ?? null,
    purpose: opts.purpose,
    expires: opts.expires,
  });
  const scope = {
    categories: [...opts.categories].sort(),
    restricted: [...(opts.restricted ?? [])].sort(),
    from: opts.from ?? null,
    until: opts.until ?? null,
    purpose: opts.purpose,
  };
  emit(
    ctx,
    opts.json === true,
    {
      message: `OK grant ${result.grant} to ${opts.to}`,
      grant: result.grant,
      patient: identity.id,
      grantee: opts.to,
      expires: opts.expires,
      scope,
      shared: result.shared,
    },
    () => [
      `OK grant ${result.grant} to ${opts.to}`,
      `  covers: ${scope.categories.join(", ")}${scope.restricted.length > 0 ? `, including ${scope.restricted.join(", ")}` : " (normal sensitivity only)"}; ` +
        `clinical months ${scope.from ?? "any"} to ${scope.until ?? "any"}; purpose ${scope.purpose}; in force until ${opts.expires}`,
      `  ${result.shared} existing record(s) in scope shared with ${opts.to}; new ones are wrapped for it by their authors`,
      `  end it with: medledger grant revoke ${result.grant}`,
    ],
  );
}

async function revokeCommand(ctx: CliContext, opts: ActorOptions, grantId: string): Promise<void> {
  const { client } = await actAs(ctx, opts, ["patient"], "the patient");
  const result = await client.revoke(grantId);
  const position = result.accepted ? result.position : null;
  emit(
    ctx,
    opts.json === true,
    {
      message: `OK grant ${grantId} revoked`,
      grant: grantId,
      entry: result.id,
      position,
      cannotUndo: REVOCATION_LIMITS,
    },
    () => [
      `OK grant ${grantId} revoked (entry ${result.id}, position ${String(position)})`,
      REVOCATION_LIMITS,
    ],
  );
}

async function syncCommand(ctx: CliContext, opts: ActorOptions): Promise<void> {
  const { client } = await actAs(ctx, opts, ["patient"], "the patient");
  const result = await client.syncGrants();
  emit(ctx, opts.json === true, { message: `OK shared ${result.shared}`, shared: result.shared }, () => [
    result.shared === 0
      ? "OK every grantee in force already holds the keys of every record in its scope"
      : `OK shared the keys of ${result.shared} record(s) with grantees in force that lacked them`,
  ]);
}

async function listCommand(ctx: CliContext, opts: ActorOptions): Promise<void> {
  const { client, identity } = await actAs(ctx, opts, ["patient"], "the patient");
  const json = opts.json === true;
  const bar = progressBar(json, "verifying history");
  let history;
  try {
    history = await client.history(identity.id, {
      attachments: false,
      onProgress: (d, t) => bar.update(d, t),
    });
  } finally {
    bar.stop();
  }
  const orgs = new Map((await client.orgs()).map((o) => [o.id, o.active]));
  const today = ledgerDay(Math.floor(Date.now() / 1000));
  const revoked = new Set<string>();
  const shared = new Map<string, number>();
  for (const item of history.items) {
    const e = item.entry;
    if (e.kind === "grant.revoke") revoked.add(e.body.grant);
    if (e.kind === "key.share")
      shared.set(e.body.grant, (shared.get(e.body.grant) ?? 0) + e.body.keys.length);
  }
  const grants: GrantLine[] = [];
  for (const item of history.items) {
    const e = item.entry;
    if (e.kind !== "grant") continue;
    const scope = await openScope(ctx.crypto, identity.keyid, identity.encryption, e.body);
    const isRevoked = revoked.has(item.id);
    grants.push({
      grant: item.id,
      grantee: e.body.grantee,
      expires: e.body.expires,
      revoked: isRevoked,
      active: grantInForce(
        { revoked: isRevoked, expires: e.body.expires, granteeActive: orgs.get(e.body.grantee) ?? false },
        today,
      ),
      scope: {
        categories: scope.categories,
        restricted: scope.restricted,
        from: scope.from,
        until: scope.to,
        purpose: scope.purpose,
      },
      shared: shared.get(item.id) ?? 0,
      ledgerTime: item.ledgerTime,
    });
  }
  emit(ctx, json, { patient: identity.id, grants }, () =>
    grants.length === 0
      ? ["no grants"]
      : grants.map(
          (g) =>
            `${g.grant}  ${g.grantee}  ${g.active ? "active" : g.revoked ? "revoked" : "ended"} (until ${g.expires})  ` +
            `${g.scope.categories.join(",")}${g.scope.restricted.length > 0 ? `+${g.scope.restricted.join(",")}` : ""}  ` +
            `${g.scope.from ?? "any"}..${g.scope.until ?? "any"}  ${g.scope.purpose}  ${g.shared} key(s) shared`,
        ),
  );
}

/** Add `medledger grant create|revoke|sync|list`. */
export function registerGrantCommands(program: Command, ctx: CliContext): void {
  const grant = program.command("grant").description("grants, as the patient: share, revoke, catch up, list");
  const as = "--as ana.json --passphrase-file ana.pass --node http://127.0.0.1:8470";
  examples(
    addActorOptions(
      grant
        .command("create")
        .description(
          "give an org access to a scope of your records; shares the keys of those already written",
        )
        .requiredOption("--to <org>", "the org you grant access to", orgIdOption("--to"))
        .requiredOption(
          "--categories <types>",
          `comma-separated record types: ${RECORD_TYPES.join(", ")}`,
          listOf("--categories", RECORD_TYPES),
        )
        .option(
          "--restricted <categories>",
          `restricted categories the grant also covers (never psychotherapy notes): ${RESTRICTED_CATEGORIES.join(", ")}`,
          listOf("--restricted", RESTRICTED_CATEGORIES),
        )
        .option(
          "--from <YYYY-MM>",
          "first clinical month covered (default: no lower bound)",
          monthOption("--from"),
        )
        .option(
          "--until <YYYY-MM>",
          "last clinical month covered (default: no upper bound)",
          monthOption("--until"),
        )
        .option("--purpose <purpose>", PURPOSES.join(", "), oneOf("--purpose", PURPOSES), "treatment")
        .requiredOption(
          "--expires <YYYY-MM-DD>",
          "last day the grant is in force (UTC)",
          dayOption("--expires"),
        ),
      "the patient",
    ),
    [
      `medledger grant create --to imaging --categories laboratory-result --expires 2027-06-30 ${as}`,
      `medledger grant create --to psych-clinic --categories consultation,clinical-note --restricted mental-health --from 2025-01 --purpose second-opinion --expires 2026-12-31 ${as}`,
    ],
  ).action(action(ctx, (opts: CreateOptions) => createCommand(ctx, opts)));

  examples(
    addActorOptions(
      grant
        .command("revoke")
        .description("end a grant: no more sharing, no more ciphertext for the grantee (not an erasure)")
        .argument(
          "<grant-id>",
          "the grant's id (grant create or grant list printed it)",
          hashArgument("the grant id"),
        ),
      "the patient",
    ),
    [`medledger grant revoke 7d2e... ${as}`],
  ).action(action(ctx, (opts: ActorOptions, id: string) => revokeCommand(ctx, opts, id)));

  examples(
    addActorOptions(
      grant
        .command("sync")
        .description("share with grantees in force the keys of in-scope records they still lack"),
      "the patient",
    ),
    [`medledger grant sync ${as}`],
  ).action(action(ctx, (opts: ActorOptions) => syncCommand(ctx, opts)));

  examples(
    addActorOptions(
      grant
        .command("list")
        .description("list your grants with their scope, status and how many keys were shared"),
      "the patient",
    ),
    [`medledger grant list ${as}`],
  ).action(action(ctx, (opts: ActorOptions) => listCommand(ctx, opts)));
}
