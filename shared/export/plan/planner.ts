import { floorToGrid, formatTimestamp, hours, minutes, seconds, toMicros } from '../sources/time';

/** One half-open window `[lo, hi)`, both bounds as `YYYY-MM-DDTHH:MM:SS.ffffffZ`. */
export interface Window {
  lo: string;
  hi: string;
}

export interface IncrementalPlan {
  /** The table's watermark (exclusive upper bound of the last exported window), if it has one. */
  watermark?: string;
  /** The database clock, UTC. */
  dbNow: string;
  lagSeconds: number;
  windowMinutes: number;
  initialLookbackHours: number;
}

/**
 * The windows an incremental run exports, oldest first: from the watermark (or
 * `initial-lookback-hours` before now, on the grid) up to the last grid point
 * that is at least `lag` behind the database clock. The previous `hi` is the
 * next `lo`, so boundary rows belong to exactly one window. A watermark off the
 * grid (window-minutes changed) gets one short window up to the next grid point.
 */
export function planWindows(plan: IncrementalPlan): Window[] {
  const step = minutes(plan.windowMinutes);
  const limit = toMicros(plan.dbNow) - seconds(plan.lagSeconds);
  const start =
    plan.watermark !== undefined
      ? toMicros(plan.watermark)
      : floorToGrid(toMicros(plan.dbNow) - hours(plan.initialLookbackHours), plan.windowMinutes);
  return gridWindows(start, limit, step, plan.windowMinutes);
}

export interface BackfillPlan {
  from: string;
  to: string;
  dbNow: string;
  lagSeconds: number;
  windowMinutes: number;
}

/**
 * The windows of a backfill: every grid window that overlaps `[from, to)`,
 * oldest first, but none that is not yet complete (`hi` later than now - lag):
 * objects are write-once, so an incomplete window must not be written early.
 */
export function planBackfill(plan: BackfillPlan): Window[] {
  const step = minutes(plan.windowMinutes);
  const to = toMicros(plan.to);
  const lastHi = floorToGrid(to, plan.windowMinutes) + (to % step === 0 ? 0 : step);
  const limit = Math.min(lastHi, toMicros(plan.dbNow) - seconds(plan.lagSeconds));
  return gridWindows(floorToGrid(toMicros(plan.from), plan.windowMinutes), limit, step, plan.windowMinutes);
}

function gridWindows(start: number, limit: number, step: number, windowMinutes: number): Window[] {
  const windows: Window[] = [];
  let lo = start;
  let hi = floorToGrid(lo, windowMinutes) + step;
  while (hi <= limit) {
    windows.push({ lo: formatTimestamp(lo), hi: formatTimestamp(hi) });
    lo = hi;
    hi += step;
  }
  return windows;
}

/**
 * The windows left of a batch fixed by an earlier run (a table read by
 * position): from `from` (the batch's start, or the watermark inside it) up to
 * the batch's `hi`, on the grid the batch was planned on.
 */
export function planBatchWindows(from: string, hi: string, windowMinutes: number): Window[] {
  return gridWindows(toMicros(from), toMicros(hi), minutes(windowMinutes), windowMinutes);
}
