/**
 * The Lambda client and the one command the exporter sends, loaded on first use
 * (a scheduled run's fan-out): naming only them keeps the rest of the package out
 * of the bundle.
 */
export { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
