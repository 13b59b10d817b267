import { fail, type PreflightCheck, pass, warn } from './preflight-check';
import type { PasswordPolicy } from './settings';

/**
 * Whether the configured password policy can produce passwords that the engine,
 * and what connects to it, accept. Pure: the server's own rules (MySQL's
 * validate_password, MariaDB's strict_password_validation) are judged where the
 * server is asked (preflight-mysql.ts).
 */

// GetRandomPassword's character classes.
const CLASSES = {
  lowercase: 'abcdefghijklmnopqrstuvwxyz',
  uppercase: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
  numbers: '0123456789',
  punctuation: '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~',
} as const;

type ClassName = keyof typeof CLASSES;

/** Why each default exclusion matters, for the warning when an override drops it. */
const BREAKS: Record<string, string> = {
  '/': 'connection URLs',
  '@': 'connection URLs (user:password@host)',
  ':': "connection URLs and PostgreSQL's .pgpass",
  '"': 'quoting in shells and client configuration',
  "'": 'quoting in shells and SQL scripts',
  '\\': 'escaping in shells, JSON tools and SQL scripts',
};

/** The character classes a policy lets GetRandomPassword use, minus its excluded characters. */
export function usableClasses(policy: PasswordPolicy, exclude: string): Record<ClassName, string> {
  const keep = (name: ClassName, excluded: boolean) =>
    excluded ? '' : [...CLASSES[name]].filter((c) => !exclude.includes(c)).join('');
  return {
    lowercase: keep('lowercase', policy.excludeLowercase),
    uppercase: keep('uppercase', policy.excludeUppercase),
    numbers: keep('numbers', policy.excludeNumbers),
    punctuation: keep('punctuation', policy.excludePunctuation),
  };
}

export function checkPasswordPolicy(
  policy: PasswordPolicy,
  engineDefaultExclusions: string,
  engine: string,
): PreflightCheck {
  const name = 'password-policy';
  const exclude = policy.excludeCharacters ?? engineDefaultExclusions;
  const classes = usableClasses(policy, exclude);
  const included = (Object.keys(classes) as ClassName[]).filter((c) => {
    const flag = {
      lowercase: policy.excludeLowercase,
      uppercase: policy.excludeUppercase,
      numbers: policy.excludeNumbers,
      punctuation: policy.excludePunctuation,
    }[c];
    return !flag;
  });
  const emptied = included.filter((c) => classes[c] === '');
  const alphabet = Object.values(classes).join('');
  if (alphabet.length === 0) {
    return fail(
      name,
      'EXCLUDE_CHARACTERS and the EXCLUDE_* flags leave no character to generate passwords from',
      'Exclude fewer characters (EXCLUDE_CHARACTERS) or clear an EXCLUDE_* flag',
    );
  }
  if (policy.requireEachIncludedType && emptied.length > 0) {
    return fail(
      name,
      `REQUIRE_EACH_INCLUDED_TYPE is on but EXCLUDE_CHARACTERS removes every ${emptied.join(', ')} character: GetRandomPassword cannot satisfy it`,
      `Set EXCLUDE_${emptied[0]?.toUpperCase()}=true, or exclude fewer characters`,
    );
  }
  if (included.length > policy.length) {
    return fail(
      name,
      `PASSWORD_LENGTH ${policy.length} is shorter than the ${included.length} character types it must contain`,
      'Raise PASSWORD_LENGTH',
    );
  }
  const risky = [...engineDefaultExclusions].filter((c) => alphabet.includes(c));
  if (risky.length > 0) {
    const why = [...new Set(risky.map((c) => BREAKS[c] ?? 'client tooling'))].join('; ');
    return warn(
      name,
      `Generated passwords may contain ${risky.map((c) => JSON.stringify(c)).join(' ')}, which the rotation handles but which break ${why} for clients that build them by hand (EXCLUDE_CHARACTERS overrides the ${engine} default)`,
      `Add ${risky.join('')} to EXCLUDE_CHARACTERS unless every client escapes passwords`,
    );
  }
  return pass(
    name,
    `${policy.length} characters from ${alphabet.length} symbols (${included.join(', ')}), excluding ${JSON.stringify(exclude)}`,
  );
}
