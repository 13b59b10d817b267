import { Metrics } from '@aws-lambda-powertools/metrics';
import { secretsManagerClient } from '../shared/aws/clients';
import { createLogger, type Logger } from '../shared/log';
import {
  checkRotationHealth,
  publishRotationHealth,
  type RotationHealthOptions,
  type RotationHealthReport,
} from '../shared/rotation/health';

export interface HealthDeps extends RotationHealthOptions {
  metrics: Metrics;
  logger: Logger;
}

/**
 * The hourly rotation health check: for every secret that the rotation function
 * rotates, the age of its last rotation and whether it is overdue or stuck, as
 * metrics the alarms watch and one log line per secret in trouble.
 */
export function makeHandler(deps: HealthDeps) {
  return async (): Promise<RotationHealthReport> => {
    const report = await checkRotationHealth(deps);
    publishRotationHealth(report, deps.metrics);
    for (const secret of report.secrets.filter((s) => s.overdue || s.stuck)) {
      deps.logger.warn('Secret rotation needs attention', { ...secret });
    }
    deps.logger.info('Rotation health checked', {
      secrets: report.secrets.length,
      overdue: report.secrets.filter((s) => s.overdue).length,
      stuck: report.secrets.filter((s) => s.stuck).length,
      calls: report.calls,
    });
    return report;
  };
}

export function defaultDeps(): HealthDeps {
  return {
    secretsManager: secretsManagerClient(),
    rotationFunctionArn: process.env.ROTATION_FUNCTION_ARN || undefined,
    metrics: new Metrics({
      namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'SecretRotation',
      serviceName: 'secret-rotation',
    }),
    logger: createLogger('secret-rotation-health'),
  };
}

export const handler = makeHandler(defaultDeps());
