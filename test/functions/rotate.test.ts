import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/rotate';
import { RotationStateError } from '../../shared/errors';
import type { RotationEvent } from '../../shared/rotation/event';
import {
  alternatingSecret,
  ENGINES,
  type Invoke,
  invoker,
  rotate,
  rotationDeps,
  secretValue,
  singleUserSecret,
  stagesOf,
  startRotation,
} from '../shared/rotation/support';
import { captureOutput } from '../support/capture';

/** Fails the first attempt right after setSecret succeeded, as a Lambda timeout would. */
function crashingAfterSetSecretOnce(invoke: Invoke): Invoke {
  let crashed = false;
  return async (event) => {
    await invoke(event);
    if (event.Step === 'setSecret' && !crashed) {
      crashed = true;
      throw new Error('simulated crash after setSecret');
    }
  };
}

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

  it('converges when the whole rotation is retried after a crash after setSecret', async () => {
    const { arn, username, password } = await singleUserSecret(engine);

    const result = await rotate(arn, { invoke: crashingAfterSetSecretOnce(invoker()), attempts: 3 });

    expect(result.attempts).toBe(2);
    const current = await secretValue(arn);
    expect(await engine.canLogin(username, current.password as string)).toBe(true);
    expect(await engine.canLogin(username, password)).toBe(false);
  });

  it('leaves AWSCURRENT working when testSecret fails', async () => {
    const { arn, username, password } = await singleUserSecret(engine);
    const invoke = invoker();
    // Something resets the password between setSecret and testSecret (a restore, an operator).
    const failing: Invoke = async (event) => {
      if (event.Step === 'testSecret') await engine.adminSetPassword(username, password);
      await invoke(event);
    };

    const error = await rotate(arn, { invoke: failing }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(RotationStateError);
    expect((await secretValue(arn)).password).toBe(password);
    expect(await engine.canLogin(username, password)).toBe(true);
    // AWSPENDING stays on the failed token, as Secrets Manager leaves it; resuming completes the rotation.
    const pendingToken = Object.entries(await stagesOf(arn)).find(([, stages]) =>
      stages.includes('AWSPENDING'),
    )?.[0];
    expect(pendingToken).toBeDefined();
    await rotate(arn, { token: pendingToken as string });
    const current = await secretValue(arn);
    expect(current.password).not.toBe(password);
    expect(await engine.canLogin(username, current.password as string)).toBe(true);
    expect(Object.values(await stagesOf(arn)).flat()).not.toContain('AWSPENDING');
  });

  it('logs in with AWSPREVIOUS when the database still has the previous password', async () => {
    const { arn, username, password } = await singleUserSecret(engine);
    await rotate(arn);
    await engine.adminSetPassword(username, password);

    await rotate(arn);

    const current = await secretValue(arn);
    expect(current.password).not.toBe(password);
    expect(await engine.canLogin(username, current.password as string)).toBe(true);
  });

  it('changes nothing when every step is replayed after a completed rotation', async () => {
    const { arn, username } = await singleUserSecret(engine);
    const { token } = await rotate(arn);
    const before = { stages: await stagesOf(arn), value: await secretValue(arn) };
    const invoke = invoker();

    for (const Step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const) {
      await invoke({ Step, SecretId: arn, ClientRequestToken: token });
    }

    expect(await stagesOf(arn)).toEqual(before.stages);
    expect(await secretValue(arn)).toEqual(before.value);
    expect(await engine.canLogin(username, before.value.password as string)).toBe(true);
  });

  it('completes when every step runs twice in a row', async () => {
    const { arn, username, password } = await singleUserSecret(engine);
    const token = randomUUID();
    await startRotation(arn, token);
    const invoke = invoker();

    for (const Step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const) {
      const event: RotationEvent = { Step, SecretId: arn, ClientRequestToken: token };
      await invoke(event);
      await invoke(event);
    }

    expect((await stagesOf(arn))[token]).toContain('AWSCURRENT');
    const current = await secretValue(arn);
    expect(await engine.canLogin(username, current.password as string)).toBe(true);
    expect(await engine.canLogin(username, password)).toBe(false);
  });
});

describe.each(ENGINES)('$engine alternating users', (engine) => {
  it('rotates three times: users alternate, AWSCURRENT and AWSPREVIOUS log in, the clone reads what the original could', async () => {
    const { arn, username } = await alternatingSecret(engine);
    const query = await engine.grantReadableTable(username);
    const expected = [`${username}_clone`, username, `${username}_clone`];

    for (const user of expected) {
      await rotate(arn);
      const current = await secretValue(arn);
      const previous = await secretValue(arn, 'AWSPREVIOUS');
      expect(current.username).toBe(user);
      expect(previous.username).not.toBe(user);
      expect(await engine.canLogin(user, current.password as string)).toBe(true);
      expect(await engine.canLogin(previous.username as string, previous.password as string)).toBe(true);
      expect(await engine.canRead(user, current.password as string, query)).toBe(true);
    }
  });

  it('converges when the whole rotation is retried after a crash after setSecret', async () => {
    const { arn, username, password } = await alternatingSecret(engine);

    const result = await rotate(arn, { invoke: crashingAfterSetSecretOnce(invoker()), attempts: 3 });

    expect(result.attempts).toBe(2);
    const current = await secretValue(arn);
    expect(current.username).toBe(`${username}_clone`);
    expect(await engine.canLogin(`${username}_clone`, current.password as string)).toBe(true);
    expect(await engine.canLogin(username, password)).toBe(true);
  });

  it('leaves AWSCURRENT working when testSecret fails', async () => {
    const { arn, username, password } = await alternatingSecret(engine);
    const invoke = invoker();
    const failing: Invoke = async (event) => {
      if (event.Step === 'testSecret')
        await engine.adminSetPassword(`${username}_clone`, 'Reset-by-someone-1');
      await invoke(event);
    };

    const error = await rotate(arn, { invoke: failing }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(RotationStateError);
    const current = await secretValue(arn);
    expect(current.username).toBe(username);
    expect(await engine.canLogin(username, password)).toBe(true);
  });

  it('changes nothing when every step is replayed after a completed rotation', async () => {
    const { arn } = await alternatingSecret(engine);
    const { token } = await rotate(arn);
    const before = { stages: await stagesOf(arn), value: await secretValue(arn) };
    const invoke = invoker();

    for (const Step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const) {
      await invoke({ Step, SecretId: arn, ClientRequestToken: token });
    }

    expect(await stagesOf(arn)).toEqual(before.stages);
    expect(await secretValue(arn)).toEqual(before.value);
    expect(await engine.canLogin(before.value.username as string, before.value.password as string)).toBe(
      true,
    );
  });
});

describe('the handler', () => {
  it('returns what each step did, and that a replayed step had nothing to do', async () => {
    const { arn } = await singleUserSecret(ENGINES[0] as (typeof ENGINES)[number]);
    const token = randomUUID();
    await startRotation(arn, token);
    const handler = makeHandler(rotationDeps());

    const first = await handler({ Step: 'createSecret', SecretId: arn, ClientRequestToken: token });
    const again = await handler({ Step: 'createSecret', SecretId: arn, ClientRequestToken: token });

    expect(first).toMatchObject({
      secretArn: arn,
      token,
      step: 'createSecret',
      engine: 'postgres',
      strategy: 'single-user',
      outcome: 'done',
    });
    expect(again.outcome).toBe('already-created');
  });

  it('passes the RotationToken on and never logs it', async () => {
    const { arn } = await singleUserSecret(ENGINES[1] as (typeof ENGINES)[number]);
    const token = randomUUID();
    const rotationToken = `rt-${randomUUID()}`;
    await startRotation(arn, token);
    const output = captureOutput();
    try {
      for (const Step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const) {
        await makeHandler(rotationDeps())({
          Step,
          SecretId: arn,
          ClientRequestToken: token,
          RotationToken: rotationToken,
        });
      }
    } finally {
      output.stop();
    }

    expect((await stagesOf(arn))[token]).toContain('AWSCURRENT');
    expect(output.text()).toContain(token);
    expect(output.text()).not.toContain(rotationToken);
  });
});
