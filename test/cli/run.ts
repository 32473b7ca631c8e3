/** Run the real `medledger` command as a child process (through tsx, so no build is needed). */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

/** What a run of the command left behind. */
export interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment of a child: the test runner's, without any MEDLEDGER_* variable, plus `env`. */
function childEnv(env: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("MEDLEDGER_")) out[k] = v;
  return { ...out, ...env };
}

/** Run `medledger ARGS` as a child process with extra environment variables and collect its output. */
export function medledgerWith(env: Readonly<Record<string, string>>, ...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], {
      cwd: ROOT,
      env: childEnv(env),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

/** Run `medledger ARGS` as a child process and collect its output. */
export function medledger(...args: string[]): Promise<Run> {
  return medledgerWith({}, ...args);
}

/** A long-running `medledger` process (a node, a demo): its first matching stdout line, and how to stop it. */
export interface Service {
  readonly child: ChildProcessWithoutNullStreams;
  /** The line that matched `ready`. */
  readonly line: string;
  /** Everything written so far. */
  output(): { stdout: string; stderr: string };
  /** SIGTERM, then wait for the exit status. */
  stop(): Promise<number | null>;
}

/**
 * Start `medledger ARGS` and wait until a line of its standard output matches `ready` (or it exits, or
 * `timeoutMs` passes: both are errors that show its output).
 */
export function startMedledger(
  args: readonly string[],
  ready: RegExp,
  options: { readonly env?: Readonly<Record<string, string>>; readonly timeoutMs?: number } = {},
): Promise<Service> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], {
      cwd: ROOT,
      env: childEnv(options.env ?? {}),
    });
    let stdout = "";
    let stderr = "";
    let settled = false;
    const exited = new Promise<number | null>((done) => child.on("close", (status) => done(status)));
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`medledger ${args.join(" ")}: ${why}\nstdout: ${stdout}\nstderr: ${stderr}`));
    };
    const timer = setTimeout(() => fail("not ready in time"), options.timeoutMs ?? 120_000);
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      if (settled) return;
      const line = stdout.split("\n").find((l) => ready.test(l));
      if (line === undefined) return;
      settled = true;
      clearTimeout(timer);
      resolve({
        child,
        line,
        output: () => ({ stdout, stderr }),
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
          return exited;
        },
      });
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", (err) => fail(String(err)));
    void exited.then((status) => fail(`exited with status ${String(status)} before it was ready`));
  });
}
