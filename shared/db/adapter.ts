import type { Logger } from '../log';
import type { ConnectionTarget } from './connect';
import type { TlsMode } from './tls';

/** Everything needed to log in to a database for rotation. */
export interface DatabaseLogin {
  host: string;
  port: number;
  username: string;
  password: string;
  dbname?: string;
  tls: TlsMode;
  /** The name the certificate must carry when `host` is an alias (the secret's `tlsServerName`). */
  tlsServerName?: string;
}

/** Where and as whom a login connects; `database` when the login names none. */
export function connectionTarget(login: DatabaseLogin, database = login.dbname): ConnectionTarget {
  return {
    host: login.host,
    port: login.port,
    user: login.username,
    password: login.password,
    database: login.dbname ?? database,
    tls: login.tls,
    ...(login.tlsServerName ? { tlsServerName: login.tlsServerName } : {}),
  };
}

/** The account a session is logged in as. `host` is the MySQL account host (`'%'`, `'10.0.%'`, ...). */
export interface AccountRef {
  name: string;
  host?: string;
}

/** One statement of provisioning an alternating user, as an observer sees it before it runs. */
export interface ProvisionStatement {
  /** `create` the account, replay a `grant`, `copy` another property of the original, set the `password`. */
  kind: 'create' | 'revoke' | 'grant' | 'copy' | 'password';
  /** Position among the statements of its kind, from 0. */
  index: number;
}

/**
 * What the master finds under the user name an alternating rotation is about to
 * rotate into: nothing (`absent`), the exact account holding the pending
 * password already (`holds-pending-password`: left by an earlier attempt of the
 * same rotation), or something else (`exists`).
 */
export type AlternateUserState = 'absent' | 'holds-pending-password' | 'exists';

/** What `provisionAlternateUser` makes. */
export interface AlternateUserPlan {
  /** The base user of the alternating pair (the one without the `_clone` suffix). */
  original: string;
  /** The account that logs in today; the pending user gets its privileges. */
  current: AccountRef;
  /** The user to rotate into, on the same account host as `current`. */
  pending: string;
  password: string;
  /** True: `pending` does not exist and is created; false: it exists and is updated. */
  create: boolean;
  /** PostgreSQL: the NOLOGIN role both users belong to and create objects as (the secret's `ownerRole`). */
  ownerRole?: string;
  /** Called before each statement (a test seam to interrupt provisioning); absent in production. */
  beforeStatement?: (statement: ProvisionStatement) => Promise<void>;
}

/** One logged-in connection, with the few operations rotation needs. */
export interface DatabaseSession {
  /** The exact account the server authenticated (MySQL: user and host pattern). */
  account(): Promise<AccountRef>;
  /** Runs a trivial query. */
  check(): Promise<void>;
  /** The logged-in user changes its own password; needs no user-management privilege. */
  setOwnPassword(password: string): Promise<void>;
  /**
   * Run as the master user: what exists under the name `pending` (on `current`'s
   * account host), for the ownership rule. `password` is the pending password.
   */
  inspectAlternateUser(options: {
    current: AccountRef;
    pending: string;
    password: string;
  }): Promise<AlternateUserState>;
  /**
   * Run as the master user: makes `pending` hold the privileges of `current`,
   * and only then its password, so that the pending credentials never log in
   * with privileges missing. Every call reapplies everything (idempotent), so a
   * retry completes what an interrupted call left.
   */
  provisionAlternateUser(plan: AlternateUserPlan): Promise<void>;
  close(): Promise<void>;
}

/** What rotation knows about one engine family; the state machine sees nothing else. */
export interface RotationAdapter {
  readonly family: 'mysql' | 'postgres';
  readonly defaultPort: number;
  /** Characters the official rotation functions exclude from generated passwords. */
  readonly defaultExcludeCharacters: string;
  open(login: DatabaseLogin, options: { logger?: Logger; purpose: string }): Promise<DatabaseSession>;
}
