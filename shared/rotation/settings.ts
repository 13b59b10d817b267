import type { SSMClient } from '@aws-sdk/client-ssm';
import { booleanString, integerString } from '../config/schema';
import { ConfigError, type ConfigProblem } from '../errors';
import { lazy } from '../lazy';
import * as z from '../validation';

/** How new passwords are generated (GetRandomPassword's parameters). */
export interface PasswordPolicy {
  length: number;
  /** Undefined: the engine's default exclusions apply. */
  excludeCharacters?: string;
  excludeNumbers: boolean;
  excludePunctuation: boolean;
  excludeUppercase: boolean;
  excludeLowercase: boolean;
  requireEachIncludedType: boolean;
}

// Names as the official rotation functions use them, in SSM and in the environment alike.
const schema = z.strictObject({
  PASSWORD_LENGTH: z.optional(integerString(8, 4096)),
  EXCLUDE_CHARACTERS: z.optional(z.string()),
  EXCLUDE_NUMBERS: z.optional(booleanString),
  EXCLUDE_PUNCTUATION: z.optional(booleanString),
  EXCLUDE_UPPERCASE: z.optional(booleanString),
  EXCLUDE_LOWERCASE: z.optional(booleanString),
  REQUIRE_EACH_INCLUDED_TYPE: z.optional(booleanString),
});

type Settings = z.infer<typeof schema>;
const NAMES = Object.keys(schema.shape) as Array<keyof Settings>;

/**
 * Loads the password policy: SSM parameters under `${CONFIG_PATH}/rotation/` (only
 * when CONFIG_PATH is set; cached by the loader), then environment variables, then
 * defaults. Every malformed value is reported together, by name.
 */
export function passwordPolicySource(
  options: { env?: NodeJS.ProcessEnv; ssm?: SSMClient } = {},
): () => Promise<PasswordPolicy> {
  const env = options.env ?? process.env;
  const path = env.CONFIG_PATH ? `${env.CONFIG_PATH.replace(/\/+$/, '')}/rotation` : undefined;
  // The loader and its SSM client load only when there is a path to read.
  const loader =
    path === undefined
      ? undefined
      : lazy(
          async () => new (await import('../config/loader')).ConfigLoader({ path, schema, ssm: options.ssm }),
        );
  return async () => {
    const fromSsm: Settings = loader ? await (await loader()).get() : {};
    const fromEnv = parseEnvironment(env);
    const pick = <K extends keyof Settings>(name: K): Settings[K] => fromSsm[name] ?? fromEnv[name];
    const policy: PasswordPolicy = {
      length: pick('PASSWORD_LENGTH') ?? 32,
      excludeNumbers: pick('EXCLUDE_NUMBERS') ?? false,
      excludePunctuation: pick('EXCLUDE_PUNCTUATION') ?? false,
      excludeUppercase: pick('EXCLUDE_UPPERCASE') ?? false,
      excludeLowercase: pick('EXCLUDE_LOWERCASE') ?? false,
      requireEachIncludedType: pick('REQUIRE_EACH_INCLUDED_TYPE') ?? true,
    };
    const exclude = pick('EXCLUDE_CHARACTERS');
    if (exclude !== undefined) policy.excludeCharacters = exclude;
    if (
      policy.excludeNumbers &&
      policy.excludePunctuation &&
      policy.excludeUppercase &&
      policy.excludeLowercase
    ) {
      throw new ConfigError('Invalid password policy', [
        { parameter: 'EXCLUDE_*', problem: 'excludes every character type' },
      ]);
    }
    return Object.freeze(policy);
  };
}

function parseEnvironment(env: NodeJS.ProcessEnv): Settings {
  const present = Object.fromEntries(NAMES.filter((n) => env[n] !== undefined).map((n) => [n, env[n]]));
  const result = schema.safeParse(present);
  if (result.success) return result.data;
  const problems: ConfigProblem[] = result.error.issues.map((issue) => ({
    parameter: issue.path.map(String).join('.'),
    problem: issue.message,
  }));
  throw new ConfigError('Invalid rotation settings in the environment', problems);
}
