/**
 * The import rules of the layout (docs/export.md "Layout"): no cycle anywhere,
 * type-only imports included; the exporter's stages below its top-level
 * modules and in a fixed order; the library never reaching into entry points,
 * scripts or tests. `test/layout.test.ts` runs these rules.
 */
const STAGES = 'shared/export/(sources|plan|encode|sinks|masking)/';
module.exports = {
  forbidden: [
    {
      name: 'no-cycle',
      severity: 'error',
      comment: 'A cycle, type-only imports included: move the shared types into the lower module.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'stage-imports-top-level',
      severity: 'error',
      comment:
        "A stage folder imports a top-level exporter module (upward): the stages don't know the pipeline.",
      from: { path: STAGES },
      to: { path: '^shared/export/[^/]+\\.ts$' },
    },
    {
      name: 'masking-and-sinks-stand-alone',
      severity: 'error',
      comment: 'masking/ and sinks/ depend on no other part of the exporter.',
      from: { path: '^shared/export/(masking|sinks)/' },
      to: { path: '^shared/export/', pathNot: '^shared/export/$1/' },
    },
    // The stages, lowest first: masking/ and sinks/ (stand-alone), encode/ (rows to bytes), sources/ (rows from
    // the databases, whose fast paths write encode/'s bytes themselves), plan/ (what to read, and when).
    {
      name: 'encode-uses-only-masking',
      severity: 'error',
      comment: 'encode/ turns rows into bytes: it needs masking/ and nothing else of the exporter.',
      from: { path: '^shared/export/encode/' },
      to: { path: '^shared/export/', pathNot: '^shared/export/(encode|masking)/' },
    },
    {
      name: 'sources-below-plan-and-sinks',
      severity: 'error',
      comment:
        'sources/ reads rows (and, on its fast paths, encodes them): it knows nothing of planning or sinks.',
      from: { path: '^shared/export/sources/' },
      to: { path: '^shared/export/(plan|sinks)/' },
    },
    {
      name: 'plan-reads-only-sources',
      severity: 'error',
      comment: 'plan/ decides what to read from the sources; it neither encodes nor writes.',
      from: { path: '^shared/export/plan/' },
      to: { path: '^shared/export/(encode|sinks|masking)/' },
    },
    {
      name: 'library-not-entry-points',
      severity: 'error',
      comment: 'shared/ is the library: it never imports a handler, a script, a benchmark or a test.',
      from: { path: '^shared/' },
      to: { path: '^(functions|scripts|bench|test)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    moduleSystems: ['es6', 'cjs'],
  },
};
