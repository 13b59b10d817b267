import { describe, expect, it } from 'vitest';
import {
  compactTimestamp,
  dayOf,
  floorToGrid,
  formatTimestamp,
  isoFromDatabase,
  parseTimestamp,
  sqlTimestamp,
  toMicros,
} from '../../../../shared/export/sources/time';

describe('timestamp arithmetic on strings', () => {
  it('round-trips microseconds exactly, including leap days and far dates', () => {
    for (const text of [
      '1970-01-01T00:00:00.000000Z',
      '2024-02-29T23:59:59.999999Z',
      '2000-03-01T00:00:00.000001Z',
      '1969-12-31T23:59:59.999999Z',
      '2199-12-31T23:59:59.999999Z',
    ]) {
      expect(formatTimestamp(toMicros(text))).toBe(text);
    }
  });

  it('applies offsets and accepts a space, no seconds, and up to nine fraction digits', () => {
    expect(formatTimestamp(toMicros('2024-05-01T02:00:00+02:00'))).toBe('2024-05-01T00:00:00.000000Z');
    expect(formatTimestamp(toMicros('2024-05-01 12:30'))).toBe('2024-05-01T12:30:00.000000Z');
    expect(formatTimestamp(toMicros('2024-05-01T12:30:00.123456000Z'))).toBe('2024-05-01T12:30:00.123456Z');
  });

  it('rejects malformed timestamps', () => {
    for (const bad of [
      '2024-02-30T00:00:00Z',
      '2023-02-29T00:00:00Z',
      '2024-13-01T00:00:00Z',
      '2024-05-01T24:00:00Z',
      '2024-05-01',
      'yesterday',
      '2024-05-01T00:00:00.1234567Z',
      '2024-05-01T00:00:00+25:00',
    ]) {
      expect(parseTimestamp(bad), bad).toBeUndefined();
    }
  });

  it('formats keys, partitions and SQL literals', () => {
    const t = toMicros('2024-12-31T23:55:00.000000Z');
    expect(compactTimestamp(t)).toBe('20241231T235500Z');
    expect(dayOf(t)).toBe('2024-12-31');
    expect(sqlTimestamp(t + 7)).toBe('2024-12-31 23:55:00.000007');
  });

  it('floors to the grid that starts at midnight UTC', () => {
    expect(formatTimestamp(floorToGrid(toMicros('2024-05-01T10:07:59.999999Z'), 5))).toBe(
      '2024-05-01T10:05:00.000000Z',
    );
    expect(formatTimestamp(floorToGrid(toMicros('2024-05-01T10:05:00.000000Z'), 5))).toBe(
      '2024-05-01T10:05:00.000000Z',
    );
    expect(formatTimestamp(floorToGrid(toMicros('2024-05-01T23:59:00Z'), 1440))).toBe(
      '2024-05-01T00:00:00.000000Z',
    );
  });

  it('rewrites database timestamps as ISO-8601 UTC keeping the source precision', () => {
    expect(isoFromDatabase('2024-05-01 12:00:00.123456')).toBe('2024-05-01T12:00:00.123456Z');
    expect(isoFromDatabase('2024-05-01 12:00:00')).toBe('2024-05-01T12:00:00Z');
    expect(isoFromDatabase('2024-05-01 12:00:00.123+00')).toBe('2024-05-01T12:00:00.123Z');
    expect(isoFromDatabase('2024-05-01')).toBe('2024-05-01');
    expect(isoFromDatabase('0000-00-00 00:00:00')).toBe('0000-00-00 00:00:00');
  });
});
