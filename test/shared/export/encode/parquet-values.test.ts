import { describe, expect, it } from 'vitest';
import {
  int64Compact,
  timestampMicros,
  ValueMismatch,
} from '../../../../shared/export/encode/parquet-values';

/** Microseconds of an instant computed another way: Date.UTC for the seconds, the fraction's digits scaled. */
function expectedMicros(
  y: number,
  mo: number,
  d: number,
  h: number,
  mi: number,
  s: number,
  fraction: string,
) {
  const seconds = BigInt(Date.UTC(y, mo - 1, d, h, mi, s)) / 1000n;
  return seconds * 1_000_000n + BigInt(fraction.padEnd(6, '0') || '0');
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

describe('timestampMicros', () => {
  it('reads the sessions forms with any number of fraction digits, as Date.UTC does', () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 20_000; i++) {
      const [y, mo, d] = [1000 + random(9000), 1 + random(12), 1 + random(28)];
      const [h, mi, s] = [random(24), random(60), random(60)];
      const places = random(7);
      const fraction = Array.from({ length: places }, () => random(10)).join('');
      const text = `${pad(y, 4)}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:${pad(s)}${places ? `.${fraction}` : ''}Z`;
      expect(timestampMicros(text), text).toBe(expectedMicros(y, mo, d, h, mi, s, fraction));
    }
  });

  it('takes PostgreSQL forms that drop trailing zeros, and the last day of February in a leap year', () => {
    expect(timestampMicros('2024-02-29T23:59:59.5Z')).toBe(expectedMicros(2024, 2, 29, 23, 59, 59, '5'));
    expect(timestampMicros('2024-03-01T00:00:00Z')).toBe(expectedMicros(2024, 3, 1, 0, 0, 0, ''));
    expect(timestampMicros('1969-12-31T23:59:59.99Z')).toBe(-10_000n);
  });

  it.each([
    '2024-05-01T12:00:00.Z',
    '2023-02-29T00:00:00.1Z',
    '2024-05-01T24:00:00.1Z',
    '2024-05-01T12:00:00.1x3Z',
    '2024-05-01T12:00:00+1Z',
    '2024-05-01T12:00:00.1234567Z',
  ])('refuses %s', (text) => {
    expect(() => timestampMicros(text)).toThrow(ValueMismatch);
  });
});

describe('int64Compact', () => {
  it.each([
    ['123', 123],
    ['-42', -42],
    ['+7', 7],
    ['007', 7],
    ['999999999999999', 999_999_999_999_999],
    [-5, -5],
    [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  ])('takes %s as the number %s', (value, expected) => {
    expect(int64Compact(value)).toBe(expected);
  });

  it.each([
    ['9223372036854775807', 9_223_372_036_854_775_807n],
    ['-9223372036854775808', -9_223_372_036_854_775_808n],
    ['1000000000000000', 1_000_000_000_000_000n],
    [12n, 12n],
  ])('takes %s as the bigint %s', (value, expected) => {
    expect(int64Compact(value)).toBe(expected);
  });

  it.each([
    '',
    '-',
    '+',
    '1e3',
    '0x10',
    ' 1',
    '1 ',
    '1:',
    '/1',
    '1.0',
    '9223372036854775808',
    1.5,
    Number.MAX_SAFE_INTEGER + 1,
  ])('refuses %s', (value) => {
    expect(() => int64Compact(value)).toThrow(ValueMismatch);
  });
});
