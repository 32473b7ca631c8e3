/**
 * A patient's history in clinical order (DESIGN.md section 2, "Per-patient chains"): clinical time (the
 * month a record's care happened) and ledger time (when the entry was appended) are separate, so a late or
 * back-dated result is accepted and shown where it belongs clinically.
 */
import { ledgerMonth, type Position } from "./state.ts";
import type { Entry } from "./schema.ts";

/** An accepted entry with its position in the log. */
export interface PositionedEntry {
  readonly entry: Entry;
  readonly position: Position;
}

/** The clinical month of an entry: a record's own month; for other kinds, the month of its ledger time. */
export function clinicalMonth(item: PositionedEntry): string {
  const { entry } = item;
  if (entry.kind === "record.append" || entry.kind === "record.amend") return entry.body.month;
  return ledgerMonth(item.position.time);
}

/** A new array sorted by clinical month, then by ledger position (stable, total, clock-free). */
export function sortByClinicalTime<T extends PositionedEntry>(items: readonly T[]): T[] {
  const keyed = items.map((item) => ({ item, month: clinicalMonth(item) }));
  keyed.sort((a, b) =>
    a.month !== b.month ? (a.month < b.month ? -1 : 1) : a.item.position.seq - b.item.position.seq,
  );
  return keyed.map((k) => k.item);
}
