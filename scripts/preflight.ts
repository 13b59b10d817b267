/**
 * Checks locally whether a secret can be rotated, with the same checks as the
 * rotation function's `{ "action": "preflight" }`, from this machine's network:
 *
 *   npm run preflight -- <secret-id> [--function-arn <arn>] [--json]
 *
 * One line per check; exits 0 when the secret is rotatable, 1 when a check fails,
 * 2 on bad usage. Against moto (AWS_ENDPOINT_URL set) or AWS with the usual credentials.
 */
import { parseArgs } from 'node:util';
import { rdsClient, secretsManagerClient } from '../shared/aws/clients';
import { runPreflight } from '../shared/rotation/preflight';
import { passwordPolicySource } from '../shared/rotation/settings';

const USAGE = 'usage: npm run preflight -- <secret-id> [--function-arn ARN] [--json]\n';

let parsed: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    allowPositionals: true,
    options: { 'function-arn': { type: 'string' }, json: { type: 'boolean', default: false } },
  });
}
try {
  parsed = parse();
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n${USAGE}`);
  process.exit(2);
}
const { values, positionals } = parsed;
if (positionals.length !== 1) {
  process.stderr.write(USAGE);
  process.exit(2);
}

try {
  const report = await runPreflight(
    { action: 'preflight', SecretId: positionals[0] },
    {
      secretsManager: secretsManagerClient(),
      rds: rdsClient,
      passwordPolicy: passwordPolicySource(),
      functionArn: values['function-arn'],
    },
  );
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    for (const check of report.checks) {
      const fix = check.fix ? ` -> ${check.fix}` : '';
      process.stdout.write(
        `${check.status.toUpperCase().padEnd(4)}  ${check.name.padEnd(21)} ${check.detail}${fix}\n`,
      );
    }
    process.stdout.write(`${report.secretArn}: ${report.rotatable ? 'rotatable' : 'NOT rotatable'}\n`);
  }
  process.exit(report.rotatable ? 0 : 1);
} catch (error) {
  // A malformed secret id is bad usage; anything else is a check that could not run.
  const usage = (error as Error).name === 'EventError';
  process.stderr.write(`${(error as Error).message}\n${usage ? USAGE : ''}`);
  process.exit(usage ? 2 : 1);
}
