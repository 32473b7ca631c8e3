/**
 * `medledger org create|admit|list`: an org's key file, its admission by the consortium (org.admit, signed
 * by k of the consortium's keys), and the orgs a node knows. See docs/cli.md.
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { ORG_ROLES, type OrgRole } from "../core/ledger/schema.ts";
import { createOrgKeyFile, type Identity } from "../sdk/index.ts";
import type { CliContext } from "./report.ts";
import {
  MIN_PASSPHRASE_LENGTH,
  PASSPHRASE_ENV,
  action,
  actAs,
  addActorOptions,
  addNodeOptions,
  collect,
  connect,
  emit,
  examples,
  listOf,
  orgIdOption,
  readPassphrase,
  readPublicKeys,
  requireKind,
  unlockKeyFileAt,
  usage,
  writeNewSecretFile,
  type ActorOptions,
  type NodeOptions,
} from "./session.ts";

interface CreateOptions {
  readonly org: string;
  readonly out: string;
  readonly passphraseFile?: string;
  readonly json?: boolean;
}

interface AdmitOptions extends NodeOptions {
  readonly org: string;
  readonly roles: OrgRole[];
  readonly keyFile: string;
  readonly as: string[];
  readonly passphraseFile?: string[];
}

/** Read and check a new key file's passphrase. */
export async function newPassphrase(
  ctx: CliContext,
  file: string | undefined,
  what: string,
): Promise<string> {
  const passphrase = await readPassphrase(ctx, file, PASSPHRASE_ENV, what, "--passphrase-file");
  if ([...passphrase].length < MIN_PASSPHRASE_LENGTH) {
    throw usage(`the passphrase for ${what} must have at least ${MIN_PASSPHRASE_LENGTH} characters`);
  }
  return passphrase;
}

async function createCommand(ctx: CliContext, opts: CreateOptions): Promise<void> {
  const passphrase = await newPassphrase(ctx, opts.passphraseFile, `the new key file ${opts.out}`);
  const created = await createOrgKeyFile(ctx.crypto, { orgId: opts.org, passphrase });
  await writeNewSecretFile(opts.out, created.file, "key file");
  const keyFile = resolve(opts.out);
  emit(
    ctx,
    opts.json === true,
    {
      message: `OK org ${opts.org} key file ${keyFile}`,
      org: opts.org,
      keyFile,
      signKey: created.signKey,
      encKey: created.encKey,
    },
    () => [
      `OK org ${opts.org} key file ${keyFile}`,
      `  signing key (Ed25519):    ${created.signKey}`,
      `  encryption key (X25519):  ${created.encKey}`,
      "Keep the key file and its passphrase apart. Next, the consortium admits it:",
      `  medledger org admit --org ${opts.org} --roles author --key-file ${keyFile} --as CONSORTIUM_KEYFILE --node URL`,
    ],
  );
}

async function admitCommand(ctx: CliContext, opts: AdmitOptions): Promise<void> {
  const declared = await readPublicKeys(ctx, opts.keyFile);
  const label = declared.label.replace(/^org:/, "");
  if (label !== opts.org || (declared.kind !== "org" && declared.kind !== "validator")) {
    throw usage(`--key-file ${opts.keyFile} is the key file of ${declared.label}, not of org ${opts.org}`);
  }
  const files = opts.as;
  const passphraseFiles = opts.passphraseFile ?? [];
  if (passphraseFiles.length > 1 && passphraseFiles.length !== files.length) {
    throw usage(
      "give one --passphrase-file per --as, in the same order (or one for all, or MEDLEDGER_PASSPHRASE)",
    );
  }
  const signers: Identity[] = [];
  for (const [i, file] of files.entries()) {
    const passphrase = await readPassphrase(
      ctx,
      passphraseFiles.length > 1 ? passphraseFiles[i] : passphraseFiles[0],
      PASSPHRASE_ENV,
      `--as ${file}`,
      "--passphrase-file",
    );
    const identity = await unlockKeyFileAt(ctx, file, passphrase);
    requireKind(identity, ["consortium"], "--as", file, "consortium members (their key files)");
    signers.push(identity);
  }
  const session = await connect(ctx, opts, signers[0]!, files[0]!);
  const result = await session.client.admitOrg(
    { orgId: opts.org, roles: opts.roles, signKey: declared.signKey, encKey: declared.encKey },
    signers,
  );
  const position = result.accepted ? result.position : null;
  emit(
    ctx,
    opts.json === true,
    {
      message: `OK org ${opts.org} admitted with roles ${opts.roles.join(",")}`,
      org: opts.org,
      roles: [...opts.roles].sort(),
      entry: result.id,
      seq: result.seq,
      position,
      signers: signers.length,
    },
    () => [
      `OK org ${opts.org} admitted with roles ${[...opts.roles].sort().join(",")} (entry ${result.id}, position ${String(position)}, ${signers.length} consortium signature(s))`,
    ],
  );
}

async function listCommand(ctx: CliContext, opts: ActorOptions): Promise<void> {
  const { client } = await actAs(ctx, opts, ["org", "patient"], "an org or an enrolled patient");
  const orgs = await client.orgs();
  emit(
    ctx,
    opts.json === true,
    {
      orgs: orgs.map((o) => ({
        id: o.id,
        roles: o.roles,
        active: o.active,
        signKey: o.signKey,
        encKey: o.encKey,
      })),
    },
    () => {
      const width = Math.max(4, ...orgs.map((o) => o.id.length));
      return [
        `${"org".padEnd(width)}  ${"roles".padEnd(16)}  status`,
        ...orgs.map(
          (o) => `${o.id.padEnd(width)}  ${o.roles.join(",").padEnd(16)}  ${o.active ? "active" : "retired"}`,
        ),
      ];
    },
  );
}

/** Add `medledger org create|admit|list`. */
export function registerOrgCommands(program: Command, ctx: CliContext): void {
  const org = program.command("org").description("orgs: key files, admission by the consortium, the list");
  examples(
    org
      .command("create")
      .description(
        "create an org's key file (Ed25519 signing and X25519 encryption keys, passphrase-protected)",
      )
      .requiredOption("--org <id>", "the org's id: a lower-case slug such as city-lab", orgIdOption("--org"))
      .requiredOption("--out <file>", "where to write the new key file (never replaced)")
      .option(
        "--passphrase-file <file>",
        `a file holding the new passphrase (default: ${PASSPHRASE_ENV}); at least ${MIN_PASSPHRASE_LENGTH} characters`,
      )
      .option("--json", "print one JSON document on standard output"),
    ["MEDLEDGER_PASSPHRASE=... medledger org create --org city-lab --out city-lab.json"],
  ).action(action(ctx, (opts: CreateOptions) => createCommand(ctx, opts)));

  examples(
    addNodeOptions(
      org
        .command("admit")
        .description("admit an org with its roles: an org.admit entry signed by the consortium's keys")
        .requiredOption("--org <id>", "the org's id (must be the key file's)", orgIdOption("--org"))
        .requiredOption(
          "--roles <roles>",
          `comma-separated roles: ${ORG_ROLES.join(", ")}`,
          listOf("--roles", ORG_ROLES),
        )
        .requiredOption(
          "--key-file <file>",
          "the org's key file: its public keys are read, no passphrase needed",
        )
        .requiredOption(
          "--as <keyfile>",
          "a consortium key file; repeat for each signer when the consortium needs k > 1 signatures",
          collect,
        )
        .option(
          "--passphrase-file <file>",
          `the consortium key file's passphrase file; repeat in --as order (default: ${PASSPHRASE_ENV})`,
          collect,
        ),
    ),
    [
      "medledger org admit --org city-lab --roles author --key-file city-lab.json \\\n" +
        "      --as consortium-1.json --passphrase-file consortium.pass --node http://127.0.0.1:8470",
    ],
  ).action(action(ctx, (opts: AdmitOptions) => admitCommand(ctx, opts)));

  examples(
    addActorOptions(
      org.command("list").description("list the orgs the node knows, their roles and status"),
      "an org or an enrolled patient",
    ),
    ["medledger org list --as hospital.json --passphrase-file hospital.pass --node http://127.0.0.1:8470"],
  ).action(action(ctx, (opts: ActorOptions) => listCommand(ctx, opts)));
}
