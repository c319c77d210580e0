// One entry point over every trainer: names, kinds, hyperparameters (with their CLI flags, help and
// search ranges), and `fit`, which turns interactions into an MfModel.
import { ALS_DEFAULTS, trainAls, trainWals, WALS_DEFAULTS } from './als.js';
import { BAYES_DEFAULTS, trainBayes } from './bayes.js';
import { BPR_DEFAULTS, trainBpr } from './bpr.js';
import type { EpochHook, MfModel, TrainInput } from './model.js';
import { SGD_DEFAULTS, trainSgd } from './sgd.js';

export const ALGOS = ['sgd', 'als', 'wals', 'bpr', 'bayes'] as const;
export type Algo = (typeof ALGOS)[number];

export type ParamValue = number | string | boolean;
export type Params = Record<string, ParamValue>;

export interface ParamSpec {
  /** camelCase key in the params object; the CLI flag is its kebab-case form. */
  key: string;
  type: 'int' | 'float' | 'choice' | 'bool';
  choices?: string[];
  help: string;
  algos: Algo[];
}

export const PARAMS: ParamSpec[] = [
  { key: 'factors', type: 'int', help: 'latent factors per user/item (per sample for bayes)', algos: ['sgd', 'als', 'wals', 'bpr', 'bayes'] },
  { key: 'epochs', type: 'int', help: 'passes over the data (ALS: alternating sweeps)', algos: ['sgd', 'als', 'wals', 'bpr'] },
  { key: 'reg', type: 'float', help: 'L2 regularisation λ on factors (als: multiplied by the row count when --weighted-reg)', algos: ['sgd', 'als', 'wals', 'bpr'] },
  { key: 'regBias', type: 'float', help: 'L2 regularisation on biases (default: --reg)', algos: ['sgd', 'als', 'bpr'] },
  { key: 'lr', type: 'float', help: 'SGD learning rate', algos: ['sgd', 'bpr'] },
  { key: 'lrBias', type: 'float', help: 'SGD learning rate for biases (default: --lr)', algos: ['sgd'] },
  { key: 'lrDecay', type: 'float', help: 'multiply the learning rate by this after every epoch', algos: ['sgd'] },
  { key: 'order', type: 'choice', choices: ['shuffle', 'fixed'], help: "rating visit order: 'shuffle' each epoch, or 'fixed' user-major (Surprise)", algos: ['sgd'] },
  { key: 'initStd', type: 'float', help: 'standard deviation of the initial factors', algos: ['sgd', 'als', 'bpr', 'bayes'] },
  { key: 'weightedReg', type: 'bool', help: 'scale λ by the number of ratings of the row (ALS-WR)', algos: ['als'] },
  { key: 'alpha', type: 'float', help: 'confidence slope: an observed pair of weight w gets confidence 1 + α·w', algos: ['wals'] },
  { key: 'confidence', type: 'choice', choices: ['linear', 'log'], help: "confidence from weights: 'linear' 1+α·w or 'log' 1+α·ln(1+w/ε)", algos: ['wals'] },
  { key: 'epsilon', type: 'float', help: "ε of the 'log' confidence", algos: ['wals'] },
  { key: 'regExp', type: 'float', help: 'frequency-scaled λ: λ·n_row^x (0 = plain λ)', algos: ['wals'] },
  { key: 'solver', type: 'choice', choices: ['cg', 'cholesky'], help: "per-row solver: 'cg' conjugate gradient (implicit's default) or exact 'cholesky'", algos: ['wals'] },
  { key: 'cgSteps', type: 'int', help: 'conjugate-gradient steps per row and sweep', algos: ['wals'] },
  { key: 'initScale', type: 'float', help: 'initial factors are uniform in [0, scale)', algos: ['wals'] },
  { key: 'burnIn', type: 'int', help: 'Gibbs sweeps discarded before averaging', algos: ['bayes'] },
  { key: 'samples', type: 'int', help: 'Gibbs sweeps averaged after burn-in', algos: ['bayes'] },
  { key: 'thin', type: 'int', help: 'keep every n-th sample in the exported model (model width = samples/thin × factors)', algos: ['bayes'] },
  { key: 'implicit', type: 'choice', choices: ['none', 'user', 'both'], help: "implicit-feedback terms: 'none' (BPMF), 'user' (SVD++), 'both' (SVD++ and flipped)", algos: ['bayes'] },
  { key: 'seed', type: 'int', help: 'random seed (training is deterministic given the seed)', algos: ['sgd', 'als', 'wals', 'bpr', 'bayes'] },
];

export interface AlgoInfo {
  kind: 'explicit' | 'implicit';
  summary: string;
  defaults: Params;
  /** The parameter that counts training iterations (what early stopping shortens). */
  iterations: 'epochs' | 'samples';
}

export const ALGO_INFO: Record<Algo, AlgoInfo> = {
  sgd: { kind: 'explicit', summary: 'biased MF by SGD (Funk/Surprise SVD)', defaults: { ...SGD_DEFAULTS } as unknown as Params, iterations: 'epochs' },
  als: { kind: 'explicit', summary: 'biased MF by alternating least squares (ALS-WR)', defaults: { ...ALS_DEFAULTS } as unknown as Params, iterations: 'epochs' },
  bayes: { kind: 'explicit', summary: 'Bayesian biased MF (+ SVD++/flipped implicit terms) by Gibbs sampling', defaults: { ...BAYES_DEFAULTS } as unknown as Params, iterations: 'samples' },
  wals: { kind: 'implicit', summary: 'implicit weighted ALS (Hu–Koren–Volinsky) with a conjugate-gradient solver', defaults: { ...WALS_DEFAULTS } as unknown as Params, iterations: 'epochs' },
  bpr: { kind: 'implicit', summary: 'Bayesian personalised ranking by SGD', defaults: { ...BPR_DEFAULTS } as unknown as Params, iterations: 'epochs' },
};

export function isAlgo(s: string): s is Algo {
  return (ALGOS as readonly string[]).includes(s);
}

/** Checks that every key is a parameter of the algorithm and has the right type. */
export function validateParams(algo: Algo, params: Params): void {
  for (const [k, v] of Object.entries(params)) {
    const spec = PARAMS.find((s) => s.key === k);
    if (!spec) throw new Error(`unknown hyperparameter "${k}"`);
    if (!spec.algos.includes(algo)) throw new Error(`--${kebab(k)} does not apply to --algo ${algo} (it is for ${spec.algos.join(', ')})`);
    if ((spec.type === 'int' || spec.type === 'float') && (typeof v !== 'number' || !Number.isFinite(v))) throw new Error(`--${kebab(k)} must be a number, got ${JSON.stringify(v)}`);
    if (spec.type === 'int' && (!Number.isInteger(v) || (v as number) < 0)) throw new Error(`--${kebab(k)} must be a non-negative integer, got ${v}`);
    if (spec.type === 'choice' && !spec.choices!.includes(String(v))) throw new Error(`--${kebab(k)} must be one of ${spec.choices!.join(', ')}, got ${JSON.stringify(v)}`);
  }
  if (params.factors !== undefined && (params.factors as number) < 1) throw new Error('--factors must be at least 1');
}

export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export interface FitResult {
  model: MfModel;
  /** The λ a server should use to fold new users in by ridge regression. */
  regularization: number;
  /** Parameters actually used (defaults filled in). */
  params: Params;
  seconds: number;
}

export function fit(algo: Algo, input: TrainInput, params: Params = {}, onEpoch?: EpochHook, ratingRange?: [number, number]): FitResult {
  validateParams(algo, params);
  const full: Params = { ...ALGO_INFO[algo].defaults, ...params };
  const t0 = performance.now();
  let model: MfModel;
  let regularization = Number(full.reg ?? 0);
  const rr = ALGO_INFO[algo].kind === 'explicit' ? ratingRange : undefined;
  switch (algo) {
    case 'sgd':
      model = trainSgd(input, { ...(full as object), ratingRange: rr }, onEpoch);
      break;
    case 'als':
      model = trainAls(input, { ...(full as object), ratingRange: rr }, onEpoch);
      break;
    case 'wals':
      model = trainWals(input, full as object, onEpoch);
      break;
    case 'bpr':
      model = trainBpr(input, full as object, onEpoch);
      break;
    case 'bayes': {
      const r = trainBayes(input, { ...(full as object), ratingRange: rr }, onEpoch);
      model = r.model;
      regularization = r.ridge;
      break;
    }
  }
  return { model, regularization, params: full, seconds: (performance.now() - t0) / 1000 };
}
