#!/usr/bin/env node
// Writes the Kubeflow Pipelines v2 IR files of this folder from one description, so the pipelines and the
// single-component files cannot drift apart. The output is already IR: nothing needs the kfp SDK.
//
//   node kubeflow/generate.mjs           rewrite kubeflow/**/*.yaml
//   node kubeflow/generate.mjs --check   exit 1 when a committed file differs from what it would write
//
// Images: edit RECSERVE_IMAGE / KUBECTL_IMAGE / SPARK_IMAGE below (or sed the YAML) for your registry.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as yaml from 'js-yaml';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RECSERVE_IMAGE = 'registry.example.com/recserve:0.1.0';
/** Any image with sh and kubectl. */
const KUBECTL_IMAGE = 'alpine/k8s:1.31.4';
/** Built from kubeflow/spark/Dockerfile (Spark 3.5 + Python + the S3A jars + als.py). */
const SPARK_IMAGE = 'registry.example.com/recserve-spark-als:3.5.3';
const CLI = ['node', 'dist/src/cli/index.js'];
// The format the kfp SDK stamps on what it compiles; these files follow it.
const SDK_VERSION = 'kfp-2.14.3';
const SCHEMA_VERSION = '2.1.0';

// ------------------------------------------------------------------ placeholders
const inPath = (n) => `{{$.inputs.artifacts['${n}'].path}}`;
const inUri = (n) => `{{$.inputs.artifacts['${n}'].uri}}`;
const outPath = (n) => `{{$.outputs.artifacts['${n}'].path}}`;
const outUri = (n) => `{{$.outputs.artifacts['${n}'].uri}}`;
const param = (n) => `{{$.inputs.parameters['${n}']}}`;

const artifactType = (title) => ({ schemaTitle: title, schemaVersion: '0.0.1' });

// ------------------------------------------------------------------ pipeline parameters
// [type, default, description]; a component input of the same name takes its value from here.
const PARAMETERS = {
  data_uri: ['STRING', undefined, 'training interactions (s3://…, gs://…, minio://…): MovieLens u.data / ratings.csv or a CSV of user,item[,rating][,timestamp]'],
  test_uri: ['STRING', undefined, 'held-out interactions the trained model is scored on'],
  items_uri: ['STRING', '', 'item catalog for titles, genres and the filters they allow: MovieLens u.item, movies.csv or a CSV with a header (empty: none, the model has ids only)'],
  data_format: ['STRING', 'auto', 'interaction file layout: auto, movielens, ml-dat, ml-csv or csv'],
  algo: ['STRING', 'als', 'training algorithm: sgd, als, wals or bpr'],
  factors: ['NUMBER_INTEGER', 64, 'latent factors per user/item'],
  epochs: ['NUMBER_INTEGER', 15, 'passes over the data (ALS: alternating sweeps)'],
  reg: ['NUMBER_DOUBLE', 0.1, 'L2 regularisation'],
  run_tune: ['BOOLEAN', false, 'random search over the hyperparameters first (recserve tune), then train the best trial on all of data_uri'],
  tune_trials: ['NUMBER_INTEGER', 20, 'with run_tune: number of trials'],
  tune_objective: ['STRING', '', 'with run_tune: rmse or mae (explicit algorithms), ndcg@10, precision@10, recall@10 or map (empty: recserve tune\'s default, rmse for sgd/als, ndcg@10 for wals/bpr)'],
  k: ['NUMBER_INTEGER', 10, 'cut-off of the ranking metrics in evaluate'],
  model_name: ['STRING', 'movielens', 'model name in the artifact, and the serving resource name (a DNS label)'],
  serving_target: ['STRING', 'seldon-v1', 'seldon-v1 (SeldonDeployment), seldon-core-2 (Model) or kserve (InferenceService)'],
  serving_image: ['STRING', RECSERVE_IMAGE, 'seldon-v1: the recserve image the SeldonDeployment runs'],
  replicas: ['NUMBER_INTEGER', 1, 'serving replicas (more than one needs store_secret, except on Seldon Core 2)'],
  namespace: ['STRING', '', 'namespace of the serving resource and of the SparkApplication (empty: the pipeline run\'s namespace)'],
  store_secret: ['STRING', '', 'Secret whose key url is the PostgreSQL store the replicas share (empty: none, one replica)'],
  models_claim: ['STRING', '', 'seldon-v1: ReadWriteMany claim for retrained versions shared by the replicas (deploy/replicas/models-pvc.yaml; empty: none)'],
  storage_secret: ['STRING', '', 'seldon-v1: Secret with the storage initializer\'s credentials; kserve: the service account carrying them'],
  // Spark variant
  rank: ['NUMBER_INTEGER', 64, 'Spark ALS rank (latent factors)'],
  max_iter: ['NUMBER_INTEGER', 15, 'Spark ALS maxIter'],
  implicit_prefs: ['BOOLEAN', false, 'Spark ALS implicitPrefs (the model is then exported as implicit)'],
  alpha: ['NUMBER_DOUBLE', 1.0, 'Spark ALS alpha (implicit confidence)'],
  spark_executors: ['NUMBER_INTEGER', 2, 'Spark executor instances'],
  spark_service_account: ['STRING', 'spark-operator-spark', 'service account of the Spark driver (the Spark operator\'s chart creates spark-operator-spark)'],
  spark_s3_secret: ['STRING', 'recserve-spark-s3', 'Secret with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for the Spark pods (S3A reads them from the environment)'],
  spark_s3_endpoint: ['STRING', '', 'S3A endpoint for MinIO or another S3 service, e.g. http://minio-service.kubeflow:9000 (empty: AWS S3)'],
};

const parameterSpec = (name, withDefault) => {
  const [type, def, description] = PARAMETERS[name];
  const spec = { parameterType: type, description };
  if (withDefault && def !== undefined) Object.assign(spec, { defaultValue: def, isOptional: true });
  return spec;
};

// ------------------------------------------------------------------ the SparkApplication
// The positional arguments of the spark-als step's script, in order ($1, $2, …; $0 is the step name).
const SPARK_ARGS = [
  ['name', 'recserve-als-{{$.pipeline_job_uuid}}'],
  ['namespace', param('namespace')],
  ['ratings', param('data_uri')],
  ['userFactors', outUri('user_factors')],
  ['itemFactors', outUri('item_factors')],
  ['userFactorsPath', outPath('user_factors')],
  ['itemFactorsPath', outPath('item_factors')],
  ['rank', param('rank')],
  ['maxIter', param('max_iter')],
  ['reg', param('reg')],
  ['implicit', param('implicit_prefs')],
  ['alpha', param('alpha')],
  ['executors', param('spark_executors')],
  ['serviceAccount', param('spark_service_account')],
  ['s3Secret', param('spark_s3_secret')],
  ['s3Endpoint', param('spark_s3_endpoint')],
];
const shellVar = Object.fromEntries(SPARK_ARGS.map(([k], i) => [k, `\${${i + 1}}`]));

function sparkSubmitArgs() {
  return ['spark-als', ...SPARK_ARGS.map(([, v]) => v)];
}

/** The SparkApplication for the given values (shell variables in the step, examples in kubeflow/spark/). */
function sparkApplication(v) {
  const envFrom = [{ secretRef: { name: v.s3Secret } }];
  const app = {
    apiVersion: 'sparkoperator.k8s.io/v1beta2',
    kind: 'SparkApplication',
    metadata: { name: v.name, labels: { 'app.kubernetes.io/name': 'recserve-als' } },
    spec: {
      type: 'Python',
      pythonVersion: '3',
      mode: 'cluster',
      image: SPARK_IMAGE,
      imagePullPolicy: 'IfNotPresent',
      mainApplicationFile: 'local:///opt/recserve/als.py',
      arguments: [
        '--ratings', v.ratings, '--user-factors', v.userFactors, '--item-factors', v.itemFactors,
        '--rank', v.rank, '--max-iter', v.maxIter, '--reg', v.reg, '--implicit', v.implicit, '--alpha', v.alpha,
      ],
      sparkVersion: '3.5.3',
      // Path-style requests work on AWS and MinIO alike; the endpoint is empty for AWS.
      sparkConf: { 'spark.hadoop.fs.s3a.endpoint': v.s3Endpoint, 'spark.hadoop.fs.s3a.path.style.access': 'true' },
      restartPolicy: { type: 'Never' },
      driver: { cores: 1, memory: '2g', serviceAccount: v.serviceAccount, envFrom, labels: { 'app.kubernetes.io/name': 'recserve-als' } },
      executor: { instances: v.executors, cores: 2, memory: '4g', envFrom, labels: { 'app.kubernetes.io/name': 'recserve-als' } },
    },
  };
  if (v.namespace !== undefined) app.metadata.namespace = v.namespace;
  return app;
}

// Every string double-quoted, so a substituted 64 or false stays a string (arguments, sparkConf); the one
// integer field gets a number the dump leaves bare, swapped for its shell variable afterwards.
const EXECUTORS_MARK = 987654321;

function sparkSubmitScript() {
  const manifest = yaml
    .dump(sparkApplication({ ...shellVar, namespace: undefined, executors: EXECUTORS_MARK }), { lineWidth: -1, noRefs: true, forceQuotes: true, quotingType: '"' })
    .replace(String(EXECUTORS_MARK), shellVar.executors);
  return [
    '# The launcher uploads these local output paths after the step; Spark writes the real files to the URIs.',
    `mkdir -p "${shellVar.userFactorsPath}" "${shellVar.itemFactorsPath}"`,
    `ns="${shellVar.namespace}"; [ -n "$ns" ] || ns="$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)"`,
    'kubectl apply -n "$ns" -f - <<EOF',
    manifest.trimEnd(),
    'EOF',
    '# Wait for the operator\'s verdict: COMPLETED passes, FAILED / SUBMISSION_FAILED fail the step.',
    'while :; do',
    `  state="$(kubectl get -n "$ns" sparkapplication "${shellVar.name}" -o jsonpath='{.status.applicationState.state}')"`,
    '  case "$state" in',
    '    COMPLETED) echo "SparkApplication completed"; break ;;',
    `    FAILED|SUBMISSION_FAILED) kubectl get -n "$ns" sparkapplication "${shellVar.name}" -o jsonpath='{.status.applicationState.errorMessage}'; echo; exit 1 ;;`,
    '  esac',
    '  sleep 15',
    'done',
    '',
  ].join('\n');
}

// ------------------------------------------------------------------ components
/**
 * name, description, inputs {artifacts: {name: schemaTitle}, parameters: [names]}, outputs {artifacts}, and the container.
 * A component's parameters are pipeline parameters of the same name (PARAMETERS).
 */
const recserve = (subcommand, args) => ({ image: RECSERVE_IMAGE, command: [...CLI, subcommand], args });
/** For a step whose JSON result is its artifact: `--json` on stdout into the file (and into the log). */
const recserveJsonTo = (file, subcommand, args) => ({
  image: RECSERVE_IMAGE,
  command: ['sh', '-ec', 'out="$0"; mkdir -p "$(dirname "$out")"; node dist/src/cli/index.js "$@" --json > "$out"; cat "$out"'],
  args: [file, subcommand, ...args],
});

const COMPONENTS = {
  'validate-data': {
    description: 'Read the interaction log with the training read options and summarise it (rows, users, items, rating range, duplicates, bad rows); fails with one line when the data is unusable.',
    inputs: { artifacts: { data: 'system.Dataset' }, parameters: ['data_format'] },
    outputs: { artifacts: { summary: 'system.Metrics' } },
    container: recserve('validate-data', ['--data', inPath('data'), '--format', param('data_format'), '--out', outPath('summary')]),
  },
  tune: {
    description: 'Random search with early stopping on a validation split carved from data; trains the best trial on all of data and exports it; metrics as name=value lines in the log.',
    inputs: { artifacts: { data: 'system.Dataset' }, parameters: ['data_format', 'algo', 'tune_trials', 'tune_objective', 'model_name'] },
    outputs: { artifacts: { model: 'system.Model', best_params: 'system.Artifact', trials: 'system.Artifact' } },
    // An empty tune_objective leaves --objective out, so tune picks the algorithm's own (rmse would fail wals/bpr).
    container: {
      image: RECSERVE_IMAGE,
      command: ['sh', '-ec', 'objective="$0"; if [ -n "$objective" ]; then set -- "$@" --objective "$objective"; fi; exec node dist/src/cli/index.js "$@"'],
      args: [param('tune_objective'), 'tune',
        '--data', inPath('data'), '--format', param('data_format'), '--algo', param('algo'), '--trials', param('tune_trials'),
        '--save-best', outPath('best_params'), '--save-key', 'best', '--log', outPath('trials'),
      '--out', outPath('model'), '--name', param('model_name'), '--progress', 'plain',
      ],
    },
  },
  train: {
    description: 'Train a factor model on data with the given hyperparameters and export model.onnx (checked by loading it back with onnxruntime).',
    inputs: { artifacts: { data: 'system.Dataset' }, parameters: ['data_format', 'algo', 'factors', 'epochs', 'reg', 'model_name'] },
    outputs: { artifacts: { model: 'system.Model' } },
    container: recserve('train', [
      '--data', inPath('data'), '--format', param('data_format'), '--algo', param('algo'),
      '--factors', param('factors'), '--epochs', param('epochs'), '--reg', param('reg'),
      '--out', outPath('model'), '--name', param('model_name'), '--progress', 'plain',
    ]),
  },
  evaluate: {
    description: 'Score the exported model on the held-out interactions (RMSE/MAE for explicit models, top-k ranking metrics with training items removed); the metrics JSON is the metrics artifact, report.html/report.json the report.',
    inputs: { artifacts: { model: 'system.Model', test: 'system.Dataset' }, parameters: ['data_format', 'k'] },
    outputs: { artifacts: { metrics: 'system.Metrics', report: 'system.Artifact' } },
    container: recserveJsonTo(outPath('metrics'), 'evaluate', ['--model', inPath('model'), '--test', inPath('test'), '--format', param('data_format'), '--k', param('k'), '--report', outPath('report')]),
  },
  export: {
    description: 'Import factor tables trained elsewhere (Spark MLlib ALS userFactors/itemFactors as JSON part files) into the same model.onnx artifact, with popularity and seen items from the interactions.',
    inputs: { artifacts: { user_factors: 'system.Dataset', item_factors: 'system.Dataset', data: 'system.Dataset' }, parameters: ['data_format', 'reg', 'model_name', 'implicit_prefs'] },
    outputs: { artifacts: { model: 'system.Model' } },
    // --kind is explicit unless implicit_prefs: the script below turns the boolean into the flag's value.
    container: {
      image: RECSERVE_IMAGE,
      command: ['sh', '-ec', 'kind=explicit; [ "$0" = true ] && kind=implicit; exec node dist/src/cli/index.js "$@" --kind "$kind"'],
      args: [
        param('implicit_prefs'), 'export',
        '--user-factors', inPath('user_factors'), '--item-factors', inPath('item_factors'),
        '--interactions', inPath('data'), '--format', param('data_format'), '--regularization', param('reg'),
        '--out', outPath('model'), '--name', param('model_name'), '--progress', 'plain',
      ],
    },
  },
  manifest: {
    description: 'Write the serving resource for the model\'s URI (recserve manifest): SeldonDeployment, Seldon Core 2 Model or KServe InferenceService.',
    inputs: { artifacts: { model: 'system.Model' }, parameters: ['serving_target', 'model_name', 'replicas', 'namespace', 'serving_image', 'store_secret', 'storage_secret', 'models_claim'] },
    outputs: { artifacts: { manifest: 'system.Artifact' } },
    container: recserve('manifest', [
      '--target', param('serving_target'), '--model-uri', inUri('model'), '--name', param('model_name'),
      '--replicas', param('replicas'), '--namespace', param('namespace'), '--image', param('serving_image'),
      '--store-secret', param('store_secret'), '--storage-secret', param('storage_secret'), '--models-claim', param('models_claim'), '--out', outPath('manifest'),
    ]),
  },
  deploy: {
    description: 'kubectl apply the serving resource (the run\'s service account needs create/patch on it).',
    inputs: { artifacts: { manifest: 'system.Artifact' }, parameters: [] },
    outputs: { artifacts: {} },
    container: { image: KUBECTL_IMAGE, command: ['kubectl', 'apply', '-f'], args: [inPath('manifest')] },
  },
  'spark-als': {
    description: 'Train Spark MLlib ALS on the cluster: submit a SparkApplication (Kubeflow Spark operator) that writes userFactors/itemFactors as JSON to this step\'s output URIs, and wait for it.',
    inputs: { artifacts: {}, parameters: ['data_uri', 'rank', 'max_iter', 'reg', 'implicit_prefs', 'alpha', 'spark_executors', 'spark_service_account', 'spark_s3_secret', 'spark_s3_endpoint', 'namespace'] },
    outputs: { artifacts: { user_factors: 'system.Dataset', item_factors: 'system.Dataset' } },
    container: { image: KUBECTL_IMAGE, command: ['sh', '-ec', sparkSubmitScript()], args: sparkSubmitArgs() },
  },
};

/** The same step reading the item catalog as well (titles, genres, … and the filters they allow); the pipelines run it when items_uri is set. */
const withItems = (c) => ({
  ...c,
  description: `${c.description} The item catalog (items) goes into the model.`,
  inputs: { ...c.inputs, artifacts: { ...c.inputs.artifacts, items: 'system.Dataset' } },
  container: { ...c.container, args: [...c.container.args, '--items', inPath('items')] },
});
for (const name of ['tune', 'train', 'export']) COMPONENTS[`${name}-items`] = withItems(COMPONENTS[name]);

// ------------------------------------------------------------------ IR builders
function componentSpec(name) {
  const c = COMPONENTS[name];
  const spec = { executorLabel: `exec-${name}` };
  const inArtifacts = Object.entries(c.inputs.artifacts);
  if (inArtifacts.length || c.inputs.parameters.length) {
    spec.inputDefinitions = {};
    if (inArtifacts.length) spec.inputDefinitions.artifacts = Object.fromEntries(inArtifacts.map(([n, t]) => [n, { artifactType: artifactType(t) }]));
    if (c.inputs.parameters.length) spec.inputDefinitions.parameters = Object.fromEntries(c.inputs.parameters.map((p) => [p, parameterSpec(p, true)]));
  }
  const outArtifacts = Object.entries(c.outputs.artifacts);
  if (outArtifacts.length) spec.outputDefinitions = { artifacts: Object.fromEntries(outArtifacts.map(([n, t]) => [n, { artifactType: artifactType(t) }])) };
  return spec;
}

const executor = (name) => ({ container: COMPONENTS[name].container });

const importer = (type) => ({ importer: { artifactUri: { runtimeParameter: 'uri' }, typeSchema: artifactType(type) } });
const importerComponent = (type, executorLabel) => ({
  executorLabel,
  inputDefinitions: { parameters: { uri: { parameterType: 'STRING' } } },
  outputDefinitions: { artifacts: { artifact: { artifactType: artifactType(type) } } },
});

/**
 * A task. `sources` maps inputs to 'param:<pipeline parameter>' (a component's parameters default to the
 * same-named one), 'task:<task>.<output>' or 'in:<enclosing DAG input artifact>'; extra: after (more
 * dependencies), channel (inside a sub-DAG), cache, componentRef.
 */
function task(name, component, sources = {}, extra = {}) {
  const c = COMPONENTS[component];
  const inputs = {};
  const artifacts = {};
  const parameters = {};
  const deps = new Set(extra.after ?? []);
  for (const a of Object.keys(c?.inputs.artifacts ?? {})) artifacts[a] = source(sources[a], deps);
  for (const p of c?.inputs.parameters ?? []) parameters[p] = parameterSource(sources[p] ?? `param:${p}`, extra.channel);
  // Inputs of tasks without a COMPONENTS entry (the importers).
  for (const [k, v] of Object.entries(sources)) if (!(k in artifacts) && !(k in parameters)) (v.startsWith('param:') ? (parameters[k] = parameterSource(v, extra.channel)) : (artifacts[k] = source(v, deps)));
  if (Object.keys(artifacts).length) inputs.artifacts = artifacts;
  if (Object.keys(parameters).length) inputs.parameters = parameters;
  const t = { cachingOptions: { enableCache: extra.cache ?? true }, componentRef: { name: extra.componentRef ?? `comp-${component}` } };
  if (deps.size) t.dependentTasks = [...deps].sort();
  if (Object.keys(inputs).length) t.inputs = inputs;
  t.taskInfo = { name };
  return [name, t];
}

function source(s, deps) {
  if (s.startsWith('task:')) {
    const [producerTask, outputArtifactKey] = s.slice(5).split('.');
    deps.add(producerTask);
    return { taskOutputArtifact: { outputArtifactKey, producerTask } };
  }
  if (s.startsWith('in:')) return { componentInputArtifact: s.slice(3) };
  throw new Error(`bad artifact source ${s}`);
}

/** Inside a sub-DAG a pipeline parameter arrives as the channel `pipelinechannel--<name>`. */
function parameterSource(s, inChannel) {
  const p = s.slice('param:'.length);
  return { componentInputParameter: inChannel ? channel(p) : p };
}

const header = (title, params) => [
  '# PIPELINE DEFINITION',
  `# Name: ${title}`,
  ...(params.length ? ['# Inputs:', ...params.map((p) => `#    ${p}: ${PARAMETERS[p][0]}${PARAMETERS[p][1] !== undefined ? ` [Default: ${JSON.stringify(PARAMETERS[p][1])}]` : ''}`)] : []),
  '# Generated by kubeflow/generate.mjs: edit that, then run `node kubeflow/generate.mjs`.',
].join('\n');

const dump = (doc) => yaml.dump(doc, { lineWidth: -1, noRefs: true, sortKeys: true });

function rootInputs(params) {
  return { parameters: Object.fromEntries(params.map((p) => [p, parameterSpec(p, true)])) };
}

/** One component compiled on its own (what `kfp.compiler.Compiler().compile(component, …)` writes). */
function componentFile(name) {
  const c = COMPONENTS[name];
  const spec = componentSpec(name);
  const root = { dag: { tasks: Object.fromEntries([task(name, name, Object.fromEntries(Object.keys(c.inputs.artifacts).map((a) => [a, `in:${a}`])))]) } };
  const outs = Object.keys(c.outputs.artifacts);
  if (outs.length) root.dag.outputs = { artifacts: Object.fromEntries(outs.map((o) => [o, { artifactSelectors: [{ outputArtifactKey: o, producerSubtask: name }] }])) };
  if (spec.inputDefinitions) root.inputDefinitions = spec.inputDefinitions;
  if (spec.outputDefinitions) root.outputDefinitions = spec.outputDefinitions;
  const doc = {
    components: { [`comp-${name}`]: spec },
    deploymentSpec: { executors: { [`exec-${name}`]: executor(name) } },
    pipelineInfo: { name, description: c.description },
    root,
    schemaVersion: SCHEMA_VERSION,
    sdkVersion: SDK_VERSION,
  };
  return `${header(name, c.inputs.parameters)}\n${dump(doc)}`;
}

const SERVE_PARAMS = ['serving_target', 'model_name', 'replicas', 'namespace', 'serving_image', 'store_secret', 'storage_secret', 'models_claim'];
const channel = (name) => `pipelinechannel--${name}`;
const channelParams = (names) => Object.fromEntries(names.map((p) => [channel(p), { parameterType: PARAMETERS[p][0] }]));
const passParams = (names, fromRoot) => Object.fromEntries(names.map((p) => [channel(p), { componentInputParameter: fromRoot ? p : channel(p) }]));
const DATA = channel('importer-artifact');
const hasItems = "inputs.parameter_values['pipelinechannel--items_uri'] != ''";

/**
 * An If/Elif/Else whose sides each produce the model (what dsl.If … dsl.OneOf compiles to). sides: [{condition,
 * component, items}], each a sub-DAG running `component` under its own task name (importing items_uri first when
 * items); inputs: [channel, type, root source, component input] for the artifacts the sides read; after: more
 * dependencies of the group. The group's output is the model of the side that ran.
 */
function modelChoice(sides, inputs, after = []) {
  const group = 'condition-branches-1';
  const oneOf = channel(`${group}-oneof-1`);
  const readsOf = (condition) => [...condition.matchAll(/pipelinechannel--(\w+)/g)].map((m) => m[1]);
  const artifactInputs = { artifacts: Object.fromEntries(inputs.map(([n, t]) => [n, { artifactType: artifactType(t) }])) };
  const dags = {};
  const tasks = {};
  const outputs = {};
  const groupParams = new Set();
  sides.forEach(({ condition, component, items }, i) => {
    const side = `condition-${i + 2}`;
    const name = component.replace(/-items$/, '');
    const output = (outputs[side] = channel(`${name}-model`));
    const sources = Object.fromEntries(Object.keys(COMPONENTS[component].inputs.artifacts).map((a) => [a, a === 'items' ? 'task:importer-3.artifact' : `in:${inputs.find(([, , , input]) => input === a)[0]}`]));
    const inner = [
      ...(items ? [task('importer-3', 'importer', { uri: 'param:items_uri' }, { componentRef: 'comp-importer-3', channel: true })] : []),
      task(name, component, sources, { channel: true }),
    ];
    const params = [...new Set([...COMPONENTS[component].inputs.parameters, ...(items ? ['items_uri'] : []), ...readsOf(condition)])];
    for (const p of params) groupParams.add(p);
    dags[`comp-${side}`] = {
      dag: { outputs: { artifacts: { [output]: { artifactSelectors: [{ outputArtifactKey: 'model', producerSubtask: name }] } } }, tasks: Object.fromEntries(inner) },
      inputDefinitions: { ...artifactInputs, parameters: channelParams(params) },
      outputDefinitions: { artifacts: { [output]: { artifactType: artifactType('system.Model') } } },
    };
    tasks[side] = {
      componentRef: { name: `comp-${side}` },
      inputs: { artifacts: Object.fromEntries(inputs.map(([n]) => [n, { componentInputArtifact: n }])), parameters: passParams(params, false) },
      taskInfo: { name: side },
      triggerPolicy: { condition },
    };
  });
  const params = [...groupParams];
  dags[`comp-${group}`] = {
    dag: { outputs: { artifacts: { [oneOf]: { artifactSelectors: Object.entries(outputs).map(([side, key]) => ({ outputArtifactKey: key, producerSubtask: side })) } } }, tasks },
    inputDefinitions: { ...artifactInputs, parameters: channelParams(params) },
    outputDefinitions: { artifacts: { [oneOf]: { artifactType: artifactType('system.Model') } } },
  };
  const deps = new Set(after);
  const groupTask = {
    componentRef: { name: `comp-${group}` },
    inputs: { artifacts: Object.fromEntries(inputs.map(([n, , from]) => [n, source(from, deps)])), parameters: passParams(params, true) },
    taskInfo: { name: group },
  };
  return { dags, task: [group, { ...groupTask, dependentTasks: [...deps].sort() }], model: `task:${group}.${oneOf}` };
}

/**
 * A pipeline file: the two data importers and validate-data, `middle` (the tasks that make the model), then
 * evaluate → manifest → deploy on `model`; every component and executor the DAGs reference is declared once.
 */
function pipelineFile({ name, description, params, middle, model, dags = {} }) {
  const tasks = Object.fromEntries([
    task('importer', 'importer', { uri: 'param:data_uri' }, { componentRef: 'comp-importer' }),
    task('importer-2', 'importer', { uri: 'param:test_uri' }, { componentRef: 'comp-importer-2' }),
    task('validate-data', 'validate-data', { data: 'task:importer.artifact' }),
    ...middle,
    task('evaluate', 'evaluate', { model, test: 'task:importer-2.artifact' }),
    task('manifest', 'manifest', { model }, { after: ['evaluate'] }),
    task('deploy', 'deploy', { manifest: 'task:manifest.manifest' }, { cache: false }),
  ]);
  const components = { ...dags };
  const executors = {};
  const leaves = [tasks, ...Object.values(dags).map((d) => d.dag.tasks)].flatMap((ts) => Object.values(ts).map((t) => t.componentRef.name)).filter((ref) => !dags[ref]);
  for (const ref of new Set(leaves)) {
    const step = ref.slice('comp-'.length);
    const imported = step.startsWith('importer');
    components[ref] = imported ? importerComponent('system.Dataset', `exec-${step}`) : componentSpec(step);
    executors[`exec-${step}`] = imported ? importer('system.Dataset') : executor(step);
  }
  const doc = {
    components,
    deploymentSpec: { executors },
    pipelineInfo: { name, description },
    root: { dag: { tasks }, inputDefinitions: rootInputs(params) },
    schemaVersion: SCHEMA_VERSION,
    sdkVersion: SDK_VERSION,
  };
  return `${header(name, params)}\n${dump(doc)}`;
}

/** validate → (run_tune ? tune : train, each with the catalog when items_uri is set) → evaluate → manifest → deploy. */
function pipeline() {
  const tuned = "inputs.parameter_values['pipelinechannel--run_tune'] == true";
  const choice = modelChoice(
    [
      { condition: `${tuned} && ${hasItems}`, component: 'tune-items', items: true },
      { condition: `${tuned} && !(${hasItems})`, component: 'tune' },
      { condition: `!(${tuned}) && ${hasItems}`, component: 'train-items', items: true },
      { condition: `!(${tuned}) && !(${hasItems})`, component: 'train' },
    ],
    [[DATA, 'system.Dataset', 'task:importer.artifact', 'data']],
    ['validate-data'],
  );
  return pipelineFile({
    name: 'recserve-train-deploy',
    description: 'Validate the interaction log, train (or tune, then train the best trial), score the model on held-out interactions and deploy it with recserve.',
    params: ['data_uri', 'test_uri', 'items_uri', 'data_format', 'algo', 'factors', 'epochs', 'reg', 'run_tune', 'tune_trials', 'tune_objective', 'k', ...SERVE_PARAMS],
    middle: [choice.task],
    model: choice.model,
    dags: choice.dags,
  });
}

/** validate → Spark ALS (SparkApplication) → export (with the catalog when items_uri is set) → evaluate → manifest → deploy. */
function sparkPipeline() {
  const choice = modelChoice(
    [
      { condition: hasItems, component: 'export-items', items: true },
      { condition: `!(${hasItems})`, component: 'export' },
    ],
    [
      [channel('spark-als-user_factors'), 'system.Dataset', 'task:spark-als.user_factors', 'user_factors'],
      [channel('spark-als-item_factors'), 'system.Dataset', 'task:spark-als.item_factors', 'item_factors'],
      [DATA, 'system.Dataset', 'task:importer.artifact', 'data'],
    ],
  );
  return pipelineFile({
    name: 'recserve-spark-als',
    description: 'Train ALS with Spark MLlib on the cluster (Kubeflow Spark operator), import the factor tables into a recserve model, score it on held-out interactions and deploy it.',
    params: ['data_uri', 'test_uri', 'items_uri', 'data_format', 'rank', 'max_iter', 'reg', 'implicit_prefs', 'alpha', 'spark_executors', 'spark_service_account', 'spark_s3_secret', 'spark_s3_endpoint', 'k', ...SERVE_PARAMS],
    // Spark reads data_uri itself: the step does not download the log it hands over.
    middle: [task('spark-als', 'spark-als', {}, { after: ['validate-data'], cache: false }), choice.task],
    model: choice.model,
    dags: choice.dags,
  });
}

const SPARK_EXAMPLE = {
  name: 'recserve-als', namespace: 'spark', ratings: 's3a://recserve-data/ml-25m/ratings.csv',
  userFactors: 's3a://recserve-data/als/userFactors', itemFactors: 's3a://recserve-data/als/itemFactors',
  rank: '64', maxIter: '15', reg: '0.1', implicit: 'false', alpha: '1.0', executors: 2,
  serviceAccount: 'spark-operator-spark', s3Secret: 'recserve-spark-s3', s3Endpoint: '',
};

/** Every file this script writes: path relative to kubeflow/ → text. */
function files() {
  const out = {
    'pipeline.yaml': pipeline(),
    'pipeline-spark.yaml': sparkPipeline(),
    'spark/als-sparkapplication.yaml': [
      '# Spark MLlib ALS on the Kubeflow Spark operator, on its own (pipeline-spark.yaml submits the same resource per run):',
      '#   kubectl apply -f kubeflow/spark/als-sparkapplication.yaml && kubectl get sparkapplication -n spark recserve-als -w',
      '#   npx recserve export --user-factors <userFactors dir> --item-factors <itemFactors dir> --interactions ratings.csv --out models/spark-als',
      `# Generated by kubeflow/generate.mjs.`,
      dump(sparkApplication(SPARK_EXAMPLE)),
    ].join('\n'),
  };
  for (const name of Object.keys(COMPONENTS)) out[`components/${name}.yaml`] = componentFile(name);
  return out;
}

const check = process.argv.includes('--check');
let stale = 0;
for (const [rel, text] of Object.entries(files())) {
  const file = path.join(HERE, rel);
  let old = null;
  try {
    old = readFileSync(file, 'utf8');
  } catch {
    // a new file
  }
  if (old === text) continue;
  if (check) {
    console.error(`kubeflow/${rel} is not what kubeflow/generate.mjs writes (run node kubeflow/generate.mjs)`);
    stale++;
  } else {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
    console.log(`wrote kubeflow/${rel}`);
  }
}
process.exit(stale ? 1 : 0);
