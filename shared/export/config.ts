import type { MemberRole } from '../aws/assume-role';
import { ConfigLoader, integerString, stringList } from '../config';
import type { ConnectionTarget } from '../db/connect';
import { isTlsServerName, TLS_SERVER_NAME_PROBLEM } from '../db/tls';
import { ConfigError, EventError } from '../errors';
import * as z from '../validation';
import type { ExportRequest } from './event';
import {
  CATALOG,
  COLUMN_NAME,
  CUSTOM_EXPORT_NAME,
  catalogTable,
  customExport,
  ENGINE_FAMILY,
  type Engine,
  type EngineFamily,
  standardTables,
  type TableDefinition,
} from './sources/catalog';

/** Object formats (`global/format`): the extension each key ends in. */
export const OUTPUT_FORMATS = ['jsonl.gz', 'parquet'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Cluster names appear in object keys and DynamoDB keys. */
const CLUSTER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** An IAM role ARN in any partition: `arn:aws:iam::<account>:role/<path/><name>`. */
const ROLE_ARN = /^arn:aws[-a-z]*:iam::\d{12}:role\/(?:[\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/;

/** What STS accepts as ExternalId. */
const EXTERNAL_ID = /^[\w+=,.@:/-]{2,1224}$/;

const customSchema = z.object({
  query: z.string().check(z.minLength(1, 'must be a SELECT')),
  'watermark-column': z.string().check(z.regex(COLUMN_NAME, 'must be a plain column name')),
  'full-scan': z.optional(z.enum(['true', 'false'], { message: 'must be true or false' })),
});

const clusterSchema = z
  .strictObject({
    engine: z.enum(['mysql', 'mariadb', 'postgres', 'redshift'], {
      message: 'must be mysql, mariadb, postgres or redshift',
    }),
    'secret-id': z.optional(z.string().check(z.minLength(1))),
    host: z.optional(z.string().check(z.minLength(1))),
    port: z.optional(integerString(1, 65535)),
    database: z.optional(z.string()),
    user: z.optional(z.string()),
    password: z.optional(z.string()),
    ssl: z.optional(z.enum(['true', 'false'], { message: 'must be true or false' })),
    'tls-server-name': z.optional(z.string().check(z.refine(isTlsServerName, TLS_SERVER_NAME_PROBLEM))),
    tables: z.optional(stringList),
    custom: z.optional(z.record(z.string(), customSchema)),
    redact: z.optional(z.enum(['true', 'false'], { message: 'must be true or false' })),
    // PostgreSQL csv log options (issue 5): validated here so that a typo fails loudly.
    'csvlog-table': z.optional(z.string().check(z.minLength(1))),
    'log-source': z.optional(z.enum(['file_fdw', 'log_fdw'], { message: 'must be file_fdw or log_fdw' })),
    // A cluster in another account: its secret is read as this role there.
    'role-arn': z.optional(
      z
        .string()
        .check(z.regex(ROLE_ARN, 'must be an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)')),
    ),
    'external-id': z.optional(
      z.string().check(z.regex(EXTERNAL_ID, 'must be 2 to 1224 characters of letters, digits and +=,.@:/-_')),
    ),
  })
  .check(
    z.superRefine((cluster, ctx) => {
      if (cluster['secret-id'] && cluster['tls-server-name']) {
        ctx.addIssue({
          code: 'custom',
          path: ['tls-server-name'],
          message: "goes with host/user/password; with secret-id, set the secret's tlsServerName",
        });
      }
      if (cluster['role-arn'] && !cluster['secret-id']) {
        ctx.addIssue({
          code: 'custom',
          path: ['role-arn'],
          message: "goes with secret-id (the role reads the cluster's secret in its account)",
        });
      }
      if (cluster['external-id'] && !cluster['role-arn']) {
        ctx.addIssue({ code: 'custom', path: ['external-id'], message: 'goes with role-arn' });
      }
      if (!cluster['secret-id']) {
        for (const key of ['host', 'user', 'password'] as const) {
          if (!cluster[key])
            ctx.addIssue({ code: 'custom', path: [key], message: 'missing (or set secret-id)' });
        }
      }
      const family = ENGINE_FAMILY[cluster.engine];
      for (const table of cluster.tables ?? []) {
        if (table !== 'none' && !catalogTable(family, table)) {
          ctx.addIssue({
            code: 'custom',
            path: ['tables'],
            message: `unknown ${family} catalog table "${table}"`,
          });
        }
      }
      for (const name of Object.keys(cluster.custom ?? {})) {
        if (!CUSTOM_EXPORT_NAME.test(name) || CATALOG.some((t) => t.name === name)) {
          ctx.addIssue({
            code: 'custom',
            path: ['custom', name],
            message: 'custom export names are [a-z][a-z0-9_]* and distinct from catalog names',
          });
        }
      }
    }),
  );

const configObject = z
  .object({
    global: z.strictObject({
      destination: z.string().check(
        z.regex(/^(s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?|file:\/\/\/.+)$/, {
          message: 'must be s3://bucket/prefix or file:///absolute/dir',
        }),
      ),
      'enabled-clusters': z.optional(stringList),
      'window-minutes': z.optional(
        integerString(1, 1440).check(z.refine((m) => 1440 % m === 0, 'must divide 1440')),
      ),
      'initial-lookback-hours': z.optional(integerString(0, 24 * 366)),
      'lag-seconds': z.optional(integerString(0, 86400)),
      'kms-key-id': z.optional(z.string().check(z.minLength(1))),
      'fan-out': z.optional(z.enum(['auto', 'on', 'off'], { message: 'must be auto, on or off' })),
      format: z.optional(z.enum(OUTPUT_FORMATS, { message: 'must be jsonl.gz or parquet' })),
      'read-timeout-seconds': z.optional(integerString(1, 900)),
    }),
    clusters: z.optional(
      z.record(z.string().check(z.regex(CLUSTER_NAME, 'invalid cluster name')), clusterSchema),
    ),
  })
  .check(
    z.superRefine((config, ctx) => {
      // A run reads only the subtrees it needs, so clusters may be absent here: loadExportConfig checks that
      // enabled clusters have parameters. Their names become SSM paths (clusters/<name>) and keys.
      const enabled = config.global['enabled-clusters'] ?? [];
      for (const [index, name] of enabled.entries()) {
        if (!CLUSTER_NAME.test(name)) {
          ctx.addIssue({
            code: 'custom',
            path: ['global', 'enabled-clusters'],
            message: `"${name}" is not a valid cluster name`,
          });
        } else if (enabled.indexOf(name) !== index) {
          // Listed twice, a cluster would be exported (or compacted, or invoked) twice at once: one run of each
          // table refused its lease, the other doing the work.
          ctx.addIssue({
            code: 'custom',
            path: ['global', 'enabled-clusters'],
            message: `"${name}" is listed more than once`,
          });
        }
      }
    }),
  );

// Without any global parameter, still name the one that is required.
export const exportConfigSchema = z.pipe(
  z.transform((tree) => ({ global: {}, ...(tree as object) })),
  configObject,
);

export type RawExportConfig = z.infer<typeof configObject>;

/**
 * How to log in: through the rotated secret (in another account: read as `role` there),
 * or with parameters.
 */
export type Credentials =
  | { secretId: string; role?: MemberRole }
  | { target: Omit<ConnectionTarget, 'tls'> & { ssl?: string } };

export interface ClusterConfig {
  name: string;
  engine: Engine;
  family: EngineFamily;
  credentials: Credentials;
  /** What is exported: catalog tables and custom exports, by name. */
  tables: ReadonlyMap<string, TableDefinition>;
  redact: boolean;
  /** Every parameter of the cluster, for definitions that need engine-specific options. */
  options: Readonly<Record<string, unknown>>;
}

export interface ExportConfig {
  destination: string;
  enabledClusters: readonly string[];
  windowMinutes: number;
  initialLookbackHours: number;
  lagSeconds?: number;
  kmsKeyId?: string;
  fanOut: 'auto' | 'on' | 'off';
  /** How objects are written: gzip JSON lines (default) or Parquet with typed columns. */
  format: OutputFormat;
  /** Silence from a database, while it owes an answer, after which its connection is dropped. */
  readTimeoutMs?: number;
  clusters: ReadonlyMap<string, ClusterConfig>;
}

const DEFAULT_PORT: Record<EngineFamily, number> = { mysql: 3306, postgres: 5432, redshift: 5439 };

/** Turns validated parameters into the exporter's settings, with defaults applied. */
export function resolveConfig(raw: RawExportConfig): ExportConfig {
  const clusters = new Map<string, ClusterConfig>();
  for (const [name, c] of Object.entries(raw.clusters ?? {})) {
    const family = ENGINE_FAMILY[c.engine];
    const listed = c.tables;
    const catalog =
      listed === undefined
        ? standardTables(family)
        : listed.filter((t) => t !== 'none').map((t) => catalogTable(family, t) as TableDefinition);
    const custom = Object.entries(c.custom ?? {}).map(([exportName, e]) =>
      customExport(exportName, e.query, e['watermark-column'], e['full-scan'] === 'true'),
    );
    const role = c['role-arn'] && {
      roleArn: c['role-arn'],
      ...(c['external-id'] ? { externalId: c['external-id'] } : {}),
      cluster: name,
    };
    const credentials: Credentials = c['secret-id']
      ? { secretId: c['secret-id'], ...(role ? { role } : {}) }
      : {
          target: {
            host: c.host ?? '',
            port: c.port ?? DEFAULT_PORT[family],
            user: c.user ?? '',
            password: c.password ?? '',
            database: c.database,
            ssl: c.ssl,
            ...(c['tls-server-name'] ? { tlsServerName: c['tls-server-name'] } : {}),
          },
        };
    clusters.set(name, {
      name,
      engine: c.engine,
      family,
      credentials,
      tables: new Map([...catalog, ...custom].map((t) => [t.name, t])),
      redact: c.redact !== 'false',
      options: c,
    });
  }
  const g = raw.global;
  return {
    destination: g.destination.replace(/\/+$/, ''),
    enabledClusters: g['enabled-clusters'] ?? [],
    windowMinutes: g['window-minutes'] ?? 5,
    initialLookbackHours: g['initial-lookback-hours'] ?? 48,
    lagSeconds: g['lag-seconds'],
    kmsKeyId: g['kms-key-id'],
    fanOut: g['fan-out'] ?? 'auto',
    format: g.format ?? 'jsonl.gz',
    readTimeoutMs: g['read-timeout-seconds'] === undefined ? undefined : g['read-timeout-seconds'] * 1000,
    clusters,
  };
}

/** The exporter's loader over `CONFIG_PATH` (default `/log-export`). */
export function exportConfigLoader(path = process.env.CONFIG_PATH ?? '/log-export') {
  return new ConfigLoader({ path, schema: exportConfigSchema });
}

export type ExportConfigLoader = ReturnType<typeof exportConfigLoader>;

/** What the exporter needs of its loader: the tree under `path`, whole or by subtrees (scopes). */
export interface ExportConfigSource {
  readonly path: string;
  get(scopes?: readonly string[]): Promise<RawExportConfig>;
  refresh(scopes?: readonly string[]): Promise<RawExportConfig>;
}

/** The subtrees a run of one cluster reads: `global/` and `clusters/<name>/` (for refresh after a refused login, too). */
export function clusterScopes(cluster: string): string[] {
  return ['global', `clusters/${cluster}`];
}

/** Whether a scheduled run hands each cluster to an invocation of its own rather than exporting them here. */
export function fansOut(fanOut: ExportConfig['fanOut'], functionName: string | undefined): boolean {
  return fanOut === 'on' || (fanOut === 'auto' && functionName !== undefined);
}

/**
 * Running on AWS Lambda: `AWS_LAMBDA_FUNCTION_NAME` is set. `serverless invoke local`
 * sets it too, and `IS_LOCAL=true` with it: that run is on the local machine.
 */
export function runningOnLambda(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.AWS_LAMBDA_FUNCTION_NAME) && env.IS_LOCAL !== 'true';
}

export interface LoadOptions {
  /** The function's own name when running on Lambda (fan-out target). */
  functionName?: string;
  /** Refuse destinations that do not outlive the container (see runningOnLambda). */
  onLambda: boolean;
}

/**
 * Reads only what a request needs, so that a fanned-out run of hundreds of
 * clusters stays within SSM's shared throughput: a cluster's run reads
 * `global/` and its own subtree; a scheduled run that fans out reads `global/`
 * alone; a scheduled run in-process adds every enabled cluster's subtree (and
 * refuses a name without parameters before anything is written).
 */
export async function loadExportConfig(
  loader: ExportConfigSource,
  request: ExportRequest,
  options: LoadOptions,
): Promise<ExportConfig> {
  let config: ExportConfig;
  // A daily compaction of every enabled cluster reads what an in-process scheduled run does.
  const cluster = request.kind === 'scheduled' ? undefined : request.cluster;
  if (cluster !== undefined) {
    // The name becomes part of an SSM path: only a valid cluster name may.
    if (!CLUSTER_NAME.test(cluster)) {
      throw new EventError(`Unknown cluster "${cluster}": not a valid cluster name`);
    }
    config = resolveConfig(await loader.get(clusterScopes(cluster)));
  } else {
    config = resolveConfig(await loader.get(['global']));
    if (request.kind === 'compact' || !fansOut(config.fanOut, options.functionName)) {
      const scopes = ['global', ...config.enabledClusters.map((name) => `clusters/${name}`)];
      config = resolveConfig(await loader.get(scopes));
      const missing = config.enabledClusters.filter((name) => !config.clusters.has(name));
      if (missing.length > 0) {
        throw new ConfigError(
          `Invalid configuration under ${loader.path}`,
          missing.map((name) => ({
            parameter: `${loader.path}/global/enabled-clusters`,
            problem: `names cluster "${name}", which has no clusters/${name}/ parameters`,
          })),
        );
      }
    }
  }
  if (options.onLambda && config.destination.startsWith('file://')) {
    // Only /tmp is writable there, and it goes with the container: the watermark would pass files that are gone.
    throw new ConfigError(`Invalid configuration under ${loader.path}`, [
      {
        parameter: `${loader.path}/global/destination`,
        problem: 'file:// is refused on Lambda (its file system does not outlive the container); use s3://',
      },
    ]);
  }
  return config;
}
