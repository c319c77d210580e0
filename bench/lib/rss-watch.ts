// Samples the server's RSS while a soak mode runs: often (for the peak and the cap), and prints a row
// every `printEveryS` seconds with whatever the mode counts (requests so far, connections, ...).

export interface RssSample {
  t: number;
  rssMb: number;
  note: string;
}

export interface RssWatch {
  readonly peakMb: number;
  readonly startMb: number;
  /** True once the RSS has passed the cap (the mode should stop). */
  readonly overCap: boolean;
  readonly samples: RssSample[];
  /** Prints a last row and stops sampling. */
  stop(): RssSample[];
}

export function watchRss(opts: {
  rssMb: () => number;
  /** A short text for the printed row: requests so far, rate, ... */
  note: () => string;
  print: (row: string) => void;
  printEveryS?: number;
  capMb?: number;
}): RssWatch {
  const t0 = performance.now();
  const every = (opts.printEveryS ?? 5) * 1000;
  const read = () => {
    try {
      return opts.rssMb();
    } catch {
      return NaN; // the process is gone
    }
  };
  const startMb = read();
  let peakMb = startMb;
  let overCap = false;
  const samples: RssSample[] = [];
  const row = () => {
    const s = { t: (performance.now() - t0) / 1000, rssMb: read(), note: opts.note() };
    if (s.rssMb > peakMb) peakMb = s.rssMb;
    samples.push(s);
    opts.print(`| ${s.t.toFixed(0)} | ${Number.isNaN(s.rssMb) ? 'gone' : s.rssMb.toFixed(0)} | ${peakMb.toFixed(0)} | ${s.note} |`);
  };
  const fast = setInterval(() => {
    const r = read();
    if (r > peakMb) peakMb = r;
    if (opts.capMb !== undefined && r > opts.capMb) overCap = true;
  }, 200);
  const slow = setInterval(row, every);
  opts.print('| t (s) | RSS MB | peak MB | progress |');
  opts.print('|---:|---:|---:|---|');
  return {
    get peakMb() {
      return peakMb;
    },
    startMb,
    get overCap() {
      return overCap;
    },
    samples,
    stop() {
      clearInterval(fast);
      clearInterval(slow);
      row();
      return samples;
    },
  };
}
