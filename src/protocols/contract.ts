// openapi.yaml is the one REST contract: the same file feeds the Swagger UI and, compiled once at
// start-up, validates every message (REST bodies, and jsonData on every transport).
import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import * as yaml from 'js-yaml';
import { DEFAULT_PARAMS, type ModelParams } from '../config/index.js';
import { badData, clip, quote } from '../errors.js';
import { LIMIT_DEFAULTS, LIMIT_ENV, type Limits } from '../config/limits.js';
import { OPENAPI_PATH } from '../util/paths.js';

export interface OpenApiDoc {
  paths: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, unknown> };
  [k: string]: unknown;
}

let cached: { text: string; doc: OpenApiDoc } | null = null;

export function openapi(): { text: string; doc: OpenApiDoc } {
  if (!cached) {
    const text = readFileSync(OPENAPI_PATH, 'utf8');
    cached = { text, doc: yaml.load(text) as OpenApiDoc };
  }
  return cached;
}

const SCHEMA_NAMES = ['SeldonMessage', 'Feedback', 'RecommendRequest'] as const;
export type SchemaName = (typeof SCHEMA_NAMES)[number];

/**
 * The numbers a schema's size keywords stand for. A schema node with `x-limit: NAME` has its
 * maxItems / maxLength / maxProperties / maximum set from here, so the served document (Swagger UI,
 * /seldon.json) and the validator state the limits this server was configured with.
 */
export type Bounds = Limits & Pick<ModelParams, 'max_users' | 'max_k'>;

let defaults: Bounds | null = null;
/** The bounds of a server with no limit settings (computed on first use: config.ts imports this module's importers). */
export function defaultBounds(): Bounds {
  return (defaults ??= { ...LIMIT_DEFAULTS, max_users: DEFAULT_PARAMS.max_users, max_k: DEFAULT_PARAMS.max_k });
}

const boundsCache = new WeakMap<Limits, { params: ModelParams; bounds: Bounds }>();

/** The bounds of a config, one object per (limits, params) pair, so the contract lookup below is by identity. */
export function boundsOf(config: { limits: Limits; params: ModelParams }): Bounds {
  const hit = boundsCache.get(config.limits);
  if (hit && hit.params === config.params) return hit.bounds;
  const bounds = { ...config.limits, max_users: config.params.max_users, max_k: config.params.max_k };
  boundsCache.set(config.limits, { params: config.params, bounds });
  return bounds;
}

interface Contract {
  doc: OpenApiDoc;
  ajv: Ajv2020;
  validators: Map<SchemaName, ValidateFunction>;
}

const contracts = new Map<string, Contract>();
const SIZE_KEYWORDS = ['maxItems', 'maxLength', 'maxProperties', 'maximum'] as const;

/** The contract for these bounds, compiled once per distinct set (normally one per process). */
const contractByBounds = new WeakMap<Bounds, Contract>();

function contractFor(bounds: Bounds): Contract {
  const known = contractByBounds.get(bounds);
  if (known) return known;
  // Equal bounds from another config share one compiled contract.
  const key = JSON.stringify(bounds);
  let c = contracts.get(key);
  if (!c) {
    const doc = structuredClone(openapi().doc);
    applyBounds(doc, bounds);
    // strict: false — the document also holds OpenAPI keywords (examples, paths) Ajv does not know;
    // verbose: the failing schema node travels with the error, so a refusal can name its limit.
    const ajv = new Ajv2020({ strict: false, allErrors: false, verbose: true });
    ajv.addSchema(doc, 'openapi.json');
    c = { doc, ajv, validators: new Map() };
    contracts.set(key, c);
  }
  contractByBounds.set(bounds, c);
  return c;
}

function applyBounds(node: unknown, bounds: Bounds): void {
  const stack = [node];
  while (stack.length > 0) {
    const n = stack.pop();
    if (typeof n !== 'object' || n === null) continue;
    const o = n as Record<string, unknown>;
    const name = o['x-limit'];
    if (typeof name === 'string') {
      if (!(name in bounds)) throw new Error(`openapi.yaml: x-limit ${name} is not a known limit`);
      const kw = SIZE_KEYWORDS.filter((k) => k in o);
      if (kw.length !== 1) throw new Error(`openapi.yaml: x-limit ${name} needs exactly one of ${SIZE_KEYWORDS.join(', ')} beside it`);
      o[kw[0]] = bounds[name as keyof Bounds];
    }
    for (const v of Object.values(o)) stack.push(v);
  }
}

/** openapi.yaml as served, with this server's limits in its size keywords. */
export function servedDocument(bounds: Bounds = defaultBounds()): OpenApiDoc {
  return contractFor(bounds).doc;
}

function validator(name: SchemaName, bounds: Bounds): ValidateFunction {
  const c = contractFor(bounds);
  let v = c.validators.get(name);
  if (!v) {
    v = c.ajv.getSchema(`openapi.json#/components/schemas/${name}`)!;
    c.validators.set(name, v);
  }
  return v;
}

/** Compiles every validator now (Ajv takes tens of milliseconds per schema), so no request pays for it. */
export function precompile(bounds: Bounds): void {
  for (const name of SCHEMA_NAMES) validator(name, bounds);
}

/** Throws bad_data naming where the value breaks the contract, e.g. "jsonData/k must be >= 1". */
export function validate(name: SchemaName, value: unknown, where = '', bounds: Bounds = defaultBounds()): void {
  const v = validator(name, bounds);
  if (v(value)) return;
  throw badData(describe(v.errors ?? [], where));
}

function describe(errors: ErrorObject[], where: string): string {
  // Prefer the deepest error: oneOf/anyOf wrappers say less than what failed inside them.
  const e = [...errors].sort((a, b) => b.instancePath.length - a.instancePath.length)[0];
  if (!e) return 'invalid message';
  const at = clip(`${where}${e.instancePath}`.replace(/^\//, '') || 'message', 120);
  const limit = (e.parentSchema as Record<string, unknown> | undefined)?.['x-limit'];
  // The limit is named only when it is what the value broke (not its type or a minimum).
  if (typeof limit === 'string' && (SIZE_KEYWORDS as readonly string[]).includes(e.keyword)) return overLimit(at, e, limit as keyof Bounds);
  switch (e.keyword) {
    case 'additionalProperties':
      return `${at}: unknown field ${quote((e.params as { additionalProperty: string }).additionalProperty)}`;
    case 'oneOf':
      return `${at} must match exactly one allowed form${name(at)}`;
    case 'enum':
      return `${at} must be one of ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}`;
    default:
      return `${at} ${e.message ?? 'is invalid'}`;
  }
}

/** A size keyword's refusal: what is too large, the most allowed, and the setting that raises it. */
function overLimit(at: string, e: ErrorObject, key: keyof Bounds): string {
  const max = Number(e.schema);
  const setting = key === 'max_users' || key === 'max_k' ? `graph parameter ${key}` : `limit ${LIMIT_ENV[key]}`;
  const hint = ` (${setting}=${max})`;
  switch (e.keyword) {
    case 'maxItems':
      return `${at} has ${Array.isArray(e.data) ? e.data.length : 'too many'} entries; at most ${max}${hint}`;
    case 'maxProperties':
      return `${at} has ${typeof e.data === 'object' && e.data ? Object.keys(e.data).length : 'too many'} keys; at most ${max}${hint}`;
    case 'maxLength':
      return `${at} is ${typeof e.data === 'string' ? e.data.length : 'too many'} characters long; at most ${max}${hint}`;
    case 'maximum':
      return `${at}=${quote(e.data)} is larger than ${key.startsWith('max_') ? `${key}=${max}` : max}${hint}`;
    default:
      return `${at} ${e.message ?? 'is too large'}${hint}`;
  }
}

function name(at: string): string {
  return at.endsWith('jsonData') ? ' (give exactly one of user_id, users, pairs, similar_to, or items without a user)' : '';
}
