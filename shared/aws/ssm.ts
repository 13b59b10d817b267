/**
 * The SSM client class alone, loaded on first use by clients.ts: naming only it
 * keeps the rest of the package out of the bundle.
 */
export { SSMClient } from '@aws-sdk/client-ssm';
