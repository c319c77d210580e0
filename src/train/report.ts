// The training report: what `train`, `evaluate` and `tune` learned, as one JSON document
// (report.json) and its rendering (report.html, src/train/report-html.ts) written side by side.
// Its `headline` is the handful of numbers the model's metadata carries (recserve.training).
import { looksLikeMl100k, PUBLISHED_ANCHORS, type Anchor } from './anchors.js';
import type { Interactions } from './data.js';
import type { ProtocolSummary } from './protocols.js';
import type { Params } from './trainers.js';
import { significant } from '../util/round.js';

export const REPORT_FORMAT = 'recserve-report/1';
export const REPORT_JSON = 'report.json';
export const REPORT_HTML = 'report.html';

export interface HistogramBin {
  label: string;
  lo: number;
  hi: number;
  count: number;
}

export interface DataSummary {
  source: string;
  interactions: number;
  users: number;
  items: number;
  /** 1 − interactions / (users × items). */
  sparsity: number;
  explicit: boolean;
  rating_range: [number, number] | null;
  /** Ratings (or event weights): one bin per value when there are few distinct values, else equal widths. */
  histogram: HistogramBin[];
  /** Repeated (user, item) rows merged before training. */
  duplicates_merged?: number;
}

export interface EpochRow {
  epoch: number;
  loss: number;
  loss_name: string;
  /** Training time of the epoch as the trainer reports it. */
  seconds: number;
  /** Validation metrics after this epoch (ranking metrics on a sample of users, see validation.ranking_users). */
  validation?: Record<string, number>;
}

export interface ValidationSection {
  split: string;
  train_rows: number;
  held_out_rows: number;
  /** Users whose held-out rows the per-epoch ranking metrics use (all of them for the final figures). */
  ranking_users: number;
  objective: string;
  mode: 'min' | 'max';
  best_epoch: number;
  /** The model's iteration count for best_epoch (samples for bayes, epochs otherwise). */
  best_iterations: number;
  /** Metrics of the model trained without the held-out rows, over every held-out row. */
  final: Record<string, number>;
  /** Users / items whose every interaction was held out: absent from a model exported without --refit. */
  only_held_out: { users: number; items: number };
}

export interface RefitSection {
  parameter: string;
  iterations: number;
  /** Why this count: the best validation epoch or the count given with --refit N. */
  chosen_by: 'best-validation-epoch' | 'given';
  users: number;
  items: number;
  interactions: number;
  seconds: number;
  epochs: EpochRow[];
}

export interface EvalRow {
  protocol: string;
  metric: string;
  value: number;
  std?: number;
  anchors: Anchor[];
}

export interface EvaluationSection {
  /** Published anchors are shown for named protocols; they compare only on MovieLens 100K. */
  anchors_comparable: boolean;
  anchor_sources: Record<string, string>;
  protocols: { name: string; description: string }[];
  rows: EvalRow[];
  folds: { protocol: string; id: string; seconds: number; metrics: Record<string, number> }[];
}

export interface TrialRow {
  trial: number;
  value: number;
  best_epoch: number;
  seconds: number;
  params: Params;
  curve: { epoch: number; value: number }[];
}

export interface TuneSection {
  objective: string;
  mode: 'min' | 'max';
  log?: string;
  best: { trial: number; value: number; params: Params };
  trials: TrialRow[];
}

export interface ModelSection {
  dir: string;
  file: string;
  name: string;
  version: string;
  users: number;
  items: number;
  factors: number;
}

export type Headline = Record<string, number | string>;

export interface Report {
  format: typeof REPORT_FORMAT;
  command: 'train' | 'evaluate' | 'tune';
  created: string;
  algo: string;
  params: Params;
  data: DataSummary | null;
  model?: ModelSection;
  epochs: EpochRow[];
  validation?: ValidationSection;
  refit?: RefitSection;
  evaluation?: EvaluationSection;
  tune?: TuneSection;
  /** Seconds per phase (read, train, validation, refit, export, verify, total…). */
  timings: Record<string, number>;
  headline: Headline;
}

const MAX_VALUE_BINS = 20;

export function histogram(values: Float32Array): HistogramBin[] {
  if (values.length === 0) return [];
  const distinct = new Set<number>();
  for (let k = 0; k < values.length && distinct.size <= MAX_VALUE_BINS; k++) distinct.add(values[k]);
  if (distinct.size <= MAX_VALUE_BINS) {
    const count = new Map<number, number>();
    for (let k = 0; k < values.length; k++) count.set(values[k], (count.get(values[k]) ?? 0) + 1);
    return [...count.entries()].sort((x, y) => x[0] - y[0]).map(([v, n]) => ({ label: String(significant(v)), lo: v, hi: v, count: n }));
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (let k = 0; k < values.length; k++) (lo = Math.min(lo, values[k])), (hi = Math.max(hi, values[k]));
  const width = (hi - lo) / MAX_VALUE_BINS || 1;
  const bins: HistogramBin[] = Array.from({ length: MAX_VALUE_BINS }, (_, b) => ({ label: `${significant(lo + b * width, 3)}–${significant(lo + (b + 1) * width, 3)}`, lo: lo + b * width, hi: lo + (b + 1) * width, count: 0 }));
  for (let k = 0; k < values.length; k++) bins[Math.min(MAX_VALUE_BINS - 1, Math.floor((values[k] - lo) / width))].count++;
  return bins;
}

/** Users and items are those with at least one interaction (id maps may be shared with other files). */
export function summarizeData(data: Interactions, duplicatesMerged?: number): DataSummary {
  const users = countDistinct(data.users, data.userIds.size);
  const items = countDistinct(data.items, data.itemIds.size);
  let lo = Infinity;
  let hi = -Infinity;
  for (let k = 0; k < data.ratings.length; k++) (lo = Math.min(lo, data.ratings[k])), (hi = Math.max(hi, data.ratings[k]));
  const out: DataSummary = {
    source: data.source,
    interactions: data.users.length,
    users,
    items,
    sparsity: users * items > 0 ? 1 - data.users.length / (users * items) : 1,
    explicit: data.explicit,
    rating_range: data.ratings.length > 0 ? [lo, hi] : null,
    histogram: histogram(data.ratings),
  };
  if (duplicatesMerged !== undefined) out.duplicates_merged = duplicatesMerged;
  return out;
}

function countDistinct(idx: Int32Array, n: number): number {
  const seen = new Uint8Array(n);
  let c = 0;
  for (let k = 0; k < idx.length; k++) if (!seen[idx[k]]) (seen[idx[k]] = 1), c++;
  return c;
}

/** The metrics table of named protocols (with their published anchors) or generic splits. */
export function evaluationSection(summaries: ProtocolSummary[], protocol: string | undefined, data: DataSummary | null): EvaluationSection {
  const anchors = protocol ? PUBLISHED_ANCHORS[protocol] : undefined;
  const rows: EvalRow[] = [];
  for (const s of summaries) {
    for (const [metric, value] of Object.entries(s.metrics)) {
      const row: EvalRow = { protocol: s.name, metric, value, anchors: anchors?.metrics[metric] ?? [] };
      if (s.std[metric] !== undefined) row.std = s.std[metric];
      rows.push(row);
    }
  }
  return {
    // The predefined-split protocols only run on the MovieLens 100K files.
    anchors_comparable: anchors !== undefined && (protocol === 'lightfm' || (data !== null && looksLikeMl100k(data))),
    anchor_sources: anchors && protocol ? { [protocol]: anchors.source } : {},
    protocols: summaries.map((s) => ({ name: s.name, description: s.description })),
    rows,
    folds: summaries.flatMap((s) => s.jobs.map((j) => ({ protocol: s.name, id: j.id, seconds: j.seconds, metrics: j.metrics }))),
  };
}

/** Metric names as Katib's StdOut collector reads them (`[\w-]+=value`): ndcg@10 → ndcg_at_10. */
export function metricLineName(metric: string): string {
  return metric.replace(/@/g, '_at_').replace(/[^\w-]/g, '_');
}

/** `name=value` lines, one per metric, for Katib's StdOut metrics collector. */
export function metricLines(metrics: Record<string, number>, prefix = ''): string[] {
  return Object.entries(metrics)
    .filter(([, v]) => Number.isFinite(v))
    .map(([k, v]) => `${metricLineName(prefix + k)}=${significant(v)}`);
}
