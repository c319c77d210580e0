// Model metadata (Seldon §4): derived from the loaded artifact's signature and version, then merged
// per top-level key with MODEL_METADATA (YAML or JSON), then validated as the Python wrapper does.
// custom.catalog_summary is the catalog's fields, types, values and ranges (model/catalog-summary.ts)
// as JSON text, since Seldon's custom map holds strings only.
import { Ajv } from 'ajv';
import * as yaml from 'js-yaml';
import { reportHeadline } from '../../model-format/artifact.js';
import { catalogSummaryOf } from '../../model/catalog-summary.js';
import type { Recommender } from '../../model/recommender.js';
import { LONG_FORM_NAMES } from './codec.js';
import type { JsonValue, ModelMetadata } from './messages.js';

const arrayType = {
  type: 'object',
  additionalProperties: false,
  required: ['messagetype'],
  properties: {
    messagetype: { enum: ['tensor', 'ndarray', 'tftensor'] },
    schema: {
      type: 'object',
      properties: { names: { type: 'array', items: { type: 'string' } }, shape: { type: 'array', items: { type: 'integer' } } },
    },
  },
};
const otherType = {
  type: 'object',
  required: ['messagetype'],
  properties: { messagetype: { type: 'string', not: { enum: ['tensor', 'ndarray', 'tftensor'] } }, schema: { type: 'object' } },
};
const v2Type = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: { type: 'string' },
    datatype: { enum: ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES'] },
    shape: { type: 'array', items: { type: 'integer' } },
  },
};
const io = { type: 'array', items: { anyOf: [arrayType, otherType, v2Type] } };
const validateMetadata = new Ajv({ strict: false }).compile({
  type: 'object',
  additionalProperties: false,
  required: ['name', 'versions', 'platform', 'inputs', 'outputs', 'custom'],
  properties: {
    name: { type: 'string' },
    versions: { type: 'array', items: { type: 'string' } },
    platform: { type: 'string' },
    inputs: io,
    outputs: io,
    custom: { type: 'object', additionalProperties: { type: 'string' } },
  },
});

export type MetadataResult = { ok: true; metadata: ModelMetadata } | { ok: false; problem: string };

export function buildMetadata(rec: Recommender, modelMetadataEnv: string | null): MetadataResult {
  const a = rec.artifact;
  const sig = a.signature;
  const catalog = catalogSummaryOf(a);
  const derived: ModelMetadata = {
    name: a.name,
    versions: [a.version],
    platform: 'onnx',
    inputs: [
      { messagetype: 'jsonData', schema: { $ref: '/openapi.yaml#/components/schemas/RecommendRequest' } },
      { messagetype: 'ndarray', schema: { names: ['user_id'], shape: [1] } },
      { messagetype: 'ndarray', schema: { names: ['user_id', 'item_id'], shape: [2] } },
    ],
    outputs: [
      { messagetype: 'jsonData', schema: { $ref: '/openapi.yaml#/components/schemas/RecommendResponse' } },
      { messagetype: 'ndarray', schema: { names: LONG_FORM_NAMES, shape: [4] } },
      { messagetype: 'ndarray', schema: { names: ['score'], shape: [1] } },
    ],
    custom: {
      signature: sig.kind,
      onnx_inputs: [sig.userInput, sig.itemInput].filter(Boolean).join(','),
      onnx_output: sig.output,
      n_users: String(a.userIds.length),
      n_items: String(a.itemIds.length),
      catalog_fields: a.catalog ? [...new Set(a.catalog.flatMap((r) => Object.keys(r)))].join(',') : '',
      factors: a.factors ? String(a.factors.factors) : '',
      kind: a.metadata['recserve.kind'] ?? '',
      ...(catalog.summary && { catalog_summary: catalog.json }),
      // The training report's headline (report.json): what the model scored when it was trained.
      ...reportHeadline(a.headline),
    },
  };
  let merged: Record<string, JsonValue> = derived as unknown as Record<string, JsonValue>;
  if (modelMetadataEnv) {
    let env: unknown;
    try {
      env = yaml.load(modelMetadataEnv);
    } catch (e) {
      return { ok: false, problem: `MODEL_METADATA is not YAML or JSON: ${(e as Error).message}` };
    }
    if (typeof env !== 'object' || env === null || Array.isArray(env)) return { ok: false, problem: 'MODEL_METADATA must be a mapping' };
    merged = { ...merged, ...(env as Record<string, JsonValue>) };
  }
  if (!validateMetadata(merged)) {
    const e = validateMetadata.errors?.[0];
    return { ok: false, problem: `metadata${e?.instancePath ?? ''} ${e?.message ?? 'is invalid'}` };
  }
  return { ok: true, metadata: merged as unknown as ModelMetadata };
}

