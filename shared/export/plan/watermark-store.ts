import { randomUUID } from 'node:crypto';
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { ExportError } from '../../errors';
import { type Generation, type PendingBatch, parseCursor, parsePending } from '../sources/mysql/log-position';

/** What one (cluster, table) item holds. */
export interface WatermarkState {
  watermark?: string;
  version: number;
  rowsExported: number;
}

/** A held lease: the version it was taken at moves with every committed window. */
export interface Lease {
  cluster: string;
  table: string;
  owner: string;
  version: number;
  watermark?: string;
  /** Tables read by position: how far each generation has been exported (`logCursor`). */
  cursor: Generation[];
  /** Tables read by position: the batch in flight, if a run stopped inside it (`logPending`). */
  pending?: PendingBatch;
}

/**
 * Creates the watermark table with the contract's key schema (partition key
 * `cluster`, sort key `table`), on demand. Deployments get it from
 * serverless.yml; local runs, the demo and tests call this.
 */
export async function createWatermarkTable(dynamo: DynamoDBClient, tableName: string): Promise<void> {
  await dynamo.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'cluster', KeyType: 'HASH' },
        { AttributeName: 'table', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'cluster', AttributeType: 'S' },
        { AttributeName: 'table', AttributeType: 'S' },
      ],
    }),
  );
}

/** Another run holds the lease, or took it over after ours lapsed. */
export class LeaseLostError extends ExportError {}

/**
 * High-water marks in DynamoDB, one item per (cluster, table), with a lease so
 * that two runs never export the same table at once. Every write is conditional
 * on `version` (optimistic locking) and bumps it, so a run whose lease lapsed and
 * was taken over cannot move the watermark any more.
 *
 * A write of the lease holder also stores a token of its own (`lastWrite`). When
 * DynamoDB applied a write but its answer was lost (a timeout, a reset
 * connection), the SDK sends the same request again, and that retry fails its
 * condition (the version moved, or the lease was released); finding the token in
 * the item tells the store that the write it made is the one that moved them.
 */
export class WatermarkStore {
  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly tableName: string,
    private readonly now: () => number = Date.now,
  ) {}

  async read(cluster: string, table: string): Promise<WatermarkState> {
    const { Item } = await this.dynamo.send(
      new GetItemCommand({ TableName: this.tableName, Key: key(cluster, table), ConsistentRead: true }),
    );
    return {
      watermark: Item?.watermark?.S,
      version: Number(Item?.version?.N ?? 0),
      rowsExported: Number(Item?.rowsExported?.N ?? 0),
    };
  }

  /**
   * Takes the lease until `untilMs` unless another owner holds one that has not lapsed.
   * Needs no `lastWrite` token: an SDK retry of an acquire that was applied (its answer
   * lost) passes by `leaseOwner = :owner`, bumps `version` once more and returns it.
   */
  async acquire(cluster: string, table: string, owner: string, untilMs: number): Promise<Lease> {
    try {
      const { Attributes } = await this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: key(cluster, table),
          UpdateExpression: 'SET leaseOwner = :owner, leaseUntil = :until, updatedAt = :at ADD version :one',
          ConditionExpression: 'attribute_not_exists(leaseUntil) OR leaseUntil < :now OR leaseOwner = :owner',
          ExpressionAttributeValues: {
            ':owner': { S: owner },
            ':until': { N: String(untilMs) },
            ':now': { N: String(this.now()) },
            ':at': { S: isoNow(this.now()) },
            ':one': { N: '1' },
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return {
        cluster,
        table,
        owner,
        version: Number(Attributes?.version?.N),
        watermark: Attributes?.watermark?.S,
        cursor: parseCursor(Attributes?.logCursor?.S),
        pending: parsePending(Attributes?.logPending?.S),
      };
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) {
        throw new LeaseLostError(`Another run holds the lease on ${cluster}/${table}`, { cause: error });
      }
      throw error;
    }
  }

  /**
   * Moves the watermark to `watermark` (which must be later than the current one),
   * adds the window's rows and renews the lease until `untilMs`, all in one
   * conditional write. `finish` (the last window of a batch read by position)
   * also stores the cursor after the batch and clears it as pending.
   * Throws LeaseLostError when another run took the lease.
   */
  async advance(
    lease: Lease,
    watermark: string,
    rows: number,
    untilMs: number,
    finish?: Generation[],
  ): Promise<Lease> {
    await this.#advance(lease, watermark, rows, untilMs, finish);
    return finish
      ? { ...lease, version: lease.version + 1, watermark, cursor: finish, pending: undefined }
      : { ...lease, version: lease.version + 1, watermark };
  }

  /**
   * The run's last commit: advances as `advance` does and gives the lease up in
   * the same conditional write, so that no `release` follows. A run that races
   * it for the lease either comes first (and this write fails: the watermark
   * stays) or finds the lease free and the watermark already moved.
   */
  async advanceAndRelease(
    lease: Lease,
    watermark: string,
    rows: number,
    finish?: Generation[],
  ): Promise<void> {
    await this.#advance(lease, watermark, rows, 'release', finish);
  }

  async #advance(
    lease: Lease,
    watermark: string,
    rows: number,
    until: number | 'release',
    finish: Generation[] | undefined,
  ): Promise<void> {
    await this.#conditional(
      lease,
      {
        set: [
          'watermark = :watermark',
          ...(until === 'release' ? [] : ['leaseUntil = :until']),
          ...(finish ? ['logCursor = :cursor'] : []),
        ],
        remove: [
          ...(until === 'release' ? ['leaseOwner', 'leaseUntil'] : []),
          ...(finish ? ['logPending'] : []),
        ],
        add: ['rowsExported :rows'],
      },
      {
        ':watermark': { S: watermark },
        ':rows': { N: String(rows) },
        ...(until === 'release' ? {} : { ':until': { N: String(until) } }),
        ...(finish ? { ':cursor': { S: JSON.stringify(finish) } } : {}),
      },
      ' AND (attribute_not_exists(watermark) OR watermark < :watermark)',
    );
  }

  /**
   * Records a batch of a table read by position before its first object is
   * written (`logPending`), so that a run resuming it reads the same rows.
   */
  async begin(lease: Lease, batch: PendingBatch, untilMs: number): Promise<Lease> {
    await this.#conditional(
      lease,
      { set: ['logPending = :batch', 'leaseUntil = :until'] },
      {
        ':batch': { S: JSON.stringify(batch) },
        ':until': { N: String(untilMs) },
      },
    );
    return { ...lease, version: lease.version + 1, pending: batch };
  }

  /** Renews the lease without moving the watermark (backfills, long runs of empty windows). */
  async renew(lease: Lease, untilMs: number): Promise<Lease> {
    await this.#conditional(lease, { set: ['leaseUntil = :until'] }, { ':until': { N: String(untilMs) } });
    return { ...lease, version: lease.version + 1 };
  }

  /** Gives the lease up; a lease already lost is not an error here. */
  async release(lease: Lease): Promise<void> {
    try {
      await this.#conditional(lease, { remove: ['leaseOwner', 'leaseUntil'] }, {});
    } catch (error) {
      if (!(error instanceof LeaseLostError)) throw error;
    }
  }

  /**
   * One conditional write of the lease holder: sets `updatedAt` and this call's
   * `lastWrite` token, bumps `version`, and applies `update`. A failed condition
   * is LeaseLostError unless the item carries the token, i.e. an earlier attempt
   * of this very request (an SDK retry after a lost answer) was applied.
   */
  async #conditional(
    lease: Lease,
    update: { set?: string[]; remove?: string[]; add?: string[] },
    values: Record<string, { S: string } | { N: string }>,
    extraCondition = '',
  ): Promise<void> {
    const token = randomUUID();
    const set = ['updatedAt = :at', 'lastWrite = :token', ...(update.set ?? [])];
    const remove = update.remove ?? [];
    const add = ['version :one', ...(update.add ?? [])];
    try {
      await this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: key(lease.cluster, lease.table),
          UpdateExpression: `SET ${set.join(', ')}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''} ADD ${add.join(', ')}`,
          ConditionExpression: `version = :version AND leaseOwner = :owner${extraCondition}`,
          ExpressionAttributeValues: {
            ...values,
            ':version': { N: String(lease.version) },
            ':owner': { S: lease.owner },
            ':at': { S: isoNow(this.now()) },
            ':one': { N: '1' },
            ':token': { S: token },
          },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      if (await this.#lastWriteIs(lease, token)) return;
      throw new LeaseLostError(
        `Lost the lease on ${lease.cluster}/${lease.table}: another run took it, or the watermark is already past this window`,
        { cause: error },
      );
    }
  }

  /** Whether the item's last write by a lease holder was the one that carried `token`. */
  async #lastWriteIs(lease: Lease, token: string): Promise<boolean> {
    const { Item } = await this.dynamo.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: key(lease.cluster, lease.table),
        ConsistentRead: true,
        ProjectionExpression: 'lastWrite',
      }),
    );
    return Item?.lastWrite?.S === token;
  }
}

function key(cluster: string, table: string) {
  return { cluster: { S: cluster }, table: { S: table } };
}

/** updatedAt is bookkeeping for operators, not data: the wall clock at millisecond precision is enough. */
function isoNow(ms: number): string {
  return new Date(ms).toISOString();
}
