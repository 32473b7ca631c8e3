/**
 * The benchmark harness: run an operation repeatedly for a fixed time after a warm-up and report its rate.
 * Benchmarks print figures; they are never asserted on (STYLE.md, "Benchmarks are not tests").
 */
import { performance } from "node:perf_hooks";

/** Options of one measurement. */
export interface MeasureOptions {
  /** How long to measure, in seconds (default 1; a tenth of it again is spent warming up). */
  readonly seconds?: number;
  /** Operations per timing check, for operations too fast to time one by one (default 1). */
  readonly batch?: number;
}

/**
 * Run `op` (which may return a promise, then awaited) repeatedly for `seconds`, print "label: N ops/s" and
 * return the rate in operations per second.
 */
export async function measure(label: string, op: () => unknown, opts: MeasureOptions = {}): Promise<number> {
  const seconds = opts.seconds ?? 1;
  const batch = Math.max(1, Math.floor(opts.batch ?? 1));
  await runFor(op, batch, seconds / 10);
  const { count, elapsed } = await runFor(op, batch, seconds);
  const rate = count / elapsed;
  console.log(`${label}: ${formatRate(rate)} ops/s`);
  return rate;
}

/** A rate with thousands separators and no decimals (two significant decimals below 100). */
export function formatRate(rate: number): string {
  return rate >= 100 ? Math.round(rate).toLocaleString("en-US") : rate.toPrecision(3);
}

async function runFor(
  op: () => unknown,
  batch: number,
  seconds: number,
): Promise<{ count: number; elapsed: number }> {
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let count = 0;
  let now: number;
  do {
    for (let i = 0; i < batch; i++) {
      const result = op();
      if (result instanceof Promise) await result;
    }
    count += batch;
    now = performance.now();
  } while (now < deadline);
  return { count, elapsed: (now - start) / 1000 };
}
