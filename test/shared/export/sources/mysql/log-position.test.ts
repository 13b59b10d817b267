import { describe, expect, it } from 'vitest';
import {
  cursorAfter,
  locateRanges,
  type PositionWarning,
  parseCursor,
  parsePending,
  planRanges,
  type SurveyedTable,
} from '../../../../../shared/export/sources/mysql/log-position';

/** A surveyed table whose first rows hash to `<id>:1`, `<id>:2`, ... (a generation named `id`). */
const table = (name: string, id: string, count: number): SurveyedTable => ({
  table: name,
  count,
  prefixes: Array.from({ length: Math.min(16, count) }, (_, i) => `${id}:${i + 1}`),
});

describe('planRanges', () => {
  it('starts a generation it has not seen at 0 and a known one at its position', () => {
    const warnings: PositionWarning[] = [];
    const ranges = planRanges(
      [{ rows: 16, fingerprint: 'old:16', position: 500 }],
      [table('general_log', 'new', 40), table('general_log_backup', 'old', 700)],
      (w) => warnings.push(w),
    );
    expect(ranges).toEqual([
      { rows: 16, fingerprint: 'new:16', from: 0, to: 40 },
      { rows: 16, fingerprint: 'old:16', from: 500, to: 700 },
    ]);
    expect(warnings).toEqual([]);
  });

  it('recognises a generation fingerprinted while it had fewer than 16 rows, and widens its fingerprint', () => {
    const ranges = planRanges(
      [{ rows: 3, fingerprint: 'g:3', position: 3 }],
      [table('t', 'g', 90)],
      () => {},
    );
    expect(ranges).toEqual([{ rows: 16, fingerprint: 'g:16', from: 3, to: 90 }]);
  });

  it('skips empty tables and warns when a table holds fewer rows than were read from it', () => {
    const warnings: PositionWarning[] = [];
    const ranges = planRanges(
      [{ rows: 16, fingerprint: 'g:16', position: 80 }],
      [table('t', 'g', 50), table('t_backup', 'x', 0)],
      (w) => warnings.push(w),
    );
    expect(ranges).toEqual([{ rows: 16, fingerprint: 'g:16', from: 50, to: 50 }]);
    expect(warnings).toMatchObject([{ table: 't', position: 80, count: 50 }]);
  });
});

describe('locateRanges', () => {
  it('follows a generation into the _backup twin after a rotation and drops one that is gone', () => {
    const warnings: PositionWarning[] = [];
    const located = locateRanges(
      [
        { rows: 16, fingerprint: 'a:16', from: 10, to: 60 },
        { rows: 5, fingerprint: 'b:5', from: 0, to: 5 },
        { rows: 16, fingerprint: 'c:16', from: 7, to: 7 },
      ],
      [table('general_log', 'z', 3), table('general_log_backup', 'a', 80)],
      (w) => warnings.push(w),
    );
    expect(located).toEqual([
      { rows: 16, fingerprint: 'a:16', from: 10, to: 60, table: 'general_log_backup' },
    ]);
    // The empty range of c needs no table; b's rows are gone.
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.message).toMatch(/gone/);
  });
});

describe('the state kept in the watermark item', () => {
  it('round-trips a batch into the cursor after it, and refuses malformed state', () => {
    const batch = {
      lo: '2026-11-30T01:00:00.000000Z',
      hi: '2026-11-30T01:05:00.000000Z',
      windowMinutes: 1,
      ranges: [{ rows: 16, fingerprint: 'a:16', from: 10, to: 60 }],
    };
    expect(parsePending(JSON.stringify(batch))).toEqual(batch);
    expect(cursorAfter(batch)).toEqual([{ rows: 16, fingerprint: 'a:16', position: 60 }]);
    expect(parseCursor(JSON.stringify(cursorAfter(batch)))).toEqual(cursorAfter(batch));
    expect(parseCursor(undefined)).toEqual([]);
    expect(parsePending(undefined)).toBeUndefined();
    expect(() => parseCursor('[{"rows":"x"}]')).toThrow(/malformed logCursor/);
    expect(() => parsePending('{"lo":"x"}')).toThrow(/malformed logPending/);
  });
});
