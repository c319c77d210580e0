// Reading the Kubeflow files for the tests: the KFP IR checked against pipeline_spec.proto (protobufjs), the
// executors' command lines, and the placeholders they carry.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import * as yaml from 'js-yaml';

export type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const KFP_DIR = process.env.RECSERVE_KFP_DIR ?? path.resolve(ROOT, '../shared/kfp');
export const CLI = path.join(ROOT, 'dist/src/cli/index.js');

export const loadYaml = (file: string): Obj => yaml.load(readFileSync(file, 'utf8')) as Obj;

/** Every IR file of kubeflow/: the two pipelines and each component on its own. */
export function irFiles(): string[] {
  const dir = path.join(ROOT, 'kubeflow/components');
  return ['kubeflow/pipeline.yaml', 'kubeflow/pipeline-spark.yaml', ...readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort().map((f) => `kubeflow/components/${f}`)];
}

let root: protobuf.Root | null = null;
/** pipeline_spec.proto loaded with its imports (google/rpc from KFP_DIR, google/protobuf bundled with protobufjs). */
export function kfpRoot(): protobuf.Root {
  if (root) return root;
  const r = new protobuf.Root();
  r.resolvePath = (origin, target) => (target.startsWith('google/rpc/') ? path.join(KFP_DIR, target) : protobuf.util.path.resolve(origin, target));
  r.loadSync(path.join(KFP_DIR, 'pipeline_spec.proto'));
  r.resolveAll();
  root = r;
  return r;
}

/**
 * The proto3 JSON form (what the IR YAML is) turned into what protobufjs' fromObject takes, with the checks
 * fromObject leaves out: unknown fields, unknown enum names, wrong scalar types and two members of one oneof
 * are errors (with their path); Value / Struct / ListValue / Duration get their JSON mapping.
 */
export function fromProtoJson(type: protobuf.Type, value: unknown, at: string, errors: string[]): unknown {
  switch (type.fullName) {
    case '.google.protobuf.Value':
      return jsonValue(value);
    case '.google.protobuf.Struct':
      if (!isObject(value)) return void errors.push(`${at}: a Struct must be an object`);
      return { fields: Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonValue(v)])) };
    case '.google.protobuf.ListValue':
      if (!Array.isArray(value)) return void errors.push(`${at}: a ListValue must be a list`);
      return { values: value.map(jsonValue) };
    case '.google.protobuf.Duration': {
      const m = typeof value === 'string' ? /^(\d+)(?:\.(\d{1,9}))?s$/.exec(value) : null;
      if (!m) return void errors.push(`${at}: a Duration is a string like "30s"`);
      return { seconds: Number(m[1]), nanos: Number((m[2] ?? '').padEnd(9, '0')) };
    }
  }
  if (!isObject(value)) return void errors.push(`${at}: ${type.name} must be an object`);
  const out: Obj = {};
  for (const [key, v] of Object.entries(value)) {
    const field = type.fields[key] ?? Object.values(type.fields).find((f) => f.name === key);
    if (!field) {
      errors.push(`${at}: ${type.name} has no field "${key}"`);
      continue;
    }
    const where = `${at}.${key}`;
    const one = (x: unknown, w: string) => element(field, x, w, errors);
    if (field.map) out[field.name] = isObject(v) ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, one(x, `${where}['${k}']`)])) : void errors.push(`${where}: a map must be an object`);
    else if (field.repeated) out[field.name] = Array.isArray(v) ? v.map((x, i) => one(x, `${where}[${i}]`)) : void errors.push(`${where}: must be a list`);
    else out[field.name] = one(v, where);
  }
  for (const oneof of type.oneofsArray) {
    const set = oneof.oneof.filter((name) => out[name] !== undefined);
    if (set.length > 1) errors.push(`${at}: ${set.join(' and ')} are members of one oneof (${oneof.name})`);
  }
  return out;
}

function element(field: protobuf.Field, v: unknown, at: string, errors: string[]): unknown {
  const t = field.resolvedType;
  if (t instanceof protobuf.Enum) {
    if (typeof v === 'string' && v in t.values) return t.values[v];
    return void errors.push(`${at}: "${String(v)}" is not a ${t.name} (${Object.keys(t.values).join(', ')})`);
  }
  if (t instanceof protobuf.Type) return fromProtoJson(t, v, at, errors);
  const ok =
    field.type === 'string' ? typeof v === 'string'
    : field.type === 'bool' ? typeof v === 'boolean'
    : ['double', 'float'].includes(field.type) ? typeof v === 'number'
    : /int|fixed/.test(field.type) ? (typeof v === 'number' && Number.isInteger(v)) || (typeof v === 'string' && /^-?\d+$/.test(v))
    : true;
  if (!ok) errors.push(`${at}: ${JSON.stringify(v)} is not a ${field.type}`);
  return v;
}

function jsonValue(v: unknown): Obj {
  if (v === null) return { nullValue: 0 };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(jsonValue) } };
  return { structValue: { fields: Object.fromEntries(Object.entries(v as Obj).map(([k, x]) => [k, jsonValue(x)])) } };
}

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Errors of an IR document as a PipelineSpec, its deploymentSpec (a Struct in PipelineSpec) as a
 * PipelineDeploymentConfig; empty when both convert and encode.
 */
export function pipelineSpecErrors(doc: Obj): string[] {
  const r = kfpRoot();
  const errors: string[] = [];
  for (const [typeName, value, at] of [
    ['ml_pipelines.PipelineSpec', doc, '$'],
    ['ml_pipelines.PipelineDeploymentConfig', doc.deploymentSpec, '$.deploymentSpec'],
  ] as const) {
    const type = r.lookupType(typeName);
    const plain = fromProtoJson(type, value, at, errors);
    if (errors.length) continue;
    const message = type.fromObject(plain as Obj);
    const bytes = type.encode(message).finish();
    if (bytes.length === 0) errors.push(`${at}: encodes to nothing`);
  }
  return errors;
}

// ------------------------------------------------------------------ executors

export interface Executor {
  label: string;
  image: string;
  command: string[];
  args: string[];
}

export function executors(doc: Obj): Executor[] {
  return Object.entries((doc.deploymentSpec?.executors ?? {}) as Obj)
    .filter(([, e]) => e.container)
    .map(([label, e]) => ({ label, image: e.container.image, command: e.container.command ?? [], args: e.container.args ?? [] }));
}

/** What a recserve executor hands the CLI: `node dist/src/cli/index.js <argv>`, directly or through `sh -ec '… "$@"'`. */
export function cliArgv(e: Executor): { argv: string[]; script?: string } | null {
  const cli = ['node', 'dist/src/cli/index.js'];
  if (e.command[0] === cli[0] && e.command[1] === cli[1]) return { argv: [...e.command.slice(2), ...e.args] };
  if (e.command[0] === 'sh' && /node dist\/src\/cli\/index\.js "\$@"/.test(e.command[2] ?? '')) return { argv: e.args.slice(1), script: e.command[2] };
  return null;
}

export interface Bindings {
  artifacts?: Record<string, { path?: string; uri?: string }>;
  outputs?: Record<string, { path?: string; uri?: string }>;
  parameters?: Record<string, string | number | boolean>;
  job?: Record<string, string>;
}

const PLACEHOLDER = /\{\{\$\.(inputs\.artifacts|outputs\.artifacts|inputs\.parameters)\['([^']+)'\](?:\.(path|uri))?\}\}|\{\{\$\.(pipeline_job_uuid|pipeline_job_name)\}\}/g;

/** The KFP placeholders of a string, as [kind, name, field]. */
export function placeholders(s: string): [string, string, string | undefined][] {
  return [...s.matchAll(PLACEHOLDER)].map((m) => (m[4] ? ['job', m[4], undefined] : [m[1], m[2], m[3]]));
}

/** A string with its placeholders replaced the way the KFP launcher would (local paths and values here). */
export function substitute(s: string, b: Bindings): string {
  return s.replace(PLACEHOLDER, (whole, kind: string, name: string, field: 'path' | 'uri', job: string) => {
    if (job) return req(b.job?.[job], whole);
    if (kind === 'inputs.parameters') return String(req(b.parameters?.[name], whole));
    const side = kind === 'inputs.artifacts' ? b.artifacts : b.outputs;
    return req(side?.[name]?.[field], whole);
  });
}

function req<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`no binding for ${what}`);
  return v;
}

export const haveKfp = existsSync(path.join(KFP_DIR, 'pipeline_spec.proto'));
