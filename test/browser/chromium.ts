/**
 * Find and start the system's Chromium for the browser tests, through playwright-core (which downloads
 * no browser of its own). Debian's package installs /usr/bin/chromium; MEDLEDGER_CHROMIUM overrides the
 * path. MEDLEDGER_SKIP_BROWSER=1 is only for machines that cannot install Chromium: CI never sets it.
 */
import { accessSync, constants } from "node:fs";
import { chromium, type Browser } from "playwright-core";

/** Where Debian's chromium package puts the browser. */
export const DEFAULT_CHROMIUM = "/usr/bin/chromium";

/** Flags for a quiet headless run as root in a container: no sandbox, no GPU, no traffic of its own. */
export const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

/** The browser to run: MEDLEDGER_CHROMIUM when set, else Debian's /usr/bin/chromium. */
export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.MEDLEDGER_CHROMIUM;
  return override !== undefined && override !== "" ? override : DEFAULT_CHROMIUM;
}

/** True when the browser tests were explicitly switched off (MEDLEDGER_SKIP_BROWSER=1). */
export function browserTestsSkipped(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.MEDLEDGER_SKIP_BROWSER === "1";
}

/** Why Chromium cannot be run from `path`, with how to fix it; undefined when it can. */
export function chromiumMissing(path: string): string | undefined {
  try {
    accessSync(path, constants.X_OK);
    return undefined;
  } catch {
    return [
      `Chromium is needed for the browser tests and was not found at ${path}.`,
      "Install it with: apt-get update && apt-get install -y chromium (Debian),",
      "or point MEDLEDGER_CHROMIUM at another Chromium or Google Chrome binary.",
      "Only on a machine that cannot install it, MEDLEDGER_SKIP_BROWSER=1 skips these tests (CI never does).",
    ].join("\n");
  }
}

/** Start headless Chromium from `path`; throws with the install hint when it is not there. */
export async function launchChromium(path: string = chromiumPath()): Promise<Browser> {
  const missing = chromiumMissing(path);
  if (missing !== undefined) throw new Error(missing);
  return chromium.launch({ executablePath: path, args: [...CHROMIUM_ARGS], timeout: 60_000 });
}
