import { describe, expect, it } from 'vitest';
import { SecretFormatError } from '../../../shared/errors';
import { alternateUsername, originalUsername } from '../../../shared/rotation/steps';
import { parseDatabaseSecret, parseMasterSecret } from '../../../shared/secret';

const base = { engine: 'postgres', host: 'db.internal', username: 'app', password: 'Secret-value-1' };

describe('parseDatabaseSecret', () => {
  it('keeps keys it does not know and reads a port given as a string', () => {
    const secret = parseDatabaseSecret(JSON.stringify({ ...base, port: '6432', proxy: { pool: 3 } }), 'v1');
    expect(secret).toMatchObject({ ...base, port: 6432, proxy: { pool: 3 } });
  });

  it.each([
    ['[]', /is not a JSON object/],
    ['"text"', /is not a JSON object/],
    ['{"engine":', /is not valid JSON/],
    [JSON.stringify({ ...base, username: '  ' }), /username must be a non-empty string/],
    [JSON.stringify({ ...base, host: undefined }), /host is missing/],
    [JSON.stringify({ ...base, port: 70000 }), /port must be a port number/],
    [JSON.stringify({ ...base, ssl: 'yes' }), /ssl must be true, false or absent/],
    [JSON.stringify({ ...base, ssl: 1 }), /ssl must be true, false or absent/],
    [JSON.stringify({ ...base, engine: 7 }), /engine must be a non-empty string/],
    [JSON.stringify({ ...base, password: 42 }), /password must be a non-empty string/],
    [JSON.stringify({ ...base, ownerRole: '' }), /ownerRole must be a non-empty string/],
    [JSON.stringify({ ...base, ownerRole: ['owner'] }), /ownerRole must be a non-empty string/],
  ])('rejects %s with a SecretFormatError naming the key', (text, message) => {
    const error = (() => {
      try {
        parseDatabaseSecret(text, 'AWSCURRENT of s1');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(SecretFormatError);
    expect((error as Error).message).toMatch(/^Secret AWSCURRENT of s1 /);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('Secret-value-1');
  });
});

describe('parseMasterSecret', () => {
  it('accepts an RDS-managed secret with only username and password', () => {
    expect(parseMasterSecret('{"username":"admin","password":"Master-pw-1"}', 'm')).toEqual({
      username: 'admin',
      password: 'Master-pw-1',
    });
  });
});

describe('alternating user names', () => {
  it('switch between app and app_clone, and name app as the original either way', () => {
    expect(alternateUsername('app')).toBe('app_clone');
    expect(alternateUsername('app_clone')).toBe('app');
    expect(originalUsername('app_clone')).toBe('app');
    expect(originalUsername('app')).toBe('app');
  });
});
