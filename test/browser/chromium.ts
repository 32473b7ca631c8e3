/**
 * Find and start the system's Chromium for the browser tests, through playwright-core (which downloads
 * no browser of its own). Debian's package installs /usr/bin/chromium; MEDLEDGER_CHROMIUM overrides the
 * path. Under CI the browser tests always run; see browserTestsSkipped for a machine without Chromium.
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

/**
 * Why the browser tests are skipped on this machine, or false when they run. They run whenever Chromium is
 * there, and always under CI (CI=true), where a missing Chromium is a failure: .ci/run installs it. On a
 * newcomer's machine without Chromium, `npm test` must still work with only Node and npm (the README's
 * promise), so there the skip says loudly why and how to install it. MEDLEDGER_SKIP_BROWSER=1 switches
 * them off explicitly, outside CI only.
 */
export function browserTestsSkipped(env: NodeJS.ProcessEnv = process.env): string | false {
  if (env.CI !== undefined && env.CI !== "" && env.CI !== "false") return false;
  if (env.MEDLEDGER_SKIP_BROWSER === "1") return "MEDLEDGER_SKIP_BROWSER=1: browser tests switched off";
  const missing = chromiumMissing(chromiumPath(env));
  return missing === undefined ? false : `browser tests skipped outside CI. ${missing.replace(/\n/g, " ")}`;
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
      "Outside CI the browser tests are skipped with this message; under CI (CI=true) they always run.",
    ].join("\n");
  }
}

/** Start headless Chromium from `path`; throws with the install hint when it is not there. */
export async function launchChromium(path: string = chromiumPath()): Promise<Browser> {
  const missing = chromiumMissing(path);
  if (missing !== undefined) throw new Error(missing);
  return chromium.launch({ executablePath: path, args: [...CHROMIUM_ARGS], timeout: 60_000 });
}
