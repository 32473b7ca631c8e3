/**
 * `medledger patient create|enroll|link|unlink|find`: a patient's key file and pseudonymous id, enrolment by
 * an org (both sign), the org's own identifiers (MRNs) linked to the patient blinded (both sign), and the
 * org's lookup by its own MRN (the node never sees the MRN). See docs/cli.md.
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { LedgerError } from "../core/errors.ts";
import { createPatientKeyFile } from "../sdk/index.ts";
import { newPassphrase } from "./org.ts";
import type { CliContext } from "./report.ts";
import {
  MIN_PASSPHRASE_LENGTH,
  PASSPHRASE_ENV,
  action,
  actAs,
  addActorOptions,
  addPatientKeyOptions,
  emit,
  examples,
  unlockPatient,
  usage,
  writeNewSecretFile,
  type ActorOptions,
  type PatientKeyOptions,
} from "./session.ts";

/** The identifier system when --system is not given: the org's own medical record numbers. */
export const DEFAULT_MRN_SYSTEM = "urn:medledger:mrn";

interface CreateOptions {
  readonly out: string;
  readonly passphraseFile?: string;
  readonly json?: boolean;
}

type EnrollOptions = ActorOptions & PatientKeyOptions;

interface LinkOptions extends EnrollOptions {
  readonly mrn: string;
  readonly system: string;
}

interface FindOptions extends ActorOptions {
  readonly mrn: string;
  readonly system: string;
}

function identifierValue(value: string): string {
  if (value.length === 0 || value.length > 256 || value.trim() !== value) {
    throw usage("--mrn must be 1 to 256 characters without leading or trailing spaces");
  }
  return value;
}

function systemValue(value: string): string {
  if (!/^[\x21-\x7e]{1,256}$/.test(value)) throw usage("--system must be a URI (printable ASCII, no spaces)");
  return value;
}

async function createCommand(ctx: CliContext, opts: CreateOptions): Promise<void> {
  const passphrase = await newPassphrase(ctx, opts.passphraseFile, `the new key file ${opts.out}`);
  const created = await createPatientKeyFile(ctx.crypto, { passphrase });
  await writeNewSecretFile(opts.out, created.file, "key file");
  const keyFile = resolve(opts.out);
  emit(
    ctx,
    opts.json === true,
    { message: `OK patient ${created.patientId}`, patient: created.patientId, keyFile },
    () => [
      `OK patient ${created.patientId}`,
      `  key file: ${keyFile} (keep it and its passphrase on the patient's own device)`,
      "Next, an org enrolls the patient (both sign):",
      `  medledger patient enroll --as ORG_KEYFILE --patient-key ${keyFile} --node URL`,
    ],
  );
}

async function enrollCommand(ctx: CliContext, opts: EnrollOptions): Promise<void> {
  const patient = await unlockPatient(ctx, opts);
  const { client, identity } = await actAs(ctx, opts, ["org"], "the enrolling org");
  const result = await client.enrollPatient(patient);
  const position = result.accepted ? result.position : null;
  emit(
    ctx,
    opts.json === true,
    {
      message: `OK patient ${patient.id} enrolled by ${identity.id}`,
      patient: patient.id,
      org: identity.id,
      entry: result.id,
      position,
    },
    () => [
      `OK patient ${patient.id} enrolled by ${identity.id} (entry ${result.id}, position ${String(position)})`,
    ],
  );
}

async function linkCommand(ctx: CliContext, opts: LinkOptions, unlink: boolean): Promise<void> {
  const patient = await unlockPatient(ctx, opts);
  const { client, identity } = await actAs(ctx, opts, ["org"], "the org whose identifier it is");
  const result = unlink
    ? await client.unlinkIdentifier(patient, opts.system, opts.mrn)
    : await client.linkIdentifier(patient, opts.system, opts.mrn);
  const position = result.accepted ? result.position : null;
  const verb = unlink ? "unlinked from" : "linked to";
  emit(
    ctx,
    opts.json === true,
    {
      message: `OK ${identity.id}'s identifier ${verb} patient ${patient.id}`,
      patient: patient.id,
      org: identity.id,
      system: opts.system,
      linked: !unlink,
      entry: result.id,
      position,
    },
    () => [
      `OK ${identity.id}'s identifier (${opts.system}) ${verb} patient ${patient.id} (entry ${result.id}, position ${String(position)}); the ledger holds it blinded`,
    ],
  );
}

async function findCommand(ctx: CliContext, opts: FindOptions): Promise<void> {
  const { client, identity } = await actAs(ctx, opts, ["org"], "the org whose identifier it is");
  const patient = await client.findPatient(opts.system, opts.mrn);
  if (patient === null) {
    throw new LedgerError(
      "NOT_FOUND",
      `no patient is linked to this identifier of ${identity.id} (${opts.system}): check the MRN and --system, or link it (medledger patient link)`,
    );
  }
  emit(
    ctx,
    opts.json === true,
    { message: `OK patient ${patient}`, patient, org: identity.id, system: opts.system },
    () => [patient],
  );
}

/** Add `medledger patient create|enroll|link|unlink|find`. */
export function registerPatientCommands(program: Command, ctx: CliContext): void {
  const patient = program
    .command("patient")
    .description("patients: key files, enrolment, identifier (MRN) links, lookup by MRN");
  examples(
    patient
      .command("create")
      .description(
        "create a patient's key file and pseudonymous id (random, never derived from data); prints the id",
      )
      .requiredOption("--out <file>", "where to write the new key file (never replaced)")
      .option(
        "--passphrase-file <file>",
        `a file holding the new passphrase (default: ${PASSPHRASE_ENV}); at least ${MIN_PASSPHRASE_LENGTH} characters`,
      )
      .option("--json", "print one JSON document on standard output"),
    ["MEDLEDGER_PASSPHRASE=... medledger patient create --out ana.json"],
  ).action(action(ctx, (opts: CreateOptions) => createCommand(ctx, opts)));

  examples(
    addPatientKeyOptions(
      addActorOptions(
        patient
          .command("enroll")
          .description("enroll a patient: the org vouches for the patient's keys, both sign"),
        "the enrolling org",
      ),
    ),
    [
      "medledger patient enroll --as hospital.json --passphrase-file hospital.pass \\\n" +
        "      --patient-key ana.json --patient-passphrase-file ana.pass --node http://127.0.0.1:8470",
    ],
  ).action(action(ctx, (opts: EnrollOptions) => enrollCommand(ctx, opts)));

  for (const unlink of [false, true]) {
    const name = unlink ? "unlink" : "link";
    examples(
      addPatientKeyOptions(
        addActorOptions(
          patient
            .command(name)
            .description(
              unlink
                ? "undo the link of one of the org's identifiers (MRN) to a patient; both sign"
                : "link one of the org's identifiers (MRN) to a patient, blinded with the org's key; both sign",
            )
            .requiredOption(
              "--mrn <value>",
              "the org's identifier of the patient (e.g. its MRN)",
              identifierValue,
            )
            .option("--system <uri>", "the identifier's system", systemValue, DEFAULT_MRN_SYSTEM),
          "the org whose identifier it is",
        ),
      ),
      [
        `medledger patient ${name} --mrn H-000123 --as hospital.json --passphrase-file hospital.pass \\\n` +
          "      --patient-key ana.json --patient-passphrase-file ana.pass --node http://127.0.0.1:8470",
      ],
    ).action(action(ctx, (opts: LinkOptions) => linkCommand(ctx, opts, unlink)));
  }

  examples(
    addActorOptions(
      patient
        .command("find")
        .description("find a patient by one of the org's own identifiers (MRN); prints the patient id")
        .requiredOption("--mrn <value>", "the org's identifier of the patient", identifierValue)
        .option("--system <uri>", "the identifier's system", systemValue, DEFAULT_MRN_SYSTEM),
      "the org whose identifier it is",
    ),
    [
      "medledger patient find --mrn H-000123 --as hospital.json --passphrase-file hospital.pass --node http://127.0.0.1:8470",
    ],
  ).action(action(ctx, (opts: FindOptions) => findCommand(ctx, opts)));
}
