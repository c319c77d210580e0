// Training progress on stderr: a cli-progress bar (epoch, loss, ETA) on a terminal, one plain line
// per step otherwise (CI logs, pipes), nothing when quiet.
import cliProgress from 'cli-progress';

export interface Progress {
  /** Starts a task of `total` steps. */
  start(label: string, total: number): void;
  /** Step `value` is done; `fields` (e.g. {loss: 0.91}) are shown beside the bar or on the line. */
  update(value: number, fields?: Record<string, number | string>): void;
  /** A message between bars (printed as a line). */
  log(message: string): void;
  stop(): void;
}

export type ProgressMode = 'auto' | 'bar' | 'plain' | 'quiet';

export function createProgress(mode: ProgressMode = 'auto', stream: NodeJS.WriteStream = process.stderr): Progress {
  const useBar = mode === 'bar' || (mode === 'auto' && stream.isTTY === true && !process.env.CI);
  if (mode === 'quiet') return { start() {}, update() {}, log() {}, stop() {} };
  return useBar ? new BarProgress(stream) : new PlainProgress(stream);
}

function fmt(fields: Record<string, number | string> | undefined): string {
  if (!fields) return '';
  return Object.entries(fields)
    .map(([k, v]) => `${k} ${typeof v === 'number' ? (Math.abs(v) >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toPrecision(4)) : v}`)
    .join('  ');
}

class BarProgress implements Progress {
  private bar: cliProgress.SingleBar | null = null;
  private label = '';
  constructor(private readonly stream: NodeJS.WriteStream) {}
  start(label: string, total: number): void {
    this.stop();
    this.label = label;
    this.bar = new cliProgress.SingleBar(
      {
        stream: this.stream,
        format: '{label} [{bar}] {value}/{total} | {fields} | ETA {eta_formatted}',
        hideCursor: true,
        clearOnComplete: false,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(total, 0, { label, fields: '' });
  }
  update(value: number, fields?: Record<string, number | string>): void {
    this.bar?.update(value, { label: this.label, fields: fmt(fields) });
  }
  log(message: string): void {
    if (this.bar) {
      this.stop();
    }
    this.stream.write(message + '\n');
  }
  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}

class PlainProgress implements Progress {
  private label = '';
  private total = 0;
  private t0 = 0;
  constructor(private readonly stream: NodeJS.WriteStream) {}
  start(label: string, total: number): void {
    this.label = label;
    this.total = total;
    this.t0 = performance.now();
  }
  update(value: number, fields?: Record<string, number | string>): void {
    const elapsed = (performance.now() - this.t0) / 1000;
    const eta = value > 0 ? (elapsed / value) * (this.total - value) : NaN;
    const f = fmt(fields);
    this.stream.write(`${this.label} ${value}/${this.total}${f ? `  ${f}` : ''}  elapsed ${elapsed.toFixed(1)}s${Number.isFinite(eta) && value < this.total ? `  eta ${eta.toFixed(1)}s` : ''}\n`);
  }
  log(message: string): void {
    this.stream.write(message + '\n');
  }
  stop(): void {}
}
