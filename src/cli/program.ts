/**
 * The `medledger` command tree (commander), and runCli, which maps every outcome to one exit status:
 * 0 verified, 1 refused (the input does not verify or is malformed), 2 usage (bad options or arguments,
 * an invalid key, an unreadable file). See docs/cli.md.
 */
import { Command, CommanderError } from "commander";
import type { CryptoSuite } from "../core/crypto/suite.ts";
import type { CliIo } from "./io.ts";
import packageJson from "../../package.json" with { type: "json" };

/** The version of this build, from package.json. */
export const MEDLEDGER_VERSION: string = packageJson.version;
import { EXIT_OK, EXIT_USAGE, reportError, type CliContext } from "./report.ts";
import { registerDemoCommand } from "./demo.ts";
import { registerGrantCommands } from "./grant.ts";
import { registerHistoryCommands } from "./history.ts";
import { registerNodeCommands } from "./node.ts";
import { registerOrgCommands } from "./org.ts";
import { registerPatientCommands } from "./patient.ts";
import { registerRecordCommands } from "./record.ts";
import { registerTlogDemoCommand } from "./tlog-demo.ts";
import { registerTlogCommands } from "./tlog.ts";
import { registerVerifyCommand } from "./verify.ts";

/** Build the command tree for one run. */
export function createProgram(ctx: CliContext, json: boolean): Command {
  const program = new Command("medledger");
  program
    .description(
      "medledger: a patient-controlled, end-to-end encrypted, verifiable ledger of medical records " +
        "(start with: medledger demo)",
    )
    .version(MEDLEDGER_VERSION, "-V, --version", "print the version of medledger")
    .exitOverride()
    .configureOutput({
      writeOut: (text) => ctx.io.writeOut(text),
      writeErr: (text) => ctx.io.writeErr(text),
      // With --json, usage errors become the JSON document written by runCli instead.
      outputError: (text, write) => {
        if (!json) write(text);
      },
    })
    .showHelpAfterError("(run with --help for usage)");
  registerDemoCommand(program, ctx);
  registerNodeCommands(program, ctx);
  registerOrgCommands(program, ctx);
  registerPatientCommands(program, ctx);
  registerRecordCommands(program, ctx);
  registerGrantCommands(program, ctx);
  registerHistoryCommands(program, ctx);
  registerTlogDemoCommand(registerTlogCommands(program, ctx), ctx, runCli);
  registerVerifyCommand(program, ctx);
  return program;
}

/** Run the CLI on arguments (without "node" and the script) and return the exit status. */
export async function runCli(argv: readonly string[], io: CliIo, crypto: CryptoSuite): Promise<number> {
  const ctx: CliContext = { io, crypto, exitCode: EXIT_OK };
  const json = argv.includes("--json");
  const program = createProgram(ctx, json);
  try {
    await program.parseAsync([...argv], { from: "user" });
    return ctx.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version") return EXIT_OK;
      if (json)
        io.out(
          JSON.stringify({
            ok: false,
            code: "INVALID_ARGUMENT",
            message: err.message.replace(/^error: /, ""),
            exitCode: EXIT_USAGE,
          }),
        );
      return EXIT_USAGE;
    }
    reportError(ctx, json, err);
    return ctx.exitCode;
  }
}
