import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWatermarkTable, WatermarkStore } from '../../shared/export';
import { createMysqlUser, createSecret, randomPassword, stack } from '../stack/fixtures';
import { type MotoHandle, startMoto } from '../stack/moto';
import { assertPrerequisites, projectRoot } from '../stack/prerequisites';
import { runScript } from '../support/cli';
import { createMemberSecret } from '../support/member-account';
import { docBlock } from './markdown';

/**
 * The operator's commands of docs/deploy.md and docs/operations.md, run as the
 * docs write them (aws CLI and npm scripts) against a moto of this file's own,
 * so that the docs' fixed names (/log-export, db/orders-prod, the prod stack's
 * table) meet no other test, and the stack's MariaDB. A CloudFormation stack
 * in moto stands in for the deployed one: a bucket and a KMS key, and the two
 * outputs the docs read.
 */

const run = promisify(execFile);
const STACK = 'db-secret-rotation-log-export-prod';
const WATERMARKS = `${STACK}-watermarks`;
const CONFIG_PATH = '/log-export';

let moto: MotoHandle;
let workDir: string;
let outputs: { ExportDestination: string; ProjectKeyArn: string };
/** The cluster's database login (the stack's MariaDB). */
let login: { engine: string; host: string; port: number; username: string; password: string };

/** Runs a docs' shell block with bash, the AWS CLI pointed at this file's moto. */
async function shell(script: string, env: NodeJS.ProcessEnv = {}) {
  const venv = join(projectRoot, '.venv/bin');
  try {
    const { stdout, stderr } = await run('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: projectRoot,
      env: { ...process.env, PATH: `${venv}${delimiter}${process.env.PATH}`, AWS_PAGER: '', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The local run of export.md: `CONFIG_PATH=/log-export WATERMARK_TABLE=... npm run export -- events/export/catch-up.json`. */
function exportCatchUp() {
  return runScript('scripts/export.ts', ['events/export/catch-up.json'], {
    CONFIG_PATH,
    WATERMARK_TABLE: WATERMARKS,
  });
}

const watermarkItem = async (table: string) =>
  (
    await new DynamoDBClient({}).send(
      new GetItemCommand({
        TableName: WATERMARKS,
        Key: { cluster: { S: 'orders-prod' }, table: { S: table } },
        ConsistentRead: true,
      }),
    )
  ).Item;

beforeAll(async () => {
  assertPrerequisites({ moto: false, postgres: false, mariadb: false, awsCli: true });
  workDir = mkdtempSync(join(tmpdir(), 'docs-moto-'));
  moto = await startMoto(workDir);
  process.env.AWS_ENDPOINT_URL = moto.endpoint;

  const template = join(workDir, 'stack.json');
  writeFileSync(
    template,
    JSON.stringify({
      Resources: {
        ExportBucket: { Type: 'AWS::S3::Bucket' },
        ProjectKey: {
          Type: 'AWS::KMS::Key',
          Properties: { KeyPolicy: { Version: '2012-10-17', Statement: [] } },
        },
      },
      Outputs: {
        ExportDestination: { Value: { 'Fn::Join': ['', ['s3://', { Ref: 'ExportBucket' }, '/logs']] } },
        ProjectKeyArn: { Value: { 'Fn::GetAtt': ['ProjectKey', 'Arn'] } },
      },
    }),
  );
  const created = await shell(
    `aws cloudformation create-stack --stack-name ${STACK} --template-body file://${template} >/dev/null` +
      ` && aws cloudformation describe-stacks --stack-name ${STACK} --query 'Stacks[0].Outputs'`,
  );
  expect(created.stderr).toBe('');
  const list = JSON.parse(created.stdout) as Array<{ OutputKey: string; OutputValue: string }>;
  outputs = Object.fromEntries(list.map((o) => [o.OutputKey, o.OutputValue])) as typeof outputs;
  await createWatermarkTable(new DynamoDBClient({}), WATERMARKS);

  // The cluster's database user: reads the log tables, and is the user of the secret that rotation rotates.
  const password = randomPassword();
  const username = await createMysqlUser({
    password,
    grants: ['SELECT ON mysql.general_log', 'SELECT ON mysql.slow_log'],
  });
  const { host, port } = stack().mariadb;
  login = { engine: 'mariadb', host, port, username, password };
  await createSecret(login, 'db/orders-prod');
}, 180_000);

afterAll(async () => {
  await moto?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe("the docs' operator commands, as written", { timeout: 180_000 }, () => {
  it('deploy.md: enabling the exporter for a cluster configures what npm run export (export.md) exports', async () => {
    const setup = await shell(docBlock('exporter-setup'));
    expect(setup).toMatchObject({ code: 0, stderr: '' });

    const { code, stdout, stderr } = await exportCatchUp();

    expect(stderr).toBe('');
    expect(code).toBe(0);
    const summary = JSON.parse(stdout) as {
      mode: string;
      clusters: Array<{ cluster: string; error?: string; tables: Array<Record<string, unknown>> }>;
    };
    expect(summary.mode).toBe('catch-up');
    expect(summary.clusters).toHaveLength(1);
    const [cluster] = summary.clusters;
    expect(cluster?.cluster).toBe('orders-prod');
    expect(cluster?.error).toBeUndefined();
    const generalLog = cluster?.tables.find((t) => t.table === 'general_log');
    expect(generalLog?.error).toBeUndefined();
    expect(generalLog?.rows).toBeGreaterThan(0);
    expect(generalLog?.objectsWritten).toBeGreaterThan(0);

    // Under the stack's ExportDestination, encrypted with the key the block named.
    const [, bucket = '', prefix = ''] = /^s3:\/\/([^/]+)\/(.*)$/.exec(outputs.ExportDestination) ?? [];
    const s3 = new S3Client({ forcePathStyle: true });
    const listed = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/general_log/cluster=orders-prod/` }),
    );
    expect(listed.Contents?.length).toBe(generalLog?.objectsWritten);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: listed.Contents?.[0]?.Key }));
    expect(head.ServerSideEncryption).toBe('aws:kms');
    expect(head.SSEKMSKeyId).toBe(outputs.ProjectKeyArn);
  });

  it('operations.md: resetting a watermark moves it on the grid unless a run holds the lease, and deletes it', async () => {
    // The item an export run leaves: watermark on the grid, lease released.
    const store = new WatermarkStore(new DynamoDBClient({}), WATERMARKS);
    const run = await store.acquire('orders-prod', 'general_log', 'an-export-run', Date.now() + 60_000);
    const gridPoint = new Date(Math.ceil(Date.now() / 300_000) * 300_000 + 300_000);
    const watermark = `${gridPoint.toISOString().slice(0, 19)}.000000Z`;
    await store.release(await store.advance(run, watermark, 7, Date.now() + 60_000));
    const before = await watermarkItem('general_log');
    expect(before?.watermark?.S).toBe(watermark);

    const moved = await shell(docBlock('watermark-move'), { TABLE: WATERMARKS });

    expect(moved).toMatchObject({ code: 0, stderr: '' });
    const after = await watermarkItem('general_log');
    expect(after?.watermark?.S).toBe('2026-11-28T12:00:00.000000Z');
    expect(Number(after?.version?.N)).toBe(Number(before?.version?.N) + 1);
    expect(after?.updatedAt?.S).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000000Z$/);
    expect(after?.logCursor).toEqual(before?.logCursor);

    const lease = await store.acquire('orders-prod', 'general_log', 'a-running-export', Date.now() + 60_000);
    const refused = await shell(docBlock('watermark-move'), { TABLE: WATERMARKS });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('ConditionalCheckFailedException');
    expect((await watermarkItem('general_log'))?.leaseOwner?.S).toBe('a-running-export');
    // A lease that has lapsed holds nothing: the change goes through.
    await store.renew(lease, Date.now() - 1_000);
    const overLapsed = await shell(docBlock('watermark-move'), { TABLE: WATERMARKS });
    expect(overLapsed).toMatchObject({ code: 0, stderr: '' });

    const deleted = await shell(docBlock('watermark-delete'));

    expect(deleted).toMatchObject({ code: 0, stderr: '' });
    expect(await watermarkItem('general_log')).toBeUndefined();
  });

  it('operations.md: watching a rotation shows it enabled and finished, and the exporter logs in after it', async () => {
    const rotated = await runScript('scripts/rotate.ts', ['db/orders-prod']);
    expect(rotated.code).toBe(0);
    const { token } = JSON.parse(rotated.stdout.trim().split('\n').at(-1) ?? '{}') as { token: string };

    const { code, stdout, stderr } = await shell(docBlock('watch-rotation'));

    expect(stderr).toBe('');
    expect(code).toBe(0);
    const state = JSON.parse(stdout) as {
      enabled: boolean | null;
      last: unknown;
      next: unknown;
      stages: Record<string, string[]>;
    };
    expect(Object.keys(state).sort()).toEqual(['enabled', 'last', 'next', 'stages']);
    expect(state.enabled).toBe(true);
    // moto sets no LastRotatedDate: only the keys are checked for `last`.
    expect(state.next).not.toBeNull();
    expect(state.stages[token]).toEqual(['AWSCURRENT']);
    expect(Object.values(state.stages).flat().sort()).toEqual(['AWSCURRENT', 'AWSPREVIOUS']);

    const exported = await exportCatchUp();
    expect(exported.stderr).toBe('');
    expect(exported.code).toBe(0);
  });

  it('deploy.md: a cluster in another account reads its secret there, through the role the block names', async () => {
    // The member account keeps the working login; the exporter's own account is left a stale one.
    const sm = new SecretsManagerClient({});
    const { SecretString } = await sm.send(
      new GetSecretValueCommand({ SecretId: 'db/orders-prod', VersionStage: 'AWSCURRENT' }),
    );
    await createMemberSecret('444455556666', JSON.parse(SecretString ?? '{}'), undefined, 'db/orders-prod');
    await sm.send(
      new PutSecretValueCommand({
        SecretId: 'db/orders-prod',
        SecretString: JSON.stringify({ ...login, password: randomPassword() }),
      }),
    );

    const setup = await shell(docBlock('exporter-setup'));
    const member = await shell(docBlock('cross-account-cluster'), { P: CONFIG_PATH, CLUSTER: 'orders-prod' });

    expect(setup).toMatchObject({ code: 0, stderr: '' });
    expect(member).toMatchObject({ code: 0, stderr: '' });
    const { code, stdout, stderr } = await exportCatchUp();
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const summary = JSON.parse(stdout) as { clusters: Array<{ cluster: string; error?: string }> };
    expect(summary.clusters).toEqual([expect.objectContaining({ cluster: 'orders-prod' })]);
    expect(summary.clusters[0]?.error).toBeUndefined();
  });
});
