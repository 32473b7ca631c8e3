/**
 * Bundle a module for the browser with esbuild (in memory) and serve it in a page from 127.0.0.1 with a
 * strict Content-Security-Policy: scripts from the page's own origin only, no eval, no fetch, nothing
 * else. Used by the browser tests; nothing here is shipped.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { build, type Metafile } from "esbuild";

/** The repository root, so that bundle inputs can be shown relative to it. */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** A bundle held in memory, and the files that went into it (relative to the repository root). */
export interface Bundle {
  readonly code: string;
  readonly inputs: readonly string[];
  readonly metafile: Metafile;
}

/**
 * Bundle for the browser: platform "browser" resolves no Node built-in, so any node: import (or bare
 * "fs", "crypto", ...) anywhere below the entry fails the build. `contents` bundles source text instead
 * of the entry file (resolved from the repository root).
 */
export async function bundleForBrowser(entry: string | { readonly contents: string }): Promise<Bundle> {
  const result = await esbuildForBrowser(entry).catch((cause: unknown) => {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new Error(`not bundleable for the browser (a node: import, or a Node-only package?): ${why}`, {
      cause,
    });
  });
  const [output] = result.outputFiles;
  if (output === undefined || result.outputFiles.length !== 1)
    throw new Error("esbuild gave no single output");
  return { code: output.text, inputs: Object.keys(result.metafile.inputs).sort(), metafile: result.metafile };
}

function esbuildForBrowser(entry: string | { readonly contents: string }) {
  return build({
    ...(typeof entry === "string"
      ? { entryPoints: [entry] }
      : {
          stdin: { contents: entry.contents, resolveDir: REPO_ROOT, loader: "ts", sourcefile: "all-core.ts" },
        }),
    absWorkingDir: REPO_ROOT,
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    write: false,
    metafile: true,
    logLevel: "silent",
  });
}

/** The policy of the test page: its own script, and nothing else at all. */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "connect-src 'none'",
  "img-src 'none'",
  "style-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>medledger core in the browser</title>
    <script type="module" src="/core.js"></script>
  </head>
  <body></body>
</html>
`;

/** A page server: its URL, every path asked of it, and close(). */
export interface PageServer {
  readonly url: string;
  readonly requests: readonly string[];
  close(): Promise<void>;
}

/** Serve the page and the bundle on 127.0.0.1 (a free port); any other path is a 404. */
export async function servePage(code: string): Promise<PageServer> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = req.url ?? "";
    requests.push(path);
    const headers = {
      "content-security-policy": PAGE_CSP,
      "x-content-type-options": "nosniff",
      "cache-control": "no-store",
    };
    if (req.method === "GET" && path === "/") {
      res.writeHead(200, { ...headers, "content-type": "text/html; charset=utf-8" }).end(PAGE);
    } else if (req.method === "GET" && path === "/core.js") {
      res.writeHead(200, { ...headers, "content-type": "text/javascript; charset=utf-8" }).end(code);
    } else if (path === "/favicon.ico") {
      res.writeHead(204, headers).end();
    } else {
      res.writeHead(404, headers).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
