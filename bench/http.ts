/**
 * The node's HTTP API and the client SDK under measurement (issue 4, section 5), against a real node and its
 * server in a process of their own (bench/http-node.ts), over real sockets on 127.0.0.1, in one run:
 *
 * 1. A patient with 1,000 records from three providers (three author orgs, each with its own validator):
 *    the SDK's history() as the patient, verified and decrypted; median and p90 of several runs; where the
 *    time goes (fetching the pages, verifying them, downloading and decrypting the records; the client
 *    thread's busy and idle time and its crypto; the node process's CPU); and the floor that the same run's
 *    raw Ed25519 and X25519 rates set (two signatures per record entry, one HPKE open per record). Then the
 *    same as a grantee org, which first appends its access events (docs/api.md section 4).
 * 2. grant(): the patient grants an org access to every category, sharing the keys of the 1,000 records in
 *    key.share entries; a new grantee org each run.
 * 3. Read throughput of GET /v1/patients/{id}/history for a patient with 50 records: N keep-alive clients,
 *    each request signed afresh (its own nonce: the node refuses replays), for a fixed time; against the same
 *    clients on GET /v1/health, the server's own ceiling.
 * 4. The ledger's append benchmark (bench/append.ts) through HTTP: signed POST /v1/entries of one pre-built
 *    record.append each (author and validator signatures), C closed-loop clients; against the in-process
 *    figure and the Ed25519 ceiling.
 *
 * Setup (keys, entries, ciphertext, pre-signed requests) happens before any clock starts; key files use a
 * cheap KDF. Figures are printed, never asserted (STYLE.md).
 *
 * Run on its own: node --import tsx bench/http.ts [--runs N] [--seconds S] [--clients N] [--only PARTS]
 * (PARTS: comma-separated history, grant, grantee, read, append). --client-cpu-prof FILE profiles this
 * process over the measured SDK calls; --server-cpu-prof DIR profiles the node process (node --cpu-prof).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { Agent, request as httpRequest } from "node:http";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { toBase64, toHex, utf8 } from "../src/core/encoding/bytes.ts";
import { generateKeyFileKeys, unlockKeyFile, type KeyFileContents } from "../src/core/crypto/keyfile.ts";
import type { CryptoSuite } from "../src/core/crypto/suite.ts";
import { signRequest } from "../src/core/http/index.ts";
import { ledgerDay } from "../src/core/ledger/state.ts";
import { NODE_KEYS_DIR, readPassphrase, readSmallFile } from "../src/node/config.ts";
import { CONSORTIUM_KEY_FILE, initNode } from "../src/node/init.ts";
import { createNode, type LedgerNode } from "../src/node/node.ts";
import {
  enrollEntry,
  loadSeedActors,
  monthsBefore,
  newSeedPatient,
  recordEntry,
  seedBlindingKey,
  type SeedActors,
  type SeedOrg,
  type SeedPatient,
} from "../src/node/seed.ts";
import { nodeCrypto as crypto } from "../src/platform/node-crypto.ts";
import {
  MedledgerClient,
  RECORD_TYPES,
  identityFromKeys,
  newTrustState,
  orgAdmitEntry,
  type History,
  type Identity,
} from "../src/sdk/index.ts";
import { benchAppend, type AppendFigures } from "./append.ts";
import { formatRate, measure } from "./harness.ts";

/** The parts of the benchmark; "grantee" needs "grant" (its grants share the keys the grantee reads). */
export const HTTP_PARTS = ["history", "grant", "grantee", "read", "append"] as const;
/** One part. */
export type HttpPart = (typeof HTTP_PARTS)[number];

/** Options of benchHttp. */
export interface HttpOptions {
  /** Records of the patient read in parts 1 and 2 (default 1,000). */
  readonly records?: number;
  /** Measured runs of history() (default 10) and of grant() and the grantee's history() (default 7). */
  readonly runs?: number;
  /** Seconds of each throughput measurement (default 5) and of each raw crypto rate (a fifth of it). */
  readonly seconds?: number;
  /** Keep-alive clients of the read throughput measurement (default 32). */
  readonly clients?: number;
  /** Records of the patient whose history is read under load (default 50). */
  readonly throughputRecords?: number;
  /** Entries, patients and closed-loop clients of the append measurement (default bench/append.ts's). */
  readonly appendRecords?: number;
  readonly appendPatients?: number;
  readonly appendConcurrency?: number;
  /** The in-process append figures of this run; measured here (same parameters) when not given. */
  readonly inProcessAppend?: AppendFigures;
  /** Which parts to run (default all). */
  readonly parts?: readonly HttpPart[];
  /** Extra node flags for the node process (e.g. --cpu-prof). */
  readonly nodeFlags?: readonly string[];
  /** Write a V8 CPU profile of this process over the measured SDK calls (parts 1, 2, 1b) to this file. */
  readonly clientProfile?: string;
}

/** Median and p90 of an SDK call over its runs, with the medians of its breakdown. */
export interface CallFigures {
  readonly runs: number;
  readonly medianMs: number;
  readonly p90Ms: number;
  readonly breakdown: Readonly<Record<string, number>>;
}

/** Requests per second and latency of a fixed-time load. */
export interface LoadFigures {
  readonly clients: number;
  readonly requestsPerSecond: number;
  readonly medianMs: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** CPU of the node process per request (from /proc; NaN where unavailable). */
  readonly serverCpuMsPerRequest: number;
}

/** What benchHttp measured (absent parts are undefined). */
export interface HttpFigures {
  readonly ed25519VerifyPerSecond: number;
  readonly x25519PerSecond: number;
  readonly patientHistory?: CallFigures;
  readonly grant?: CallFigures;
  readonly granteeHistory?: CallFigures;
  readonly historyLoad?: LoadFigures;
  readonly healthLoad?: LoadFigures;
  readonly append?: {
    readonly records: number;
    readonly concurrency: number;
    readonly entriesPerSecond: number;
    readonly medianMs: number;
    readonly p99Ms: number;
    readonly rejected: number;
    readonly errors: number;
    readonly inProcessEntriesPerSecond: number;
  };
}

// -------------------------------------------------------------------------------------------------------
// Statistics
// -------------------------------------------------------------------------------------------------------

/** The nearest-rank percentile of a sorted sample (p in 0..100). */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

function ms(value: number): string {
  return Number.isNaN(value)
    ? "n/a"
    : value >= 100
      ? Math.round(value).toLocaleString("en-US")
      : value.toFixed(1);
}

function count(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

// -------------------------------------------------------------------------------------------------------
// Instruments: what the SDK fetched and when, the time its crypto took, the node process's CPU
// -------------------------------------------------------------------------------------------------------

/** What a request was for. */
type RequestKind = "history" | "blob" | "entries" | "other";

/** One request as the SDK's fetch saw it: sent, then its whole body read. */
interface Span {
  readonly kind: RequestKind;
  readonly start: number;
  readonly end: number;
}

function requestKind(method: string, url: string): RequestKind {
  const path = new URL(url).pathname;
  if (path.startsWith("/v1/blobs/")) return "blob";
  if (method === "POST" && path === "/v1/entries") return "entries";
  if (path.endsWith("/history") || path === "/v1/orgs") return "history";
  return "other";
}

/** Total time covered by at least one span. */
function covered(spans: readonly Span[]): number {
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  let total = 0;
  let from = -Infinity;
  let to = -Infinity;
  for (const s of sorted) {
    if (s.start > to) {
      if (to > from) total += to - from;
      from = s.start;
      to = s.end;
    } else if (s.end > to) to = s.end;
  }
  if (to > from) total += to - from;
  return total;
}

/**
 * A fetch and a crypto suite for the SDK that record what they did: each request's span (the body is read
 * inside, so a span ends when the response is in), and the synchronous time of each crypto call (node:crypto
 * does its work before the promise it returns, so the time is the call's).
 */
class Probe {
  spans: Span[] = [];
  cryptoTimes = new Map<string, { n: number; ms: number }>();
  readonly fetch: typeof fetch;
  readonly crypto: CryptoSuite;

  constructor(inner: CryptoSuite) {
    const wrapped: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(inner)) {
      if (typeof value !== "function") {
        wrapped[name] = value;
        continue;
      }
      const fn = value as (...args: unknown[]) => unknown;
      wrapped[name] = (...args: unknown[]): unknown => {
        const start = performance.now();
        const result = fn.apply(inner, args);
        const tally = this.cryptoTimes.get(name) ?? { n: 0, ms: 0 };
        tally.n++;
        tally.ms += performance.now() - start;
        this.cryptoTimes.set(name, tally);
        return result;
      };
    }
    this.crypto = wrapped as unknown as CryptoSuite;
    const timed = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
      const start = performance.now();
      const response = await fetch(input, init);
      const body = await response.arrayBuffer();
      this.spans.push({ kind: requestKind(init?.method ?? "GET", url), start, end: performance.now() });
      return new Response(body, {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
      });
    };
    this.fetch = timed;
  }

  reset(): void {
    this.spans = [];
    this.cryptoTimes = new Map();
  }

  /** Calls and milliseconds of some crypto methods together. */
  crypt(...names: string[]): { n: number; ms: number } {
    let n = 0;
    let total = 0;
    for (const name of names) {
      const t = this.cryptoTimes.get(name);
      n += t?.n ?? 0;
      total += t?.ms ?? 0;
    }
    return { n, ms: total };
  }
}

/** CPU time (user + system, all threads) of a process so far, in ms, from /proc; NaN where unavailable. */
function processCpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // Fields after the parenthesised command name: state is field 3, utime 14 and stime 15 (proc(5)).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Clock ticks of 10 ms (USER_HZ = 100 on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

/** One observed SDK call. */
interface Sample {
  readonly wall: number;
  /** The client thread's event loop busy (not waiting in epoll). */
  readonly busy: number;
  readonly serverCpu: number;
  readonly start: number;
  readonly end: number;
  readonly spans: readonly Span[];
  readonly crypto: Probe;
  readonly parts: Record<string, number>;
}

async function observe<T>(
  probe: Probe,
  serverPid: number | undefined,
  call: () => Promise<T>,
  shape: (sample: Omit<Sample, "parts">) => Record<string, number>,
): Promise<{ value: T; sample: Sample }> {
  probe.reset();
  const cpu0 = processCpuMs(serverPid);
  const elu0 = performance.eventLoopUtilization();
  const start = performance.now();
  const value = await call();
  const end = performance.now();
  const elu = performance.eventLoopUtilization(elu0);
  const serverCpu = processCpuMs(serverPid) - cpu0;
  const base = {
    wall: end - start,
    busy: elu.active,
    serverCpu,
    start,
    end,
    spans: probe.spans,
    crypto: probe,
  };
  return { value, sample: { ...base, parts: shape(base) } };
}

/** The breakdown of one history() call. */
function historyParts(s: Omit<Sample, "parts">): Record<string, number> {
  const firstOf = (kind: RequestKind): number =>
    Math.min(s.end, ...s.spans.filter((x) => x.kind === kind).map((x) => x.start));
  const verifiedAt = Math.min(firstOf("blob"), firstOf("entries"));
  const before = s.spans.filter((x) => x.start < verifiedAt);
  const pages = covered(before);
  const blobs = s.spans.filter((x) => x.kind === "blob");
  const entries = s.spans.filter((x) => x.kind === "entries");
  const verify = s.crypto.crypt("ed25519Verify");
  const sha = s.crypto.crypt("sha256");
  const decrypt = s.crypto.crypt(
    "x25519",
    "x25519PublicKey",
    "hkdfExtract",
    "hkdfExpand",
    "hmacSha256",
    "aeadOpen",
  );
  const signing = s.crypto.crypt("ed25519Sign", "ed25519PublicKey", "sha512");
  const cryptoMs = verify.ms + sha.ms + decrypt.ms + signing.ms;
  return {
    wall: s.wall,
    pagesFetch: pages,
    verification: verifiedAt - s.start - pages,
    accessEvents: covered(entries),
    records: s.end - Math.min(firstOf("blob"), s.end),
    blobRequests: blobs.length,
    blobFetch: covered(blobs),
    busy: s.busy,
    idle: s.wall - s.busy,
    ed25519Verify: verify.ms,
    ed25519VerifyCount: verify.n,
    sha256: sha.ms,
    sha256Count: sha.n,
    decrypt: decrypt.ms,
    signing: signing.ms,
    signingCount: s.crypto.crypt("ed25519Sign").n,
    otherBusy: s.busy - cryptoMs,
    serverCpu: s.serverCpu,
  };
}

/** The breakdown of one grant() call: reading the history, wrapping the keys, submitting. */
function grantParts(s: Omit<Sample, "parts">): Record<string, number> {
  const blobs = s.spans.filter((x) => x.kind === "blob");
  const entries = s.spans.filter((x) => x.kind === "entries");
  const readEnd = Math.max(s.start, ...blobs.map((x) => x.end));
  const submitStart = Math.min(s.end, ...entries.map((x) => x.start));
  return {
    wall: s.wall,
    read: readEnd - s.start,
    wrap: submitStart - readEnd,
    submit: covered(entries),
    seal: s.crypto.crypt("x25519Generate", "aeadSeal").ms,
    sealCount: s.crypto.crypt("x25519Generate").n,
    ed25519Verify: s.crypto.crypt("ed25519Verify").ms,
    busy: s.busy,
    serverCpu: s.serverCpu,
  };
}

function summarise(samples: readonly Sample[]): CallFigures {
  const walls = samples.map((s) => s.wall).sort((a, b) => a - b);
  const breakdown: Record<string, number> = {};
  for (const key of Object.keys(samples[0]?.parts ?? {}))
    breakdown[key] = median(samples.map((s) => s.parts[key]!));
  return { runs: samples.length, medianMs: percentile(walls, 50), p90Ms: percentile(walls, 90), breakdown };
}

// -------------------------------------------------------------------------------------------------------
// The load generator: node:http with a keep-alive Agent
// -------------------------------------------------------------------------------------------------------

/** One request to send. */
interface PlannedRequest {
  readonly method: "GET" | "POST";
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
}

/** Send one request on the agent; resolves with the status and, when asked, the body. */
function send(
  agent: Agent,
  base: URL,
  req: PlannedRequest,
  keepBody: boolean,
): Promise<{ status: number; body: Buffer | null }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...req.headers };
    if (req.body !== undefined) headers["content-length"] = String(req.body.length);
    const outgoing = httpRequest(
      { agent, host: base.hostname, port: base.port, method: req.method, path: req.path, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => {
          if (keepBody) chunks.push(chunk);
        });
        res.once("end", () =>
          resolve({ status: res.statusCode ?? 0, body: keepBody ? Buffer.concat(chunks) : null }),
        );
        res.once("error", reject);
      },
    );
    outgoing.once("error", reject);
    outgoing.end(
      req.body === undefined ? undefined : Buffer.from(req.body.buffer, req.body.byteOffset, req.body.length),
    );
  });
}

/** What a load run did. */
interface LoadRun {
  readonly requests: number;
  readonly errors: number;
  readonly statuses: ReadonlyMap<number, number>;
  readonly latencies: number[];
  readonly seconds: number;
  /** The supply of requests ran out before the time was up. */
  readonly exhausted: boolean;
  readonly serverCpu: number;
}

/**
 * `clients` closed-loop clients on one keep-alive agent, each sending the next request as soon as the last
 * one's response is in, until `seconds` have passed or `next` has no more; `check` judges each response.
 */
async function runLoad(
  base: URL,
  clients: number,
  seconds: number,
  next: () => PlannedRequest | undefined,
  serverPid: number | undefined,
  check: (status: number, body: Buffer | null) => boolean = (status) => status === 200,
  keepBody = false,
): Promise<LoadRun> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  let errors = 0;
  let exhausted = false;
  const cpu0 = processCpuMs(serverPid);
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const client = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const req = next();
      if (req === undefined) {
        exhausted = true;
        return;
      }
      const t = performance.now();
      try {
        const { status, body } = await send(agent, base, req, keepBody);
        latencies.push(performance.now() - t);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (!check(status, body)) errors++;
      } catch {
        errors++;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: clients }, client));
  } finally {
    agent.destroy();
  }
  const elapsed = (performance.now() - start) / 1000;
  return {
    requests: latencies.length,
    errors,
    statuses,
    latencies,
    seconds: elapsed,
    exhausted,
    serverCpu: processCpuMs(serverPid) - cpu0,
  };
}

function loadFigures(run: LoadRun, clients: number): LoadFigures {
  const sorted = run.latencies.slice().sort((a, b) => a - b);
  return {
    clients,
    requestsPerSecond: run.requests / run.seconds,
    medianMs: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    errors: run.errors,
    serverCpuMsPerRequest: run.serverCpu / run.requests,
  };
}

function statusText(statuses: ReadonlyMap<number, number>): string {
  return [...statuses.entries()].map(([status, n]) => `${status} x${count(n)}`).join(", ");
}

/**
 * Profile this process (the SDK's side) from now until the returned function is called, which writes the
 * profile (Chrome DevTools .cpuprofile format) to `file`: only the measured calls, not the setup.
 */
async function startClientProfile(file: string): Promise<() => Promise<void>> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 200 });
  await session.post("Profiler.start");
  return async () => {
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
    console.log(`(CPU profile of the SDK calls written to ${file})`);
  };
}

// -------------------------------------------------------------------------------------------------------
// The node process
// -------------------------------------------------------------------------------------------------------

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Start bench/http-node.ts on the data folder; resolves with the process and the URL it listens on. */
async function startNodeProcess(
  dir: string,
  flags: readonly string[],
): Promise<{ child: ChildProcess; url: string }> {
  const script = fileURLToPath(new URL("./http-node.ts", import.meta.url));
  const child = spawn(process.execPath, [...flags, "--import", "tsx", script, dir], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout });
  const exited = once(child, "exit").then(([code]) => new Error(`the node process exited (${String(code)})`));
  const ready = (async (): Promise<string | Error> => {
    for await (const line of lines) {
      const parsed = JSON.parse(line) as { url?: unknown };
      if (typeof parsed.url === "string") return parsed.url;
    }
    return new Error("the node process closed its output before it listened");
  })();
  const url = await Promise.race([ready, exited]);
  if (url instanceof Error) {
    child.kill("SIGKILL");
    throw url;
  }
  return { child, url };
}

async function stopNodeProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  await exited;
  clearTimeout(timer);
}

// -------------------------------------------------------------------------------------------------------
// Setup: the region, the patients and their records, straight into the node before it serves
// -------------------------------------------------------------------------------------------------------

/** Submit entries in order, in chunks, each of which must be accepted. */
async function submitAll(node: LedgerNode, entries: readonly Uint8Array[]): Promise<void> {
  for (let i = 0; i < entries.length; i += 1000) {
    for (const r of await node.submit(entries.slice(i, i + 1000))) {
      if (!r.accepted) throw new Error(`setup entry refused: ${r.reason} ${r.detail}`);
    }
  }
}

/** Records for a patient, round-robin over the providers, ciphertext straight into the node's store. */
async function addRecords(
  node: LedgerNode,
  providers: readonly SeedActors[],
  patient: SeedPatient,
  records: number,
  now: number,
): Promise<void> {
  let blobs: Uint8Array[] = [];
  let entries: Uint8Array[] = [];
  const putBlob = (bytes: Uint8Array): Uint8Array => {
    blobs.push(bytes);
    return crypto.sha256(bytes);
  };
  const flush = async (): Promise<void> => {
    const pending = blobs;
    node.store.transaction(() => pending.forEach((blob) => node.store.putBlob(blob)));
    await submitAll(node, entries);
    blobs = [];
    entries = [];
  };
  for (let i = 0; i < records; i++) {
    const provider = providers[i % providers.length]!;
    entries.push(await recordEntry(crypto, provider, patient, monthsBefore(now, i % 36), putBlob));
    if (entries.length === 1000) await flush();
  }
  await flush();
}

// -------------------------------------------------------------------------------------------------------
// The benchmark
// -------------------------------------------------------------------------------------------------------

const JSON_TYPE = "application/json; charset=utf-8";

/** Run the benchmark and print its figures. */
export async function benchHttp(options: HttpOptions = {}): Promise<HttpFigures> {
  const records = options.records ?? 1000;
  const runs = options.runs ?? 10;
  const shortRuns = options.runs ?? 7;
  const seconds = options.seconds ?? 5;
  const clients = options.clients ?? 32;
  const throughputRecords = options.throughputRecords ?? 50;
  const appendRecords = options.appendRecords ?? options.inProcessAppend?.records ?? 10_000;
  const appendPatients = options.appendPatients ?? 1000;
  const appendConcurrency = options.appendConcurrency ?? options.inProcessAppend?.concurrency ?? 500;
  const parts = new Set<HttpPart>(options.parts ?? HTTP_PARTS);
  if (parts.has("grantee")) parts.add("grant");
  const figures: { -readonly [K in keyof HttpFigures]: HttpFigures[K] } = {
    ed25519VerifyPerSecond: NaN,
    x25519PerSecond: NaN,
  };

  // The in-process append figure first, with the same parameters, when the caller has none.
  let inProcess = options.inProcessAppend;
  if (parts.has("append") && inProcess === undefined) {
    console.log("(the in-process append benchmark first, with the same parameters, for the ratio)");
    inProcess = await benchAppend({
      records: appendRecords,
      patients: appendPatients,
      concurrency: appendConcurrency,
    });
    console.log("");
  }

  const root = mkdtempSync(join(tmpdir(), "medledger-bench-http-"));
  const dir = join(root, "node");
  let child: ChildProcess | undefined;
  try {
    // ---------------------------------------------------------------------------------------------
    // Setup (not measured)
    // ---------------------------------------------------------------------------------------------
    const setupStart = performance.now();
    const init = await initNode({
      dir,
      crypto,
      origin: "bench-http.medledger.example/log",
      keyFileOptions: { kdf: { N: 2 ** 10, r: 8, p: 1 }, allowWeakKdf: true },
    });
    const genesisActors = await loadSeedActors(crypto, dir);
    const consortium = await unlockKeyFile(
      crypto,
      await readSmallFile(join(dir, NODE_KEYS_DIR, CONSORTIUM_KEY_FILE), CONSORTIUM_KEY_FILE),
      await readPassphrase(dir, CONSORTIUM_KEY_FILE),
    );
    const node = await createNode({ dir, crypto });
    const admits: Uint8Array[] = [];
    const admit = async (id: string): Promise<SeedOrg> => {
      const keys: KeyFileContents = await generateKeyFileKeys(crypto, "org", id);
      const roles = id.endsWith("-validator") ? (["validator"] as const) : (["author"] as const);
      const entry = await orgAdmitEntry(
        crypto,
        {
          orgId: id,
          roles,
          signKey: toHex(keys.signing.publicKey),
          encKey: toHex(keys.encryption.publicKey),
        },
        [consortium],
      );
      admits.push(entry.bytes);
      return { id, keys };
    };
    const provider = async (author: SeedOrg, validator: SeedOrg): Promise<SeedActors> => ({
      author,
      validator,
      blindingKey: await seedBlindingKey(crypto, author.keys),
    });
    // Three providers, each with its own validator: the genesis hospital, a laboratory, an imaging centre.
    const providers = [
      genesisActors,
      await provider(await admit("laboratory"), await admit("laboratory-validator")),
      await provider(await admit("imaging"), await admit("imaging-validator")),
    ];
    // One grantee org per grant() run, and one for its warm-up.
    const clinics: SeedOrg[] = [];
    if (parts.has("grant")) for (let i = 0; i <= shortRuns; i++) clinics.push(await admit(`clinic-${i}`));
    await submitAll(node, admits);

    const now = Math.floor(Date.now() / 1000);
    const patient = await newSeedPatient(crypto);
    const readsPatient = parts.has("history") || parts.has("grant");
    if (readsPatient) {
      await submitAll(node, [await enrollEntry(crypto, genesisActors, patient)]);
      await addRecords(node, providers, patient, records, now);
    }
    const loaded = await newSeedPatient(crypto);
    if (parts.has("read")) {
      await submitAll(node, [await enrollEntry(crypto, genesisActors, loaded)]);
      await addRecords(node, providers, loaded, throughputRecords, now);
    }

    // The append measurement's entries: patients enrolled now, records built now, submitted later.
    const appendEntries: Uint8Array[] = [];
    if (parts.has("append")) {
      const appendPatientsList: SeedPatient[] = [];
      for (let i = 0; i < appendPatients; i++) appendPatientsList.push(await newSeedPatient(crypto));
      const enrolments: Uint8Array[] = [];
      for (const p of appendPatientsList) enrolments.push(await enrollEntry(crypto, genesisActors, p));
      await submitAll(node, enrolments);
      let blobs: Uint8Array[] = [];
      const putBlob = (bytes: Uint8Array): Uint8Array => {
        blobs.push(bytes);
        return crypto.sha256(bytes);
      };
      const storeBlobs = (): void => {
        const pending = blobs;
        node.store.transaction(() => pending.forEach((blob) => node.store.putBlob(blob)));
        blobs = [];
      };
      // Round-robin over the patients, as bench/append.ts does, so each chain grows in submission order.
      for (let i = 0; i < appendRecords; i++) {
        const p = appendPatientsList[i % appendPatients]!;
        appendEntries.push(await recordEntry(crypto, genesisActors, p, monthsBefore(now, i % 24), putBlob));
        if (blobs.length === 1000) storeBlobs();
      }
      storeBlobs();
    }
    const treeSize = node.size;
    await node.close();
    const nodeProcess = await startNodeProcess(dir, options.nodeFlags ?? []);
    child = nodeProcess.child;
    const url = nodeProcess.url;
    const base = new URL(url);
    const pid = child.pid;
    console.log(
      `setup: ${readsPatient ? `${records} records for the patient (3 providers), ` : ""}tree size ${treeSize}, ` +
        `${((performance.now() - setupStart) / 1000).toFixed(1)} s (not measured); node process ${pid} at ${url}`,
    );

    const trust = newTrustState({
      origin: init.origin,
      logKey: init.logKey,
      witnesses: [init.witnessKey],
      quorum: 1,
    });
    const patientIdentity = await identityFromKeys(crypto, "patient", patient.id, patient.sign, patient.enc);
    const orgIdentity = (org: SeedOrg): Promise<Identity> =>
      identityFromKeys(crypto, "org", org.id, org.keys.signing, org.keys.encryption);

    // The machine's own limits, measured in the same run.
    const rateSeconds = Math.max(0.5, seconds / 5);
    const edKey = await crypto.ed25519Generate();
    const message = crypto.randomBytes(1500);
    const edSig = await crypto.ed25519Sign(edKey.secretKey, message);
    figures.ed25519VerifyPerSecond = await measure(
      "raw Ed25519 verify (one core)",
      () => crypto.ed25519Verify(edKey.publicKey, message, edSig),
      { seconds: rateSeconds, batch: 100 },
    );
    const [dhA, dhB] = await Promise.all([crypto.x25519Generate(), crypto.x25519Generate()]);
    figures.x25519PerSecond = await measure(
      "raw X25519 (one core)",
      () => crypto.x25519(dhA.secretKey, dhB.publicKey),
      { seconds: rateSeconds, batch: 100 },
    );
    const verifyMs = 1000 / figures.ed25519VerifyPerSecond;
    const dhMs = 1000 / figures.x25519PerSecond;

    const probe = new Probe(crypto);
    const client = (identity: Identity): MedledgerClient =>
      new MedledgerClient({ baseUrl: url, crypto: probe.crypto, identity, trust, fetch: probe.fetch });
    const decrypted = (h: History): number => h.items.filter((i) => i.record?.status === "decrypted").length;

    const printHistory = (label: string, f: CallFigures, entries: number, floorMs: number): void => {
      const b = f.breakdown;
      console.log(
        `${label}: median ${ms(f.medianMs)} ms, p90 ${ms(f.p90Ms)} ms over ${f.runs} runs ` +
          `(target: median < 150 ms on the reference machine)`,
      );
      console.log(
        `  phases (medians): history pages and org keys fetched ${ms(b.pagesFetch!)} ms | verification ` +
          `${ms(b.verification!)} ms${b.accessEvents! > 0 ? ` | access events appended ${ms(b.accessEvents!)} ms` : ""}` +
          ` | records: ${count(b.blobRequests!)} blob downloads and decryption ${ms(b.records!)} ms ` +
          `(some download in flight ${ms(b.blobFetch!)} ms of it)`,
      );
      console.log(
        `  client thread: busy ${ms(b.busy!)} ms, idle (waiting for the node) ${ms(b.idle!)} ms; busy in: ` +
          `Ed25519 verify ${ms(b.ed25519Verify!)} ms (${count(b.ed25519VerifyCount!)} signatures), ` +
          `SHA-256 ${ms(b.sha256!)} ms (${count(b.sha256Count!)} hashes), ` +
          `HPKE open and AES-GCM ${ms(b.decrypt!)} ms, request signing ${ms(b.signing!)} ms ` +
          `(${count(b.signingCount!)} requests), the rest (JSON, schemas, base64, fetch, ...) ${ms(b.otherBusy!)} ms`,
      );
      console.log(`  node process CPU during the call: ${ms(b.serverCpu!)} ms (10 ms resolution)`);
      console.log(
        `  floor from this run's raw rates: ${count(b.ed25519VerifyCount!)} Ed25519 verifications x ` +
          `${(verifyMs * 1000).toFixed(0)} µs = ${ms(b.ed25519VerifyCount! * verifyMs)} ms, + ${count(entries)} ` +
          `X25519 (one per HPKE open) x ${(dhMs * 1000).toFixed(0)} µs = ${ms(entries * dhMs)} ms: ` +
          `${ms(floorMs)} ms on one core; the median is ${(f.medianMs / floorMs).toFixed(1)}x that`,
      );
    };

    const stopProfile =
      options.clientProfile === undefined ? undefined : await startClientProfile(options.clientProfile);

    // ---------------------------------------------------------------------------------------------
    // 1. history() as the patient
    // ---------------------------------------------------------------------------------------------
    if (parts.has("history")) {
      console.log(`\n-- 1. history() of a patient with ${records} records from 3 providers, as the patient`);
      const reader = client(patientIdentity);
      const warm = await reader.history(patient.id, { attachments: true });
      console.log(
        `  (warm-up: ${warm.items.length} entries, ${decrypted(warm)} records decrypted, checkpoint size ` +
          `${warm.checkpoint.size}; load average ${loadavg()[0]!.toFixed(2)})`,
      );
      const samples: Sample[] = [];
      for (let i = 0; i < runs; i++) {
        const { value, sample } = await observe(probe, pid, () => reader.history(patient.id), historyParts);
        if (decrypted(value) !== records) throw new Error(`only ${decrypted(value)} records decrypted`);
        samples.push(sample);
      }
      const f = summarise(samples);
      figures.patientHistory = f;
      printHistory(
        "history as the patient",
        f,
        records,
        f.breakdown.ed25519VerifyCount! * verifyMs + records * dhMs,
      );
    }

    // ---------------------------------------------------------------------------------------------
    // 2. grant() sharing the records' keys
    // ---------------------------------------------------------------------------------------------
    const expires = ledgerDay(now + 365 * 86400);
    if (parts.has("grant")) {
      console.log(
        `\n-- 2. grant() sharing the keys of ${records} existing records, a new grantee org each run`,
      );
      const granter = client(patientIdentity);
      const grantOf = (org: SeedOrg) => () =>
        granter.grant({ grantee: org.id, categories: [...RECORD_TYPES], purpose: "treatment", expires });
      const warm = await grantOf(clinics[0]!)();
      console.log(`  (warm-up: grant to ${clinics[0]!.id}, ${warm.shared} keys shared)`);
      const samples: Sample[] = [];
      for (let i = 1; i <= shortRuns; i++) {
        const { value, sample } = await observe(probe, pid, grantOf(clinics[i]!), grantParts);
        if (value.shared !== records) throw new Error(`the grant shared ${value.shared} keys`);
        samples.push(sample);
      }
      const f = summarise(samples);
      figures.grant = f;
      const b = f.breakdown;
      console.log(
        `grant of ${records} records: median ${ms(f.medianMs)} ms, p90 ${ms(f.p90Ms)} ms over ${f.runs} runs ` +
          "(target: < 300 ms on the reference machine)",
      );
      console.log(
        `  phases (medians): reading the patient's own history (verified, decrypted) ${ms(b.read!)} ms | ` +
          `wrapping ${count(b.sealCount!)} keys for the grantee (HPKE seal) and signing the entries ${ms(b.wrap!)} ms ` +
          `(X25519 keygen and AES-GCM seal alone ${ms(b.seal!)} ms) | submitting the grant and its key.share ` +
          `entries until durable ${ms(b.submit!)} ms`,
      );
      console.log(
        `  client thread busy ${ms(b.busy!)} ms; node process CPU ${ms(b.serverCpu!)} ms; the wrapping's floor: ` +
          `${records} x 2 X25519 = ${ms(2 * records * dhMs)} ms`,
      );
    }

    // ---------------------------------------------------------------------------------------------
    // 1b. history() as a grantee org (its access events first)
    // ---------------------------------------------------------------------------------------------
    if (parts.has("grantee")) {
      const grantee = clinics[1]!;
      console.log(
        `\n-- 1b. history() of the same patient as a grantee org (${grantee.id}), access events included`,
      );
      const reader = client(await orgIdentity(grantee));
      const warm = await reader.history(patient.id);
      console.log(`  (warm-up: ${warm.items.length} entries, ${decrypted(warm)} records decrypted)`);
      const samples: Sample[] = [];
      for (let i = 0; i < shortRuns; i++) {
        const { value, sample } = await observe(probe, pid, () => reader.history(patient.id), historyParts);
        if (decrypted(value) !== records) throw new Error(`only ${decrypted(value)} records decrypted`);
        samples.push(sample);
      }
      const f = summarise(samples);
      figures.granteeHistory = f;
      printHistory(
        "history as a grantee",
        f,
        records,
        f.breakdown.ed25519VerifyCount! * verifyMs + records * dhMs,
      );
    }

    await stopProfile?.();

    // ---------------------------------------------------------------------------------------------
    // 3. Read throughput of the history endpoint
    // ---------------------------------------------------------------------------------------------
    if (parts.has("read")) {
      console.log(
        `\n-- 3. read throughput: GET /v1/patients/{id}/history of a patient with ${throughputRecords} records, ` +
          `${clients} keep-alive clients, ${seconds} s each`,
      );
      const path = `/v1/patients/${loaded.id}/history?limit=500`;
      const signer = { keyid: `patient:${loaded.id}`, secretKey: loaded.sign.secretKey, clock: Date.now };
      const signed = async (): Promise<PlannedRequest> => ({
        method: "GET",
        path,
        headers: { ...(await signRequest(crypto, { method: "GET", url: url + path, headers: {} }, signer)) },
      });
      // Warm-up, signing in the loop: it also tells how many fresh requests the timed run needs.
      let pool: PlannedRequest[] = [];
      for (let i = 0; i < clients * 4; i++) pool.push(await signed());
      let taken = 0;
      const warm = await runLoad(base, clients, 1, () => pool[taken++], pid);
      const oneAgent = new Agent();
      const sample = await send(oneAgent, base, await signed(), true);
      oneAgent.destroy();
      const pageBytes = sample.body?.length ?? 0;
      const wanted = Math.ceil(Math.max(warm.requests / warm.seconds, 100) * seconds * 1.5) + clients;
      const signStart = performance.now();
      pool = [];
      for (let i = 0; i < wanted; i++) pool.push(await signed());
      const signSeconds = (performance.now() - signStart) / 1000;
      taken = 0;
      const run = await runLoad(base, clients, seconds, () => pool[taken++], pid);
      const history = loadFigures(run, clients);
      figures.historyLoad = history;
      console.log(
        `history endpoint: ${formatRate(history.requestsPerSecond)} requests/s, median ${ms(history.medianMs)} ms, ` +
          `p99 ${ms(history.p99Ms)} ms, ${history.errors} errors (${statusText(run.statuses)}); ` +
          `${(pageBytes / 1024).toFixed(0)} KiB per response (${throughputRecords + 1} entries with inclusion proofs)` +
          `${run.exhausted ? "; the pre-signed requests ran out before the time was up" : ""}`,
      );
      console.log(
        `  node process CPU ${ms(history.serverCpuMsPerRequest)} ms per request; ${count(wanted)} requests ` +
          `pre-signed in ${signSeconds.toFixed(1)} s before the clock started (one nonce each)`,
      );
      await runLoad(base, clients, 0.5, () => ({ method: "GET", path: "/v1/health", headers: {} }), pid);
      const healthRun = await runLoad(
        base,
        clients,
        seconds,
        () => ({ method: "GET", path: "/v1/health", headers: {} }),
        pid,
      );
      const health = loadFigures(healthRun, clients);
      figures.healthLoad = health;
      console.log(
        `the server's own ceiling, GET /v1/health (public, no signature), same clients: ` +
          `${formatRate(health.requestsPerSecond)} requests/s, median ${ms(health.medianMs)} ms, ` +
          `p99 ${ms(health.p99Ms)} ms, ${health.errors} errors; node CPU ${ms(health.serverCpuMsPerRequest)} ms per request`,
      );
      console.log(
        `  history reaches ${((100 * history.requestsPerSecond) / health.requestsPerSecond).toFixed(1)}% of the ` +
          `health rate; one Ed25519 verification (the request's signature) is ${(verifyMs * 1000).toFixed(0)} µs ` +
          `of its ${ms(history.serverCpuMsPerRequest)} ms`,
      );
    }

    // ---------------------------------------------------------------------------------------------
    // 4. The append benchmark through HTTP
    // ---------------------------------------------------------------------------------------------
    if (parts.has("append") && inProcess !== undefined) {
      console.log(
        `\n-- 4. record.append through HTTP: ${count(appendRecords)} entries of ${count(appendPatients)} ` +
          `patients, signed POST /v1/entries of one entry each, ${appendConcurrency} closed-loop keep-alive clients`,
      );
      const author = genesisActors.author;
      const signer = { keyid: `org:${author.id}`, secretKey: author.keys.signing.secretKey, clock: Date.now };
      const signStart = performance.now();
      const requests: PlannedRequest[] = [];
      for (const bytes of appendEntries) {
        const body = utf8(JSON.stringify({ entries: [toBase64(bytes)] }));
        const headers = { "content-type": JSON_TYPE };
        const signature = await signRequest(
          crypto,
          { method: "POST", url: `${url}/v1/entries`, headers, body },
          signer,
        );
        requests.push({ method: "POST", path: "/v1/entries", headers: { ...headers, ...signature }, body });
      }
      console.log(
        `  ${count(requests.length)} requests built and signed in ${((performance.now() - signStart) / 1000).toFixed(1)} s ` +
          "(client side, not measured)",
      );
      let rejected = 0;
      const reasons = new Map<string, number>();
      let taken = 0;
      const run = await runLoad(
        base,
        appendConcurrency,
        3600,
        () => requests[taken++],
        pid,
        (status, body) => {
          if (status !== 200 || body === null) return false;
          const verdict = (
            JSON.parse(body.toString("utf8")) as { results: { accepted: boolean; reason?: string }[] }
          ).results[0];
          if (verdict?.accepted !== true) {
            rejected++;
            const reason = verdict?.reason ?? "?";
            reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
          }
          return true;
        },
        true,
      );
      const load = loadFigures(run, appendConcurrency);
      const verifyRate = figures.ed25519VerifyPerSecond;
      const cores = availableParallelism();
      const inProcessCeiling = (cores * verifyRate) / 2;
      const httpCeiling = (cores * verifyRate) / 3;
      figures.append = {
        records: run.requests,
        concurrency: appendConcurrency,
        entriesPerSecond: load.requestsPerSecond,
        medianMs: load.medianMs,
        p99Ms: load.p99Ms,
        rejected,
        errors: load.errors,
        inProcessEntriesPerSecond: inProcess.entriesPerSecond,
      };
      let why = [...reasons.entries()].map(([reason, n]) => `${reason} x${n}`).join(", ");
      // Entries of one patient are sent in chain order, but over many connections a later one can reach the
      // ledger before an earlier one still in flight; the rest of that chain is then refused as well.
      if (reasons.size === 1 && reasons.has("CHAIN_BROKEN")) {
        why += ": a patient's next entry overtook one still in flight, and the rest of its chain followed";
      }
      console.log(
        `record.append through HTTP: ${formatRate(load.requestsPerSecond)} entries/s ` +
          `(${formatRate((run.requests - rejected) / run.seconds)} accepted/s), ${rejected} rejected by the ` +
          `ledger${rejected === 0 ? "" : ` (${why})`}, ${load.errors} failed requests (${statusText(run.statuses)})`,
      );
      console.log(
        `  latency submit -> durable (request sent to verdict received): median ${ms(load.medianMs)} ms, ` +
          `p99 ${ms(load.p99Ms)} ms; node process CPU ${ms(load.serverCpuMsPerRequest)} ms per entry`,
      );
      console.log(
        `  in process (bench/append.ts, same entries count, patients and clients): ` +
          `${formatRate(inProcess.entriesPerSecond)} entries/s, median ${ms(inProcess.medianMs)} ms, ` +
          `p99 ${ms(inProcess.p99Ms)} ms: HTTP reaches ` +
          `${((100 * load.requestsPerSecond) / inProcess.entriesPerSecond).toFixed(0)}% of it`,
      );
      console.log(
        `  Ed25519 ceiling (this run, ${formatRate(verifyRate)} verifications/s on one core, ${cores} cores): in process ` +
          `2 per entry -> ${formatRate(inProcessCeiling)} entries/s; through HTTP 3 per entry (the request's ` +
          `signature too) -> ${formatRate(httpCeiling)} entries/s; reached ` +
          `${((100 * load.requestsPerSecond) / inProcessCeiling).toFixed(0)}% and ` +
          `${((100 * load.requestsPerSecond) / httpCeiling).toFixed(0)}%`,
      );
    }
    console.log(
      `\nload average at the end: ${loadavg()[0]!.toFixed(2)} (figures are only meaningful near 0)`,
    );
    return figures;
  } finally {
    if (child !== undefined) await stopNodeProcess(child);
    rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const usage =
    "usage: node --import tsx bench/http.ts [--runs N] [--seconds S] [--clients N] [--records N]\n" +
    "         [--append-records N] [--append-patients N] [--append-concurrency N]\n" +
    `         [--only ${HTTP_PARTS.join(",")}] [--client-cpu-prof FILE] [--server-cpu-prof DIR]`;
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        runs: { type: "string" },
        seconds: { type: "string" },
        clients: { type: "string" },
        records: { type: "string" },
        "append-records": { type: "string" },
        "append-patients": { type: "string" },
        "append-concurrency": { type: "string" },
        only: { type: "string" },
        "server-cpu-prof": { type: "string" },
        "client-cpu-prof": { type: "string" },
      },
      allowPositionals: false,
    }));
  } catch {
    console.error(usage);
    process.exit(2);
  }
  const int = (name: string, text: string | undefined, max: number): number | undefined => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < 1 || n > max) {
      console.error(`--${name} must be an integer from 1 to ${max}\n${usage}`);
      process.exit(2);
    }
    return n;
  };
  const only = values.only?.split(",");
  if (only !== undefined && !only.every((p) => (HTTP_PARTS as readonly string[]).includes(p))) {
    console.error(usage);
    process.exit(2);
  }
  const opts: HttpOptions = {
    ...(values.runs === undefined ? {} : { runs: int("runs", values.runs, 1000)! }),
    ...(values.seconds === undefined ? {} : { seconds: int("seconds", values.seconds, 600)! }),
    ...(values.clients === undefined ? {} : { clients: int("clients", values.clients, 1000)! }),
    ...(values.records === undefined ? {} : { records: int("records", values.records, 100_000)! }),
    ...(values["append-records"] === undefined
      ? {}
      : { appendRecords: int("append-records", values["append-records"], 1_000_000)! }),
    ...(values["append-patients"] === undefined
      ? {}
      : { appendPatients: int("append-patients", values["append-patients"], 1_000_000)! }),
    ...(values["append-concurrency"] === undefined
      ? {}
      : { appendConcurrency: int("append-concurrency", values["append-concurrency"], 10_000)! }),
    ...(only === undefined ? {} : { parts: only as HttpPart[] }),
    ...(values["client-cpu-prof"] === undefined ? {} : { clientProfile: values["client-cpu-prof"] }),
    ...(values["server-cpu-prof"] === undefined
      ? {}
      : { nodeFlags: ["--cpu-prof", `--cpu-prof-dir=${values["server-cpu-prof"]}`] }),
  };
  console.log(
    `machine: ${cpus()[0]?.model ?? "unknown CPU"}, ${availableParallelism()} cores, Node ${process.version}, ` +
      `load average ${loadavg()[0]!.toFixed(2)}`,
  );
  await benchHttp(opts);
}
