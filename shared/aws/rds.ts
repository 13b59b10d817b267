/**
 * The RDS client class alone, loaded on first use by clients.ts: naming only it
 * keeps the rest of the package out of the bundle.
 */
export { RDSClient } from '@aws-sdk/client-rds';
