import {
  GetParameterCommand,
  GetParametersByPathCommand,
  type Parameter,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { ssmClient } from '../aws/ssm';
import { ConfigError, type ConfigProblem } from '../errors';
import { registerSecret } from '../log';
import type * as z from '../validation';

/** SSM's prefix for parameters that stand for a Secrets Manager secret. */
export const SECRETS_MANAGER_REFERENCE = '/aws/reference/secretsmanager/';
const DEFAULT_TTL_SECONDS = 300;
/** Subtrees read at once by one call. */
const PARALLEL_READS = 4;

/** One parameter as loaded: its value (a StringList already split) and whether it is secret. */
export interface LoadedParameter {
  name: string;
  value: string | string[];
  secret: boolean;
}

export interface ConfigLoaderOptions<S extends z.ZodMiniType> {
  /** The SSM path, e.g. `/log-export`; every parameter below it is loaded unless scopes are named. */
  path: string;
  /** Validates the tree built from the parameters' names relative to `path`. */
  schema: S;
  /** Cache lifetime; default `CONFIG_CACHE_TTL_SECONDS` or 300. */
  ttlSeconds?: number;
  /** Decrypt SecureString values (default true). Decrypted and raw reads are cached apart. */
  decrypt?: boolean;
  ssm?: SSMClient;
  /** Clock in epoch milliseconds, for tests. */
  now?: () => number;
  /**
   * Where reads are cached. Default: the container's cache, shared by every
   * loader; a benchmark that simulates several containers in one process
   * gives each its own (`createConfigCache()`).
   */
  cache?: ConfigCache;
}

interface CacheEntry {
  expiresAt: number;
  parameters: Promise<LoadedParameter[]>;
}

/** Cached reads by path (or subtree) and decryption flag. */
export type ConfigCache = Map<string, CacheEntry>;

export function createConfigCache(): ConfigCache {
  return new Map();
}

// Per container, shared by every loader: warm invocations reuse it. The key holds
// the decryption flag so that ciphertext and plaintext never answer for each other.
const containerCache = createConfigCache();

/** Forgets every cached read of the container's cache (tests, or a caller that rotated everything). */
export function clearConfigCache(): void {
  containerCache.clear();
}

/**
 * Loads the SSM parameters under a path into one typed, frozen object: all of
 * them, or only the subtrees a caller names (scopes, e.g. `['global',
 * 'clusters/c1']`), each read and cached on its own so that a run pays only
 * for what it uses.
 *
 * SecureString values are decrypted, StringList values split, and String values
 * that name `/aws/reference/secretsmanager/<id>` replaced by the secret's value.
 * Every missing or malformed parameter is reported together in one ConfigError,
 * by full parameter name and without its value.
 */
export class ConfigLoader<S extends z.ZodMiniType> {
  readonly path: string;
  readonly #schema: S;
  readonly #ttlMs: number;
  readonly #decrypt: boolean;
  readonly #ssm: SSMClient;
  readonly #now: () => number;
  readonly #cache: ConfigCache;

  constructor(options: ConfigLoaderOptions<S>) {
    this.path = normalisePath(options.path);
    this.#schema = options.schema;
    const ttl = options.ttlSeconds ?? Number(process.env.CONFIG_CACHE_TTL_SECONDS ?? DEFAULT_TTL_SECONDS);
    if (!Number.isFinite(ttl) || ttl < 0) {
      throw new ConfigError('Invalid cache TTL', [
        { parameter: 'CONFIG_CACHE_TTL_SECONDS', problem: 'must be a non-negative number' },
      ]);
    }
    this.#ttlMs = ttl * 1000;
    this.#decrypt = options.decrypt ?? true;
    this.#ssm = options.ssm ?? ssmClient();
    this.#now = options.now ?? Date.now;
    this.#cache = options.cache ?? containerCache;
  }

  /**
   * The validated configuration, from the cache while it is fresh. With `scopes`
   * (sub-paths of `path`), only those subtrees are read and validated together;
   * without, everything under `path`.
   */
  async get(scopes?: readonly string[]): Promise<z.infer<S>> {
    return this.#read(scopes, false);
  }

  /**
   * Reads SSM again now (for example after a database refused cached credentials):
   * the named scopes, or without them everything under `path`.
   */
  async refresh(scopes?: readonly string[]): Promise<z.infer<S>> {
    return this.#read(scopes, true);
  }

  async #read(scopes: readonly string[] | undefined, force: boolean): Promise<z.infer<S>> {
    const paths = scopes === undefined ? [this.path] : [...new Set(scopes.map((s) => this.#scopePath(s)))];
    // A few at a time: SSM's throughput is shared by the whole account and region.
    const parts: LoadedParameter[][] = [];
    for (let i = 0; i < paths.length; i += PARALLEL_READS) {
      const batch = paths.slice(i, i + PARALLEL_READS);
      parts.push(...(await Promise.all(batch.map((path) => this.#load(path, force)))));
    }
    return this.#validate(paths.join('\u0000'), parts);
  }

  #scopePath(scope: string): string {
    const segments = scope.split('/').filter(Boolean);
    if (segments.length === 0 || segments.some((s) => s === '.' || s === '..')) {
      throw new ConfigError('Invalid configuration scope', [
        { parameter: `${this.path}/${scope}`, problem: 'must name a sub-path' },
      ]);
    }
    return `${this.path}/${segments.join('/')}`;
  }

  #load(path: string, force: boolean): Promise<LoadedParameter[]> {
    const key = `${path}\u0000decrypt=${this.#decrypt}`;
    const cache = this.#cache;
    const entry = cache.get(key);
    if (!force && entry && entry.expiresAt > this.#now()) return entry.parameters;
    // Concurrent callers share this one promise; a failed read is not cached.
    const parameters = loadParameters(this.#ssm, path, this.#decrypt);
    cache.set(key, { expiresAt: this.#now() + this.#ttlMs, parameters });
    parameters.catch(() => {
      if (cache.get(key)?.parameters === parameters) cache.delete(key);
    });
    return parameters;
  }

  // Warm invocations within the TTL get the same parameters back: validate them once per set of subtrees.
  readonly #validated = new Map<string, { parts: LoadedParameter[][]; config: z.infer<S> }>();

  #validate(paths: string, parts: LoadedParameter[][]): z.infer<S> {
    const memo = this.#validated.get(paths);
    if (memo?.parts.every((p, i) => p === parts[i])) return memo.config;
    // Nested scopes ('clusters' and 'clusters/c1') read some parameters twice: keep one of each.
    const parameters = [...new Map(parts.flat().map((p) => [p.name, p])).values()];
    const { tree, problems } = buildTree(this.path, parameters);
    const result = this.#schema.safeParse(tree);
    if (!result.success) {
      for (const issue of result.error.issues) {
        const segments = issue.path.map(String);
        const parameter = segments.length ? `${this.path}/${segments.join('/')}` : this.path;
        const missing = valueAt(tree, segments) === undefined;
        problems.push({ parameter, problem: missing ? 'missing' : issue.message });
      }
    }
    if (problems.length > 0 || !result.success) {
      throw new ConfigError(`Invalid configuration under ${this.path}`, problems);
    }
    const config = deepFreeze(result.data);
    this.#validated.set(paths, { parts, config });
    return config;
  }
}

/** Reads every parameter below `path` (all pages, recursively) and resolves Secrets Manager references. */
export async function loadParameters(
  ssm: SSMClient,
  path: string,
  decrypt: boolean,
): Promise<LoadedParameter[]> {
  const raw: Parameter[] = [];
  let nextToken: string | undefined;
  try {
    do {
      const page = await ssm.send(
        new GetParametersByPathCommand({
          Path: path,
          Recursive: true,
          WithDecryption: decrypt,
          NextToken: nextToken,
          MaxResults: 10,
        }),
      );
      raw.push(...(page.Parameters ?? []));
      nextToken = page.NextToken;
    } while (nextToken);
  } catch (error) {
    throw new ConfigError(`Could not read SSM parameters under ${path}`, [], { cause: error });
  }

  const loaded = raw.map((p): LoadedParameter => {
    const secret = p.Type === 'SecureString';
    const value = p.Value ?? '';
    if (secret && decrypt) registerSecret(value);
    return { name: p.Name ?? '', value: p.Type === 'StringList' ? value.split(',') : value, secret };
  });
  await resolveSecretReferences(ssm, loaded);
  return loaded;
}

async function resolveSecretReferences(ssm: SSMClient, parameters: LoadedParameter[]): Promise<void> {
  const referencing = parameters.filter(
    (p) => typeof p.value === 'string' && p.value.startsWith(SECRETS_MANAGER_REFERENCE),
  );
  const resolved = new Map<string, string | undefined>();
  const problems: ConfigProblem[] = [];
  for (const p of referencing) {
    const reference = p.value as string;
    if (!resolved.has(reference)) {
      try {
        // Only GetParameter(s) accept reference names, and only with decryption. One call per
        // reference: the name in the answer is not the reference (it is the secret's), so a
        // batched answer could not be matched back reliably.
        const response = await ssm.send(new GetParameterCommand({ Name: reference, WithDecryption: true }));
        resolved.set(reference, response.Parameter?.Value);
      } catch (error) {
        if ((error as Error).name !== 'ParameterNotFound') {
          throw new ConfigError(`Could not resolve the Secrets Manager reference in ${p.name}`, [], {
            cause: error,
          });
        }
        resolved.set(reference, undefined);
      }
    }
    const value = resolved.get(reference);
    if (value === undefined) {
      problems.push({ parameter: p.name, problem: `references a secret that does not exist (${reference})` });
      continue;
    }
    registerSecret(value);
    p.value = value;
    p.secret = true;
  }
  if (problems.length > 0) throw new ConfigError('Unresolved Secrets Manager references', problems);
}

type Tree = { [segment: string]: Tree | string | string[] };

/** Nests parameters by the segments of their names relative to the path. */
function buildTree(path: string, parameters: LoadedParameter[]): { tree: Tree; problems: ConfigProblem[] } {
  const tree: Tree = {};
  const problems: ConfigProblem[] = [];
  for (const p of parameters) {
    const segments = p.name.slice(path.length).split('/').filter(Boolean);
    let node: Tree = tree;
    let conflict = segments.length === 0;
    for (const [index, segment] of segments.entries()) {
      if (index === segments.length - 1) {
        if (segment in node) conflict = true;
        else node[segment] = p.value;
        break;
      }
      const next = node[segment];
      if (next === undefined) node = node[segment] = {};
      else if (typeof next === 'object' && !Array.isArray(next)) node = next;
      else {
        conflict = true;
        break;
      }
    }
    if (conflict)
      problems.push({ parameter: p.name, problem: 'is both a value and a path of other parameters' });
  }
  return { tree, problems };
}

function valueAt(tree: Tree, segments: string[]): unknown {
  let node: unknown = tree;
  for (const segment of segments) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[segment];
  }
  return node;
}

function normalisePath(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  if (!trimmed.startsWith('/')) {
    throw new ConfigError('Invalid configuration path', [{ parameter: path, problem: 'must start with /' }]);
  }
  return trimmed;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
