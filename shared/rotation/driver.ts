import { randomUUID } from 'node:crypto';
import {
  DescribeSecretCommand,
  RotateSecretCommand,
  type SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { RotationStateError } from '../errors';
import type { Logger } from '../log';
import { ROTATION_STEPS, type RotationEvent } from './event';

/** A Lambda ARN that exists nowhere: RotateSecret then sets up the pending version and stops. */
export const PLACEHOLDER_ROTATION_LAMBDA_ARN =
  'arn:aws:lambda:us-east-1:000000000000:function:local-rotation-driver';

export interface DriveRotationOptions {
  secretsManager: SecretsManagerClient;
  secretId: string;
  /** Runs one step, like Secrets Manager invoking the rotation Lambda. */
  invoke: (event: RotationEvent) => Promise<unknown>;
  /** Whole-sequence attempts before giving up (Secrets Manager also retries). Default 3. */
  attempts?: number;
  /** Resume the rotation that this token started, instead of starting a new one. */
  token?: string;
  /** Lambda named to RotateSecret; the default exists nowhere. */
  rotationLambdaArn?: string;
  logger?: Logger;
}

export interface DriveRotationResult {
  token: string;
  /** Attempts made, including the successful one. */
  attempts: number;
  durationMs: number;
}

/**
 * Rotates a secret the way Secrets Manager does: creates the value-less AWSPENDING
 * version for a new token (RotateSecret, which fails afterwards because no Lambda
 * is behind the placeholder ARN), runs the four steps in order with that token,
 * repeats the whole sequence after a failure, and finally removes AWSPENDING from
 * the finished version (Secrets Manager does that itself; emulators do not).
 *
 * After the last failed attempt AWSPENDING stays where it is, as Secrets Manager
 * leaves it: the database may already hold the pending password, and resuming
 * with the same `token` completes the rotation.
 */
export async function driveRotation(options: DriveRotationOptions): Promise<DriveRotationResult> {
  const started = Date.now();
  const { secretsManager: sm, secretId, logger } = options;
  const attempts = options.attempts ?? 3;
  const token = options.token ?? randomUUID();
  if (!options.token) await startRotation(options, token);

  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      for (const step of ROTATION_STEPS) {
        await options.invoke({ Step: step, SecretId: secretId, ClientRequestToken: token });
      }
      await clearPending(sm, secretId, token);
      const result = { token, attempts: attempt, durationMs: Date.now() - started };
      logger?.info('Rotation completed', { secretId, ...result });
      return result;
    } catch (error) {
      lastError = error;
      logger?.warn('Rotation attempt failed', { secretId, token, attempt, error });
    }
  }
  throw new RotationStateError(
    `Rotation of ${secretId} failed after ${attempts} attempts; AWSPENDING stays on ${token} to resume`,
    { cause: lastError },
  );
}

async function startRotation(options: DriveRotationOptions, token: string): Promise<void> {
  const { secretsManager: sm, secretId } = options;
  const before = await sm.send(new DescribeSecretCommand({ SecretId: secretId }));
  const days = before.RotationRules?.AutomaticallyAfterDays;
  try {
    await sm.send(
      new RotateSecretCommand({
        SecretId: secretId,
        ClientRequestToken: token,
        RotationLambdaARN: options.rotationLambdaArn ?? PLACEHOLDER_ROTATION_LAMBDA_ARN,
        // Rotation counts as enabled only with a schedule; keep the secret's own if it has one.
        ...(days || before.RotationRules?.ScheduleExpression
          ? {}
          : { RotationRules: { AutomaticallyAfterDays: 30 } }),
      }),
    );
  } catch (error) {
    // Expected: the version is set up, then invoking the placeholder Lambda fails.
    const after = await sm.send(new DescribeSecretCommand({ SecretId: secretId }));
    if (!after.VersionIdsToStages?.[token]?.includes('AWSPENDING')) {
      throw new RotationStateError(`RotateSecret did not set up AWSPENDING for ${secretId}`, {
        cause: error,
      });
    }
  }
}

/** Removes AWSPENDING from the finished version (a no-op where Secrets Manager already did). */
async function clearPending(sm: SecretsManagerClient, secretId: string, token: string): Promise<void> {
  const after = await sm.send(new DescribeSecretCommand({ SecretId: secretId }));
  if (after.VersionIdsToStages?.[token]?.includes('AWSPENDING')) {
    await sm.send(
      new UpdateSecretVersionStageCommand({
        SecretId: secretId,
        VersionStage: 'AWSPENDING',
        RemoveFromVersionId: token,
      }),
    );
  }
}
