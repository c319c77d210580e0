// model-settings.json: optional overrides in a model directory, validated by a JSON schema. recserve's own
// keys override what is discovered from the ONNX file; MLServer's keys (a Seldon Core 2 agent writes the
// file in MLServer's layout) are honoured where they mean something here — `name`, `parameters.version`,
// `implementation`, `max_batch_size`, `max_batch_time` — and every other key is named in a warning the
// server logs once per load, so a misspelt or unsupported key is never silently dropped. A value of the
// wrong type refuses the model.
//
// `parameters.rules` and `parameters.pins` are the model's serve-time defaults (a request's own rules /
// pins replace them): rules boost or bury items by a catalog field value, pins fix items at positions.
// Both are bounded here, and inside them an unknown key refuses the model rather than being warned
// about (an ignored operator would change which items a rule matches).
import { checkModelFile, SETTINGS_FILE_MAX_BYTES } from './files.js';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import type { SignatureOverride } from '../model/signature.js';
import type { FILTER_OPERATORS } from '../model/filter-index.js';
import type { ScoreRule } from '../model/rerank.js';

export const MODEL_SETTINGS_FILE = 'model-settings.json';

/** The implementation name recserve answers to (MLServer names a Python class there). */
export const RECSERVE_IMPLEMENTATION = 'recserve';

/** model-settings.json once validated, with MLServer's keys mapped onto recserve's. */
export interface ModelSettings {
  /** Model name (metadata, the V2 model name); else recserve.name in the ONNX metadata, else the directory name. */
  name?: string;
  /** Model version: `parameters.version` (MLServer), else `version`; else recserve.version, else the file's mtime. */
  version?: string;
  /** Which graph inputs and output carry users, items and scores, when discovery cannot tell. */
  signature?: SignatureOverride;
  /** For a bare export without id maps or readable embedding tables. */
  n_users?: number;
  n_items?: number;
  /** [low, high] of explicit ratings (answers are clamped to it). */
  rating_range?: [number, number];
  /** Default business rules (parameters.rules), applied in order. */
  rules?: ScoreRule[];
  /** Default pinned items (parameters.pins) by item id; positions are 1-based. */
  pins?: ModelPin[];
  /** The micro-batcher of this model, over RECSERVE_MAX_BATCH_SIZE / RECSERVE_MAX_BATCH_DELAY_MS. */
  batching: { maxBatchSize?: number; maxBatchDelayMs?: number };
  /** What the server should log once when it loads the model (keys it ignores, and why). */
  warnings: string[];
}

export interface ModelPin {
  itemId: string;
  position: number;
}

/** Bounds of the model's default rules and pins (a request's own are bounded by config.limits). */
export const MODEL_RULE_BOUNDS = { rules: 32, pins: 32, position: 1000, multiply: 100, add: 1e6, values: 1000, valueLength: 256 } as const;

/** Why a key the schema does not list is not read (MLServer keys recserve has no use for, likely typos). */
const IGNORED_BECAUSE: Record<string, string> = {
  '/defaults':
    'per-model request defaults are not read; set k and exclude_seen for the deployment with PREDICTIVE_UNIT_PARAMETERS, or per request',
  '/max_batch_delay': 'did you mean max_batch_time (MLServer, in seconds)?',
  '/parallel_workers': "recserve's inference workers are set by RECSERVE_WORKERS",
  '/warm_workers': "recserve's inference workers are set by RECSERVE_WORKERS",
  '/platform': 'recserve serves ONNX recommenders only',
  '/versions': 'recserve serves model.onnx from this directory',
  '/inputs': 'the signature is discovered from the ONNX graph (override it with "signature")',
  '/outputs': 'the signature is discovered from the ONNX graph (override it with "signature")',
  '/parameters/uri': 'recserve serves model.onnx from this directory',
  '/parameters/format': 'recserve serves ONNX only',
  '/parameters/content_type': 'answers are encoded by the protocol, not by the model',
  '/parameters/extra': 'recserve reads no extra model parameters',
  '/parameters/environment_tarball': 'recserve runs no Python environment',
};

const versionValue = { type: ['string', 'integer'], minLength: 1, minimum: 0 } as const;

const B = MODEL_RULE_BOUNDS;
const scalar = { type: ['string', 'number', 'boolean'], maxLength: B.valueLength } as const;
const scalars = { type: 'array', items: scalar, maxItems: B.values } as const;
type FilterOperator = (typeof FILTER_OPERATORS)[number];
/** A filter value: a scalar, a list of them, or a condition (filter-index.ts). */
const filterValue = {
  anyOf: [
    scalar,
    scalars,
    {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      // Every operator of filter-index.ts, and no other.
      properties: {
        eq: scalar,
        in: { ...scalars, minItems: 1 },
        not: { anyOf: [scalar, scalars] },
        gte: { type: 'number' },
        gt: { type: 'number' },
        lte: { type: 'number' },
        lt: { type: 'number' },
      } satisfies Record<FilterOperator, object>,
    },
  ],
} as const;
const rules = {
  type: 'array',
  maxItems: B.rules,
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['field', 'value'],
    properties: {
      field: { type: 'string', minLength: 1, maxLength: 64 },
      value: filterValue,
      multiply: { type: 'number', minimum: 0, maximum: B.multiply },
      add: { type: 'number', minimum: -B.add, maximum: B.add },
    },
  },
} as const;
const pins = {
  type: 'array',
  maxItems: B.pins,
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['item_id', 'position'],
    properties: {
      item_id: { type: ['string', 'integer'], minLength: 1, maxLength: B.valueLength, minimum: 0 },
      position: { type: 'integer', minimum: 1, maximum: B.position },
    },
  },
} as const;
/** Inside these, an unknown key refuses the model (see the top of this file). */
const STRICT_PATHS = ['/parameters/rules', '/parameters/pins'];

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1 },
    version: versionValue,
    signature: {
      type: 'object',
      additionalProperties: false,
      properties: {
        kind: { enum: ['catalog', 'pair', 'packed'] },
        user_input: { type: 'string', minLength: 1 },
        item_input: { type: 'string', minLength: 1 },
        output: { type: 'string', minLength: 1 },
      },
    },
    n_users: { type: 'integer', minimum: 1 },
    n_items: { type: 'integer', minimum: 1 },
    rating_range: { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 },
    implementation: { type: 'string' },
    parameters: {
      type: 'object',
      additionalProperties: false,
      properties: { version: versionValue, rules, pins },
    },
    // recserve always batches: 1 is one user per ORT run, so 0 (MLServer's "off") has no meaning here.
    max_batch_size: { type: 'integer', minimum: 1 },
    max_batch_time: { type: 'number', minimum: 0 },
  },
} as const;

interface SettingsFile {
  name?: string;
  version?: string | number;
  signature?: SignatureOverride;
  n_users?: number;
  n_items?: number;
  rating_range?: [number, number];
  implementation?: string;
  parameters?: { version?: string | number; rules?: ScoreRule[]; pins?: { item_id: string | number; position: number }[] };
  max_batch_size?: number;
  max_batch_time?: number;
}

let compiled: ReturnType<Ajv['compile']> | null = null;
function validator(): ReturnType<Ajv['compile']> {
  return (compiled ??= new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(SCHEMA));
}

/** A model-settings.json that refuses the model; `fail` makes the caller's error from the message. */
export async function readModelSettings(dir: string, fail: (message: string) => Error): Promise<ModelSettings> {
  const file = path.join(dir, MODEL_SETTINGS_FILE);
  if (!existsSync(file)) return { batching: {}, warnings: [] };
  await checkModelFile(file, SETTINGS_FILE_MAX_BYTES, fail);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw fail(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  return parseModelSettings(json, file, fail);
}

export function parseModelSettings(json: unknown, file: string, fail: (message: string) => Error): ModelSettings {
  const validate = validator();
  const warnings: string[] = [];
  if (!validate(json)) {
    const errors = validate.errors ?? [];
    const refusals = errors.filter((e) => e.keyword !== 'additionalProperties' || STRICT_PATHS.some((p) => e.instancePath.startsWith(p)));
    if (refusals.length > 0) throw fail(`${file}: ${refusals.map(describe).join('; ')}`);
    for (const e of errors) warnings.push(unknownKey(e, file));
  }
  const s = json as SettingsFile;
  const topVersion = s.version === undefined ? undefined : String(s.version);
  const mlserverVersion = s.parameters?.version === undefined ? undefined : String(s.parameters.version);
  if (topVersion !== undefined && mlserverVersion !== undefined && topVersion !== mlserverVersion) {
    throw fail(`${file}: "version" is ${JSON.stringify(topVersion)} but "parameters.version" is ${JSON.stringify(mlserverVersion)}; give one`);
  }
  if (s.rating_range && !(s.rating_range[0] < s.rating_range[1])) {
    throw fail(`${file}: rating_range must be [low, high] with low < high, got ${JSON.stringify(s.rating_range)}`);
  }
  if (s.implementation !== undefined && s.implementation !== RECSERVE_IMPLEMENTATION) {
    warnings.push(`${file}: implementation ${JSON.stringify(s.implementation)} is not ${JSON.stringify(RECSERVE_IMPLEMENTATION)}; recserve serves the model itself and ignores it`);
  }
  s.parameters?.rules?.forEach((r, j) => {
    if (r.multiply === undefined && r.add === undefined) throw fail(`${file}: parameters.rules[${j}] needs multiply or add (or both)`);
  });
  const pinList = s.parameters?.pins?.map((p) => ({ itemId: String(p.item_id), position: p.position }));
  if (pinList) {
    const items = new Set<string>();
    const positions = new Set<number>();
    for (const p of pinList) {
      if (items.has(p.itemId)) throw fail(`${file}: parameters.pins names item_id ${JSON.stringify(p.itemId)} twice`);
      if (positions.has(p.position)) throw fail(`${file}: parameters.pins names position ${p.position} twice`);
      items.add(p.itemId);
      positions.add(p.position);
    }
  }
  const batching: ModelSettings['batching'] = {};
  if (s.max_batch_size !== undefined) batching.maxBatchSize = s.max_batch_size;
  if (s.max_batch_time !== undefined) batching.maxBatchDelayMs = s.max_batch_time * 1000;
  return {
    ...(s.name !== undefined && { name: s.name }),
    ...((mlserverVersion ?? topVersion) !== undefined && { version: mlserverVersion ?? topVersion }),
    ...(s.signature && { signature: s.signature }),
    ...(s.n_users !== undefined && { n_users: s.n_users }),
    ...(s.n_items !== undefined && { n_items: s.n_items }),
    ...(s.rating_range && { rating_range: s.rating_range }),
    ...(s.parameters?.rules && { rules: s.parameters.rules }),
    ...(pinList && { pins: pinList }),
    batching,
    warnings,
  };
}

function describe(e: ErrorObject): string {
  const extra = (e.params as { additionalProperty?: string }).additionalProperty;
  return `${e.instancePath || 'the file'} ${e.message ?? 'is invalid'}${extra === undefined ? '' : ` (${JSON.stringify(extra)})`}`;
}

function unknownKey(e: ErrorObject, file: string): string {
  const key = `${e.instancePath}/${(e.params as { additionalProperty: string }).additionalProperty}`;
  const why = IGNORED_BECAUSE[key] ?? 'recserve does not know this key (a typo?)';
  return `${file}: ${key.slice(1).replaceAll('/', '.')} is ignored: ${why}`;
}
