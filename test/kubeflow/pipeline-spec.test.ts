// kubeflow/*.yaml as Kubeflow Pipelines v2 IR: each file parses into ml_pipelines.PipelineSpec from
// ../shared/kfp/pipeline_spec.proto (protobufjs; skipped with a message when the proto is absent), and its
// DAGs are wired the way the KFP backend resolves them (every reference names something that exists, with the
// type it expects). The files are generated: they must equal what kubeflow/generate.mjs writes.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { executors, haveKfp, irFiles, KFP_DIR, loadYaml, pipelineSpecErrors, placeholders, ROOT, type Obj } from './ir.js';

if (!haveKfp) console.warn(`[kubeflow pipeline-spec.test] PipelineSpec proto checks SKIPPED: ${path.join(KFP_DIR, 'pipeline_spec.proto')} is absent (set RECSERVE_KFP_DIR to validate).`);

describe('kubeflow/generate.mjs', () => {
  it('the committed YAML is what it writes', () => {
    expect(() => execFileSync(process.execPath, [path.join(ROOT, 'kubeflow/generate.mjs'), '--check'], { encoding: 'utf8', stdio: 'pipe' })).not.toThrow();
  });
});

describe.skipIf(!haveKfp)('as ml_pipelines.PipelineSpec (pipeline_spec.proto)', () => {
  it('the validator accepts the upstream compiled example', () => {
    expect(pipelineSpecErrors(loadYaml(path.join(KFP_DIR, 'two_step_pipeline_containerized.yaml')))).toEqual([]);
  });

  for (const file of irFiles()) {
    it(`${file} parses and encodes`, () => {
      expect(pipelineSpecErrors(loadYaml(path.join(ROOT, file)))).toEqual([]);
    });
  }

  it('the validator is not vacuous: broken copies fail for the planted reason', () => {
    const doc = loadYaml(path.join(ROOT, 'kubeflow/pipeline.yaml'));
    const cases: [string, (d: Obj) => void, RegExp][] = [
      ['misspelt field', (d) => (d.root.dag.tasks.evaluate.dependsOn = []), /has no field "dependsOn"/],
      ['unknown parameter type', (d) => (d.root.inputDefinitions.parameters.k.parameterType = 'INTEGER'), /"INTEGER" is not a ParameterTypeEnum/],
      ['string where a bool goes', (d) => (d.root.dag.tasks.deploy.cachingOptions.enableCache = 'no'), /"no" is not a bool/],
      ['two members of a oneof', (d) => (d.components['comp-train'].dag = { tasks: {} }), /dag and executorLabel are members of one oneof/],
      ['executor field misspelt', (d) => (d.deploymentSpec.executors['exec-train'].container.cmd = []), /PipelineContainerSpec has no field "cmd"/],
    ];
    for (const [what, mutate, reason] of cases) {
      const copy = structuredClone(doc);
      mutate(copy);
      const errors = pipelineSpecErrors(copy);
      expect(errors.some((e) => reason.test(e)), `${what}: ${errors.join('; ')}`).toBe(true);
    }
  });
});

describe('the DAGs are wired', () => {
  for (const file of irFiles()) {
    it(`${file}: references resolve, types agree, required inputs are bound, placeholders name declared inputs`, () => {
      expect(wiringErrors(loadYaml(path.join(ROOT, file)))).toEqual([]);
    });
  }

  it('the wiring check is not vacuous', () => {
    const doc = loadYaml(path.join(ROOT, 'kubeflow/pipeline.yaml'));
    const cases: [string, (d: Obj) => void, RegExp][] = [
      ['unknown producer', (d) => (d.root.dag.tasks.evaluate.inputs.artifacts.test.taskOutputArtifact.producerTask = 'nobody'), /evaluate.*nobody/],
      ['artifact type mismatch', (d) => (d.components['comp-evaluate'].inputDefinitions.artifacts.test.artifactType.schemaTitle = 'system.Model'), /system.Dataset into system.Model/],
      ['required input unbound', (d) => delete d.root.dag.tasks.evaluate.inputs.artifacts.test, /evaluate: input test is not bound/],
      ['placeholder of no input', (d) => d.deploymentSpec.executors['exec-train'].container.args.push("{{$.inputs.parameters['epoch']}}"), /exec-train.*epoch/],
      ['a cycle', (d) => d.root.dag.tasks['validate-data'].dependentTasks = ['deploy'], /cycle/],
    ];
    for (const [what, mutate, reason] of cases) {
      const copy = structuredClone(doc);
      mutate(copy);
      const errors = wiringErrors(copy);
      expect(errors.some((e) => reason.test(e)), `${what}: ${errors.join('; ')}`).toBe(true);
    }
  });

  it('pipeline.yaml runs validate-data → tune or train → evaluate → manifest → deploy', () => {
    const doc = loadYaml(path.join(ROOT, 'kubeflow/pipeline.yaml'));
    const order = flattenedOrder(doc);
    for (const [before, after] of [['validate-data', 'tune'], ['validate-data', 'train'], ['tune', 'evaluate'], ['train', 'evaluate'], ['evaluate', 'manifest'], ['manifest', 'deploy']]) {
      expect(order.get(after)?.has(before), `${before} before ${after}`).toBe(true);
    }
    // tune and train are sides of one If/Elif/Else on run_tune × items_uri, and evaluate takes whichever model ran.
    const tuned = "inputs.parameter_values['pipelinechannel--run_tune'] == true";
    expect(modelSides(doc)).toEqual([
      { condition: `${tuned} && ${HAS_ITEMS}`, step: 'tune', component: 'comp-tune-items', items: true },
      { condition: `${tuned} && !(${HAS_ITEMS})`, step: 'tune', component: 'comp-tune', items: false },
      { condition: `!(${tuned}) && ${HAS_ITEMS}`, step: 'train', component: 'comp-train-items', items: true },
      { condition: `!(${tuned}) && !(${HAS_ITEMS})`, step: 'train', component: 'comp-train', items: false },
    ]);
    expect(doc.root.dag.tasks.evaluate.inputs.artifacts.model.taskOutputArtifact.producerTask).toBe('condition-branches-1');
  });

  it('items_uri reaches --items of tune, train and export, and nothing imports an empty URI (the importer refuses one)', () => {
    const spark = loadYaml(path.join(ROOT, 'kubeflow/pipeline-spark.yaml'));
    expect(modelSides(spark)).toEqual([
      { condition: HAS_ITEMS, step: 'export', component: 'comp-export-items', items: true },
      { condition: `!(${HAS_ITEMS})`, step: 'export', component: 'comp-export', items: false },
    ]);
    for (const doc of [loadYaml(path.join(ROOT, 'kubeflow/pipeline.yaml')), spark]) {
      expect(doc.root.inputDefinitions.parameters.items_uri).toMatchObject({ parameterType: 'STRING', defaultValue: '', isOptional: true });
      for (const e of executors(doc).filter((x) => /^exec-(tune|train|export)/.test(x.label))) {
        const args = e.args.join(' ');
        expect(args.includes("--items {{$.inputs.artifacts['items'].path}}"), e.label).toBe(e.label.endsWith('-items'));
      }
      // The items importer sits only inside sides that run when items_uri is set.
      for (const [name, c] of Object.entries(doc.components as Obj) as [string, Obj][]) {
        if (!c.dag?.tasks?.['importer-3']) continue;
        const side = Object.values(doc.components['comp-condition-branches-1'].dag.tasks as Obj).find((t: Obj) => t.componentRef.name === name);
        expect(side.triggerPolicy.condition).toMatch(/(^|&& )inputs\.parameter_values\['pipelinechannel--items_uri'\] != ''$/);
        expect(c.dag.tasks['importer-3'].inputs.parameters.uri.componentInputParameter).toBe('pipelinechannel--items_uri');
      }
    }
  });

  it('pipeline-spark.yaml runs validate-data → spark-als → export → evaluate → manifest → deploy', () => {
    const order = flattenedOrder(loadYaml(path.join(ROOT, 'kubeflow/pipeline-spark.yaml')));
    for (const [before, after] of [['validate-data', 'spark-als'], ['spark-als', 'export'], ['export', 'evaluate'], ['evaluate', 'manifest'], ['manifest', 'deploy']]) {
      expect(order.get(after)?.has(before), `${before} before ${after}`).toBe(true);
    }
  });

  it('compiled-IR header fields', () => {
    for (const file of irFiles()) {
      const doc = loadYaml(path.join(ROOT, file));
      expect(doc.schemaVersion, file).toBe('2.1.0');
      expect(doc.sdkVersion, file).toMatch(/^kfp-2\./);
      expect(doc.pipelineInfo.name, file).toMatch(/^[a-z][-a-z0-9]*$/);
    }
  });
});

// ---------------------------------------------------------------------------------------------------

const HAS_ITEMS = "inputs.parameter_values['pipelinechannel--items_uri'] != ''";

/** The sides of the If/Elif/Else that makes the model: condition, the step's task name, its component, whether it reads items. */
function modelSides(doc: Obj): { condition: string; step: string; component: string; items: boolean }[] {
  return Object.values(doc.components['comp-condition-branches-1'].dag.tasks as Obj).map((t: Obj) => {
    const inner = doc.components[t.componentRef.name].dag.tasks as Obj;
    const [step, main] = Object.entries(inner).find(([k]) => !k.startsWith('importer')) as [string, Obj];
    return { condition: t.triggerPolicy.condition, step, component: main.componentRef.name, items: Boolean(main.inputs.artifacts.items) };
  });
}

interface Scope {
  name: string;
  spec: Obj; // the ComponentSpec whose dag this is
}

/** Problems in how the tasks of every DAG refer to components, each other, inputs and outputs. */
function wiringErrors(doc: Obj): string[] {
  const errors: string[] = [];
  const components = (doc.components ?? {}) as Obj;
  const execs = (doc.deploymentSpec?.executors ?? {}) as Obj;
  const scopes: Scope[] = [{ name: 'root', spec: doc.root }, ...Object.entries(components).filter(([, c]) => c.dag).map(([name, spec]) => ({ name, spec }))];
  const outType = (comp: Obj, key: string) => comp?.outputDefinitions?.artifacts?.[key]?.artifactType?.schemaTitle;

  for (const { name: scope, spec } of scopes) {
    const tasks = (spec.dag.tasks ?? {}) as Obj;
    for (const [tname, t] of Object.entries(tasks) as [string, Obj][]) {
      const where = `${scope}/${tname}`;
      const comp = components[t.componentRef?.name];
      if (!comp) {
        errors.push(`${where}: component ${t.componentRef?.name} does not exist`);
        continue;
      }
      for (const d of t.dependentTasks ?? []) if (!tasks[d]) errors.push(`${where}: depends on ${d}, not a task of ${scope}`);
      const declared = comp.inputDefinitions ?? {};
      for (const kind of ['artifacts', 'parameters'] as const) {
        const bound = (t.inputs?.[kind] ?? {}) as Obj;
        for (const [input, src] of Object.entries(bound) as [string, Obj][]) {
          const want = declared[kind]?.[input];
          if (!want) {
            errors.push(`${where}: binds ${kind} ${input}, which ${t.componentRef.name} does not declare`);
            continue;
          }
          if (src.taskOutputArtifact) {
            const { producerTask, outputArtifactKey } = src.taskOutputArtifact;
            const producer = tasks[producerTask];
            if (!producer) errors.push(`${where}: input ${input} from ${producerTask}, not a task of ${scope}`);
            else {
              const have = outType(components[producer.componentRef.name], outputArtifactKey);
              if (!have) errors.push(`${where}: ${producerTask} has no output ${outputArtifactKey}`);
              else if (have !== want.artifactType.schemaTitle) errors.push(`${where}: input ${input} gets ${have} into ${want.artifactType.schemaTitle}`);
              if (!(t.dependentTasks ?? []).includes(producerTask)) errors.push(`${where}: reads ${producerTask} without depending on it`);
            }
          }
          const fromScope = src.componentInputArtifact ?? src.componentInputParameter;
          if (fromScope !== undefined && !spec.inputDefinitions?.[kind]?.[fromScope]) errors.push(`${where}: ${fromScope} is not an input of ${scope}`);
        }
        for (const [input, d] of Object.entries((declared[kind] ?? {}) as Obj) as [string, Obj][]) {
          if (!bound[input] && !d.isOptional && d.defaultValue === undefined) errors.push(`${where.split('/')[1]}: input ${input} is not bound`);
        }
      }
      const condition = t.triggerPolicy?.condition as string | undefined;
      for (const [, p] of (condition ?? '').matchAll(/parameter_values\['([^']+)'\]/g)) if (!t.inputs?.parameters?.[p]) errors.push(`${where}: condition reads ${p}, not an input of the task`);
    }
    for (const [key, out] of Object.entries((spec.dag.outputs?.artifacts ?? {}) as Obj) as [string, Obj][]) {
      for (const sel of out.artifactSelectors as Obj[]) {
        const producer = tasks[sel.producerSubtask];
        if (!producer || !outType(components[producer.componentRef.name], sel.outputArtifactKey)) errors.push(`${scope}: output ${key} selects ${sel.producerSubtask}.${sel.outputArtifactKey}, which does not exist`);
      }
    }
    if (hasCycle(tasks)) errors.push(`${scope}: the dependentTasks form a cycle`);
  }

  for (const [cname, comp] of Object.entries(components) as [string, Obj][]) {
    if (!comp.executorLabel) continue;
    const e = execs[comp.executorLabel];
    if (!e) {
      errors.push(`${cname}: executor ${comp.executorLabel} does not exist`);
      continue;
    }
    if (!e.container) continue;
    for (const s of [...(e.container.command ?? []), ...(e.container.args ?? [])] as string[]) {
      for (const [kind, name] of placeholders(s)) {
        const ok =
          kind === 'job' ? true
          : kind === 'inputs.parameters' ? comp.inputDefinitions?.parameters?.[name]
          : kind === 'inputs.artifacts' ? comp.inputDefinitions?.artifacts?.[name]
          : comp.outputDefinitions?.artifacts?.[name];
        if (!ok) errors.push(`${comp.executorLabel}: placeholder ${kind}['${name}'] is not declared by ${cname}`);
      }
    }
  }
  for (const e of executors(doc)) if (!e.image) errors.push(`${e.label}: no image`);
  return errors;
}

function hasCycle(tasks: Obj): boolean {
  const state = new Map<string, 1 | 2>();
  const visit = (n: string): boolean => {
    if (state.get(n) === 2) return false;
    if (state.get(n) === 1) return true;
    state.set(n, 1);
    for (const d of (tasks[n]?.dependentTasks ?? []) as string[]) if (visit(d)) return true;
    state.set(n, 2);
    return false;
  };
  return Object.keys(tasks).some(visit);
}

/**
 * For each leaf task (by task name, across nested DAGs), every leaf that must finish before it: its own
 * dependencies, those of the DAG tasks enclosing it, and everything inside a DAG task it depends on.
 */
function flattenedOrder(doc: Obj): Map<string, Set<string>> {
  const components = doc.components as Obj;
  const leavesOf = (t: Obj): string[] => {
    const c = components[t.componentRef.name];
    return c.dag ? Object.values(c.dag.tasks as Obj).flatMap((x) => leavesOf(x as Obj)) : [t.taskInfo.name];
  };
  const before = new Map<string, Set<string>>();
  const walk = (tasks: Obj, inherited: Set<string>) => {
    const closure = (name: string, seen = new Set<string>()): Set<string> => {
      for (const d of (tasks[name].dependentTasks ?? []) as string[]) {
        if (seen.has(d)) continue;
        for (const l of leavesOf(tasks[d])) seen.add(l);
        seen.add(d);
        closure(d, seen);
      }
      return seen;
    };
    for (const [name, t] of Object.entries(tasks) as [string, Obj][]) {
      const mine = new Set([...inherited, ...closure(name)]);
      const c = components[t.componentRef.name];
      if (c.dag) walk(c.dag.tasks, mine);
      else before.set(t.taskInfo.name, mine);
    }
  };
  walk(doc.root.dag.tasks, new Set());
  return before;
}
