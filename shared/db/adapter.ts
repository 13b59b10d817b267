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

/** One logged-in connection, with the few operations rotation needs. */
export interface DatabaseSession {
  /** The exact account the server authenticated (MySQL: user and host pattern). */
  account(): Promise<AccountRef>;
  /** Runs a trivial query. */
  check(): Promise<void>;
  /** The logged-in user changes its own password; needs no user-management privilege. */
  setOwnPassword(password: string): Promise<void>;
  /**
   * Run as the master user: makes `pending` exist with `password` and the
   * privileges of `current` (the account that logs in today), where `original`
   * is the base user of the alternating pair.
   */
  provisionAlternateUser(options: {
    original: string;
    current: AccountRef;
    pending: string;
    password: string;
  }): Promise<void>;
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
