#!/usr/bin/env bash
# Builds the deployment artifacts offline (no AWS credentials needed) and lints the
# generated CloudFormation template and the member account template (deploy/): what CI
# runs for the deployment. Extra
# arguments go to `serverless package`, e.g. --stage prod --param="keyAdminArns=...".
set -euo pipefail
cd "$(dirname "$0")/.."

# cfn-lint from the project's Python environment (npm run setup) when there is one.
CFN_LINT=cfn-lint
[ -x .venv/bin/cfn-lint ] && CFN_LINT=.venv/bin/cfn-lint
command -v "$CFN_LINT" >/dev/null || {
  echo "cfn-lint not found. Fix: npm run setup (installs it into .venv), or: pip install cfn-lint" >&2
  exit 1
}
export SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off

started=$SECONDS
npx serverless package "$@"
echo "packaged in $((SECONDS - started)) s"
"$CFN_LINT" .serverless/cloudformation-template-update-stack.json deploy/*.yml
echo "cfn-lint: no findings"
for zip in .serverless/*.zip; do
  echo "$(basename "$zip"): $(( $(stat -c %s "$zip") / 1024 )) KiB zipped"
done
