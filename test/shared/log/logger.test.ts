import { describe, expect, it } from 'vitest';
import { createLogger, registerSecret } from '../../../shared/log';
import { uniqueName } from '../../stack/fixtures';
import { captureOutput } from '../../support/capture';

describe('createLogger', () => {
  it('writes structured JSON lines with the service name and the Lambda context', () => {
    const output = captureOutput();
    const logger = createLogger('test-service');
    logger.addContext({
      functionName: 'fn',
      awsRequestId: 'req-1',
      invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:fn',
      memoryLimitInMB: '128',
      functionVersion: '$LATEST',
    } as never);
    logger.info('step finished', { step: 'setSecret' });
    output.stop();

    const line = JSON.parse(output.text().trim().split('\n').at(-1) ?? '{}');
    expect(line).toMatchObject({
      level: 'INFO',
      message: 'step finished',
      service: 'test-service',
      step: 'setSecret',
    });
    expect(line.function_request_id).toBe('req-1');
  });

  it('never writes a registered secret or a password-named attribute, even inside errors', () => {
    const secret = `hunter2-${uniqueName('pw')}`;
    const other = `other-${uniqueName('pw')}`;
    registerSecret(secret);
    const output = captureOutput();
    const logger = createLogger('test-service');

    logger.info(`connecting with ${secret}`);
    logger.warn('attributes', { password: other, nested: { value: `x${secret}y` } });
    logger.error('failed', new Error(`login failed for ${secret}`, { cause: new Error(secret) }));
    output.stop();

    const text = output.text();
    expect(text).toContain('<redacted>');
    expect(text).toContain('login failed for');
    expect(text).not.toContain(secret);
    expect(text).not.toContain(other);
  });
});
