// Every example of the served contract (/seldon.json, what Swagger UI shows) executes against the demo model
// over real HTTP: each request example of each operation, in each media type (JSON, form, multipart), gets a
// success, or the status its example declares (x-expected-status), and always a documented status; the live
// answers and every documented response example validate against their schemas; and every schema object
// holds only JSON Schema / OpenAPI keywords (a comma in an unquoted YAML flow map makes junk keys).
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSeldonError, postJson, startTestServer, type TestServer } from '../helpers/server.js';

type Obj = Record<string, any>;

const ADMIN_TOKEN = 'swagger-examples-token';
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];
/** Swagger UI fills these from the binary file picker, not from an example. */
const isBinary = (schema: Obj | undefined) => schema?.format === 'binary';

let t: TestServer;
let doc: Obj;
let ajv: Ajv2020;

beforeAll(async () => {
  // With an admin token the Admin examples run for real (the security scheme says how to send it).
  t = await startTestServer({ RECSERVE_ADMIN_TOKEN: ADMIN_TOKEN });
  doc = (await (await fetch(`${t.url}/seldon.json`)).json()) as Obj;
  ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema(doc, 'openapi.json');
});
afterAll(async () => t?.stop());

/** A JSON pointer into the document, resolving a local $ref (recursively) to where it points. */
function resolve(pointer: string): { node: Obj; pointer: string } {
  let node: any = doc;
  for (const part of pointer.split('/').slice(1)) node = node?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  if (node && typeof node.$ref === 'string' && node.$ref.startsWith('#/') && Object.keys(node).length === 1) return resolve(node.$ref.slice(1));
  return { node, pointer };
}
const at = (pointer: string, ...keys: string[]) => `${pointer}/${keys.map((k) => k.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`;

const validators = new Map<string, ValidateFunction>();
function schemaErrors(schemaPointer: string, value: unknown): string {
  let v = validators.get(schemaPointer);
  if (!v) validators.set(schemaPointer, (v = ajv.compile({ $ref: `openapi.json#${schemaPointer}` })));
  return v(value) ? '' : ajv.errorsText(v.errors, { separator: '; ' });
}

interface Operation {
  method: string;
  path: string;
  pointer: string;
  op: Obj;
  statuses: string[];
}

function operations(): Operation[] {
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths as Obj)) {
    for (const method of METHODS) {
      if (!item[method]) continue;
      const pointer = at('#', 'paths', path, method).slice(1);
      ops.push({ method, path, pointer, op: item[method], statuses: Object.keys(item[method].responses ?? {}) });
    }
  }
  return ops;
}

interface Example {
  name: string;
  mediaType: string | null;
  value: unknown;
  expected?: number;
}

/** The request examples of an operation, one per example and media type; none: one call with no body. */
function requestExamples(o: Operation): Example[] {
  if (!o.op.requestBody) return [{ name: '(no body)', mediaType: null, value: undefined }];
  const { node: body, pointer } = resolve(at(o.pointer, 'requestBody'));
  const out: Example[] = [];
  for (const [mediaType, media] of Object.entries(body.content as Obj)) {
    if (isBinary(media.schema)) continue;
    const schema = media.schema?.$ref ? resolve(media.schema.$ref.slice(1)).node : media.schema;
    if (mediaType === 'application/json') {
      const named = Object.entries((media.examples ?? {}) as Obj).map(([name, ex]) => ({ name, mediaType, value: ex.value, expected: ex['x-expected-status'] }));
      if (media.example !== undefined) named.push({ name: 'example', mediaType, value: media.example, expected: undefined });
      expect(named.length, `${o.method} ${o.path} ${mediaType}: an example (else Swagger UI sends a generated one)`).toBeGreaterThan(0);
      for (const ex of named) expect(schemaErrors(at(pointer, 'content', mediaType, 'schema'), ex.value), `${o.method} ${o.path} example ${ex.name}`).toBe('');
      out.push(...named);
    } else {
      // A form: Swagger UI fills each field from its example, "string" when there is none.
      const fields = Object.entries((schema.properties ?? {}) as Obj).map(([field, p]) => {
        expect(p.example, `${o.method} ${o.path} ${mediaType} field ${field}: an example`).toBeDefined();
        return [field, String(p.example)] as const;
      });
      out.push({ name: 'form fields', mediaType, value: Object.fromEntries(fields) });
    }
  }
  return out;
}

/** The URL of an operation with its path and required query parameters filled from their examples. */
function urlOf(o: Operation): string {
  let path = o.path;
  const query = new URLSearchParams();
  for (const ref of (o.op.parameters ?? []) as Obj[]) {
    const p = ref.$ref ? resolve(ref.$ref.slice(1)).node : ref;
    if (p.in === 'path') path = path.replace(`{${p.name}}`, encodeURIComponent(String(p.example)));
    if (p.in === 'query' && p.required) query.set(p.name, String(p.example));
  }
  return `${t.url}${path}${query.size > 0 ? `?${query}` : ''}`;
}

async function send(o: Operation, ex: Example): Promise<{ status: number; contentType: string; text: string }> {
  const headers: Record<string, string> = {};
  if (o.op.security) headers.authorization = `Bearer ${ADMIN_TOKEN}`;
  let body: string | FormData | undefined;
  if (ex.mediaType === 'application/json') {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(ex.value);
  } else if (ex.mediaType === 'application/x-www-form-urlencoded') {
    headers['content-type'] = ex.mediaType;
    body = new URLSearchParams(ex.value as Record<string, string>).toString();
  } else if (ex.mediaType === 'multipart/form-data') {
    body = new FormData();
    for (const [k, v] of Object.entries(ex.value as Record<string, string>)) body.append(k, v);
  } else if (ex.mediaType !== null) throw new Error(`${o.method} ${o.path}: no way to send ${ex.mediaType}`);
  const res = await fetch(urlOf(o), { method: o.method.toUpperCase(), headers, body });
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', text: await res.text() };
}

/** The live answer against the schema documented for its status and content type. */
function checkAnswer(o: Operation, status: number, contentType: string, text: string): string {
  const { node: response, pointer } = resolve(at(o.pointer, 'responses', String(status)));
  if (!response.content) return text === '' ? '' : `undocumented body ${text.slice(0, 200)}`;
  const mediaType = Object.keys(response.content).find((m) => contentType.startsWith(m));
  if (!mediaType) return `content type ${contentType} is not documented (${Object.keys(response.content).join(', ')})`;
  if (!mediaType.endsWith('json')) return '';
  return schemaErrors(at(pointer, 'content', mediaType, 'schema'), JSON.parse(text));
}

describe('openapi.yaml examples against the demo model', () => {
  it('every request example of every operation gets a success or its declared status, and a documented answer', async () => {
    // Admin last: reloads and retraining swap versions, which the other examples do not expect.
    const ops = operations().sort((a, b) => Number(a.path.startsWith('/admin/')) - Number(b.path.startsWith('/admin/')));
    expect(ops.length).toBeGreaterThan(40);
    const failures: string[] = [];
    let sent = 0;
    for (const o of ops) {
      const succeeds = o.statuses.some((s) => s.startsWith('2'));
      for (const ex of requestExamples(o)) {
        const r = await send(o, ex);
        sent++;
        const what = `${o.method.toUpperCase()} ${o.path} ${ex.mediaType ?? ''} ${ex.name}: ${r.status} ${r.text.slice(0, 240)}`;
        if (!o.statuses.includes(String(r.status))) failures.push(`${what} (documented: ${o.statuses.join(', ')})`);
        else if (ex.expected !== undefined ? r.status !== ex.expected : succeeds && !(r.status >= 200 && r.status < 300)) {
          failures.push(`${what} (expected ${ex.expected ?? 'a success'})`);
        } else {
          const problem = checkAnswer(o, r.status, r.contentType, r.text);
          if (problem) failures.push(`${what}: the answer does not match its documented schema: ${problem}`);
        }
      }
    }
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThan(60);
    // The background retrain example may still run: let it finish before the server stops.
    const retrain = async () => (await (await fetch(`${t.url}/admin/retrain`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as Obj;
    while ((await retrain()).running) await new Promise((r) => setTimeout(r, 50));
  });

  it('the default (first) feedback example is learnt from without a prior prediction', async () => {
    const body = resolve('/components/requestBodies/FeedbackBody').node.content['application/json'];
    const first = Object.values(body.examples as Obj)[0].value;
    const r = await fetch(`${t.url}/api/v1.0/feedback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(first) });
    expect(r.status).toBe(200);
    const tags = ((await r.json()) as Obj).meta.tags;
    expect(tags.feedback_interactions).toBeGreaterThan(0);
    expect(tags.feedback_note).toBeUndefined();
  });

  it('feedback about no user (similar items, an anonymous session) is refused with the reason', async () => {
    const examples = resolve('/components/requestBodies/FeedbackBody').node.content['application/json'].examples as Obj;
    const session = { request: { jsonData: { items: ['18', '35'], k: 2 } }, response: { jsonData: { recommendations: [{ strategy: 'personalized', items: [{ item_id: '7', score: 4 }] }] } }, reward: 1 };
    for (const [what, fb] of [
      ['the similar-items example', examples.similarItemsRefused.value],
      ['a session answer', { response: session.response, reward: 1 }],
      ['a session request', { request: session.request, truth: { jsonData: ['7'] }, reward: 1 }],
    ]) {
      const r = await postJson(`${t.url}/api/v1.0/feedback`, fb);
      expect(r.status, what).toBe(400);
      expect(expectSeldonError(r.body, 'MICROSERVICE_BAD_DATA'), what).toMatch(/feedback is about a user; similar-items answers and anonymous sessions name none$/);
    }
  });

  it('every documented response with a body has an example that validates against its schema', () => {
    const missing: string[] = [];
    const invalid: string[] = [];
    const responsesOf = (pointer: string, responses: Obj) => Object.keys(responses).map((status) => ({ status, ...resolve(at(pointer, status)) }));
    for (const o of operations()) {
      for (const { status, node, pointer } of responsesOf(at(o.pointer, 'responses'), o.op.responses)) {
        for (const [mediaType, media] of Object.entries((node.content ?? {}) as Obj)) {
          if (isBinary(media.schema)) continue;
          const where = `${o.method.toUpperCase()} ${o.path} ${status} ${mediaType}`;
          const examples = [...(media.example !== undefined ? [media.example] : []), ...Object.values((media.examples ?? {}) as Obj).map((e) => e.value)];
          if (examples.length === 0) missing.push(where);
          for (const ex of examples) {
            const errors = schemaErrors(at(pointer, 'content', mediaType, 'schema'), ex);
            if (errors) invalid.push(`${where}: ${errors}`);
          }
        }
      }
    }
    expect(missing, 'responses without an example').toEqual([]);
    expect(invalid, 'examples that break their schema').toEqual([]);
  });
});

// The JSON Schema 2020-12 vocabulary and OpenAPI 3.1's additions to it.
const SCHEMA_KEYWORDS = new Set([
  '$schema', '$id', '$ref', '$anchor', '$dynamicRef', '$dynamicAnchor', '$defs', '$comment', '$vocabulary',
  'type', 'enum', 'const', 'multipleOf', 'maximum', 'exclusiveMaximum', 'minimum', 'exclusiveMinimum',
  'maxLength', 'minLength', 'pattern', 'maxItems', 'minItems', 'uniqueItems', 'maxContains', 'minContains',
  'maxProperties', 'minProperties', 'required', 'dependentRequired', 'allOf', 'anyOf', 'oneOf', 'not', 'if', 'then',
  'else', 'dependentSchemas', 'prefixItems', 'items', 'contains', 'properties', 'patternProperties',
  'additionalProperties', 'propertyNames', 'unevaluatedItems', 'unevaluatedProperties', 'format', 'contentEncoding',
  'contentMediaType', 'contentSchema', 'title', 'description', 'default', 'deprecated', 'readOnly', 'writeOnly',
  'examples', 'discriminator', 'xml', 'externalDocs', 'example',
]);
const SUBSCHEMA = ['items', 'additionalProperties', 'not', 'contains', 'propertyNames', 'if', 'then', 'else', 'unevaluatedItems', 'unevaluatedProperties', 'contentSchema'];
const SUBSCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf', 'prefixItems'];
const SUBSCHEMA_MAPS = ['properties', 'patternProperties', '$defs', 'dependentSchemas'];

/** Keys of a schema and its subschemas that are neither keywords nor x- extensions. */
function unknownKeys(schema: unknown, where: string, out: string[]): void {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return;
  const s = schema as Obj;
  for (const k of Object.keys(s)) if (!SCHEMA_KEYWORDS.has(k) && !k.startsWith('x-')) out.push(`${where}: ${JSON.stringify(k)}`);
  for (const k of SUBSCHEMA) unknownKeys(s[k], `${where}/${k}`, out);
  for (const k of SUBSCHEMA_LISTS) if (Array.isArray(s[k])) s[k].forEach((x: unknown, i: number) => unknownKeys(x, `${where}/${k}/${i}`, out));
  for (const k of SUBSCHEMA_MAPS) for (const [name, x] of Object.entries((s[k] ?? {}) as Obj)) unknownKeys(x, `${where}/${k}/${name}`, out);
}

/** Every schema of the document: components.schemas and each `schema` of a parameter or media type (examples skipped). */
function allSchemas(node: unknown, where: string, out: [string, unknown][]): void {
  if (typeof node !== 'object' || node === null) return;
  for (const [k, v] of Object.entries(node as Obj)) {
    if (k === 'example' || k === 'examples') continue;
    if (k === 'schema') out.push([`${where}/schema`, v]);
    else if (k === 'schemas' && where === '/components') for (const [name, s] of Object.entries(v as Obj)) out.push([`/components/schemas/${name}`, s]);
    else allSchemas(v, `${where}/${k}`, out);
  }
}

describe('openapi.yaml schema objects', () => {
  it('use only JSON Schema / OpenAPI keywords or x- extensions (no keys split off a description)', () => {
    const schemas: [string, unknown][] = [];
    allSchemas(doc, '', schemas);
    expect(schemas.length).toBeGreaterThan(50);
    const unknown: string[] = [];
    for (const [where, s] of schemas) unknownKeys(s, where, unknown);
    expect(unknown).toEqual([]);
  });

  it('the predict request schema shows the RecommendRequest fields under jsonData', () => {
    const body = resolve('/components/requestBodies/SeldonMessageBody').node.content['application/json'];
    const message = resolve(body.schema.$ref.slice(1)).node;
    const request = resolve(message.properties.jsonData.$ref.slice(1)).node;
    expect(Object.keys(request.properties)).toEqual(expect.arrayContaining(['user_id', 'users', 'pairs', 'similar_to', 'items', 'filter', 'k']));
  });
});
