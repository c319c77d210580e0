// Reads a model directory (DESIGN §3) into one immutable description the recommender works from:
// the ONNX bytes and signature, id maps, catalog, popularity, seen items and readable factors.
import { DomainError } from '../errors.js';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { checkModelFile, MODEL_FILE_MAX_BYTES, SIDE_FILE_MAX_BYTES } from './files.js';
import path from 'node:path';
import { decodeModel, floatTensor, metadataOf, type OnnxModel } from './onnx-format.js';
import { discoverSignature, embeddingRows, SignatureError, type Signature } from '../model/signature.js';
import { Init, MetaKey } from './export-onnx.js';
import { readModelSettings, type ModelSettings } from './settings.js';
import { readCsv } from '../util/csv.js';


export interface Factors {
  factors: number;
  userFactors: Float32Array;
  itemFactors: Float32Array;
  userBias: Float32Array;
  itemBias: Float32Array;
  globalBias: number;
  regularization?: number;
}

export interface Artifact {
  dir: string;
  name: string;
  version: string;
  onnx: Uint8Array;
  signature: Signature;
  userIds: string[];
  itemIds: string[];
  /** Per-item catalog fields, index-aligned with itemIds (empty objects when there is no catalog). */
  catalog: Record<string, unknown>[] | null;
  /** Per-item popularity used for cold start: higher is more popular. */
  popularity: Float64Array;
  /** Training interactions per user index (sorted item indices), when the artifact carries them. */
  seen: Int32Array[] | null;
  ratingRange: [number, number] | null;
  factors: Factors | null;
  /** model-settings.json, validated: the batcher settings of this model and the warnings to log when it loads. */
  settings: ModelSettings;
  /** Raw metadata_props, for metadata and audit. */
  metadata: Record<string, string>;
  /** The training report's headline numbers (users, items, validation metrics…), when `recserve train` wrote the model. */
  headline: Record<string, number | string> | null;
}

/** A model directory that cannot be read as a recserve model. */
export class ArtifactError extends DomainError {
  constructor(message: string) {
    super('bad_data', message);
  }
}

export async function loadArtifact(dir: string): Promise<Artifact> {
  const file = path.join(dir, 'model.onnx');
  if (!existsSync(file)) throw new ArtifactError(`no model.onnx in ${dir}`);
  await checkModelFile(file, MODEL_FILE_MAX_BYTES, (m) => new ArtifactError(m));
  const onnx = new Uint8Array(await readFile(file));
  let model: OnnxModel;
  try {
    model = decodeModel(onnx);
  } catch (e) {
    throw new ArtifactError(`${file} is not a readable ONNX model: ${(e as Error).message}`);
  }
  if (!model.graph) throw new ArtifactError(`${file} has no graph`);
  const meta = metadataOf(model);
  const settings = await readModelSettings(dir, (message) => new ArtifactError(message));
  let signature: Signature;
  try {
    signature = discoverSignature(model, settings.signature);
  } catch (e) {
    if (e instanceof SignatureError) throw new ArtifactError(`${file}: ${e.message}`);
    throw e;
  }

  const rows = embeddingRows(model, signature);
  const sidecarUsers = await readIdCsv(path.join(dir, 'users.csv'));
  const sidecarItems = await readIdCsv(path.join(dir, 'items.csv'));
  const userIds = jsonMeta<string[]>(meta, MetaKey.userIds) ?? sidecarUsers?.ids ?? indexIds(settings.n_users ?? rows.users, 'users', file);
  const itemIds =
    jsonMeta<string[]>(meta, MetaKey.itemIds) ??
    sidecarItems?.ids ??
    indexIds(settings.n_items ?? (signature.catalogSize && signature.catalogSize > 0 ? signature.catalogSize : rows.items), 'items', file);
  if (signature.kind === 'catalog' && signature.catalogSize && signature.catalogSize > 0 && signature.catalogSize !== itemIds.length) {
    throw new ArtifactError(`${file} scores ${signature.catalogSize} items but its item id map has ${itemIds.length}`);
  }
  const catalog = jsonMeta<Record<string, unknown>[]>(meta, MetaKey.catalog) ?? sidecarItems?.catalog ?? null;
  if (catalog && catalog.length !== itemIds.length) throw new ArtifactError(`${file}: catalog has ${catalog.length} rows for ${itemIds.length} items`);

  const factors = readFactors(model, meta, userIds.length, itemIds.length);
  const popJson = jsonMeta<number[]>(meta, MetaKey.popularity);
  // Without interaction counts, the item bias is the best popularity signal a factor model has.
  const popularity = popJson
    ? Float64Array.from(popJson)
    : factors
      ? Float64Array.from(factors.itemBias)
      : new Float64Array(itemIds.length);
  const seenJson = jsonMeta<number[][]>(meta, MetaKey.seen);
  const seen = seenJson ? seenJson.map((s) => Int32Array.from(s).sort()) : null;

  return {
    dir,
    name: settings.name ?? meta[MetaKey.name] ?? path.basename(path.resolve(dir)),
    version: settings.version ?? meta[MetaKey.version] ?? String((await stat(file)).mtimeMs | 0),
    onnx,
    signature,
    userIds,
    itemIds,
    catalog,
    popularity,
    seen,
    ratingRange: settings.rating_range ?? jsonMeta<[number, number]>(meta, MetaKey.ratingRange) ?? null,
    factors,
    settings,
    metadata: meta,
    headline: headlineOf(meta),
  };
}

/** recserve.training's `headline`, keeping only scalar entries (metadata endpoints print them as strings). */
function headlineOf(meta: Record<string, string>): Record<string, number | string> | null {
  let h: unknown;
  try {
    h = (JSON.parse(meta[MetaKey.training] ?? 'null') as { headline?: unknown } | null)?.headline;
  } catch {
    return null; // a free-form audit record: never a reason to refuse the model
  }
  if (typeof h !== 'object' || h === null || Array.isArray(h)) return null;
  const out: Record<string, number | string> = {};
  for (const [k, v] of Object.entries(h)) if (typeof v === 'number' || typeof v === 'string') out[k] = v;
  return out;
}

function jsonMeta<T>(meta: Record<string, string>, key: string): T | undefined {
  if (meta[key] === undefined) return undefined;
  try {
    return JSON.parse(meta[key]) as T;
  } catch (e) {
    throw new ArtifactError(`metadata_props ${key} is not valid JSON: ${(e as Error).message}`);
  }
}

/** A model without id maps uses the row index in decimal as the id: user "5" is row 5. */
function indexIds(n: number | undefined, what: string, file: string): string[] {
  if (n === undefined) {
    throw new ArtifactError(
      `${file} has no ${what} id map and its ${what} embedding table could not be found; add ${what}.csv or "n_${what}" to model-settings.json`,
    );
  }
  return Array.from({ length: n }, (_, i) => String(i));
}

/** users.csv / items.csv: a header row, the id in the first column, other columns become catalog fields. */
async function readIdCsv(file: string): Promise<{ ids: string[]; catalog: Record<string, unknown>[] | null } | null> {
  if (!existsSync(file)) return null;
  await checkModelFile(file, SIDE_FILE_MAX_BYTES, (m) => new ArtifactError(m));
  let header: string[] | null = null;
  const ids: string[] = [];
  const catalog: Record<string, unknown>[] = [];
  for await (const { cells, line } of readCsv(file, { fail: (message) => new ArtifactError(message) })) {
    if (!header) {
      header = cells;
      continue;
    }
    if (cells.length !== header.length) throw new ArtifactError(`${file} line ${line}: ${cells.length} cells, header has ${header.length}`);
    ids.push(cells[0]);
    const row: Record<string, unknown> = {};
    for (let c = 1; c < header.length; c++) row[header[c]] = cells[c];
    catalog.push(row);
  }
  return { ids, catalog: (header?.length ?? 0) > 1 ? catalog : null };
}

/** Factors are readable only from recserve's own exporter (named initializers). */
function readFactors(model: OnnxModel, meta: Record<string, string>, nUsers: number, nItems: number): Factors | null {
  const find = (name: string) => model.graph.initializer.find((t) => t.name === name);
  const uf = find(Init.userFactors);
  const itf = find(Init.itemFactors);
  if (!uf || !itf) return null;
  const u = floatTensor(uf);
  const it = floatTensor(itf);
  if (u.dims[0] !== nUsers || it.dims[0] !== nItems || u.dims[1] !== it.dims[1]) return null;
  const vec = (name: string, n: number) => {
    const t = find(name);
    return t ? floatTensor(t).data : new Float32Array(n);
  };
  const g = find(Init.globalBias);
  return {
    factors: u.dims[1],
    userFactors: u.data,
    itemFactors: it.data,
    userBias: vec(Init.userBias, nUsers),
    itemBias: vec(Init.itemBias, nItems),
    globalBias: g ? floatTensor(g).data[0] : 0,
    regularization: meta[MetaKey.regularization] !== undefined ? Number(meta[MetaKey.regularization]) : undefined,
  };
}

/** The training report's headline as `report_<name>` text entries, for metadata maps that hold strings. */
export function reportHeadline(headline: Record<string, number | string> | null): Record<string, string> {
  return Object.fromEntries(Object.entries(headline ?? {}).map(([k, v]) => [`report_${k}`, String(v)]));
}
