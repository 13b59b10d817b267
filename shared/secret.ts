import { isTlsServerName, TLS_SERVER_NAME_PROBLEM, tlsModeFrom } from './db/tls';
import { ConfigError, SecretFormatError } from './errors';
import { registerSecret } from './log';
import * as z from './validation';

/**
 * A database secret's JSON value, in the AWS convention. Keys this product does
 * not use are kept, so that a new version carries them over unchanged.
 */
export interface DatabaseSecret {
  engine: string;
  host: string;
  username: string;
  password: string;
  port?: number;
  dbname?: string;
  ssl?: boolean | string;
  /** The name the database's certificate carries, when `host` is an alias of it (see shared/db/connect.ts). */
  tlsServerName?: string;
  masterarn?: string;
  /** PostgreSQL alternating users: the NOLOGIN role both users belong to and create objects as. */
  ownerRole?: string;
  [key: string]: unknown;
}

// Checked, not trimmed: the value is used exactly as stored.
const NON_EMPTY = 'must be a non-empty string';
const nonEmpty = z.string({ error: NON_EMPTY }).check(z.regex(/\S/, NON_EMPTY));
const PORT_PROBLEM = 'must be a port number';
const port = z.pipe(
  z.pipe(
    z.union([z.number(), z.string()], { error: PORT_PROBLEM }),
    z.transform((v: number | string) =>
      typeof v === 'number' ? v : /^\d{1,5}$/.test(v) ? Number(v) : Number.NaN,
    ),
  ),
  z.int({ error: PORT_PROBLEM }).check(z.minimum(1, PORT_PROBLEM), z.maximum(65535, PORT_PROBLEM)),
);

const databaseSecretSchema = z.looseObject({
  engine: nonEmpty,
  host: nonEmpty,
  username: nonEmpty,
  password: z.string({ error: NON_EMPTY }).check(z.minLength(1, NON_EMPTY)),
  port: z.optional(port),
  dbname: z.optional(z.string({ error: 'must be a string' })),
  ssl: z.optional(z.union([z.boolean(), z.string()], { error: 'must be true, false or absent' })),
  tlsServerName: z.optional(
    z.string({ error: TLS_SERVER_NAME_PROBLEM }).check(z.refine(isTlsServerName, TLS_SERVER_NAME_PROBLEM)),
  ),
  masterarn: z.optional(nonEmpty),
  ownerRole: z.optional(nonEmpty),
});

/** A master secret may be RDS-managed: only username and password, the rest from the RDS API. */
const masterSecretSchema = z.partial(databaseSecretSchema, { engine: true, host: true });

export type MasterSecret = z.infer<typeof masterSecretSchema>;

/**
 * Parses a secret's value; `what` names it in errors ("AWSCURRENT of <arn>").
 * The password is registered with the log guard before anything else can fail.
 * Errors name the missing or malformed keys, never their values.
 */
export function parseDatabaseSecret(text: string | undefined, what: string): DatabaseSecret {
  return parseWith(databaseSecretSchema, text, what) as DatabaseSecret;
}

export function parseMasterSecret(text: string | undefined, what: string): MasterSecret {
  return parseWith(masterSecretSchema, text, what);
}

function parseWith<S extends z.ZodMiniType>(schema: S, text: string | undefined, what: string): z.infer<S> {
  if (text === undefined) throw new SecretFormatError(`Secret ${what} has no SecretString`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    registerSecret(text);
    throw new SecretFormatError(`Secret ${what} is not valid JSON`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new SecretFormatError(`Secret ${what} is not a JSON object`);
  }
  const password = (raw as { password?: unknown }).password;
  if (typeof password === 'string') registerSecret(password);
  const result = schema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const key = issue.path.map(String).join('.') || '(value)';
      const missing = (raw as Record<string, unknown>)[key] === undefined;
      return `${key} ${missing ? 'is missing' : issue.message}`;
    });
    throw new SecretFormatError(`Secret ${what} is malformed: ${problems.join('; ')}`);
  }
  const secret = result.data as { ssl?: unknown };
  try {
    tlsModeFrom(secret.ssl);
  } catch (error) {
    if (error instanceof ConfigError)
      throw new SecretFormatError(`Secret ${what} is malformed: ssl must be true, false or absent`);
    throw error;
  }
  return result.data;
}
