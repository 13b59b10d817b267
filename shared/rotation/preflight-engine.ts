import type { AccountRef, DatabaseLogin } from '../db/adapter';
import type { PreflightCheck } from './preflight-check';
import type { PasswordPolicy } from './settings';

/** A logged-in, read-only session that answers what rotation will need from one engine family. */
export interface PreflightSession {
  /** The account the server authenticated (MySQL: with its host pattern). */
  readonly account: AccountRef;
  /** "MariaDB 10.11.6", "PostgreSQL 15.4". */
  readonly serverLabel: string;
  /** Single user: may this account change its own password the way rotation does it? */
  ownPassword(): Promise<PreflightCheck>;
  /** The server's own password rules against the policy; undefined when the engine has none to ask. */
  passwordRules(policy: PasswordPolicy): Promise<PreflightCheck | undefined>;
  /** Run as the master: may it create or update `clone` with everything `user` holds? */
  alternation(user: AccountRef, clone: string, original: string): Promise<PreflightCheck>;
  close(): Promise<void>;
}

export interface PreflightEngine {
  /** Logs in through the product's connect functions (same TLS policy as rotation). */
  open(login: DatabaseLogin): Promise<PreflightSession>;
}
