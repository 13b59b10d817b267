import { describe, expect, it } from 'vitest';
import { planBackfill, planWindows } from '../../../../shared/export/plan/planner';

const base = { lagSeconds: 60, windowMinutes: 5, initialLookbackHours: 1 };

describe('planWindows', () => {
  it('starts initial-lookback-hours back on the grid and stops at the last window older than the lag', () => {
    const windows = planWindows({ ...base, dbNow: '2024-05-01T10:06:30.000000Z' });
    expect(windows[0]).toEqual({ lo: '2024-05-01T09:05:00.000000Z', hi: '2024-05-01T09:10:00.000000Z' });
    // 10:05 + 60 s lag > 10:06:30 - nothing; [10:00, 10:05) ends 90 s ago: included.
    expect(windows.at(-1)).toEqual({ lo: '2024-05-01T10:00:00.000000Z', hi: '2024-05-01T10:05:00.000000Z' });
    expect(windows).toHaveLength(12);
  });

  it('chains windows: each hi is the next lo', () => {
    const windows = planWindows({ ...base, dbNow: '2024-05-01T10:06:30Z' });
    for (let i = 1; i < windows.length; i++) expect(windows[i]?.lo).toBe(windows[i - 1]?.hi);
  });

  it('resumes from the watermark and leaves a window that the lag still covers', () => {
    const windows = planWindows({
      ...base,
      watermark: '2024-05-01T09:55:00.000000Z',
      dbNow: '2024-05-01T10:05:59.999999Z',
    });
    expect(windows).toEqual([{ lo: '2024-05-01T09:55:00.000000Z', hi: '2024-05-01T10:00:00.000000Z' }]);
  });

  it('includes a window whose hi is exactly now - lag', () => {
    const windows = planWindows({
      ...base,
      watermark: '2024-05-01T10:00:00.000000Z',
      dbNow: '2024-05-01T10:06:00Z',
    });
    expect(windows).toEqual([{ lo: '2024-05-01T10:00:00.000000Z', hi: '2024-05-01T10:05:00.000000Z' }]);
  });

  it('plans nothing when the watermark is ahead of the clock', () => {
    expect(
      planWindows({ ...base, watermark: '2024-05-02T00:00:00.000000Z', dbNow: '2024-05-01T10:00:00Z' }),
    ).toEqual([]);
  });

  it('closes an off-grid watermark with one short window (window-minutes changed)', () => {
    const windows = planWindows({
      ...base,
      windowMinutes: 15,
      watermark: '2024-05-01T09:05:00.000000Z',
      dbNow: '2024-05-01T09:40:00Z',
    });
    expect(windows).toEqual([
      { lo: '2024-05-01T09:05:00.000000Z', hi: '2024-05-01T09:15:00.000000Z' },
      { lo: '2024-05-01T09:15:00.000000Z', hi: '2024-05-01T09:30:00.000000Z' },
    ]);
  });

  it('crosses midnight on the same grid', () => {
    const windows = planWindows({
      ...base,
      windowMinutes: 60,
      lagSeconds: 0,
      watermark: '2024-12-31T22:00:00.000000Z',
      dbNow: '2025-01-01T01:00:00Z',
    });
    expect(windows.map((w) => w.lo)).toEqual([
      '2024-12-31T22:00:00.000000Z',
      '2024-12-31T23:00:00.000000Z',
      '2025-01-01T00:00:00.000000Z',
    ]);
  });
});

describe('planBackfill', () => {
  it('covers every grid window overlapping [from, to)', () => {
    const windows = planBackfill({
      from: '2024-05-01T09:07:00Z',
      to: '2024-05-01T09:20:00Z',
      dbNow: '2024-05-02T00:00:00Z',
      lagSeconds: 60,
      windowMinutes: 5,
    });
    expect(windows.map((w) => w.lo)).toEqual([
      '2024-05-01T09:05:00.000000Z',
      '2024-05-01T09:10:00.000000Z',
      '2024-05-01T09:15:00.000000Z',
    ]);
  });

  it('never plans a window that is not complete yet', () => {
    const windows = planBackfill({
      from: '2024-05-01T09:00:00Z',
      to: '2024-05-01T11:00:00Z',
      dbNow: '2024-05-01T09:11:00Z',
      lagSeconds: 60,
      windowMinutes: 5,
    });
    expect(windows.at(-1)?.hi).toBe('2024-05-01T09:10:00.000000Z');
  });
});
