/**
 * The product's error hierarchy. Every message names the input that was wrong
 * (parameter name, secret id, step, host) and never carries a secret value.
 * Driver and SDK errors are kept as `cause`.
 */
export class AppError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** One problem with one configuration parameter, named by its full SSM name. */
export interface ConfigProblem {
  parameter: string;
  problem: string;
}

/** Configuration is missing or malformed; `problems` lists every bad parameter at once. */
export class ConfigError extends AppError {
  readonly problems: readonly ConfigProblem[];

  constructor(message: string, problems: readonly ConfigProblem[] = [], options?: { cause?: unknown }) {
    const details = problems.map((p) => `${p.parameter}: ${p.problem}`).join('; ');
    super(details ? `${message}: ${details}` : message, options);
    this.problems = Object.freeze([...problems]);
  }
}

/** A secret's JSON value is not what rotation or export expects. */
export class SecretFormatError extends AppError {}

/** The rotation event or the secret's version stages do not allow the requested step. */
export class RotationStateError extends AppError {}

/** A database could not be reached, refused a login, or failed a statement. */
export class DatabaseError extends AppError {}

/** The database refused the credentials (as opposed to being unreachable). */
export class AuthenticationError extends DatabaseError {}

/** An event handed to a function is malformed. */
export class EventError extends AppError {}

/** An export could not proceed (another run holds the lease, the watermark moved, ...). */
export class ExportError extends AppError {}

/** A role in another account could not be assumed (STS refused, or did not answer). */
export class AssumeRoleError extends AppError {}

/** A row's value does not fit its column's declared type; names the column, the row and why (never row text). */
export class EncodeError extends ExportError {
  constructor(
    message: string,
    readonly column: string,
    readonly row: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
