#!/usr/bin/env node
/** Entry point of the `medledger` command: hands the process's arguments, I/O and crypto to the CLI. */
import { nodeCrypto } from "../platform/node-crypto.ts";
import { processIo } from "./io.ts";
import { runCli } from "./program.ts";

process.exitCode = await runCli(process.argv.slice(2), processIo, nodeCrypto);
