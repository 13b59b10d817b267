import { Metrics } from '@aws-lambda-powertools/metrics';
import { rdsClient, secretsManagerClient } from '../shared/aws/clients';
import { createLogger } from '../shared/log';
import { passwordPolicySource } from '../shared/rotation/settings';
import { type RotationDeps, runRotationStep, type StepReport } from '../shared/rotation/steps';

/**
 * The rotation Lambda attached to database secrets: Secrets Manager invokes it
 * once per step (createSecret, setSecret, testSecret, finishSecret) for every
 * supported engine and both strategies. It returns what the step did; a failed
 * step throws, so that Secrets Manager retries the rotation.
 */
export function makeHandler(deps: RotationDeps) {
  return (event: unknown): Promise<StepReport> => runRotationStep(event, deps);
}

/** Dependencies built once per container. */
export function defaultDeps(): RotationDeps {
  return {
    secretsManager: secretsManagerClient(),
    rds: rdsClient(),
    passwordPolicy: passwordPolicySource(),
    logger: createLogger('secret-rotation'),
    metrics: new Metrics({
      namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'SecretRotation',
      serviceName: 'secret-rotation',
    }),
  };
}

export const handler = makeHandler(defaultDeps());
