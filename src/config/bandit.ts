// The Thompson-sampling bandit's prior (src/feedback/bandit.ts): Beta(α0, β0) per item, with a prior
// mean that follows popularity.
import { num } from './env.js';
import { defaultsOf, fracField, intField, numField, type Field, type Section } from './setting.js';

export interface BanditPrior {
  /** μ̄: prior mean reward of an item of median popularity. */
  priorMean: number;
  /** κ: weight of the prior in pseudo-observations. */
  priorStrength: number;
  /** s ≥ 1: prior means span μ̄/s (least popular) … μ̄·s (most popular); 1 = the same prior for all (smaller values count as 1). */
  popularitySpread: number;
  /** Seed for reproducible draws (tests, simulations); random when absent. */
  seed?: number;
}

const spread: Field<number> = { env: 'RECSERVE_BANDIT_SPREAD', default: 2, parse: (raw, name) => Math.max(1, num(raw, 2, name)) };
const seed: Field<number | undefined> = { ...intField('RECSERVE_BANDIT_SEED', 0), default: undefined, shown: 'random' };

export const BANDIT: Section<BanditPrior> = {
  priorMean: fracField('RECSERVE_BANDIT_PRIOR_MEAN', 0.1),
  priorStrength: numField('RECSERVE_BANDIT_PRIOR_STRENGTH', 10),
  popularitySpread: spread,
  seed,
};

export const BANDIT_DEFAULTS: BanditPrior = defaultsOf(BANDIT);
