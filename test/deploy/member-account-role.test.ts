import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  asArray,
  materialize,
  ofType,
  readYamlTemplate,
  type Statement,
  statementsAllow,
} from './template-support';

/**
 * deploy/member-account-role.yml, the role the exporter assumes in a member
 * account: its trust policy and its permissions, evaluated statement by statement
 * (npm run package:check lints it with cfn-lint).
 */

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const raw = readYamlTemplate(join(root, 'deploy/member-account-role.yml'));

// The member account is the one the pseudo parameters stand for (123456789012, us-east-1).
const EXPORTER = 'arn:aws:iam::999999999999:role/db-secret-rotation-log-export-prod-ExportFunctionRole-1AB2';
const KEY = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const secret = (name: string, account = '123456789012', region = 'us-east-1') =>
  `arn:aws:secretsmanager:${region}:${account}:secret:${name}-AbCdEf`;
const VIA_SECRETS_MANAGER = { 'kms:ViaService': 'secretsmanager.us-east-1.amazonaws.com' };

function role(overrides: Record<string, string>) {
  const parameters: Record<string, string> = { ExporterRoleArn: EXPORTER, ...overrides };
  const template = materialize(raw, parameters);
  const [[, resource] = []] = ofType(template, 'AWS::IAM::Role');
  if (!resource) throw new Error('no role in the template');
  const trust = asArray(
    (resource.Properties.AssumeRolePolicyDocument as { Statement: Statement[] }).Statement,
  );
  const permissions = asArray(
    resource.Properties.Policies as Array<{ PolicyDocument: { Statement: Statement[] } }>,
  ).flatMap((p) => asArray(p.PolicyDocument.Statement));
  const values = Object.fromEntries(
    Object.entries(template.Parameters ?? {}).map(([name, p]) => [name, parameters[name] ?? p.Default ?? '']),
  );
  return {
    resource,
    trust,
    permissions,
    assumes: (principal: string, externalId?: string) =>
      statementsAllow(trust, 'sts:AssumeRole', undefined, {
        principal,
        keys: externalId === undefined ? {} : { 'sts:ExternalId': externalId },
      }),
    may: (action: string, arn: string, keys: Record<string, string> = {}) =>
      statementsAllow(permissions, action, arn, { keys }, values),
  };
}

describe('the member account role', () => {
  it('is assumed by the exporter role alone, and with the external id when one is set', () => {
    const plain = role({});
    expect(plain.assumes(EXPORTER)).toBe(true);
    expect(plain.assumes('arn:aws:iam::999999999999:role/SomeoneElse')).toBe(false);
    expect(plain.assumes('arn:aws:iam::123456789012:root')).toBe(false);

    const withId = role({ ExternalId: 'fleet-7' });
    expect(withId.assumes(EXPORTER, 'fleet-7')).toBe(true);
    expect(withId.assumes(EXPORTER)).toBe(false);
    expect(withId.assumes(EXPORTER, 'fleet-8')).toBe(false);
    expect(withId.assumes('arn:aws:iam::999999999999:role/SomeoneElse', 'fleet-7')).toBe(false);
    expect(withId.trust).toHaveLength(1);
  });

  it('reads secrets under its prefix in its own account and region, and nothing else', () => {
    const { may } = role({ SecretNamePrefix: 'db/' });
    expect(may('secretsmanager:GetSecretValue', secret('db/orders-prod'))).toBe(true);
    expect(may('secretsmanager:GetSecretValue', secret('db-master/orders'))).toBe(false);
    expect(may('secretsmanager:GetSecretValue', secret('rds!cluster-0c3e1a2b'))).toBe(false);
    expect(may('secretsmanager:GetSecretValue', secret('db/orders-prod', '210987654321'))).toBe(false);
    expect(may('secretsmanager:GetSecretValue', secret('db/orders-prod', '123456789012', 'eu-west-1'))).toBe(
      false,
    );
    for (const action of [
      'secretsmanager:PutSecretValue',
      'secretsmanager:DescribeSecret',
      'secretsmanager:ListSecrets',
    ]) {
      expect(may(action, secret('db/orders-prod')), action).toBe(false);
    }
  });

  it('decrypts with the given key only through Secrets Manager, and needs no key statement without one', () => {
    const { may, permissions } = role({ SecretKeyArn: KEY });
    expect(may('kms:Decrypt', KEY, VIA_SECRETS_MANAGER)).toBe(true);
    expect(may('kms:Decrypt', KEY)).toBe(false);
    expect(may('kms:Decrypt', KEY, { 'kms:ViaService': 's3.us-east-1.amazonaws.com' })).toBe(false);
    expect(may('kms:Decrypt', KEY.replace('1234abcd', 'ffffffff'), VIA_SECRETS_MANAGER)).toBe(false);
    expect(may('kms:Encrypt', KEY, VIA_SECRETS_MANAGER)).toBe(false);
    expect(permissions.flatMap((s) => asArray(s.Action)).sort()).toEqual([
      'kms:Decrypt',
      'secretsmanager:GetSecretValue',
    ]);

    const withoutKey = role({});
    expect(withoutKey.may('kms:Decrypt', KEY, VIA_SECRETS_MANAGER)).toBe(false);
    expect(withoutKey.permissions.flatMap((s) => asArray(s.Action))).toEqual([
      'secretsmanager:GetSecretValue',
    ]);
  });

  it('keeps sessions to the hour a chained role can have, and refuses parameters outside their patterns', () => {
    const { resource } = role({});
    expect(resource.Properties.MaxSessionDuration).toBe(3600);
    const pattern = (name: string) => {
      const allowed = raw.Parameters?.[name]?.AllowedPattern;
      if (!allowed) throw new Error(`parameter ${name} has no AllowedPattern`);
      return new RegExp(allowed);
    };
    expect(pattern('ExporterRoleArn').test(EXPORTER)).toBe(true);
    expect(pattern('ExporterRoleArn').test('arn:aws:iam::999999999999:user/exporter')).toBe(false);
    expect(pattern('ExporterRoleArn').test('*')).toBe(false);
    expect(pattern('SecretNamePrefix').test('db/')).toBe(true);
    expect(pattern('SecretNamePrefix').test('*')).toBe(false);
    expect(pattern('SecretNamePrefix').test('')).toBe(false);
    expect(pattern('SecretKeyArn').test('alias/aws/secretsmanager')).toBe(false);
    expect(pattern('ExternalId').test('x')).toBe(false);
    expect(pattern('ExternalId').test('')).toBe(true);
  });
});
