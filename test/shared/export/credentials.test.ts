import { describe, expect, it } from 'vitest';
import { DEFAULT_SECRET_CACHE_MS, secretCacheTtlMs } from '../../../shared/export/credentials';

describe('EXPORT_SECRET_CACHE_TTL_SECONDS', () => {
  it('is the default unless set, and seconds otherwise', () => {
    expect(secretCacheTtlMs(undefined)).toBe(DEFAULT_SECRET_CACHE_MS);
    expect(secretCacheTtlMs('900')).toBe(900_000);
    expect(secretCacheTtlMs('0')).toBe(0);
  });

  it('refuses what is not a number of seconds, rather than caching nothing without a word', () => {
    for (const value of ['15m', '900s', '', '-1', 'Infinity']) {
      expect(() => secretCacheTtlMs(value), value).toThrow(
        /EXPORT_SECRET_CACHE_TTL_SECONDS: must be a non-negative number of seconds/,
      );
    }
  });
});
