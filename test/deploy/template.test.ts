import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHandler as makeExportHandler } from '../../functions/export';
import { makeHandler as makeHealthHandler } from '../../functions/health';
import { parseExportEvent } from '../../shared/export/event';
import { createLogger } from '../../shared/log';
import { PLACEHOLDER_ROTATION_LAMBDA_ARN } from '../../shared/rotation/driver';
import {
  createWatermarkTable,
  exportDirectory,
  mysqlClusterParameters,
  putParameters,
  testRuntime,
} from '../shared/export/support';
import {
  invoker,
  postgresUnderTest,
  rotate,
  rotationDeps,
  singleUserSecret,
} from '../shared/rotation/support';
import { uniqueName } from '../stack/fixtures';
import { captureOutput } from '../support/capture';
import {
  alarmMetrics,
  dashboardMetrics,
  emfMetrics,
  isEmitted,
  type MetricRef,
  metricFilterMetrics,
} from './emitted-metrics';
import {
  arnOf,
  asArray,
  identityStatements,
  materialize,
  ofType,
  packageService,
  policyAllows,
  type Resource,
  resourcePolicyStatements,
  type Statement,
  type Template,
  zipEntries,
} from './template-support';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SERVICE = 'db-secret-rotation-log-export';
const STAGE = 'ci';
// Values a production stage would pass with --param; the optional parts of the
// template are switched on by them.
const PARAMS = {
  rotationSubnetIds: 'subnet-0123456789abcdef0,subnet-0123456789abcdef1',
  rotationSecurityGroupIds: 'sg-0123456789abcdef0',
  exportSubnetIds: 'subnet-0123456789abcdef2',
  exportSecurityGroupIds: 'sg-0123456789abcdef1',
  keyAdminArns: 'arn:aws:iam::123456789012:role/KeyAdmin',
  keyReaderArns: 'arn:aws:iam::123456789012:role/LogAnalyst',
  rotationConfigPath: '/db-rotation',
};
// Zipped bundle (code plus source map) of each function stays below this.
const MAX_ZIP_BYTES = 5 * 1024 * 1024;
// The only identity statements allowed on Resource "*": actions without resources.
const UNSCOPED: Record<string, string> = {
  GeneratePasswords: 'secretsmanager:GetRandomPassword',
  ListRotatedSecrets: 'secretsmanager:ListSecrets',
};

let outDir: string;
let raw: Template;
let template: Template;

beforeAll(async () => {
  outDir = mkdtempSync(join(tmpdir(), 'sls-package-'));
  const params = Object.entries(PARAMS).map(([k, v]) => `--param=${k}=${v}`);
  const seconds = await packageService(root, outDir, ['--stage', STAGE, ...params]);
  console.info(`serverless package took ${seconds.toFixed(1)} s`);
  raw = JSON.parse(readFileSync(join(outDir, 'cloudformation-template-update-stack.json'), 'utf8'));
  template = materialize(raw);
}, 300_000);

afterAll(() => {
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

const resource = (t: Template, id: string): Resource => {
  const r = t.Resources[id];
  if (!r) throw new Error(`no resource ${id} in the template`);
  return r;
};
const props = (t: Template, id: string) => resource(t, id).Properties;
const json = (value: unknown) => JSON.stringify(value);
const policyOf = (id: string) =>
  identityStatements(template)
    .filter(({ policy }) => policy === id)
    .map(({ statement }) => statement);
const bySid = (statements: Statement[], sid: string): Statement => {
  const found = statements.find((s) => s.Sid === sid);
  if (!found) throw new Error(`no statement ${sid}`);
  return found;
};
const sub = (value: unknown) => (value as { 'Fn::Sub': string })['Fn::Sub'];

describe('the packaged CloudFormation template', () => {
  it('has its three functions on nodejs22.x and arm64, each with a role of its own', () => {
    const functions = ofType(template, 'AWS::Lambda::Function');
    expect(functions.map(([id]) => id).sort()).toEqual([
      'ExportLambdaFunction',
      'HealthLambdaFunction',
      'RotateLambdaFunction',
    ]);
    for (const [, fn] of functions) {
      expect(fn.Properties.Runtime).toBe('nodejs22.x');
      expect(fn.Properties.Architectures).toEqual(['arm64']);
    }
    const roles = ofType(template, 'AWS::IAM::Role').map(([id]) => id);
    expect(roles.sort()).toEqual(['ExportFunctionRole', 'HealthFunctionRole', 'RotateFunctionRole']);
    expect(props(template, 'RotateLambdaFunction').Role).toEqual(arnOf('RotateFunctionRole'));
    expect(props(template, 'ExportLambdaFunction').Role).toEqual(arnOf('ExportFunctionRole'));
    expect(props(template, 'RotateFunctionPolicy').Roles).toEqual([{ Ref: 'RotateFunctionRole' }]);
    expect(props(template, 'ExportFunctionPolicy').Roles).toEqual([{ Ref: 'ExportFunctionRole' }]);
    expect(props(template, 'HealthLambdaFunction').Role).toEqual(arnOf('HealthFunctionRole'));
    expect(props(template, 'HealthFunctionPolicy').Roles).toEqual([{ Ref: 'HealthFunctionRole' }]);
  });

  it('lets the health check list secrets and read version dates, and nothing of their values', () => {
    const actions = policyOf('HealthFunctionPolicy').flatMap((s) => asArray(s.Action));
    expect(actions.sort()).toEqual([
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'secretsmanager:ListSecretVersionIds',
      'secretsmanager:ListSecrets',
    ]);
    const health = props(template, 'HealthLambdaFunction');
    expect(sub(health.Environment.Variables.ROTATION_FUNCTION_ARN)).toMatch(
      new RegExp(`:function:${SERVICE}-${STAGE}-rotate$`),
    );
  });

  it('gives the rotation function at least 30 s and the VPC subnets and security groups passed as params', () => {
    const rotate = props(template, 'RotateLambdaFunction');
    expect(rotate.Timeout).toBeGreaterThanOrEqual(30);
    expect(rotate.Handler).toBe('functions/rotate.handler');
    expect(rotate.VpcConfig).toEqual({
      SubnetIds: PARAMS.rotationSubnetIds.split(','),
      SecurityGroupIds: PARAMS.rotationSecurityGroupIds.split(','),
    });
    expect(rotate.Environment.Variables.CONFIG_PATH).toBe(PARAMS.rotationConfigPath);

    const outsideVpc = materialize(raw, { RotationSubnetIds: '', RotationConfigPath: '' });
    expect(props(outsideVpc, 'RotateLambdaFunction').VpcConfig).toBeUndefined();
    expect(props(outsideVpc, 'RotateFunctionRole').ManagedPolicyArns).toBeUndefined();
  });

  it('gives the exporter a timeout near the 15-minute limit, 1 GB and its configuration', () => {
    const exporter = props(template, 'ExportLambdaFunction');
    expect(exporter.Timeout).toBeGreaterThanOrEqual(840);
    expect(exporter.Timeout).toBeLessThanOrEqual(900);
    expect(exporter.MemorySize).toBe(1024);
    expect(exporter.Handler).toBe('functions/export.handler');
    expect(exporter.VpcConfig).toEqual({
      SubnetIds: [PARAMS.exportSubnetIds],
      SecurityGroupIds: [PARAMS.exportSecurityGroupIds],
    });
    expect(
      props(materialize(raw, { ExportSubnetIds: '' }), 'ExportLambdaFunction').VpcConfig,
    ).toBeUndefined();
    expect(exporter.Environment.Variables).toMatchObject({
      CONFIG_PATH: '/log-export',
      WATERMARK_TABLE: props(template, 'WatermarkTable').TableName,
      // Longer than the five-minute schedule, so that warm containers reuse what they read.
      CONFIG_CACHE_TTL_SECONDS: '900',
      EXPORT_SECRET_CACHE_TTL_SECONDS: '900',
      EXPORT_TABLE_METRICS: 'all',
    });
    expect(resource(template, 'ExportLambdaFunction').DependsOn).toContain('WatermarkTable');
  });

  it('allows no wildcard action and no anonymous principal in any policy', () => {
    const statements: Statement[] = identityStatements(template).map(({ statement }) => statement);
    for (const [id, property] of [
      ['ProjectKey', 'KeyPolicy'],
      ['ExportBucketPolicy', 'PolicyDocument'],
      ['ExportDeadLetterQueuePolicy', 'PolicyDocument'],
      ['AlertTopicPolicy', 'PolicyDocument'],
    ] as const) {
      statements.push(...resourcePolicyStatements(resource(template, id), property));
    }
    const allows = statements.filter((s) => s.Effect === 'Allow');
    expect(allows.length).toBeGreaterThan(15);
    for (const statement of allows) {
      expect(statement).not.toHaveProperty('NotAction');
      for (const action of asArray(statement.Action)) {
        expect(action, `${statement.Sid}`).not.toBe('*');
        expect(action.endsWith(':*'), `${statement.Sid}: ${action}`).toBe(false);
      }
      expect(json(statement.Principal ?? null), `${statement.Sid}`).not.toMatch(/"\*"/);
    }
  });

  it('scopes every identity statement to named resources, GetRandomPassword excepted', () => {
    for (const { policy, statement } of identityStatements(template)) {
      // Deny statements only fence off what an overlapping Allow might reach.
      if (statement.Effect === 'Deny') expect(statement.Sid, policy).toMatch(/^Never/);
      const resources = asArray(statement.Resource);
      expect(resources.length, `${policy}/${statement.Sid}`).toBeGreaterThan(0);
      const unscoped = UNSCOPED[statement.Sid ?? ''];
      if (unscoped) {
        expect(statement.Action).toBe(unscoped);
        continue;
      }
      for (const r of resources) expect(r, `${policy}/${statement.Sid}`).not.toBe('*');
    }
    // In a VPC, the VPC access policy (network interfaces on Resource "*") is the one managed policy.
    for (const role of ['RotateFunctionRole', 'ExportFunctionRole']) {
      const managed = asArray(props(template, role).ManagedPolicyArns).map(sub);
      expect(managed, role).toEqual([
        expect.stringMatching(/:iam::aws:policy\/service-role\/AWSLambdaVPCAccessExecutionRole$/),
      ]);
      const outsideVpc = materialize(raw, { RotationSubnetIds: '', ExportSubnetIds: '' });
      expect(props(outsideVpc, role).ManagedPolicyArns, role).toBeUndefined();
    }
  });

  it('scopes the rotation role to the secret pattern, RDS descriptions, its settings and its logs', () => {
    const statements = policyOf('RotateFunctionPolicy');
    expect(sub(bySid(statements, 'RotateDatabaseSecrets').Resource)).toMatch(/:secret:db\/\*$/);
    expect(bySid(statements, 'RotateDatabaseSecrets').Action).toEqual([
      'secretsmanager:DescribeSecret',
      'secretsmanager:GetSecretValue',
      'secretsmanager:PutSecretValue',
      'secretsmanager:UpdateSecretVersionStage',
    ]);
    expect(bySid(statements, 'ReadMasterSecrets').Action).not.toContain('secretsmanager:PutSecretValue');
    expect(bySid(statements, 'FindDatabaseEndpoints').Action).toEqual([
      'rds:DescribeDBInstances',
      'rds:DescribeDBClusters',
    ]);
    expect(asArray(bySid(statements, 'ReadRotationSettings').Resource).map(sub)).toEqual([
      expect.stringMatching(/:parameter\$\{RotationConfigPath\}\/rotation$/),
      expect.stringMatching(/:parameter\$\{RotationConfigPath\}\/rotation\/\*$/),
    ]);
    expect(sub(bySid(statements, 'WriteOwnLogs').Resource)).toContain(
      `log-group:/aws/lambda/${SERVICE}-${STAGE}-rotate:*`,
    );
    const actions = statements.flatMap((s) => asArray(s.Action));
    expect(actions.filter((a) => !/^(secretsmanager|rds|ssm|logs):/.test(a))).toEqual([]);
  });

  it('scopes the export role to its SSM path, the secrets, the table, the bucket prefix, itself and its queue', () => {
    const statements = policyOf('ExportFunctionPolicy');
    expect(asArray(bySid(statements, 'ReadConfiguration').Resource).map(sub)).toEqual([
      expect.stringMatching(/:parameter\/log-export$/),
      expect.stringMatching(/:parameter\/log-export\/\*$/),
    ]);
    expect(bySid(statements, 'ReadDatabaseCredentials').Action).toBe('secretsmanager:GetSecretValue');
    expect(sub(bySid(statements, 'ReadDatabaseCredentials').Resource)).toMatch(/:secret:db\/\*$/);
    expect(bySid(statements, 'NeverReadMasterSecrets').Effect).toBe('Deny');
    expect(bySid(statements, 'TrackWatermarks').Resource).toEqual(arnOf('WatermarkTable'));
    expect(sub(bySid(statements, 'WriteExportObjects').Resource)).toMatch(
      /^\$\{ExportBucket\.Arn\}\/logs\/\*$/,
    );
    expect(bySid(statements, 'ListExportPrefix').Condition).toEqual({
      StringLikeIfExists: { 's3:prefix': 'logs/*' },
    });
    expect(bySid(statements, 'FanOutToItself').Action).toBe('lambda:InvokeFunction');
    expect(sub(bySid(statements, 'FanOutToItself').Resource)).toMatch(
      new RegExp(`:function:${SERVICE}-${STAGE}-export$`),
    );
    expect(props(template, 'ExportLambdaFunction').FunctionName).toBe(`${SERVICE}-${STAGE}-export`);
    expect(bySid(statements, 'RecordFailedInvocations').Resource).toEqual(arnOf('ExportDeadLetterQueue'));
  });

  describe('master secrets', () => {
    const arn = (name: string) => `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}-AbCdEf`;
    const APP = arn('db/orders-app');
    const MASTER = arn('db-master/orders');
    const RDS_MASTER = arn('rds!cluster-0c3e1a2b-77aa-4c1e-9f00-1234567890ab');
    const WRITES = ['secretsmanager:PutSecretValue', 'secretsmanager:UpdateSecretVersionStage'];

    it('by default: rotation rotates db/* and only reads db-master/*; the exporter reads db/* and no master', () => {
      const rotate = (action: string, target: string) =>
        policyAllows(template, 'RotateFunctionPolicy', action, target);
      const exporter = (action: string, target: string) =>
        policyAllows(template, 'ExportFunctionPolicy', action, target);

      for (const action of ['secretsmanager:GetSecretValue', ...WRITES]) {
        expect(rotate(action, APP), action).toBe(true);
        for (const master of [MASTER, RDS_MASTER]) {
          expect(exporter('secretsmanager:GetSecretValue', master), master).toBe(false);
        }
      }
      expect(rotate('secretsmanager:GetSecretValue', MASTER)).toBe(true);
      for (const action of WRITES) expect(rotate(action, MASTER), action).toBe(false);
      // RDS-managed masters: not readable until a parameter names them.
      expect(rotate('secretsmanager:GetSecretValue', RDS_MASTER)).toBe(false);
      expect(exporter('secretsmanager:GetSecretValue', APP)).toBe(true);
    });

    it('never lets rotation write, nor the exporter read, a master secret, even when the patterns overlap', () => {
      const overlapping = materialize(raw, { RdsMasterSecretNamePattern: 'rds!*' });
      const params = { RdsMasterSecretNamePattern: 'rds!*' };
      expect(
        policyAllows(
          overlapping,
          'RotateFunctionPolicy',
          'secretsmanager:GetSecretValue',
          RDS_MASTER,
          params,
        ),
      ).toBe(true);
      for (const action of WRITES) {
        expect(policyAllows(overlapping, 'RotateFunctionPolicy', action, RDS_MASTER, params), action).toBe(
          false,
        );
      }
      expect(
        policyAllows(
          overlapping,
          'ExportFunctionPolicy',
          'secretsmanager:GetSecretValue',
          RDS_MASTER,
          params,
        ),
      ).toBe(false);
      // The deny statements name the master patterns and every secret action the role is
      // allowed beyond reading (rotation) or at all (exporter), whatever the allow statements say.
      const allowed = (policy: string) =>
        policyOf(policy)
          .filter((s) => s.Effect === 'Allow')
          .flatMap((s) => asArray(s.Action))
          .filter((a) => a.startsWith('secretsmanager:') && a !== 'secretsmanager:GetRandomPassword');
      const reads = new Set(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
      expect(
        asArray(bySid(policyOf('RotateFunctionPolicy'), 'NeverWriteMasterSecrets').Action).sort(),
      ).toEqual([...new Set(allowed('RotateFunctionPolicy').filter((a) => !reads.has(a)))].sort());
      expect(
        asArray(bySid(policyOf('ExportFunctionPolicy'), 'NeverReadMasterSecrets').Action).sort(),
      ).toEqual([...new Set(allowed('ExportFunctionPolicy'))].sort());
      for (const [policy, sid] of [
        ['RotateFunctionPolicy', 'NeverWriteMasterSecrets'],
        ['ExportFunctionPolicy', 'NeverReadMasterSecrets'],
      ] as const) {
        const deny = bySid(policyOf(policy), sid);
        expect(deny.Effect).toBe('Deny');
        expect(asArray(deny.Resource).map(sub)).toEqual([
          expect.stringMatching(/:secret:db-master\/\*$/),
          expect.stringMatching(/:secret:rds!\*$/),
        ]);
      }
    });

    it('reads RDS-managed master secrets when rdsMasterSecretNamePattern names them, and refuses other names', () => {
      const parameter = raw.Parameters?.RdsMasterSecretNamePattern as { AllowedPattern?: string };
      const allowed = new RegExp(parameter.AllowedPattern ?? '');
      expect(allowed.test('rds!cluster-*')).toBe(true);
      expect(allowed.test('')).toBe(true);
      expect(allowed.test('db/*')).toBe(false);
      expect(allowed.test('*')).toBe(false);

      const withRds = materialize(raw, { RdsMasterSecretNamePattern: 'rds!cluster-*' });
      const statement = bySid(
        identityStatements(withRds)
          .filter(({ policy }) => policy === 'RotateFunctionPolicy')
          .map(({ statement }) => statement),
        'ReadRdsManagedMasterSecrets',
      );
      expect(statement.Action).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
      expect(sub(statement.Resource)).toMatch(/:secret:\$\{RdsMasterSecretNamePattern\}$/);
      expect(policyOf('RotateFunctionPolicy').map((s) => s.Sid)).not.toContain('ReadRdsManagedMasterSecrets');
    });
  });

  describe('roles in member accounts', () => {
    const READER = 'arn:aws:iam::111111111111:role/log-export-reader';
    const PATTERN = 'arn:aws:iam::*:role/log-export-reader';
    const assumes = (t: Template, policy: string, role: string, keys: Record<string, string> = {}) =>
      policyAllows(t, policy, 'sts:AssumeRole', role, {}, keys);

    it('by default, no function may assume any role', () => {
      expect(raw.Parameters?.CrossAccountRolePattern?.Default).toBe('');
      for (const policy of ['ExportFunctionPolicy', 'RotateFunctionPolicy', 'HealthFunctionPolicy']) {
        expect(assumes(template, policy, READER), policy).toBe(false);
      }
      const actions = identityStatements(template).flatMap(({ statement }) => asArray(statement.Action));
      expect(actions.filter((a) => a.startsWith('sts:'))).toEqual([]);
    });

    it('with crossAccountRolePattern, the exporter assumes matching roles only', () => {
      const withRoles = materialize(raw, { CrossAccountRolePattern: PATTERN });
      expect(assumes(withRoles, 'ExportFunctionPolicy', READER)).toBe(true);
      expect(
        assumes(withRoles, 'ExportFunctionPolicy', 'arn:aws:iam::222222222222:role/log-export-reader'),
      ).toBe(true);
      expect(assumes(withRoles, 'ExportFunctionPolicy', 'arn:aws:iam::111111111111:role/Admin')).toBe(false);
      expect(
        assumes(withRoles, 'ExportFunctionPolicy', 'arn:aws:iam::111111111111:role/log-export-reader2'),
      ).toBe(false);
      expect(assumes(withRoles, 'RotateFunctionPolicy', READER)).toBe(false);
      const statement = bySid(
        identityStatements(withRoles)
          .filter(({ policy }) => policy === 'ExportFunctionPolicy')
          .map(({ statement }) => statement),
        'AssumeMemberAccountRoles',
      );
      expect(statement).toEqual({
        Sid: 'AssumeMemberAccountRoles',
        Effect: 'Allow',
        Action: 'sts:AssumeRole',
        Resource: PATTERN,
      });
    });

    it('with crossAccountExternalIdPattern, only with a matching external id', () => {
      const withIds = materialize(raw, {
        CrossAccountRolePattern: PATTERN,
        CrossAccountExternalIdPattern: 'fleet-*',
      });
      expect(assumes(withIds, 'ExportFunctionPolicy', READER, { 'sts:ExternalId': 'fleet-7' })).toBe(true);
      expect(assumes(withIds, 'ExportFunctionPolicy', READER, { 'sts:ExternalId': 'other-7' })).toBe(false);
      expect(assumes(withIds, 'ExportFunctionPolicy', READER)).toBe(false);
      expect(
        assumes(withIds, 'ExportFunctionPolicy', 'arn:aws:iam::111111111111:role/Admin', {
          'sts:ExternalId': 'fleet-7',
        }),
      ).toBe(false);
    });

    it('refuses a pattern that is not one of role ARNs', () => {
      const allowed = (name: string) => {
        const pattern = raw.Parameters?.[name]?.AllowedPattern;
        if (!pattern) throw new Error(`parameter ${name} has no AllowedPattern`);
        return new RegExp(pattern);
      };
      for (const ok of ['', PATTERN, READER, 'arn:aws-us-gov:iam::111111111111:role/path/reader-*']) {
        expect(allowed('CrossAccountRolePattern').test(ok), ok).toBe(true);
      }
      for (const bad of [
        '*',
        'arn:aws:iam::*:*',
        // Any role at all: the name must start with a literal character.
        'arn:aws:iam::*:role/*',
        'arn:aws:iam::111111111111:role/?*',
        'arn:aws:iam::111111111111:user/x',
        'arn:aws:s3:::bucket',
      ]) {
        expect(allowed('CrossAccountRolePattern').test(bad), bad).toBe(false);
      }
      expect(allowed('CrossAccountExternalIdPattern').test('fleet-*')).toBe(true);
      expect(allowed('CrossAccountExternalIdPattern').test('a b')).toBe(false);
    });
  });

  it('reserves concurrency for the rotation function (5 by default, none with 0)', () => {
    expect(props(template, 'RotateLambdaFunction').ReservedConcurrentExecutions).toBe('5');
    const unreserved = materialize(raw, { RotationReservedConcurrency: '0' });
    expect(props(unreserved, 'RotateLambdaFunction')).not.toHaveProperty('ReservedConcurrentExecutions');
  });

  it('reserves concurrency for the exporter only when asked (none by default)', () => {
    expect(props(template, 'ExportLambdaFunction')).not.toHaveProperty('ReservedConcurrentExecutions');
    const reserved = materialize(raw, { ExportReservedConcurrency: '40' });
    expect(props(reserved, 'ExportLambdaFunction').ReservedConcurrentExecutions).toBe('40');
  });

  it('encrypts the watermark table with the project key and keeps point-in-time recovery', () => {
    const table = props(template, 'WatermarkTable');
    expect(table.BillingMode).toBe('PAY_PER_REQUEST');
    expect(table.KeySchema).toEqual([
      { AttributeName: 'cluster', KeyType: 'HASH' },
      { AttributeName: 'table', KeyType: 'RANGE' },
    ]);
    expect(table.AttributeDefinitions).toEqual([
      { AttributeName: 'cluster', AttributeType: 'S' },
      { AttributeName: 'table', AttributeType: 'S' },
    ]);
    expect(table.SSESpecification).toEqual({
      SSEEnabled: true,
      SSEType: 'KMS',
      KMSMasterKeyId: arnOf('ProjectKey'),
    });
    expect(table.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
  });

  it('encrypts the bucket with SSE-KMS and bucket keys, blocks public access and ages objects by params', () => {
    const bucket = props(template, 'ExportBucket');
    expect(bucket.BucketEncryption.ServerSideEncryptionConfiguration).toEqual([
      {
        ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: arnOf('ProjectKey') },
        BucketKeyEnabled: true,
      },
    ]);
    expect(bucket.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    const ageing = bucket.LifecycleConfiguration.Rules.find((r: { Id: string }) => r.Id === 'AgeExports');
    expect(ageing.Transitions).toEqual([
      { StorageClass: 'STANDARD_IA', TransitionInDays: 30 },
      { StorageClass: 'GLACIER_IR', TransitionInDays: 90 },
    ]);
    expect(ageing.ExpirationInDays).toBe(365);
  });

  it('denies access without TLS and uploads that ask for anything but SSE-KMS with the project key', () => {
    const statements = resourcePolicyStatements(resource(template, 'ExportBucketPolicy'), 'PolicyDocument');
    const insecure = bySid(statements, 'DenyInsecureTransport');
    expect(insecure).toMatchObject({ Effect: 'Deny', Principal: '*', Action: 's3:*' });
    expect(String(insecure.Condition?.Bool?.['aws:SecureTransport'])).toBe('false');
    expect(asArray(insecure.Resource)).toHaveLength(2);
    const notKms = bySid(statements, 'DenyUploadsNotEncryptedWithKms');
    expect(notKms).toMatchObject({ Effect: 'Deny', Action: 's3:PutObject' });
    expect(notKms.Condition).toEqual({
      StringNotEqualsIfExists: { 's3:x-amz-server-side-encryption': 'aws:kms' },
    });
    expect(bySid(statements, 'DenyUploadsWithAnotherKey').Condition).toEqual({
      StringNotEqualsIfExists: { 's3:x-amz-server-side-encryption-aws-kms-key-id': arnOf('ProjectKey') },
    });
  });

  it('rotates the project key and keeps its administrators apart from its users', () => {
    for (const [name, t] of [
      ['named admins', template],
      ['account as admin', materialize(raw, { KeyAdminArns: '' })],
    ] as const) {
      const key = props(t, 'ProjectKey');
      expect(key.EnableKeyRotation, name).toBe(true);
      const statements = resourcePolicyStatements(resource(t, 'ProjectKey'), 'KeyPolicy');
      const admin = bySid(statements, 'KeyAdministration');
      const users = bySid(statements, 'FunctionsUseKeyThroughServices');
      const readers = bySid(statements, 'ReadersDecryptExportsAndDeadLetters');
      const principals = (s: Statement) => asArray((s.Principal as { AWS: unknown }).AWS).map(json);
      const adminPrincipals = principals(admin);
      expect(adminPrincipals.length, name).toBeGreaterThan(0);
      for (const p of [...principals(users), ...principals(readers)]) {
        expect(adminPrincipals, name).not.toContain(p);
      }
      expect(users.Principal).toEqual({ AWS: [arnOf('RotateFunctionRole'), arnOf('ExportFunctionRole')] });
      expect(asArray(users.Condition?.StringEquals?.['kms:ViaService']).length).toBeGreaterThan(0);
      const cryptographic = /^kms:(Decrypt|Encrypt|GenerateDataKey|ReEncrypt)/;
      expect(
        asArray(admin.Action).filter((a) => cryptographic.test(a)),
        name,
      ).toEqual([]);
      // Every other statement that reaches the key's data either names the two roles,
      // the readers or a service acting for this account.
      for (const s of statements.filter((x) => asArray(x.Action).some((a) => cryptographic.test(a)))) {
        expect([
          'FunctionsUseKeyThroughServices',
          'ReadersDecryptExportsAndDeadLetters',
          'AlertPublishersUseKey',
        ]).toContain(s.Sid);
      }
    }
    expect(
      bySid(resourcePolicyStatements(resource(template, 'ProjectKey'), 'KeyPolicy'), 'KeyAdministration'),
    ).toMatchObject({ Principal: { AWS: [PARAMS.keyAdminArns] } });
  });

  it('lets Secrets Manager of this account alone invoke the rotation function', () => {
    const permissions = ofType(template, 'AWS::Lambda::Permission').filter(
      ([, p]) => p.Properties.Principal === 'secretsmanager.amazonaws.com',
    );
    expect(permissions).toHaveLength(1);
    expect(permissions[0]?.[1].Properties).toEqual({
      Action: 'lambda:InvokeFunction',
      FunctionName: arnOf('RotateLambdaFunction'),
      Principal: 'secretsmanager.amazonaws.com',
      SourceAccount: { Ref: 'AWS::AccountId' },
    });
  });

  it('schedules the exporter and parks its failed asynchronous invocations in an encrypted queue', () => {
    const schedules = ofType(template, 'AWS::Events::Rule').filter(
      ([, r]) => r.Properties.ScheduleExpression,
    );
    const targets = schedules.map(([, r]) => json(r.Properties.Targets[0].Arn));
    expect(targets.sort()).toEqual([
      json(arnOf('ExportLambdaFunction')),
      json(arnOf('ExportLambdaFunction')),
      json(arnOf('HealthLambdaFunction')),
    ]);
    const exportSchedules = schedules
      .filter(([, r]) => json(r.Properties.Targets[0].Arn) === json(arnOf('ExportLambdaFunction')))
      .map(([, r]) => r.Properties);
    const schedule = exportSchedules.find((r) => r.Targets[0].Input === undefined) ?? {};
    expect(schedule.ScheduleExpression).toBe('rate(5 minutes)');
    expect(schedule.State).toBe('ENABLED');
    expect(schedule.Targets[0].Arn).toEqual(arnOf('ExportLambdaFunction'));
    // Daily compaction: opt-in, and its input is the scheduled compact event the handler accepts.
    const compaction = exportSchedules.find((r) => r.Targets[0].Input !== undefined) ?? {};
    expect(compaction.State).toBe('DISABLED');
    expect(compaction.ScheduleExpression).toBe('cron(30 1 * * ? *)');
    expect(parseExportEvent(JSON.parse(compaction.Targets[0].Input))).toEqual({ kind: 'compact' });

    const invokeConfig = props(template, 'ExportAsyncInvokeConfig');
    expect(invokeConfig.FunctionName).toEqual({ Ref: 'ExportLambdaFunction' });
    expect(invokeConfig.DestinationConfig).toEqual({
      OnFailure: { Destination: arnOf('ExportDeadLetterQueue') },
    });
    expect(props(template, 'ExportDeadLetterQueue').KmsMasterKeyId).toEqual(arnOf('ProjectKey'));
  });

  it('alarms on function errors and dead letters, and sends RotationFailed events to an encrypted topic', () => {
    const alarms = ofType(template, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    for (const fn of ['RotateLambdaFunction', 'ExportLambdaFunction']) {
      const alarm = alarms.find((a) => a.MetricName === 'Errors' && json(a.Dimensions).includes(fn));
      expect(alarm, fn).toMatchObject({
        Namespace: 'AWS/Lambda',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        AlarmActions: [{ Ref: 'AlertTopic' }],
      });
    }
    expect(alarms.find((a) => a.Namespace === 'AWS/SQS')?.Dimensions).toEqual([
      { Name: 'QueueName', Value: { 'Fn::GetAtt': ['ExportDeadLetterQueue', 'QueueName'] } },
    ]);

    const errorLines = props(template, 'ExportErrorLogMetric');
    expect(errorLines.LogGroupName).toEqual({ Ref: 'ExportLogGroup' });
    expect(errorLines.FilterPattern).toBe('{ $.level = "ERROR" }');
    const tableFailures = alarms.find((a) => a.MetricName === 'ExportErrorLines');
    expect(tableFailures).toMatchObject({ Namespace: errorLines.MetricTransformations[0].MetricNamespace });
    expect(tableFailures?.AlarmActions).toEqual([{ Ref: 'AlertTopic' }]);

    const rule = props(template, 'RotationFailedRule');
    expect(rule.EventPattern).toMatchObject({
      source: ['aws.secretsmanager'],
      'detail-type': ['AWS Service Event via CloudTrail'],
      detail: { eventSource: ['secretsmanager.amazonaws.com'] },
    });
    expect(rule.EventPattern.detail.eventName).toContain('RotationFailed');
    expect(rule.Targets).toEqual([{ Id: 'alert-topic', Arn: { Ref: 'AlertTopic' } }]);
    expect(props(template, 'AlertTopic').KmsMasterKeyId).toEqual(arnOf('ProjectKey'));
    const topicPolicy = resourcePolicyStatements(resource(template, 'AlertTopicPolicy'), 'PolicyDocument');
    expect(bySid(topicPolicy, 'RotationFailureRulePublishes')).toMatchObject({
      Effect: 'Allow',
      Principal: { Service: 'events.amazonaws.com' },
      Action: 'sns:Publish',
      Condition: { ArnEquals: { 'aws:SourceArn': arnOf('RotationFailedRule') } },
    });
  });

  it('keeps each zipped bundle small, with the handler module where the template points', () => {
    const sizes: string[] = [];
    // The export function's Parquet encoder thread runs a bundle of its own, shipped beside the handler's only.
    const extra: Record<string, string[]> = {
      export: ['functions/parquet-worker.cjs', 'functions/parquet-worker.cjs.map'],
    };
    for (const fn of ['rotate', 'export', 'health']) {
      const zip = join(outDir, `${fn}.zip`);
      const zipped = statSync(zip).size;
      const entries = zipEntries(zip);
      const unzipped = entries.reduce((sum, e) => sum + e.size, 0);
      sizes.push(
        `${fn}: ${(zipped / 1024).toFixed(0)} KiB zipped, ${(unzipped / 1024).toFixed(0)} KiB unzipped`,
      );
      expect(zipped, fn).toBeLessThan(MAX_ZIP_BYTES);
      expect(entries.map((e) => e.name).sort(), fn).toEqual([
        `functions/${fn}.cjs`,
        `functions/${fn}.cjs.map`,
        ...(extra[fn] ?? []),
      ]);
    }
    console.info(`bundle sizes: ${sizes.join('; ')}`);
  });

  describe('metrics of the dashboard and the alarms', () => {
    const namespace = `${SERVICE}/${STAGE}`;
    let emitted: MetricRef[] = [];

    /** Runs each function for real (rotations, a failed one, the health check, an export) and keeps what it emits. */
    beforeAll(async () => {
      const metrics = (serviceName: string) => new Metrics({ namespace, serviceName });
      const output = captureOutput();
      try {
        const rotation = invoker(rotationDeps({ metrics: metrics('secret-rotation') }));
        const good = await singleUserSecret(postgresUnderTest);
        await rotate(good.arn, { invoke: rotation });
        const bad = await singleUserSecret(postgresUnderTest, { engine: 'oracle' });
        await rotate(bad.arn, { invoke: rotation }).catch(() => {});
        await makeHealthHandler({
          secretsManager: new SecretsManagerClient({}),
          rotationFunctionArn: PLACEHOLDER_ROTATION_LAMBDA_ARN,
          metrics: metrics('secret-rotation'),
          logger: createLogger('health-test'),
        })();
        const path = `/${uniqueName('metrics')}`;
        await putParameters(path, {
          'global/destination': `file://${exportDirectory()}`,
          'global/window-minutes': '1',
          'global/lag-seconds': '0',
          'global/initial-lookback-hours': '1',
          ...mysqlClusterParameters('db1'),
          'clusters/db1/tables': ['general_log'],
        });
        const runtime = { ...testRuntime({ path, watermarkTable: await createWatermarkTable() }) };
        await makeExportHandler({ ...runtime, metrics: metrics('log-export') })({ cluster: 'db1' });
      } finally {
        output.stop();
      }
      emitted = [...emfMetrics(output.text()), ...metricFilterMetrics(template)];
    }, 180_000);

    it('the functions emit what the operations view needs', () => {
      const names = new Set(emitted.map((m) => m.name));
      for (const name of [
        'RotationSucceeded',
        'RotationFailed',
        'StuckSecrets',
        'ExportLagSeconds',
        'TablesExported',
      ]) {
        expect(names, name).toContain(name);
      }
    });

    it('every metric of the dashboard and of the alarms in our namespace is one the functions emit', () => {
      const refs = [...dashboardMetrics(template), ...alarmMetrics(template)];
      const ours = refs.filter((r) => !r.namespace.startsWith('AWS/'));
      expect(ours.length).toBeGreaterThan(12);
      expect(ours.filter((r) => !isEmitted(r, emitted))).toEqual([]);
      // AWS's own metrics: the namespaces the functions' resources report to.
      expect(new Set(refs.filter((r) => r.namespace.startsWith('AWS/')).map((r) => r.namespace))).toEqual(
        new Set(['AWS/Lambda', 'AWS/SQS']),
      );
    });

    it('alarms on overdue and stuck secrets, sustained export lag and an exporter that went silent', () => {
      const alarms = alarmMetrics(template).map((a) => `${a.name}@${a.dimensions.service ?? '-'}`);
      expect(alarms).toEqual(
        expect.arrayContaining([
          'OverdueSecrets@secret-rotation',
          'StuckSecrets@secret-rotation',
          'LaggingTables@log-export',
          'TablesExported@log-export',
        ]),
      );
      const lag = props(template, 'ExportLagAlarm');
      expect(lag.EvaluationPeriods * lag.Period).toBeGreaterThanOrEqual(900);
      expect(lag.DatapointsToAlarm).toBe(lag.EvaluationPeriods);
      expect(props(template, 'ExportStoppedAlarm').TreatMissingData).toBe('breaching');
      expect(props(template, 'ExportLambdaFunction').Environment.Variables.EXPORT_LAG_ALARM_WINDOWS).toBe(
        '4',
      );
    });
  });
});
