import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { parse, type Tags } from 'yaml';

/** A CloudFormation template, loosely typed: tests read it as data. */
export interface Template {
  Parameters?: Record<string, { Type: string; Default?: string; AllowedPattern?: string }>;
  Conditions?: Record<string, unknown>;
  Resources: Record<string, Resource>;
}

// biome-ignore lint/suspicious/noExplicitAny: template properties are untyped JSON that assertions walk freely
export type Properties = Record<string, any>;

export interface Resource {
  Type: string;
  Properties: Properties;
  DependsOn?: string | string[];
  Condition?: string;
}

export interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Principal?: unknown;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

const run = promisify(execFile);

/**
 * Runs `serverless package` into `outDir` the way CI does: no AWS credentials,
 * no telemetry, no network. Returns the seconds it took.
 */
export async function packageService(root: string, outDir: string, args: string[]): Promise<number> {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('AWS_')) env[name] = value;
  }
  env.SLS_TELEMETRY_DISABLED = '1';
  env.SLS_NOTIFICATIONS_MODE = 'off';
  const started = performance.now();
  await run(`${root}/node_modules/.bin/serverless`, ['package', '--package', outDir, ...args], {
    cwd: root,
    env,
    timeout: 240_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  return (performance.now() - started) / 1000;
}

const INTRINSICS = [
  'Ref',
  'Condition',
  'Sub',
  'GetAtt',
  'If',
  'Not',
  'Equals',
  'And',
  'Or',
  'Join',
  'Select',
  'Split',
];

/** CloudFormation's short forms (`!Ref`, `!Sub`, `!If`, ...) as the long forms they stand for. */
const CLOUDFORMATION_TAGS: Tags = INTRINSICS.flatMap((name) => {
  const key = name === 'Ref' || name === 'Condition' ? name : `Fn::${name}`;
  const longForm = (node: { toJSON(): unknown }) => ({ [key]: node.toJSON() });
  return [
    { tag: `!${name}`, resolve: (v: string) => ({ [key]: name === 'GetAtt' ? v.split('.') : v }) },
    { tag: `!${name}`, collection: 'seq' as const, resolve: longForm },
    { tag: `!${name}`, collection: 'map' as const, resolve: longForm },
  ];
});

/** Reads a CloudFormation template written in YAML. */
export function readYamlTemplate(path: string): Template {
  return parse(readFileSync(path, 'utf8'), { customTags: CLOUDFORMATION_TAGS }) as Template;
}

/**
 * Resolves the template as CloudFormation would with its parameter defaults
 * (or `overrides`, as `--param` values would set them):
 * evaluates the conditions, picks the `Fn::If` branches, drops `AWS::NoValue`
 * and resources whose condition is false.
 */
export function materialize(template: Template, overrides: Record<string, string> = {}): Template {
  const parameters = new Map<string, string | string[]>();
  for (const [name, p] of Object.entries(template.Parameters ?? {})) {
    const value = overrides[name] ?? p.Default ?? '';
    parameters.set(name, p.Type === 'CommaDelimitedList' ? value.split(',') : value);
  }
  const conditions = new Map<string, boolean>();
  const evaluate = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(evaluate);
    if (node === null || typeof node !== 'object') return node;
    const [key, arg] = Object.entries(node)[0] ?? [];
    if (key === 'Ref' && typeof arg === 'string' && parameters.has(arg)) return parameters.get(arg);
    if (key === 'Fn::Join') {
      const [separator, parts] = arg as [string, unknown];
      return (evaluate(parts) as string[]).join(separator);
    }
    if (key === 'Fn::Equals') {
      const [a, b] = (arg as unknown[]).map(evaluate);
      return a === b;
    }
    if (key === 'Fn::Not') return !(evaluate((arg as unknown[])[0]) as boolean);
    if (key === 'Condition') return conditions.get(arg as string);
    return node;
  };
  for (const [name, expression] of Object.entries(template.Conditions ?? {})) {
    conditions.set(name, evaluate(expression) as boolean);
  }
  const NO_VALUE = Symbol('NoValue');
  const resolve = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(resolve).filter((v) => v !== NO_VALUE);
    if (node === null || typeof node !== 'object') return node;
    const entries = Object.entries(node);
    const [key, arg] = entries[0] ?? [];
    if (entries.length === 1 && key === 'Ref' && arg === 'AWS::NoValue') return NO_VALUE;
    if (entries.length === 1 && key === 'Ref' && typeof arg === 'string' && parameters.has(arg)) {
      return parameters.get(arg);
    }
    if (entries.length === 1 && key === 'Fn::If') {
      const [condition, whenTrue, whenFalse] = arg as [string, unknown, unknown];
      return resolve(conditions.get(condition) ? whenTrue : whenFalse);
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of entries) {
      const resolved = resolve(v);
      if (resolved !== NO_VALUE) out[k] = resolved;
    }
    return out;
  };
  const resources: Record<string, Resource> = {};
  for (const [id, resource] of Object.entries(template.Resources)) {
    if (resource.Condition && !conditions.get(resource.Condition)) continue;
    resources[id] = resolve(resource) as Resource;
  }
  return { ...template, Resources: resources };
}

export const asArray = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

/** The resources of one type, by logical id. */
export function ofType(template: Template, type: string): Array<[string, Resource]> {
  return Object.entries(template.Resources).filter(([, r]) => r.Type === type);
}

/** `{ "Fn::GetAtt": [id, "Arn"] }` for a logical id. */
export const arnOf = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });

/** Every statement of every identity policy (inline, attached and managed) in the template. */
export function identityStatements(template: Template): Array<{ policy: string; statement: Statement }> {
  const found: Array<{ policy: string; statement: Statement }> = [];
  for (const [id, r] of Object.entries(template.Resources)) {
    const documents: unknown[] = [];
    if (r.Type === 'AWS::IAM::Role') {
      for (const p of asArray(r.Properties.Policies as Array<{ PolicyDocument: unknown }>)) {
        documents.push(p.PolicyDocument);
      }
    }
    if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') {
      documents.push(r.Properties.PolicyDocument);
    }
    for (const doc of documents) {
      for (const statement of asArray((doc as { Statement: Statement[] }).Statement)) {
        found.push({ policy: id, statement });
      }
    }
  }
  return found;
}

/** Statements of a resource policy (key, bucket, queue, topic). */
export function resourcePolicyStatements(resource: Resource, property: string): Statement[] {
  return asArray((resource.Properties[property] as { Statement: Statement[] }).Statement);
}

/** Entry names and uncompressed sizes, read from a zip archive's central directory. */
export function zipEntries(path: string): Array<{ name: string; size: number }> {
  const zip = readFileSync(path);
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error(`${path} is not a zip archive`);
  const count = zip.readUInt16LE(eocd + 10);
  let offset = zip.readUInt32LE(eocd + 16);
  const entries: Array<{ name: string; size: number }> = [];
  for (let i = 0; i < count; i++) {
    const size = zip.readUInt32LE(offset + 24);
    const nameLength = zip.readUInt16LE(offset + 28);
    const extraLength = zip.readUInt16LE(offset + 30);
    const commentLength = zip.readUInt16LE(offset + 32);
    entries.push({ name: zip.toString('utf8', offset + 46, offset + 46 + nameLength), size });
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** Account, region and partition that `${AWS::...}` stand for when statements are evaluated. */
const PSEUDO: Record<string, string> = {
  'AWS::Partition': 'aws',
  'AWS::Region': 'us-east-1',
  'AWS::AccountId': '123456789012',
};

/** A resource of a materialized statement as a plain ARN pattern: `Fn::Sub` expanded with the pseudo parameters. */
function resourcePattern(resource: unknown, parameters: Record<string, string>): string | undefined {
  const text =
    typeof resource === 'string' ? resource : (resource as { 'Fn::Sub'?: unknown } | null)?.['Fn::Sub'];
  if (typeof text !== 'string') return undefined;
  return text.replace(
    /\$\{([^}]+)\}/g,
    (_, name: string) => PSEUDO[name] ?? parameters[name] ?? `\${${name}}`,
  );
}

/** IAM's wildcard match: `*` any run of characters, `?` one character, case-sensitive. */
function iamMatch(pattern: string, value: string): boolean {
  const regex = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${regex}$`).test(value);
}

/** What a request carries besides its action and resource: the caller and the condition keys. */
export interface RequestContext {
  /** The calling principal's ARN, matched against a resource policy's `Principal.AWS`. */
  principal?: string;
  /** Condition keys and their values (`sts:ExternalId`, `kms:ViaService`, ...); absent keys are absent. */
  keys?: Record<string, string>;
}

/**
 * Whether `statements` (one policy) allow `action` on `resource` (undefined for a trust
 * policy, which names none), as IAM decides it for one policy: some Allow statement
 * matches and no Deny statement does. Conditions are evaluated against `context.keys`
 * (the String, Arn, Bool and Null operators, with IfExists); any other operator throws,
 * so that a test never passes on a condition it did not understand.
 */
export function statementsAllow(
  statements: readonly Statement[],
  action: string,
  resource: string | undefined,
  context: RequestContext = {},
  parameters: Record<string, string> = {},
): boolean {
  const matches = (statement: Statement) =>
    asArray(statement.Action).some((a) => iamMatch(a, action)) &&
    (resource === undefined
      ? statement.Resource === undefined
      : asArray(statement.Resource).some((r) => {
          const pattern = resourcePattern(r, parameters);
          return pattern !== undefined && iamMatch(pattern, resource);
        })) &&
    principalMatches(statement.Principal, context.principal, parameters) &&
    conditionHolds(statement.Condition, context.keys ?? {}, parameters);
  if (statements.some((s) => s.Effect === 'Deny' && matches(s))) return false;
  return statements.some((s) => s.Effect === 'Allow' && matches(s));
}

/** A statement without Principal (an identity policy) matches any caller; otherwise `Principal.AWS` must name it. */
function principalMatches(
  principal: unknown,
  caller: string | undefined,
  parameters: Record<string, string>,
): boolean {
  if (principal === undefined) return true;
  if (caller === undefined) return false;
  const aws = (principal as { AWS?: unknown }).AWS;
  return asArray(aws).some((p) => p === '*' || resourcePattern(p, parameters) === caller);
}

const STRING_OPERATORS: Record<string, (value: string, pattern: string) => boolean> = {
  StringEquals: (v, p) => v === p,
  StringLike: (v, p) => iamMatch(p, v),
  ArnEquals: (v, p) => v === p,
  ArnLike: (v, p) => iamMatch(p, v),
  Bool: (v, p) => v === p,
};

function conditionHolds(
  condition: Statement['Condition'],
  keys: Record<string, string>,
  parameters: Record<string, string>,
): boolean {
  const lowerKeys = new Map(Object.entries(keys).map(([k, v]) => [k.toLowerCase(), v]));
  return Object.entries(condition ?? {}).every(([operator, tests]) =>
    Object.entries(tests).every(([key, expected]) => {
      const value = lowerKeys.get(key.toLowerCase());
      const patterns = asArray(expected).map((e) => {
        const text = typeof e === 'boolean' ? String(e) : resourcePattern(e, parameters);
        if (text === undefined) throw new Error(`cannot evaluate the condition value ${JSON.stringify(e)}`);
        return text;
      });
      if (operator === 'Null') return patterns.includes(String(value === undefined));
      const ifExists = operator.endsWith('IfExists');
      const base = operator.replace(/IfExists$/, '');
      const negated = /^(String|Arn)Not/.test(base);
      const compare = STRING_OPERATORS[base.replace(/^(String|Arn)Not/, '$1')];
      if (!compare) throw new Error(`condition operator ${operator} is not evaluated here`);
      if (value === undefined) return ifExists || negated;
      const any = patterns.some((p) => compare(value, p));
      return negated ? !any : any;
    }),
  );
}

/**
 * Whether the identity policy `policy` lets its role call `action` on `arn`, as IAM
 * decides it for one policy (see statementsAllow), with the request's condition keys.
 */
export function policyAllows(
  template: Template,
  policy: string,
  action: string,
  arn: string,
  parameters: Record<string, string> = {},
  keys: Record<string, string> = {},
): boolean {
  const statements = identityStatements(template)
    .filter((s) => s.policy === policy)
    .map((s) => s.statement);
  return statementsAllow(statements, action, arn, { keys }, parameters);
}
