import { Metrics } from '@aws-lambda-powertools/metrics';
import { rdsClient, secretsManagerClient } from '../shared/aws/clients';
import { lazy } from '../shared/lazy';
import { createLogger } from '../shared/log';
import { isActionEvent } from '../shared/rotation/event';
import type { PreflightReport, PreflightRequest } from '../shared/rotation/preflight';
import { passwordPolicySource } from '../shared/rotation/settings';
import { type RotationDeps, runRotationStep, type StepReport } from '../shared/rotation/steps';

// An operator's preflight is rare: its probes load when one is asked for, not at every rotation's cold start.
const preflight = lazy(() => import('../shared/rotation/preflight'));

/**
 * The rotation Lambda attached to database secrets: Secrets Manager invokes it
 * once per step (createSecret, setSecret, testSecret, finishSecret) for every
 * supported engine and both strategies. It returns what the step did; a failed
 * step throws, so that Secrets Manager retries the rotation. An operator's
 * `{ "action": "preflight", "SecretId": ... }` checks a secret and changes nothing.
 */
export function makeHandler(deps: RotationDeps): RotationHandler {
  return (async (event: unknown, context?: LambdaContext) =>
    isActionEvent(event)
      ? (await preflight()).runPreflight(event, {
          ...deps,
          functionArn: context?.invokedFunctionArn,
          functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
        })
      : runRotationStep(event, deps)) as RotationHandler;
}

type LambdaContext = { invokedFunctionArn?: string };

/** Typed by the event: a preflight request gets a report, anything else is a rotation step. */
export interface RotationHandler {
  (event: PreflightRequest, context?: LambdaContext): Promise<PreflightReport>;
  (event: unknown, context?: LambdaContext): Promise<StepReport>;
}

/** Dependencies built once per container. */
export function defaultDeps(): RotationDeps {
  return {
    secretsManager: secretsManagerClient(),
    rds: rdsClient,
    passwordPolicy: passwordPolicySource(),
    logger: createLogger('secret-rotation'),
    metrics: new Metrics({
      namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'SecretRotation',
      serviceName: 'secret-rotation',
    }),
  };
}

export const handler = makeHandler(defaultDeps());
