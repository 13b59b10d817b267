/**
 * The guard that keeps secret values out of log output. Values become known
 * secrets when the config loader decrypts them or a secret is read; every log
 * line passes through `redactForLog` before it is written.
 */

const REDACTED = '<redacted>';
const MIN_SECRET_LENGTH = 4;

/** Keys whose values are never logged, whatever they hold. */
const SECRET_KEY =
  /^(password|passwd|pwd|masterpassword|master_password|secret|secretstring|secret_string|secretvalue|secret_value|secretbinary|credentials?|private_?key|secret_?access_?key|session_?token)$/i;

const knownSecrets = new Set<string>();

/** Registers values that must never reach a log line (short values are ignored: they would mask too much). */
export function registerSecret(...values: Array<string | undefined | null>): void {
  for (const value of values) {
    if (typeof value === 'string' && value.length >= MIN_SECRET_LENGTH) knownSecrets.add(value);
  }
}

/** Replaces every known secret inside a string. */
export function scrubString(text: string): string {
  let out = text;
  for (const secret of knownSecrets) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return out;
}

/** A JSON.stringify replacer: masks secret-named keys and known secret values anywhere. */
export function redactForLog(key: string, value: unknown): unknown {
  if (key && SECRET_KEY.test(key) && value !== undefined && value !== null) return REDACTED;
  if (typeof value === 'string') return scrubString(value);
  return value;
}
