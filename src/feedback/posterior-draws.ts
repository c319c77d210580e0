// The arithmetic of Thompson draws, shared by the main thread and the draw worker (so a pool computed
// in either place is the same, draw for draw): a Beta sampler, the seed hash, and one pool of draw
// vectors cut to their sorted top-L prefixes.
import { selectTopK } from '../model/topk.js';
import { gammaAtLeastOne, gaussian, rng } from '../util/random.js';

/** Samplers for Gamma and Beta variates from one uniform source (Marsaglia–Tsang). */
export class BetaSampler {
  private readonly normal: () => number;
  constructor(private readonly uniform: () => number) {
    this.normal = gaussian(uniform);
  }

  /** log of a Gamma(a, 1) draw, a > 0 (log space keeps tiny shapes from underflowing to 0/0). */
  logGamma(a: number): number {
    if (a < 1) {
      // Gamma(a) = Gamma(a + 1) · U^(1/a)
      let u = this.uniform();
      while (u === 0) u = this.uniform();
      return this.logGamma(a + 1) + Math.log(u) / a;
    }
    return Math.log(gammaAtLeastOne(a, this.uniform, this.normal));
  }

  beta(a: number, b: number): number {
    const lx = this.logGamma(a);
    const ly = this.logGamma(b);
    return 1 / (1 + Math.exp(ly - lx));
  }
}

/** 32-bit FNV-1a hash of a string (draw seeds, user slots). */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** What the worker is asked: the posterior (α, β per item), one seed per vector, the prefix length. */
export interface DrawJob {
  alpha: Float64Array;
  beta: Float64Array;
  seeds: number[];
  prefix: number;
}

/** Vector m's best `prefix` items, best first, are items[m·prefix …) with their draws in scores. */
export interface DrawVectors {
  items: Int32Array;
  scores: Float32Array;
}

/** M full Thompson draws θ ~ Beta(α, β), each cut to its top-`prefix` items. O(M · n · log prefix). */
export function drawVectors(job: DrawJob): DrawVectors {
  const n = job.alpha.length;
  const L = job.prefix;
  const items = new Int32Array(job.seeds.length * L);
  const scores = new Float32Array(job.seeds.length * L);
  const theta = new Float32Array(n);
  job.seeds.forEach((seed, m) => {
    const sampler = new BetaSampler(rng(seed));
    for (let i = 0; i < n; i++) theta[i] = sampler.beta(job.alpha[i], job.beta[i]);
    const top = selectTopK(theta, 0, n, L, null, null);
    items.set(top.items, m * L);
    scores.set(top.scores, m * L);
  });
  return { items, scores };
}
