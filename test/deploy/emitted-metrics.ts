import type { Template } from './template-support';

/** One metric as a function emitted it (EMF) or as the template refers to it. */
export interface MetricRef {
  namespace: string;
  name: string;
  /** Dimension name to value; `undefined` where a reference names the dimension without a value (SEARCH). */
  dimensions: Record<string, string | undefined>;
  /** Where a reference came from, for failure messages. */
  where?: string;
}

/** Every metric in the EMF documents among the captured output lines. */
export function emfMetrics(output: string): MetricRef[] {
  const found: MetricRef[] = [];
  for (const line of output.split('\n')) {
    if (!line.includes('"_aws"')) continue;
    const doc = JSON.parse(line) as Record<string, unknown> & {
      _aws: {
        CloudWatchMetrics: Array<{
          Namespace: string;
          Dimensions: string[][];
          Metrics: Array<{ Name: string }>;
        }>;
      };
    };
    for (const directive of doc._aws.CloudWatchMetrics) {
      for (const set of directive.Dimensions.length ? directive.Dimensions : [[]]) {
        for (const metric of directive.Metrics) {
          found.push({
            namespace: directive.Namespace,
            name: metric.Name,
            dimensions: Object.fromEntries(set.map((d) => [d, String(doc[d])])),
          });
        }
      }
    }
  }
  return found;
}

/** Metrics that the template's log metric filters make from log lines. */
export function metricFilterMetrics(template: Template): MetricRef[] {
  return Object.values(template.Resources)
    .filter((r) => r.Type === 'AWS::Logs::MetricFilter')
    .flatMap((r) =>
      (r.Properties.MetricTransformations as Array<{ MetricNamespace: string; MetricName: string }>).map(
        (t) => ({
          namespace: t.MetricNamespace,
          name: t.MetricName,
          dimensions: {},
        }),
      ),
    );
}

/** Metrics the alarms watch. */
export function alarmMetrics(template: Template): MetricRef[] {
  return Object.entries(template.Resources)
    .filter(([, r]) => r.Type === 'AWS::CloudWatch::Alarm')
    .map(([id, r]) => ({
      namespace: r.Properties.Namespace as string,
      name: r.Properties.MetricName as string,
      dimensions: Object.fromEntries(
        ((r.Properties.Dimensions ?? []) as Array<{ Name: string; Value: unknown }>).map((d) => [
          d.Name,
          typeof d.Value === 'string' ? d.Value : undefined,
        ]),
      ),
      where: id,
    }));
}

/**
 * Metrics the dashboards show: `[namespace, name, dim, value, ..., options?]` rows and
 * `SEARCH('{namespace,dim,...} MetricName="name"', ...)` expressions. The body's
 * `${...}` variables are replaced by the Sub's literal values, or by a placeholder.
 */
export function dashboardMetrics(template: Template): MetricRef[] {
  const found: MetricRef[] = [];
  for (const [id, r] of Object.entries(template.Resources)) {
    if (r.Type !== 'AWS::CloudWatch::Dashboard') continue;
    const [body, variables] = (
      r.Properties.DashboardBody as { 'Fn::Sub': [string, Record<string, unknown>] }
    )['Fn::Sub'];
    const text = body.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
      const value = variables[name];
      return typeof value === 'string' ? value : `<${name}>`;
    });
    const dashboard = JSON.parse(text) as {
      widgets: Array<{ properties: { title: string; metrics?: unknown[][] } }>;
    };
    for (const widget of dashboard.widgets) {
      const where = `${id}: ${widget.properties.title}`;
      for (const row of widget.properties.metrics ?? []) {
        const [first] = row;
        if (typeof first === 'object' && first && 'expression' in first) {
          const expression = String((first as { expression: string }).expression);
          for (const m of expression.matchAll(/SEARCH\('\{([^}]*)\}\s*MetricName="([^"]+)"/g)) {
            const [namespace = '', ...dims] = (m[1] ?? '').split(',');
            found.push({
              namespace,
              name: m[2] ?? '',
              dimensions: Object.fromEntries(dims.map((d) => [d, undefined])),
              where,
            });
          }
          continue;
        }
        const cells = row.filter((c) => typeof c === 'string') as string[];
        const [namespace = '', name = '', ...pairs] = cells;
        const dimensions: Record<string, string | undefined> = {};
        for (let i = 0; i + 1 < pairs.length; i += 2) dimensions[pairs[i] as string] = pairs[i + 1];
        found.push({ namespace, name, dimensions, where });
      }
    }
  }
  return found;
}

/** Whether `emitted` holds a metric of that namespace, name and dimension names, with the values given. */
export function isEmitted(ref: MetricRef, emitted: MetricRef[]): boolean {
  const names = Object.keys(ref.dimensions).sort().join(',');
  return emitted.some(
    (e) =>
      e.namespace === ref.namespace &&
      e.name === ref.name &&
      Object.keys(e.dimensions).sort().join(',') === names &&
      Object.entries(ref.dimensions).every(([d, v]) => v === undefined || e.dimensions[d] === v),
  );
}
