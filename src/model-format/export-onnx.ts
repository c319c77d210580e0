// Writes a trained factor model as the recserve model artifact (DESIGN §3): one model.onnx with the
// catalog signature  user int64[N] → scores float[N, n_items]  computed as
//   Gather(user_factors, user) · item_factorsᵀ + item_bias + (user_bias[user] + global_bias)
// (Gather, then one Gemm for the whole batch), with id maps, catalog and popularity in metadata_props.
import type { FactorTables } from '../util/factor-score.js';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  AttrType,
  DataType,
  encodeModel,
  floatInitializer,
  int64Initializer,
  tensorValue,
  type OnnxModel,
} from './onnx-format.js';

/** A trained factor model, user × item orientation everywhere; matrices are row-major. */
export interface FactorModel extends FactorTables {
  userIds: string[];
  itemIds: string[];
  /** 'explicit' scores are ratings; 'implicit' scores are preferences. */
  kind: 'explicit' | 'implicit';
  ratingRange?: [number, number];
}

export interface ArtifactExtras {
  name?: string;
  version?: string;
  /** Per-item catalog fields (title, genres, …), in item index order. */
  catalog?: Record<string, unknown>[];
  /** Per-item interaction counts: the popularity prior for cold start. */
  popularity?: ArrayLike<number>;
  /** Item indices each user interacted with in training (for exclude_seen). */
  seen?: ArrayLike<number>[];
  /** Regularisation used in training; fold-in re-solves users with the same λ. */
  regularization?: number;
  /** Free-form training record (hyperparameters, metrics) kept for audit. */
  training?: Record<string, unknown>;
}

/** metadata_props keys of the recserve artifact; the loader reads the same names. */
export const MetaKey = {
  format: 'recserve.format',
  name: 'recserve.name',
  version: 'recserve.version',
  kind: 'recserve.kind',
  factors: 'recserve.factors',
  userIds: 'recserve.user_ids',
  itemIds: 'recserve.item_ids',
  catalog: 'recserve.item_catalog',
  popularity: 'recserve.item_popularity',
  seen: 'recserve.seen',
  ratingRange: 'recserve.rating_range',
  regularization: 'recserve.regularization',
  training: 'recserve.training',
} as const;

/** Initializer names, so the server can read factors back for fold-in scoring. */
export const Init = {
  userFactors: 'user_factors',
  itemFactors: 'item_factors',
  userBias: 'user_bias',
  itemBias: 'item_bias',
  globalBias: 'global_bias',
} as const;

export function buildOnnxModel(m: FactorModel, extras: ArtifactExtras = {}): OnnxModel {
  const nUsers = m.userIds.length;
  const nItems = m.itemIds.length;
  const d = m.factors;
  if (m.userFactors.length !== nUsers * d) throw new Error(`user factors hold ${m.userFactors.length} values, expected ${nUsers}×${d}`);
  if (m.itemFactors.length !== nItems * d) throw new Error(`item factors hold ${m.itemFactors.length} values, expected ${nItems}×${d}`);
  const userBias = m.userBias ?? new Float32Array(nUsers);
  const itemBias = m.itemBias ?? new Float32Array(nItems);
  const meta: Record<string, string> = {
    [MetaKey.format]: '1',
    [MetaKey.name]: extras.name ?? 'recommender',
    [MetaKey.version]: extras.version ?? '1',
    [MetaKey.kind]: m.kind,
    [MetaKey.factors]: String(d),
    [MetaKey.userIds]: JSON.stringify(m.userIds),
    [MetaKey.itemIds]: JSON.stringify(m.itemIds),
  };
  if (m.ratingRange) meta[MetaKey.ratingRange] = JSON.stringify(m.ratingRange);
  if (extras.catalog) meta[MetaKey.catalog] = JSON.stringify(extras.catalog);
  if (extras.popularity) meta[MetaKey.popularity] = JSON.stringify(Array.from(extras.popularity));
  if (extras.seen) meta[MetaKey.seen] = JSON.stringify(extras.seen.map((s) => Array.from(s)));
  if (extras.regularization !== undefined) meta[MetaKey.regularization] = String(extras.regularization);
  if (extras.training) meta[MetaKey.training] = JSON.stringify(extras.training);

  return {
    irVersion: 8,
    producerName: 'recserve',
    producerVersion: '0.1.0',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'recserve_catalog_scorer',
      input: [tensorValue('user', DataType.INT64, ['N'])],
      output: [tensorValue('scores', DataType.FLOAT, ['N', nItems])],
      initializer: [
        floatInitializer(Init.userFactors, [nUsers, d], m.userFactors),
        floatInitializer(Init.itemFactors, [nItems, d], m.itemFactors),
        floatInitializer(Init.userBias, [nUsers], userBias),
        floatInitializer(Init.itemBias, [nItems], itemBias),
        floatInitializer(Init.globalBias, [], Float32Array.of(m.globalBias ?? 0)),
        int64Initializer('axis_1', [1], [1]),
      ],
      node: [
        { opType: 'Gather', input: [Init.userFactors, 'user'], output: ['user_vec'], name: 'user_vec' },
        {
          opType: 'Gemm',
          input: ['user_vec', Init.itemFactors, Init.itemBias],
          output: ['item_scores'],
          name: 'item_scores',
          attribute: [{ name: 'transB', type: AttrType.INT, i: 1 }],
        },
        { opType: 'Gather', input: [Init.userBias, 'user'], output: ['user_b'], name: 'user_b' },
        { opType: 'Add', input: ['user_b', Init.globalBias], output: ['user_offset'], name: 'user_offset' },
        { opType: 'Unsqueeze', input: ['user_offset', 'axis_1'], output: ['user_offset_col'], name: 'user_offset_col' },
        { opType: 'Add', input: ['item_scores', 'user_offset_col'], output: ['scores'], name: 'scores' },
      ],
    },
    metadataProps: Object.entries(meta).map(([key, value]) => ({ key, value })),
  };
}

/** Writes `<dir>/model.onnx` (creating dir) and returns its path. */
export async function writeArtifact(dir: string, m: FactorModel, extras: ArtifactExtras = {}): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'model.onnx');
  // Write beside, then rename: a reader never sees half a model.
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, encodeModel(buildOnnxModel(m, extras)));
  const { rename } = await import('node:fs/promises');
  await rename(tmp, file);
  return file;
}
