import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

/** PostgreSQL's own default, and the floor the product accepts. */
export const SCRAM_MIN_ITERATIONS = 4096;

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password, computed here so
 * that only the verifier (never the password) travels to the server and its logs.
 * This is what psql's `\password` sends.
 *
 * Format: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64).
 */
export function scramSha256Verifier(
  password: string,
  options: { iterations?: number; salt?: Buffer } = {},
): string {
  const iterations = options.iterations ?? SCRAM_MIN_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < SCRAM_MIN_ITERATIONS) {
    throw new RangeError(`SCRAM iterations must be an integer of at least ${SCRAM_MIN_ITERATIONS}`);
  }
  const salt = options.salt ?? randomBytes(16);
  const salted = pbkdf2Sync(saslPrepared(password), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/**
 * PostgreSQL before 10 knows no SCRAM: its stored form is `md5` + md5(password + username).
 */
export function postgresMd5Verifier(password: string, username: string): string {
  return `md5${createHash('md5')
    .update(password + username)
    .digest('hex')}`;
}

/** The mysql_native_password hash: `*` + upper-case hex of SHA1(SHA1(password)). */
export function mysqlNativePasswordHash(password: string): string {
  const once = createHash('sha1').update(password, 'utf8').digest();
  return `*${createHash('sha1').update(once).digest('hex').toUpperCase()}`;
}

// PostgreSQL applies SASLprep to the password before hashing. Printable ASCII (all that
// GetRandomPassword produces) is unchanged by it; for other text NFKC normalisation is
// its main effect, so that is applied (exotic mappings such as non-ASCII spaces are not).
function saslPrepared(password: string): string {
  return /^[\x20-\x7e]*$/.test(password) ? password : password.normalize('NFKC');
}
