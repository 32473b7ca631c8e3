/**
 * The pure core runs in a real browser. Steps:
 * 1. the whole of src/core and the WebCrypto suite bundle with esbuild for platform "browser", which
 *    resolves no Node built-in: a node: import anywhere in the core fails here;
 * 2. test/browser/entry.ts (the core, the web suite, and the cases) is bundled the same way and served
 *    from 127.0.0.1 under a strict CSP;
 * 3. Debian's Chromium (playwright-core drives it) runs the published vectors in the page against the
 *    input Node gives it, on the browser's own crypto.subtle, and reports what passed;
 * 4. Node checks every group ran all its cases with no failure, then checks the note, envelope, key file
 *    and index proofs made in the page with the node suite;
 * 5. the page logged no error and asked nothing of any host but 127.0.0.1.
 * Under CI a missing Chromium is a failure with the install command; elsewhere (a newcomer's machine with
 * only Node and npm) the browser steps are skipped with that message, so that `npm test` still works.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { decodeEnvelope, openEnvelope } from "../../src/core/crypto/envelope.ts";
import { parseKeyFile, unlockKeyFile } from "../../src/core/crypto/keyfile.ts";
import { fromHex, toBase64, toHex } from "../../src/core/encoding/bytes.ts";
import { createRequestVerifier } from "../../src/core/http/request-auth.ts";
import { openNote, parseNoteVerifierKey } from "../../src/core/note/signed-note.ts";
import {
  decodeIndexProof,
  patientIndexKey,
  verifyMembership,
  verifyNonMembership,
} from "../../src/core/patient-index/index.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { browserTestsSkipped, chromiumMissing, chromiumPath, launchChromium } from "./chromium.ts";
import { PATIENT_INDEX_ROOT, buildInput, expectedCases, type NodeSide } from "./inputs.ts";
import { REPO_ROOT, bundleForBrowser, servePage, type Bundle, type PageServer } from "./page.ts";
import { GROUPS, type BrowserInput, type BrowserReport, type Group } from "./protocol.ts";

const ENTRY = join(REPO_ROOT, "test", "browser", "entry.ts");
const CORE = join(REPO_ROOT, "src", "core");
/** Minutes, not seconds: a cold Chromium on a loaded 2-core CI machine can be slow to start. */
const TIMEOUT = 180_000;

let entryBundle: Promise<Bundle> | undefined;
/** The entry bundled once, shared by both suites. */
function bundleEntry(): Promise<Bundle> {
  entryBundle ??= bundleForBrowser(ENTRY);
  return entryBundle;
}

function coreFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? coreFiles(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
    )
    .sort();
}

/** Inputs must be ours (test/browser, src/core, the web suite) or @noble's: nothing else is in the page. */
function foreignInputs(inputs: readonly string[]): string[] {
  return inputs.filter(
    (file) =>
      !file.startsWith("src/core/") &&
      file !== "src/platform/web-crypto.ts" &&
      !file.startsWith("test/browser/") &&
      !file.startsWith("node_modules/@noble/"),
  );
}

describe("the core bundles for the browser (esbuild, platform browser)", () => {
  it("every module of src/core and the WebCrypto suite bundle with no Node built-in", async () => {
    const files = [...coreFiles(CORE), join(REPO_ROOT, "src", "platform", "web-crypto.ts")];
    assert.ok(files.length >= 20, `only ${files.length} core files found`);
    const contents = files
      .map((file, i) => `export * as m${i} from ${JSON.stringify(`./${relative(REPO_ROOT, file)}`)};`)
      .join("\n");
    // Platform "browser" resolves no Node built-in, so the build itself is the check; the inputs say so too.
    const bundle = await bundleForBrowser({ contents });
    assert.deepEqual(
      bundle.inputs.filter((file) => file.startsWith("node:")),
      [],
      "Node built-ins in the core",
    );
    // Each core file with runtime code is in the bundle (a type-only file has nothing to bundle).
    const missing = files
      .map((file) => relative(REPO_ROOT, file))
      .filter((file) => !bundle.inputs.includes(file) && !/\/suite\.ts$/.test(file));
    assert.deepEqual(missing, [], "core files esbuild did not bundle");
  });

  it("the browser entry bundles from the core, the web suite and @noble only, with no import left", async () => {
    const bundle = await bundleEntry();
    assert.deepEqual(foreignInputs(bundle.inputs), []);
    for (const needed of [
      "src/core/crypto/hpke.ts",
      "src/core/crypto/envelope.ts",
      "src/core/crypto/keyfile.ts",
      "src/core/encoding/jcs.ts",
      "src/core/merkle/proofs.ts",
      "src/core/merkle/tree.ts",
      "src/core/note/checkpoint.ts",
      "src/core/note/signed-note.ts",
      "src/core/note/tlog-proof.ts",
      "src/core/patient-index/tree.ts",
      "src/platform/web-crypto.ts",
    ]) {
      assert.ok(bundle.inputs.includes(needed), `${needed} is not in the bundle`);
    }
    const [output] = Object.values(bundle.metafile.outputs);
    assert.deepEqual(output?.imports, [], "the bundle still imports something");
  });
});

const skip = browserTestsSkipped();

describe("the browser for these tests", { skip }, () => {
  it("Chromium is installed (under CI a failure, never a skip: the message says how to install it)", () => {
    const missing = chromiumMissing(chromiumPath());
    assert.equal(missing, undefined, missing);
  });
});

describe("the core in Chromium: published vectors on WebCrypto", { skip, timeout: TIMEOUT }, () => {
  let browser: Browser | undefined;
  let server: PageServer | undefined;
  let page: Page | undefined;
  let input: BrowserInput;
  let nodeSide: NodeSide;
  let report: BrowserReport;
  const consoleErrors: string[] = [];
  const requestedUrls: string[] = [];

  before(
    async () => {
      const built = await buildInput();
      input = built.input;
      nodeSide = built.node;
      const bundle = await bundleEntry();
      server = await servePage(bundle.code);
      // Throws with the install command when Chromium is missing: a failure, never a skip.
      browser = await launchChromium(chromiumPath());
      page = await browser.newPage();
      page.on("console", (message) => {
        if (message.type() === "error") consoleErrors.push(`console: ${message.text()}`);
      });
      page.on("pageerror", (error) => consoleErrors.push(`page error: ${error.message}`));
      page.on("request", (request) => requestedUrls.push(request.url()));
      page.setDefaultTimeout(TIMEOUT);
      await page.goto(server.url, { waitUntil: "load" });
      await page.waitForFunction(() => typeof globalThis.medledgerRunCore === "function");
      report = await page.evaluate((arg) => globalThis.medledgerRunCore!(arg), input);
    },
    { timeout: TIMEOUT },
  );

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  function groupRan(group: Group): void {
    const failures = report.failures.filter((f) => f.group === group);
    assert.deepEqual(
      failures.map((f) => `${f.name}: ${f.reason}`),
      [],
      `${group}: ${failures.length} case(s) failed in ${report.userAgent}`,
    );
    assert.equal(report.passed[group], expectedCases(input)[group], `${group}: cases passed`);
  }

  it("ran on the browser's own WebCrypto (crypto.subtle) in a secure context", () => {
    assert.match(report.userAgent, /Chrome\/\d+/);
    assert.equal(report.isSecureContext, true);
    assert.equal(report.suite, "web");
    for (const method of ["importKey", "exportKey", "sign", "verify", "deriveBits", "encrypt", "decrypt"]) {
      assert.ok((report.subtleCalls[method] ?? 0) > 0, `crypto.subtle.${method} was never called`);
    }
  });

  it("reported every group, and no failure outside them", () => {
    assert.deepEqual(Object.keys(report.passed).sort(), [...GROUPS].sort());
    assert.deepEqual(
      report.failures.filter((f) => !(GROUPS as readonly string[]).includes(f.group)),
      [],
    );
  });

  it("(a) every RFC 9180 appendix A vector: key pairs, key schedule, every encryption", () => {
    assert.equal(input.hpke.length, 2);
    groupRan("hpke");
  });

  it("(b) RFC 8032 Ed25519 TEST 1 to 3: sign and verify", () => {
    groupRan("ed25519");
  });

  it("(b, c) signed notes: the published ones, Node's, and one signed in the page", () => {
    assert.equal(input.notes.length, 3);
    groupRan("signed-note");
  });

  it("(b) a note signed in the page verifies in Node with the node suite", async () => {
    const opened = await openNote(report.outputs.note, [
      parseNoteVerifierKey(nodeCrypto, report.outputs.noteVerifierKey),
    ]);
    assert.equal(opened.text, input.fromNode.textToSign);
    assert.equal(opened.signedBy.length, 1);
  });

  it("(c) every Tessera checkpoint verifies under the log key, and its root is the tree's", () => {
    assert.equal(input.tessera.checkpoints.length, 17);
    groupRan("checkpoint");
  });

  it("(c) tlog-proofs for every entry of every tree size verify", () => {
    assert.equal(input.tessera.entries.length, 15);
    groupRan("tlog-proof");
  });

  it("(d) every transparency-dev/merkle inclusion probe gives its verdict", () => {
    assert.equal(expectedCases(input)["merkle-inclusion"], 98);
    groupRan("merkle-inclusion");
  });

  it("(d) every transparency-dev/merkle consistency probe gives its verdict", () => {
    assert.equal(expectedCases(input)["merkle-consistency"], 98);
    groupRan("merkle-consistency");
  });

  it("(e) RFC 8785 canonical forms equal Node's", () => {
    groupRan("jcs");
  });

  it("(f) key envelopes: Node's open in the page; the page's round trip", () => {
    groupRan("envelope");
  });

  it("(f) an envelope sealed in the page opens in Node", async () => {
    const envelope = decodeEnvelope(fromHex(report.outputs.envelope));
    const dataKey = await openEnvelope(nodeCrypto, nodeSide.recipient, envelope, nodeSide.envelopeBinding);
    assert.equal(toHex(dataKey), report.outputs.envelopeDataKey);
  });

  it("(g) key files: Node's unlocks in the page; one made there unlocks there", () => {
    groupRan("keyfile");
  });

  it("(g) a key file made in the page unlocks in Node", async () => {
    const { keyFile, keyFilePassphrase } = report.outputs;
    assert.deepEqual(parseKeyFile(keyFile).kdf.N, 1024);
    const keys = await unlockKeyFile(nodeCrypto, keyFile, keyFilePassphrase);
    assert.equal(toBase64(keys.signing.publicKey), report.outputs.keyFileSigningPublic);
    assert.equal(toBase64(keys.encryption.publicKey), report.outputs.keyFileEncryptionPublic);
    assert.equal(keys.kind, "patient");
  });

  it("the patient index: Node's root, and proofs that verify in the page", () => {
    assert.equal(input.patientIndex.root, PATIENT_INDEX_ROOT);
    groupRan("patient-index");
  });

  it("the page's patient-index proofs verify in Node", () => {
    const sha = (data: Uint8Array) => nodeCrypto.sha256(data);
    const root = fromHex(report.outputs.indexRoot);
    assert.equal(report.outputs.indexRoot, PATIENT_INDEX_ROOT);
    const heads = new Map(input.patientIndex.patients.map((p) => [p.id, p]));
    assert.equal(
      report.outputs.indexProofs.length,
      input.patientIndex.patients.length + input.patientIndex.absent.length,
    );
    for (const { id, proof } of report.outputs.indexProofs) {
      const decoded = decodeIndexProof(fromHex(proof));
      const key = patientIndexKey(sha, id);
      const patient = heads.get(id);
      if (patient === undefined) {
        assert.equal(decoded.type, "non-membership", id);
        verifyNonMembership(sha, root, key, decoded);
      } else {
        assert.equal(decoded.type, "membership", id);
        const value = { head: fromHex(patient.head), length: patient.length };
        verifyMembership(sha, root, key, value, decoded);
      }
    }
  });

  it("request authentication: RFC 9421 B.1.4 and B.2.6, RFC 9530, and Node's signed request", () => {
    assert.equal(input.httpAuth.contentDigests.length, 6);
    groupRan("http-auth");
  });

  it("a request signed in the page verifies in Node with the node suite", async () => {
    const { httpRequest, httpKeyid, httpPublicKey } = report.outputs;
    const verifier = createRequestVerifier({
      crypto: nodeCrypto,
      clock: () => input.httpAuth.nowMs,
      resolveKey: (keyid) => (keyid === httpKeyid ? fromHex(httpPublicKey) : undefined),
    });
    const request = {
      ...httpRequest,
      body: httpRequest.body === null ? undefined : fromHex(httpRequest.body),
    };
    const verified = await verifier.verify(request);
    assert.deepEqual(verified.components, [
      "@method",
      "@authority",
      "@path",
      "@query",
      "content-digest",
      "content-type",
    ]);
  });

  it("logged no error and asked nothing of any host but 127.0.0.1", () => {
    assert.deepEqual(consoleErrors, []);
    assert.ok(requestedUrls.length >= 2, "the page and its script were requested");
    assert.deepEqual(
      requestedUrls.filter((url) => new URL(url).hostname !== "127.0.0.1"),
      [],
      "requests to other hosts",
    );
    assert.deepEqual(
      server!.requests.filter((path) => !["/", "/core.js", "/favicon.ico"].includes(path)),
      [],
      "unexpected paths",
    );
  });
});
