// Server and model metadata of the Open Inference Protocol. The model metadata is how a V2 client
// discovers the recommender's tensors (see codec.ts) and its request parameters with their defaults,
// and, in parameters.catalog_summary (JSON text: gRPC parameters are scalars), the catalog's fields
// with their types, values and ranges (model/catalog-summary.ts).
import type { ModelParams } from '../../config/index.js';
import type { Limits } from '../../config/limits.js';
import { catalogSummaryOf } from '../../model/catalog-summary.js';
import { reportHeadline } from '../../model-format/artifact.js';
import type { Recommender } from '../../model/recommender.js';
import { packageVersion } from '../../util/paths.js';
import { ID_DATATYPES, ITEM_INPUT, USER_INPUT } from './codec.js';
import type { ParamValue } from './tensors.js';

export const SERVER_NAME = 'recserve';
/** The feedback route, POST /v2/models/{name}/feedback: our own extension (V2 has no feedback call). */
export const FEEDBACK_EXTENSION = 'recserve_feedback';
export const PLATFORM = 'recserve_onnx';

export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

/** Only what is implemented: the repository extension when this server has a models root to load from. */
export function serverMetadata(options: { repository: boolean }): ServerMetadata {
  const extensions = ['binary_tensor_data', FEEDBACK_EXTENSION];
  if (options.repository) extensions.push('model_repository');
  return { name: SERVER_NAME, version: packageVersion(), extensions };
}

export interface TensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: Record<string, ParamValue>;
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
  parameters: Record<string, ParamValue>;
}

/** Every request parameter an infer call reads (the rest are ignored). */
const REQUEST_PARAMETERS = ['k', 'exclude_seen', 'filter', 'explore', 'binary_data_output', 'offset', 'exclude_items', 'allow_items', 'similar_to', 'items', 'weights', 'explain', 'diversify', 'rules', 'pins'];

const idParameters = (description: string): Record<string, ParamValue> => ({ datatypes: ID_DATATYPES.join(','), description });

/**
 * `name` is the name the model is addressed by (Seldon Core 2's `<model>_<version>`), which may
 * differ from the artifact's own name; `versions` lists the one version serving now.
 */
export function modelMetadata(name: string, model: Recommender, params: ModelParams, limits: Limits): ModelMetadata {
  const catalog = catalogSummaryOf(model.artifact);
  const { settings } = model.artifact;
  return {
    name,
    versions: [model.version],
    platform: PLATFORM,
    inputs: [
      { name: USER_INPUT, datatype: 'BYTES', shape: [-1], parameters: idParameters('user ids; alone: top-k per user (unknown users get the cold-start list)') },
      { name: ITEM_INPUT, datatype: 'BYTES', shape: [-1], parameters: { ...idParameters('optional; one item per user_id row: the score of each (user, item) pair'), optional: true } },
    ],
    outputs: [
      { name: 'item_id', datatype: 'BYTES', shape: [-1, -1], parameters: { description: 'recommended item ids per user, best first; rows shorter than the widest are padded with ""' } },
      { name: 'score', datatype: 'FP32', shape: [-1, -1], parameters: { description: 'score of each item (padding 0); for pair scoring shape [n], one score per pair' } },
      { name: 'strategy', datatype: 'BYTES', shape: [-1], parameters: { description: 'personalized or cold_start, per user' } },
      { name: 'count', datatype: 'INT64', shape: [-1], parameters: { description: 'real length of each row of item_id and score' } },
      { name: 'rating', datatype: 'FP32', shape: [-1, -1], parameters: { description: 'asked for; explicit models: the score clamped to the rating range' } },
      { name: 'because', datatype: 'BYTES', shape: [-1, -1], parameters: { description: 'with explain: JSON text per item' } },
    ],
    parameters: {
      k: params.k,
      max_k: params.max_k,
      exclude_seen: params.exclude_seen,
      filter: '{}',
      explore: 0,
      // Retrieval options: their defaults (JSON text for lists and objects, as filter), and the model's rules and pins.
      offset: 0,
      exclude_items: '[]',
      explain: false,
      rules: JSON.stringify(settings.rules ?? []),
      pins: JSON.stringify((settings.pins ?? []).map((p) => ({ item_id: p.itemId, position: p.position }))),
      // Read when given, no default: allow_items (only these), similar_to, items and weights (a session), diversify.
      request_parameters: REQUEST_PARAMETERS.join(','),
      max_users: params.max_users,
      max_pairs: limits.maxPairs,
      items: model.nItems,
      ...(catalog.summary && { catalog_summary: catalog.json }),
      ...reportHeadline(model.artifact.headline),
    },
  };
}
