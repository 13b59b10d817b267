import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EventError } from '../../../shared/errors';
import { parseExportEvent } from '../../../shared/export/event';

const samples = join(import.meta.dirname, '../../../events/export');

describe('parseExportEvent', () => {
  it.each(readdirSync(samples))('accepts the sample event %s', (file) => {
    const request = parseExportEvent(JSON.parse(readFileSync(join(samples, file), 'utf8')));

    expect(request.kind).toBe(
      file.startsWith('scheduled')
        ? 'scheduled'
        : file.startsWith('catch-up')
          ? 'catch-up'
          : file.startsWith('compact')
            ? 'compact'
            : 'backfill',
    );
  });

  it('reads a backfill with its flags and defaults', () => {
    expect(
      parseExportEvent({ cluster: 'c1', from: '2024-05-01T00:00:00Z', to: '2024-05-02T00:00:00+02:00' }),
    ).toEqual({
      kind: 'backfill',
      cluster: 'c1',
      tables: undefined,
      from: '2024-05-01T00:00:00Z',
      to: '2024-05-02T00:00:00+02:00',
      dryRun: false,
      replace: false,
    });
  });

  it('reads a compact event, whole or scheduled', () => {
    expect(
      parseExportEvent({ compact: { cluster: 'c1', table: 'general_log', date: '2024-02-29' } }),
    ).toEqual({
      kind: 'compact',
      cluster: 'c1',
      table: 'general_log',
      date: '2024-02-29',
    });
    expect(parseExportEvent({ compact: {} })).toEqual({ kind: 'compact' });
    expect(() => parseExportEvent({ compact: { cluster: 'c1', date: '2023-02-29' } })).toThrow(
      /date: is not a calendar day/,
    );
    expect(() => parseExportEvent({ compact: { cluster: 'c1' }, cluster: 'c1' })).toThrow(
      /Invalid compact event/,
    );
  });

  it('reads replace on a compact event, refuses it unless boolean, and never on the scheduled form', () => {
    expect(
      parseExportEvent({ compact: { cluster: 'c1', table: 'events', date: '2026-11-28', replace: true } }),
    ).toEqual({ kind: 'compact', cluster: 'c1', table: 'events', date: '2026-11-28', replace: true });
    // Every table of the cluster, that day.
    expect(parseExportEvent({ compact: { cluster: 'c1', date: '2026-11-28', replace: true } })).toMatchObject(
      {
        replace: true,
      },
    );
    expect(() =>
      parseExportEvent({ compact: { cluster: 'c1', table: 'events', date: '2026-11-28', replace: 'yes' } }),
    ).toThrow(/^Invalid compact event: compact\.replace: Invalid input: expected boolean, received string$/);
    expect(() => parseExportEvent({ compact: { cluster: 'c1', date: '2026-11-28', replace: 1 } })).toThrow(
      EventError,
    );
    // The scheduled form (every cluster, yesterday) and any event without a day cannot replace.
    expect(() => parseExportEvent({ compact: { replace: true } })).toThrow(
      /^Invalid compact event: compact\.replace: replace needs a cluster and a date/,
    );
    expect(() => parseExportEvent({ compact: { cluster: 'c1', replace: true } })).toThrow(
      /compact\.replace: replace needs a cluster and a date/,
    );
    expect(() => parseExportEvent({ compact: { date: '2026-11-28', replace: true } })).toThrow(
      /compact\.replace: replace needs a cluster and a date/,
    );
    expect(parseExportEvent({ compact: {} })).not.toHaveProperty('replace');
    expect(parseExportEvent({ compact: { replace: false } })).toEqual({ kind: 'compact', replace: false });
  });

  it('names every problem of a malformed event at once', () => {
    const parse = () => parseExportEvent({ cluster: '', tables: [], from: 'soon', to: 5 });

    expect(parse).toThrow(EventError);
    expect(parse).toThrow(/cluster: .*; tables: .*; from: must be an ISO-8601 timestamp; to: /);
  });
});
