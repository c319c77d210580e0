// The architecture's import boundaries (issue 11), checked by `npm run lint:deps` (part of `npm test`, so CI).
// Violations that existed when a rule was written are in .dependency-cruiser-known-violations.json and are
// ignored until fixed; any new one fails with the rule's name. Regenerate the baseline only when it shrinks:
//   npx depcruise src --output-type baseline --output-to .dependency-cruiser-known-violations.json
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      comment:
        'A cycle makes load order matter (a module sees another half-initialised) and welds the folders in it ' +
        'into one unit that cannot be tested or replaced alone. Type-only imports count too: they are coupling.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'serving-never-imports-train',
      comment:
        'Serving (model, model-format, feedback, core, protocols, transport, ...) must run without the trainers: ' +
        'train/ is heavy and changes on its own schedule. Only train/ itself and the CLI that drives it import it. ' +
        '(model/, model-format/ and feedback/ are serving too; the next rule reports them under their own name.)',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/(train|cli|model|model-format|feedback)/', '^src/gen/'] },
      to: { path: '^src/train/' },
    },
    {
      name: 'model-and-feedback-never-import-train',
      comment:
        'The issue names this boundary on its own: the scoring model and the feedback loop are serving code; ' +
        'what both they and train/ need (the model-directory format, shared maths) lives outside train/.',
      severity: 'error',
      from: { path: '^src/(model|model-format|feedback)/' },
      to: { path: '^src/train/' },
    },
    {
      name: 'transports-and-protocols-never-reach-inference',
      comment:
        'Transports and protocol adapters speak to the core through the Scorer interface only; reaching the ONNX ' +
        'runtime, the worker pool, the batcher or top-k directly would tie HTTP/gRPC code to one scoring engine.',
      severity: 'error',
      from: { path: '^src/(transport|protocols)/' },
      to: {
        path: [
          '(^|/)node_modules/onnxruntime-node/',
          '^src/model/ort-scorer\\.ts$',
          '^src/model/pool/',
          '^src/model/batcher\\.ts$',
          '^src/model/topk[^/]*\\.ts$',
        ],
      },
    },
    {
      name: 'core-imports-no-protocol',
      comment:
        'The core is protocol-neutral so that a second protocol is a module on top of it, not a copy of it.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^src/(protocols|transport)/' },
    },
    {
      name: 'protocols-never-import-transports',
      comment:
        'A protocol module hands route tables and servicers to the transports; it must not know which transport ' +
        'mounts them (REST and gRPC share one protocol implementation).',
      severity: 'error',
      from: { path: '^src/protocols/' },
      to: { path: '^src/transport/' },
    },
    {
      name: 'only-ort-scorer-imports-onnxruntime',
      comment:
        'onnxruntime-node is a native addon with its own threads: one file owns sessions (the pool workers reach it ' +
        'through ort-scorer.ts), so swapping or upgrading the runtime touches one place.',
      severity: 'error',
      from: { pathNot: ['^src/model/ort-scorer\\.ts$', '^src/gen/'] },
      to: { path: '(^|/)node_modules/onnxruntime-node/' },
    },
    {
      name: 'no-orphans',
      comment:
        'A module nothing imports and that imports nothing is dead code or a file someone forgot to wire in.',
      severity: 'error',
      from: { orphan: true, pathNot: ['\\.d\\.ts$', '^src/gen/'] },
      to: {},
    },
  ],
  options: {
    // Generated code (src/gen/) stays in the graph, so a cycle through it is seen; the other rules leave it out
    // as a source because nobody writes it by hand.
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    // Count `import type` too: a type-only import still couples the folders (and becomes a value import by accident).
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
