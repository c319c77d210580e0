// kubeflow/katib-experiment.yaml against Katib's field schema (../shared/kfp/katib-openapi-spec.json; the CRD
// itself accepts anything), its trial run here with trial values so Katib's StdOut collector would find the
// metrics; and the Spark variant's SparkApplication (in the spark-als step and kubeflow/spark/), which cannot
// run here: its structure, its arguments against als.py, and the image that holds als.py.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argvErrors } from './cli-help.js';
import { executors, KFP_DIR, loadYaml, ROOT, substitute, type Obj } from './ir.js';
import { openApiValidator, schemaErrors } from './schema.js';

const experiment = loadYaml(path.join(ROOT, 'kubeflow/katib-experiment.yaml'));
const OPENAPI = path.join(KFP_DIR, 'katib-openapi-spec.json');
const haveOpenApi = existsSync(OPENAPI);
if (!haveOpenApi) console.warn(`[kubeflow katib-spark.test] Katib schema checks SKIPPED: ${OPENAPI} is absent (set RECSERVE_KFP_DIR to validate).`);
const trialContainer = () => experiment.spec.trialTemplate.trialSpec.spec.template.spec.containers.find((c: Obj) => c.name === experiment.spec.trialTemplate.primaryContainerName) as Obj;
/** Katib's StdOut collector's default filter: `name=value` anywhere in a line. */
const KATIB_FILTER = /([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)/g;

describe.skipIf(!haveOpenApi)('katib-experiment.yaml against Katib v1beta1 types', () => {
  let openapi: Obj;
  beforeAll(() => {
    openapi = JSON.parse(readFileSync(OPENAPI, 'utf8')) as Obj;
  });

  it('the spec is a valid ExperimentSpec and the trial\'s pod a valid PodTemplateSpec, unknown fields refused', () => {
    expect(schemaErrors(openApiValidator(openapi, 'v1beta1.ExperimentSpec'), experiment.spec)).toEqual([]);
    expect(schemaErrors(openApiValidator(openapi, 'io.k8s.api.core.v1.PodTemplateSpec'), experiment.spec.trialTemplate.trialSpec.spec.template)).toEqual([]);
  });

  it('the validator accepts the upstream example and refuses broken copies', () => {
    const validate = openApiValidator(openapi, 'v1beta1.ExperimentSpec');
    expect(schemaErrors(validate, loadYaml(path.join(KFP_DIR, 'katib-random-experiment.yaml')).spec)).toEqual([]);
    const cases: [string, (s: Obj) => void, RegExp][] = [
      ['maxTrialCount as words', (s) => (s.maxTrialCount = 'twenty'), /maxTrialCount must be integer/],
      ['numeric min', (s) => (s.parameters[0].feasibleSpace.min = 8), /min must be string/],
      ['misspelt objective field', (s) => (s.objective.objectiveMetric = 'rmse'), /additional properties "objectiveMetric"/],
    ];
    for (const [what, mutate, reason] of cases) {
      const copy = structuredClone(experiment.spec);
      mutate(copy);
      expect(schemaErrors(validate, copy).join('\n'), what).toMatch(reason);
    }
  });
});

describe('katib-experiment.yaml as Katib runs it', () => {
  it('an Experiment of kubeflow.org/v1beta1 with a DNS-label name, objective rmse from the StdOut collector', () => {
    expect(experiment.apiVersion).toBe('kubeflow.org/v1beta1');
    expect(experiment.kind).toBe('Experiment');
    expect(experiment.metadata.name).toMatch(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/);
    expect(experiment.spec.metricsCollectorSpec.collector.kind).toBe('StdOut');
    expect(experiment.spec.objective).toMatchObject({ type: 'minimize', objectiveMetricName: 'rmse' });
  });

  it('every trial parameter references a search parameter and is used in the command, and the command is the CLI\'s', () => {
    const names = new Set((experiment.spec.parameters as Obj[]).map((p) => p.name));
    const c = trialContainer();
    const text = c.command.join(' ');
    for (const tp of experiment.spec.trialTemplate.trialParameters as Obj[]) {
      expect(names, tp.name).toContain(tp.reference);
      expect(text).toContain(`\${trialParameters.${tp.name}}`);
    }
    expect(c.command.slice(0, 2)).toEqual(['node', 'dist/src/cli/index.js']);
    expect(c.image).toBe(executors(loadYaml(path.join(ROOT, 'kubeflow/pipeline.yaml'))).find((e) => e.label === 'exec-train')!.image);
    expect(argvErrors(c.command.slice(2), 'trial')).toEqual([]);
  });

  describe('a trial, run here with values Katib could pick', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'recserve-katib-'));
      const rows = ['userId,movieId,rating,timestamp'];
      for (let u = 1; u <= 40; u++) for (let i = 1; i <= 30; i++) if ((u * 7 + i * 3) % 4 !== 0) rows.push(`${u},${i},${1 + ((u + i) % 5)},${u * 1000 + i}`);
      writeFileSync(path.join(dir, 'ratings.csv'), `${rows.join('\n')}\n`);
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('prints the objective and the additional metrics as name=value lines on stdout', () => {
      const space = Object.fromEntries((experiment.spec.parameters as Obj[]).map((p) => [p.name, p.feasibleSpace]));
      const values: Record<string, string> = { factors: space.factors.min, reg: space.reg.max, epochs: space.epochs.min };
      const mount = (trialContainer().volumeMounts as Obj[])[0].mountPath as string;
      const argv = (trialContainer().command as string[]).map((s) => s.replace(/\$\{trialParameters\.(\w+)\}/g, (_, n: string) => values[n]).replace(`${mount}/`, `${dir}/`));
      const r = spawnSync(argv[0], argv.slice(1), { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      const found = new Map([...r.stdout.matchAll(KATIB_FILTER)].map((m) => [m[1], Number(m[2])]));
      for (const metric of [experiment.spec.objective.objectiveMetricName, ...experiment.spec.objective.additionalMetricNames]) {
        expect(Number.isFinite(found.get(metric)), `${metric} in\n${r.stdout}`).toBe(true);
      }
    });
  });
});

describe('the Spark ALS step (SparkApplication for the Kubeflow Spark operator)', () => {
  const spark = loadYaml(path.join(ROOT, 'kubeflow/pipeline-spark.yaml'));
  const step = executors(spark).find((e) => e.label === 'exec-spark-als')!;
  const script = step.command[2];
  const alsPy = readFileSync(path.join(ROOT, 'kubeflow/spark/als.py'), 'utf8');
  const options = new Set([...alsPy.matchAll(/add_argument\("(--[a-z-]+)"/g)].map((m) => m[1]));
  const required = new Set([...alsPy.matchAll(/add_argument\("(--[a-z-]+)", required=True/g)].map((m) => m[1]));

  /** The resource the step's script applies, for these positional values (as sh would expand the heredoc). */
  function applied(values: string[]): Obj {
    const body = /<<EOF\n([\s\S]*?)\nEOF\n/.exec(script)![1];
    return yaml.load(body.replace(/\$\{(\d+)\}/g, (_, n: string) => values[Number(n) - 1])) as Obj;
  }

  const bound = () =>
    step.args.slice(1).map((a) =>
      substitute(a, {
        job: { pipeline_job_uuid: '0b0c4a5e-1f2a-4c3b-8d4e-5f6a7b8c9d0e' },
        outputs: { user_factors: { uri: 's3://mlpipeline/v2/artifacts/run/spark-als/user_factors', path: '/s3/uf' }, item_factors: { uri: 's3://mlpipeline/v2/artifacts/run/spark-als/item_factors', path: '/s3/if' } },
        parameters: Object.fromEntries(Object.entries(spark.root.inputDefinitions.parameters as Obj).map(([k, p]) => [k, p.defaultValue ?? 's3://recserve-data/ratings.csv'])),
      }),
    );

  for (const [what, doc] of [
    ['the resource the pipeline step applies', () => applied(bound())],
    ['kubeflow/spark/als-sparkapplication.yaml', () => loadYaml(path.join(ROOT, 'kubeflow/spark/als-sparkapplication.yaml'))],
  ] as const) {
    it(`${what}: a Python SparkApplication of sparkoperator.k8s.io/v1beta2 running als.py from the image with options als.py takes`, () => {
      const app = doc();
      expect(app.apiVersion).toBe('sparkoperator.k8s.io/v1beta2');
      expect(app.kind).toBe('SparkApplication');
      expect(app.metadata.name).toMatch(/^[a-z]([-a-z0-9]{0,54}[a-z0-9])?$/); // the operator appends -driver
      expect(app.spec).toMatchObject({ type: 'Python', mode: 'cluster', restartPolicy: { type: 'Never' } });
      expect(app.spec.sparkVersion).toMatch(/^3\.5\./);
      const dockerfile = readFileSync(path.join(ROOT, 'kubeflow/spark/Dockerfile'), 'utf8');
      expect(app.spec.mainApplicationFile).toBe(`local://${/^COPY als\.py (\S+)$/m.exec(dockerfile)![1]}`);
      expect(dockerfile).toContain(`FROM spark:${app.spec.sparkVersion}-python3`);
      const args = app.spec.arguments as unknown[];
      for (const a of args) expect(typeof a, `argument ${String(a)}`).toBe('string');
      const flags = args.filter((a, i) => i % 2 === 0) as string[];
      for (const f of flags) expect(options, f).toContain(f);
      for (const f of required) expect(flags, f).toContain(f);
      expect(Number.isInteger(app.spec.executor.instances)).toBe(true);
      for (const role of ['driver', 'executor']) {
        expect(typeof app.spec[role].cores, role).toBe('number');
        expect(app.spec[role].memory, role).toMatch(/^\d+[mg]$/);
      }
      expect(typeof app.spec.driver.serviceAccount).toBe('string');
      for (const v of Object.values(app.spec.sparkConf as Obj)) expect(typeof v).toBe('string');
    });
  }

  it('the step hands Spark its own output URIs and creates the local output folders the launcher uploads', () => {
    const app = applied(bound());
    const arg = (f: string) => app.spec.arguments[(app.spec.arguments as string[]).indexOf(f) + 1];
    expect(arg('--user-factors')).toBe('s3://mlpipeline/v2/artifacts/run/spark-als/user_factors');
    expect(arg('--item-factors')).toBe('s3://mlpipeline/v2/artifacts/run/spark-als/item_factors');
    expect(arg('--ratings')).toBe('s3://recserve-data/ratings.csv');
    expect(arg('--implicit')).toBe('false');
    expect(app.metadata.name).toBe('recserve-als-0b0c4a5e-1f2a-4c3b-8d4e-5f6a7b8c9d0e');
    expect(script).toMatch(/^mkdir -p "\$\{6\}" "\$\{7\}"$/m);
    expect(bound().slice(5, 7)).toEqual(['/s3/uf', '/s3/if']);
  });

  it('the step script is valid sh', () => {
    expect(() => execFileSync('sh', ['-n', '-c', script])).not.toThrow();
  });

  const python = spawnSync('python3', ['--version']).status === 0;
  if (!python) console.warn('[kubeflow katib-spark.test] als.py syntax check SKIPPED: no python3.');
  it.skipIf(!python)('als.py compiles (Spark itself is not available here)', () => {
    const r = spawnSync('python3', ['-c', 'import ast, sys; ast.parse(open(sys.argv[1]).read())', path.join(ROOT, 'kubeflow/spark/als.py')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });
});
