// The Mersenne Twister as numpy's legacy `np.random.RandomState(seed)` uses it, so splits that the
// published anchors draw with numpy (Surprise's KFold(random_state=0), Microsoft Recommenders'
// python_stratified_split(seed=42)) can be reproduced row for row. Written from the MT19937
// reference algorithm (Matsumoto & Nishimura 1998) and numpy's documented double construction.

const N = 624;
const M = 397;

export class NumpyRandomState {
  private readonly mt = new Uint32Array(N);
  private pos = N;

  constructor(seed: number) {
    // init_genrand: what RandomState(int) does for a 32-bit integer seed.
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  private twist(): void {
    const mt = this.mt;
    for (let i = 0; i < N; i++) {
      const y = (mt[i] & 0x80000000) | (mt[(i + 1) % N] & 0x7fffffff);
      let v = mt[(i + M) % N] ^ (y >>> 1);
      if (y & 1) v ^= 0x9908b0df;
      mt[i] = v >>> 0;
    }
    this.pos = 0;
  }

  /** Next tempered 32-bit output. */
  uint32(): number {
    if (this.pos >= N) this.twist();
    let y = this.mt[this.pos++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** A double in [0, 1) with 53 random bits: numpy's random_sample / rand. */
  random(): number {
    const a = this.uint32() >>> 5;
    const b = this.uint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Uniform integer in [0, max] by masked rejection (numpy's legacy random_interval for max < 2^32). */
  interval(max: number): number {
    if (max === 0) return 0;
    let mask = max;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    mask >>>= 0;
    let v: number;
    do v = (this.uint32() & mask) >>> 0;
    while (v > max);
    return v;
  }

  /** In-place Fisher–Yates as RandomState.shuffle does it for a 1-D array. */
  shuffle(a: Int32Array | number[]): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.interval(i);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  }
}
