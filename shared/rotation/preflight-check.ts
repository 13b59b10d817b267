/** One preflight finding: what was checked, how it went, and what to do about it. */
export type CheckStatus = 'pass' | 'warn' | 'fail';

export interface PreflightCheck {
  name: string;
  status: CheckStatus;
  /** What was found, naming hosts, users and settings, never a password. */
  detail: string;
  /** What to change; empty when there is nothing to do. */
  fix: string;
}

export const pass = (name: string, detail: string): PreflightCheck => ({
  name,
  status: 'pass',
  detail,
  fix: '',
});
export const warn = (name: string, detail: string, fix: string): PreflightCheck => ({
  name,
  status: 'warn',
  detail,
  fix,
});
export const fail = (name: string, detail: string, fix: string): PreflightCheck => ({
  name,
  status: 'fail',
  detail,
  fix,
});

/**
 * A check that could not run because an earlier one failed. A warning, so that
 * only the real cause shows as a failure (the secret is not rotatable anyway).
 */
export const notRun = (name: string, failed: string): PreflightCheck =>
  warn(name, `Not checked: the check "${failed}" failed`, `Fix "${failed}" first, then run preflight again`);
