// Validation after every epoch of `recserve train --valid`: rating error over every held-out row
// (explicit models; O(rows·factors)) and top-k ranking over a fixed sample of held-out users, so
// that an epoch's validation costs sampled users × items × factors whatever the data size.
import { subset, type Interactions } from './data.js';
import { evaluateModel, type EvalSpec } from './jobs.js';
import type { MfModel } from './model.js';
import { rng } from '../util/random.js';

/** Held-out users ranked after each epoch (the final validation ranks all of them). */
export const EPOCH_RANKING_USERS = 500;

export interface EpochValidator {
  /** Metric that picks the best epoch, and its direction. */
  objective: string;
  mode: 'min' | 'max';
  rankingUsers: number;
  evaluate(model: MfModel): Record<string, number>;
  better(a: number, b: number): boolean;
}

export function epochValidator(kind: 'explicit' | 'implicit', train: Interactions, valid: Interactions, maxUsers = EPOCH_RANKING_USERS, seed = 1): EpochValidator {
  const sample = sampleUsers(valid, maxUsers, seed);
  const evals: EvalSpec[] = [];
  if (kind === 'explicit') evals.push({ kind: 'rating', test: valid });
  evals.push({ kind: 'ranking', test: sample.rows, k: 10 });
  const objective = kind === 'explicit' ? 'rmse' : 'ndcg@10';
  const mode = kind === 'explicit' ? 'min' : 'max';
  return {
    objective,
    mode,
    rankingUsers: sample.users,
    evaluate: (model) => evaluateModel(model, train, evals),
    better: (a, b) => (mode === 'min' ? a < b : a > b),
  };
}

/** The held-out rows of at most `max` users drawn with a seeded shuffle. */
export function sampleUsers(valid: Interactions, max: number, seed: number): { rows: Interactions; users: number } {
  const present = new Uint8Array(valid.userIds.size);
  const users: number[] = [];
  for (let k = 0; k < valid.users.length; k++) if (!present[valid.users[k]]) (present[valid.users[k]] = 1), users.push(valid.users[k]);
  if (users.length <= max) return { rows: valid, users: users.length };
  const rand = rng(seed);
  for (let j = users.length - 1; j > 0; j--) {
    const r = Math.floor(rand() * (j + 1));
    [users[j], users[r]] = [users[r], users[j]];
  }
  const chosen = new Uint8Array(valid.userIds.size);
  for (let j = 0; j < max; j++) chosen[users[j]] = 1;
  const keep = new Uint8Array(valid.users.length);
  for (let k = 0; k < keep.length; k++) keep[k] = chosen[valid.users[k]];
  return { rows: subset(valid, keep), users: max };
}
