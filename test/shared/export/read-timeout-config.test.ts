import { describe, expect, it } from 'vitest';
import { exportConfigSchema, resolveConfig } from '../../../shared/export/config';

/** `global/read-timeout-seconds`: validated like the other globals, in whole seconds, 1 to 900. */

const parse = (global: Record<string, string>) =>
  exportConfigSchema.safeParse({ global: { destination: 's3://bucket/prefix', ...global } });

describe('global/read-timeout-seconds', () => {
  it('is absent by default, leaving the sessions their default', () => {
    const result = parse({});
    expect(result.success).toBe(true);
    expect(resolveConfig(result.data as never).readTimeoutMs).toBeUndefined();
  });

  it('becomes milliseconds', () => {
    const result = parse({ 'read-timeout-seconds': '45' });
    expect(result.success).toBe(true);
    expect(resolveConfig(result.data as never).readTimeoutMs).toBe(45_000);
  });

  it.each(['0', '901', '1.5', 'ten', ''])('rejects %j, naming the parameter', (value) => {
    const result = parse({ 'read-timeout-seconds': value });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.path.join('/'))).toEqual(['global/read-timeout-seconds']);
  });
});
