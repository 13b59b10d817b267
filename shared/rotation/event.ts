import { EventError } from '../errors';
import { registerSecret } from '../log';
import * as z from '../validation';

export const ROTATION_STEPS = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;
export type RotationStep = (typeof ROTATION_STEPS)[number];

/** What Secrets Manager sends the rotation function, once per step. */
export interface RotationEvent {
  Step: RotationStep;
  SecretId: string;
  ClientRequestToken: string;
  RotationToken?: string;
}

// Secret names, ARNs and tokens are printable ASCII; anything else is a forged or corrupted event.
const printable = (min: number, max: number) =>
  z
    .string({ message: 'must be a string' })
    .check(
      z.minLength(min, `must be at least ${min} characters`),
      z.maxLength(max, `must be at most ${max} characters`),
      z.regex(/^[\x21-\x7e]*$/, 'must contain only printable characters without spaces'),
    );

const schema = z.looseObject({
  Step: z.enum(ROTATION_STEPS, { message: `must be one of ${ROTATION_STEPS.join(', ')}` }),
  SecretId: printable(1, 2048),
  ClientRequestToken: printable(32, 64),
  RotationToken: z.optional(printable(1, 4096)),
});

/** True for an event that asks for an action (preflight) rather than a rotation step. */
export function isActionEvent(event: unknown): boolean {
  return event !== null && typeof event === 'object' && Object.hasOwn(event, 'action');
}

/** Validates an event; the error names every bad field (never echoing its value). */
export function parseRotationEvent(event: unknown): RotationEvent {
  if (event === null || typeof event !== 'object' || Array.isArray(event)) {
    throw new EventError('Rotation event must be a JSON object');
  }
  const result = schema.safeParse(event);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const field = issue.path.map(String).join('.');
      const missing = (event as Record<string, unknown>)[field] === undefined;
      return `${field} ${missing ? 'is missing' : issue.message}`;
    });
    throw new EventError(`Invalid rotation event: ${problems.join('; ')}`);
  }
  const { Step, SecretId, ClientRequestToken, RotationToken } = result.data;
  // Secrets Manager marks the rotation token sensitive: it must not reach a log.
  registerSecret(RotationToken);
  return RotationToken === undefined
    ? { Step, SecretId, ClientRequestToken }
    : { Step, SecretId, ClientRequestToken, RotationToken };
}
