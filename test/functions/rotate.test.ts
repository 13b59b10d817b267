import { describe, expect, it } from 'vitest';
import { ENGINES, rotate, secretValue, singleUserSecret } from './rotation-support';

describe.each(ENGINES)('$engine single user', (engine) => {
  it('rotates three times in a row; each time AWSCURRENT logs in and the old password is refused', async () => {
    const { arn, username, password } = await singleUserSecret(engine, { note: 'kept' });
    let old = password;
    for (let i = 0; i < 3; i++) {
      await rotate(arn);
      const current = await secretValue(arn);
      expect(current.username).toBe(username);
      expect(current.note).toBe('kept');
      expect(current.password).not.toBe(old);
      expect(await engine.canLogin(username, current.password as string)).toBe(true);
      expect(await engine.canLogin(username, old)).toBe(false);
      old = current.password as string;
    }
  });
});
