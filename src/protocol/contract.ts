// openapi.yaml is the one REST contract: the same file feeds the Swagger UI and, compiled once at
// start-up, validates every message (REST bodies, and jsonData on every transport).
import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import * as yaml from 'js-yaml';
import { badData } from '../errors.js';
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

export type SchemaName = 'SeldonMessage' | 'Feedback' | 'RecommendRequest';

const validators = new Map<SchemaName, ValidateFunction>();

function validator(name: SchemaName): ValidateFunction {
  let v = validators.get(name);
  if (!v) {
    const ajv = sharedAjv();
    v = ajv.getSchema(`openapi.json#/components/schemas/${name}`)!;
    validators.set(name, v);
  }
  return v;
}

let ajvInstance: Ajv2020 | null = null;
function sharedAjv(): Ajv2020 {
  if (!ajvInstance) {
    // strict: false — the document also holds OpenAPI keywords (examples, paths) Ajv does not know.
    ajvInstance = new Ajv2020({ strict: false, allErrors: false });
    ajvInstance.addSchema(openapi().doc, 'openapi.json');
  }
  return ajvInstance;
}

/** Throws bad_data naming where the value breaks the contract, e.g. "jsonData/k must be >= 1". */
export function validate(name: SchemaName, value: unknown, where = ''): void {
  const v = validator(name);
  if (v(value)) return;
  throw badData(describe(v.errors ?? [], where));
}

function describe(errors: ErrorObject[], where: string): string {
  // Prefer the deepest error: oneOf/anyOf wrappers say less than what failed inside them.
  const e = [...errors].sort((a, b) => b.instancePath.length - a.instancePath.length)[0];
  if (!e) return 'invalid message';
  const at = `${where}${e.instancePath}`.replace(/^\//, '') || 'message';
  switch (e.keyword) {
    case 'additionalProperties':
      return `${at}: unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"`;
    case 'oneOf':
      return `${at} must match exactly one allowed form${name(at)}`;
    case 'enum':
      return `${at} must be one of ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}`;
    default:
      return `${at} ${e.message ?? 'is invalid'}`;
  }
}

function name(at: string): string {
  return at.endsWith('jsonData') ? ' (give exactly one of user_id, users, pairs)' : '';
}
