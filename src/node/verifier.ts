/**
 * Parallel pre-checks of a batch (docs/node.md, "Parallel pre-checks"). The validator judges a batch's
 * entries one after another on the main thread, because its verdicts depend on order; but most of the
 * work of judging an entry depends on its bytes alone: strict decoding (UTF-8, JSON, the RFC 8785
 * canonical form, the schema) and the Ed25519 verification of its signatures. precheckEntry
 * (src/core/ledger/precheck.ts) does that part, so it runs here on worker threads, ahead of the validator.
 *
 * Entries are pre-checked as early as possible: from the moment they are submitted (all the submissions
 * of one burst become one job), so the workers already have them in hand while the ordering engine makes
 * them durable and while the node commits the previous batch; entries that reach a batch without one (from
 * another engine, or after a failed batch) get a job when the batch starts. A job lives in shared memory:
 * the entries' bytes, and per chunk of PRECHECK_CHUNK entries a claim word. Workers claim chunks from the
 * front; the main thread, when it reaches a chunk that is not done, claims it itself if it is still free,
 * else helps by claiming the last free chunk of the job, and waits only when none is left. So the main
 * thread never idles while there is pre-checking to do, and one worker is enough on a two-core machine.
 * Each entry's answer (its SHA-256, whether it decodes, which signatures verified) is written next to it
 * before the chunk is marked done.
 *
 * The validator uses an answer only for bytes with that very SHA-256, and only its positive findings (see
 * precheck.ts), so verdicts, rejection codes and roots are the same with any number of workers, zero
 * included; a worker that is slow, wrong about a failure, or dead costs only time: a chunk claimed by a
 * worker that exits (or stalls for STALL_MS) is pre-checked by the main thread instead.
 */
import { Worker } from "node:worker_threads";
import type { CryptoSuite } from "../core/crypto/suite.ts";
import { precheckEntry, type EntryPrecheck } from "../core/ledger/precheck.ts";

/** Fewer entries than this without a pre-check are left to the validator: a job would cost more. */
export const MIN_WORKER_BATCH = 16;

/** Entries per chunk, the unit a thread claims: about 3 ms of work, so the load evens out. */
export const PRECHECK_CHUNK = 8;

/** Bytes of an entry's SHA-256. */
export const DIGEST_BYTES = 32;

/** Chunk states, in a job's `state` words. */
export const CHUNK_FREE = 0;
export const CHUNK_DONE = 1;
export const CHUNK_MAIN = 2;
/** Worker w claims a chunk by writing CHUNK_WORKER + w. */
export const CHUNK_WORKER = 3;

/** The longest createNode waits for the workers to load (then it starts without those not ready). */
const STARTUP_MS = 30_000;

/** How long the main thread waits at a time for a worker's chunk before looking again. */
const WAIT_SLICE_MS = 50;
/** A chunk held this long by a live worker is pre-checked on the main thread instead. */
const STALL_MS = 10_000;

/** A job as the workers see it: typed arrays over SharedArrayBuffers. */
export interface SharedJob {
  /** The entries' bytes, back to back. */
  readonly data: Uint8Array;
  /** End offset of each entry in `data`. */
  readonly ends: Uint32Array;
  /** Entries per chunk. */
  readonly chunk: number;
  /** One word per chunk: CHUNK_FREE, CHUNK_DONE, CHUNK_MAIN or CHUNK_WORKER + w. */
  readonly state: Int32Array;
  /** Per entry: the SHA-256 of its bytes (valid when `decoded` is 1). */
  readonly digests: Uint8Array;
  /** Per entry: the pre-check's signature mask (precheck.ts). */
  readonly verified: Uint32Array;
  /** Per entry: 1 when the bytes decode strictly. */
  readonly decoded: Uint8Array;
}

/** The message a worker receives. */
export interface JobMessage {
  readonly job: SharedJob;
}

/** The message a worker sends once it has loaded and listens for jobs. */
export const WORKER_READY = "ready";

/** How the pre-checks were shared out (for tests and tuning). */
export interface PrecheckStats {
  /** Chunks pre-checked by workers. */
  workerChunks: number;
  /** Chunks pre-checked by the main thread. */
  mainChunks: number;
}

/** Where an entry's pre-check is: its job and its index there. */
export interface PrecheckRef {
  readonly group: PrecheckGroup;
  readonly index: number;
}

/**
 * Entries submitted in one burst (one turn of the event loop): they become one job when the burst is over,
 * or as soon as one of them is needed.
 */
export class PrecheckGroup {
  readonly #pool: PrecheckPool;
  #entries: Uint8Array[] | null = [];
  #job: PrecheckJob | undefined;

  constructor(pool: PrecheckPool) {
    this.#pool = pool;
  }

  /** Add entries; returns the index of the first, or -1 when the group was already started. */
  add(entries: readonly Uint8Array[]): number {
    if (this.#entries === null) return -1;
    const first = this.#entries.length;
    this.#entries.push(...entries);
    return first;
  }

  /** The job, started now if it was not yet. */
  job(): PrecheckJob {
    if (this.#job === undefined) {
      const entries = this.#entries ?? [];
      this.#entries = null;
      this.#job = this.#pool.startJob(entries);
    }
    return this.#job;
  }
}

/** Start a worker from the same kind of file as this module: .js once built, .ts under tsx. */
function startWorker(index: number): Worker {
  const here = import.meta.url;
  const workerData = { index };
  if (!here.endsWith(".ts")) return new Worker(new URL("./verify-worker.js", here), { workerData });
  // A worker does not inherit the tsx loader of its parent (Node 20): register it before importing.
  const api = JSON.stringify(import.meta.resolve("tsx/esm/api"));
  const file = JSON.stringify(new URL("./verify-worker.ts", here).href);
  return new Worker(`import(${api}).then((m) => { m.register(); return import(${file}); });`, {
    eval: true,
    workerData,
  });
}

/** Atomics.waitAsync (ES2024; in Node since 16): not in this project's ES2022 type library. */
type WaitAsync = (
  array: Int32Array,
  index: number,
  value: number,
  timeout: number,
) => { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/** A pool of pre-check workers. */
export class PrecheckPool {
  readonly stats: PrecheckStats = { workerChunks: 0, mainChunks: 0 };
  readonly #crypto: CryptoSuite;
  readonly #workers: Worker[] = [];
  readonly #dead: boolean[] = [];
  #closed = false;
  /** The group that submissions of the current burst join. */
  #group: PrecheckGroup | null = null;
  readonly #started: Promise<void>[] = [];

  /** Start `count` workers (0: every batch is judged on the main thread alone). */
  constructor(count: number, crypto: CryptoSuite) {
    this.#crypto = crypto;
    for (let i = 0; i < count; i++) {
      const worker = startWorker(i);
      // The pool must not keep a stopped node's process alive.
      worker.unref();
      let started: () => void = () => undefined;
      this.#started.push(new Promise<void>((resolve) => (started = resolve)));
      const die = (): void => {
        this.#dead[i] = true;
        started();
      };
      worker.on("message", (message: unknown) => {
        if (message === WORKER_READY) started();
      });
      worker.on("error", die);
      worker.on("exit", die);
      this.#workers.push(worker);
      this.#dead.push(false);
    }
  }

  /**
   * Resolves once every worker has loaded (or died), or after STARTUP_MS: a node is ready when its workers
   * are, and jobs sent before a worker is ready would only wait for it (the main thread does them instead).
   */
  async ready(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, STARTUP_MS)));
    await Promise.race([Promise.all(this.#started), timeout]);
    clearTimeout(timer);
  }

  /** True when worker w has exited. */
  isDead(w: number): boolean {
    return this.#dead[w] ?? true;
  }

  /** True when there is a live worker to share pre-checks with. */
  get active(): boolean {
    return !this.#closed && this.#dead.includes(false);
  }

  /**
   * Pre-check entries just submitted (not yet ordered): they join the current burst's group, which is
   * started once the burst's microtasks have run. Returns where each entry's pre-check will be, or
   * undefined without a live worker.
   */
  submitted(entries: readonly Uint8Array[]): PrecheckRef[] | undefined {
    if (!this.active) return undefined;
    let group = this.#group;
    if (group === null) {
      group = new PrecheckGroup(this);
      this.#group = group;
      const started = group;
      // Every submit() of this burst runs before this microtask: they share one job.
      queueMicrotask(() => {
        if (this.#group === started) this.#group = null;
        started.job();
      });
    }
    const first = group.add(entries);
    if (first < 0) return undefined;
    return entries.map((_, i) => ({ group: group, index: first + i }));
  }

  /**
   * Pre-check a batch's entries that have no pre-check yet; undefined when there is no live worker or
   * they are few (the validator then decodes and verifies them itself).
   */
  batch(entries: readonly Uint8Array[]): PrecheckGroup | undefined {
    if (!this.active || entries.length < MIN_WORKER_BATCH) return undefined;
    const group = new PrecheckGroup(this);
    group.add(entries);
    group.job();
    return group;
  }

  /** Create a job and hand it to every live worker (used by PrecheckGroup). */
  startJob(entries: readonly Uint8Array[]): PrecheckJob {
    const job = new PrecheckJob(this, this.#crypto, entries);
    if (entries.length > 0 && !this.#closed) {
      const message: JobMessage = { job: job.shared };
      this.#workers.forEach((worker, w) => {
        if (!this.#dead[w]) worker.postMessage(message);
      });
    }
    return job;
  }

  /** Stop the workers; a job in progress is finished on the main thread. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#dead.fill(true);
    const workers = this.#workers.splice(0);
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** One job's pre-checks, as the main thread sees them. */
export class PrecheckJob {
  readonly shared: SharedJob;
  readonly #pool: PrecheckPool;
  readonly #crypto: CryptoSuite;
  readonly #entries: readonly Uint8Array[];
  /** Pre-checks made on the main thread (for the chunks it took), by entry. */
  readonly #local: (EntryPrecheck | null | undefined)[];
  /** Per chunk: 1 when its answers are ready for the validator (in `shared` or in `#local`). */
  readonly #ready: Uint8Array;
  /** Per chunk: 1 when the main thread pre-checked it. */
  readonly #mine: Uint8Array;
  /** No chunk after this one is free (the main thread helps from the back). */
  #back: number;

  constructor(pool: PrecheckPool, crypto: CryptoSuite, entries: readonly Uint8Array[]) {
    this.#pool = pool;
    this.#crypto = crypto;
    this.#entries = entries;
    const n = entries.length;
    const chunks = Math.ceil(n / PRECHECK_CHUNK);
    let total = 0;
    for (const bytes of entries) total += bytes.length;
    const data = new Uint8Array(new SharedArrayBuffer(total));
    const ends = new Uint32Array(new SharedArrayBuffer(4 * n));
    let offset = 0;
    entries.forEach((bytes, i) => {
      data.set(bytes, offset);
      offset += bytes.length;
      ends[i] = offset;
    });
    this.shared = {
      data,
      ends,
      chunk: PRECHECK_CHUNK,
      state: new Int32Array(new SharedArrayBuffer(4 * chunks)),
      digests: new Uint8Array(new SharedArrayBuffer(DIGEST_BYTES * n)),
      verified: new Uint32Array(new SharedArrayBuffer(4 * n)),
      decoded: new Uint8Array(new SharedArrayBuffer(n)),
    };
    this.#local = new Array<EntryPrecheck | null | undefined>(n);
    this.#ready = new Uint8Array(chunks);
    this.#mine = new Uint8Array(chunks);
    this.#back = chunks - 1;
  }

  /** True when the answers for entry i are available (get(i) may be called). */
  isReady(i: number): boolean {
    return this.#ready[Math.floor(i / PRECHECK_CHUNK)] === 1;
  }

  /** Make the answers for entry i available (see readyChunk). */
  ready(i: number): Promise<void> {
    return this.readyChunk(Math.floor(i / PRECHECK_CHUNK));
  }

  /**
   * Make the answers of chunk k available: at once when a worker finished it; by pre-checking it here when
   * it is still free; else by helping with the last free chunk, or waiting, until its worker is done.
   */
  async readyChunk(k: number): Promise<void> {
    const state = this.shared.state;
    let waited = 0;
    while (this.#ready[k] === 0) {
      const s = Atomics.load(state, k);
      if (s === CHUNK_DONE) {
        this.#ready[k] = 1;
        this.#pool.stats.workerChunks++;
      } else if (s === CHUNK_FREE) {
        if (Atomics.compareExchange(state, k, CHUNK_FREE, CHUNK_MAIN) === CHUNK_FREE) await this.#run(k);
      } else if (s >= CHUNK_WORKER && (this.#pool.isDead(s - CHUNK_WORKER) || waited >= STALL_MS)) {
        // Its worker is gone or stuck: whatever it may still write, the answers come from here.
        await this.#run(k);
      } else if (!(await this.#help(k))) {
        const wait = waitAsync(state, k, s, WAIT_SLICE_MS);
        if (wait.async) {
          // A pending waitAsync does not keep Node's event loop alive (and the workers are unref'd): a
          // timer for the same slice does, or the process could exit in the middle of a batch.
          const alive = setTimeout(() => undefined, WAIT_SLICE_MS);
          await wait.value;
          clearTimeout(alive);
        }
        waited += WAIT_SLICE_MS;
      }
    }
  }

  /** The pre-check of entry i, once its chunk is ready; undefined when the bytes do not decode. */
  get(i: number): EntryPrecheck | undefined {
    const k = Math.floor(i / PRECHECK_CHUNK);
    if (this.#mine[k] === 1) return this.#local[i] ?? undefined;
    const { decoded, digests, verified } = this.shared;
    if (decoded[i] !== 1) return undefined;
    return { digest: digests.slice(i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES), verified: verified[i]! };
  }

  /** Pre-check the last free chunk after k, if any: true when there was one. */
  async #help(k: number): Promise<boolean> {
    const state = this.shared.state;
    while (this.#back > k) {
      const j = this.#back--;
      if (Atomics.compareExchange(state, j, CHUNK_FREE, CHUNK_MAIN) === CHUNK_FREE) {
        await this.#run(j);
        return true;
      }
    }
    return false;
  }

  /** Pre-check chunk k on this thread, from the caller's own bytes. */
  async #run(k: number): Promise<void> {
    const end = Math.min((k + 1) * PRECHECK_CHUNK, this.#entries.length);
    for (let i = k * PRECHECK_CHUNK; i < end; i++) {
      try {
        this.#local[i] = await precheckEntry(this.#crypto, this.#entries[i]!);
      } catch {
        // The validator decodes and verifies this entry itself, and gives its verdict.
        this.#local[i] = null;
      }
    }
    this.#mine[k] = 1;
    this.#ready[k] = 1;
    this.#pool.stats.mainChunks++;
  }
}
