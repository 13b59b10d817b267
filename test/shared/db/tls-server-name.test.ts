import { describe, expect, it } from 'vitest';
import { isTlsServerName } from '../../../shared/db/tls';
import { SecretFormatError } from '../../../shared/errors';
import { exportConfigSchema } from '../../../shared/export/config';
import { parseDatabaseSecret, parseMasterSecret } from '../../../shared/secret';

const base = { engine: 'mysql', host: 'db.example.com', username: 'app', password: 'Secret-value-1' };

function parseError(value: Record<string, unknown>): unknown {
  try {
    parseDatabaseSecret(JSON.stringify(value), 'AWSCURRENT of s1');
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('tlsServerName in a secret', () => {
  it('is optional, and kept as given', () => {
    expect(parseDatabaseSecret(JSON.stringify(base), 'v').tlsServerName).toBeUndefined();
    const name = 'mydb.abc123.eu-west-1.rds.amazonaws.com';
    expect(parseDatabaseSecret(JSON.stringify({ ...base, tlsServerName: name }), 'v').tlsServerName).toBe(
      name,
    );
    expect(
      parseMasterSecret(JSON.stringify({ username: 'a', password: 'p', tlsServerName: name }), 'm'),
    ).toMatchObject({ tlsServerName: name });
  });

  it.each([
    ['an IPv4 address', '10.0.0.5'],
    ['an IPv6 address', '::1'],
    ['an empty string', ''],
    ['a name with a space', 'db .example.com'],
    ['a URL', 'https://db.example.com'],
    ['a name and port', 'db.example.com:3306'],
    ['a number', 42],
  ])('rejects %s with a SecretFormatError naming the key', (_what, tlsServerName) => {
    const error = parseError({ ...base, tlsServerName });

    expect(error).toBeInstanceOf(SecretFormatError);
    expect((error as Error).message).toMatch(/tlsServerName must be a DNS name \(not an IP address\)/);
    expect((error as Error).message).not.toContain('Secret-value-1');
  });

  it('accepts DNS names only', () => {
    expect(['localhost', 'db.internal.example', 'a-b.c_d.example.', 'x'].every(isTlsServerName)).toBe(true);
    expect(
      ['127.0.0.1', '::ffff:127.0.0.1', '-db.example', `${'a'.repeat(64)}.example`].some(isTlsServerName),
    ).toBe(false);
  });
});

describe('clusters/<c>/tls-server-name', () => {
  const parse = (cluster: Record<string, string>) =>
    exportConfigSchema.safeParse({ global: { destination: 'file:///tmp/x' }, clusters: { c: cluster } });
  const byHost = { engine: 'mysql', host: '10.0.0.5', user: 'exporter', password: 'Pw-1', ssl: 'true' };

  it('goes with host parameters, as a DNS name', () => {
    expect(parse({ ...byHost, 'tls-server-name': 'db.internal.example' }).success).toBe(true);
    expect(parse({ ...byHost, 'tls-server-name': '10.0.0.5' }).error?.message).toContain(
      'must be a DNS name',
    );
  });

  it('is refused with secret-id, whose secret carries tlsServerName itself', () => {
    const result = parse({ engine: 'mysql', 'secret-id': 's1', 'tls-server-name': 'db.internal.example' });
    expect(result.error?.message).toContain("with secret-id, set the secret's tlsServerName");
  });
});
