import { describe, expect, it } from 'vitest';
import { redactSql } from '../../../../shared/export/masking';

/** Texts built to make a careless masker recurse or rescan: a log row can be as long as max_allowed_packet. */
const HOSTILE: Record<string, string> = {
  'REPLACE after REPLACE': `ALTER USER u IDENTIFIED BY 'a' ${"REPLACE 'b' ".repeat(20000)}`,
  'calls nested in calls': `SELECT ${'PASSWORD('.repeat(30000)}`,
  'SET PASSWORD FOR without =': `SET ${'PASSWORD FOR '.repeat(20000)}`,
  'a long word in a literal': `SELECT 'password=x ${'a'.repeat(200000)}'`,
  'scheme openers': `SELECT 'password ${'a://b:'.repeat(20000)}'`,
  'nested comments never closed': `SELECT 1 ${"/* password it's ".repeat(5000)}`,
  'escaped quotes': `SELECT 'password ${"\\'".repeat(50000)}'`,
};

describe('maskSql on hostile text', () => {
  it.each(Object.entries(HOSTILE))('masks %s without overflowing the stack, in linear time', (_name, sql) => {
    const started = process.cpuUsage();
    const masked = redactSql(sql);
    const { user, system } = process.cpuUsage(started);
    expect(typeof masked).toBe('string');
    // Linear work here is tens of milliseconds of CPU; quadratic work is minutes.
    expect((user + system) / 1000).toBeLessThan(3000);
  });
});
