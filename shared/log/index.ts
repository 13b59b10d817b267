import { Logger } from '@aws-lambda-powertools/logger';
import { redactForLog } from './redact';

export { registerSecret, scrubString } from './redact';

/**
 * Creates the structured JSON logger of one function. Every line goes through
 * the secret guard, so a password that slips into a message, an error or an
 * attribute is masked before it is written.
 */
export function createLogger(serviceName: string): Logger {
  return new Logger({
    serviceName,
    logLevel: (process.env.LOG_LEVEL as 'INFO' | undefined) ?? 'INFO',
    jsonReplacerFn: redactForLog,
  });
}

export type { Logger };
