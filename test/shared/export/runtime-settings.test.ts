import { describe, expect, it } from 'vitest';
import { exportConcurrency } from '../../../shared/export/runtime';

describe('EXPORT_CONCURRENCY', () => {
  it('is 4 unless set, and the number given otherwise', () => {
    expect(exportConcurrency(undefined)).toBe(4);
    expect(exportConcurrency('1')).toBe(1);
    expect(exportConcurrency('16')).toBe(16);
  });

  it('refuses what would start no worker (the run would do nothing and report no error)', () => {
    for (const value of ['0', 'four', '', '-2', '2.5']) {
      expect(() => exportConcurrency(value), value).toThrow(/EXPORT_CONCURRENCY: must be a positive integer/);
    }
  });
});
