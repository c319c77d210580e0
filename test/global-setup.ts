// Runs once before any test file: worker threads (inference pool, cold-start, training) and the retrain
// child load dist/, so dist/ must match src/. `npm test` builds first; `npx vitest run` alone may not
// have, so a stale dist/ is rebuilt here, and the run refused (naming the stale file) when the build
// leaves any compiled file older than its source. The build is incremental (tsconfig.json): tsc skips a
// source whose content it has seen even when its output was deleted or the source merely touched, so
// the second attempt forgets the build info and emits everything.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describeStale, staleOutputs } from './fixtures/stale-dist.js';

const ROOT = path.resolve(import.meta.dirname, '..');

export function setup(): void {
  const stale = staleOutputs(ROOT);
  if (stale.length === 0) return;
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  // A second build catches a source saved while the first one ran (others may be editing src/).
  let said = '';
  let failed = false;
  for (let attempt = 0; attempt < 2; attempt++) {
    if (attempt > 0) rmSync(path.join(ROOT, 'dist', '.tsbuildinfo'), { force: true });
    const build = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: ROOT, encoding: 'utf8' });
    said = `${build.stdout ?? ''}${build.stderr ?? ''}${build.error?.message ?? ''}`.trim().split('\n').slice(0, 20).join('\n');
    failed = build.status !== 0;
    if (staleOutputs(ROOT).length === 0) break;
  }
  const still = staleOutputs(ROOT);
  if (still.length > 0) {
    throw new Error(`dist/ is stale and tsc -p tsconfig.json did not bring it up to date, so workers would run old code:\n${describeStale(still)}\ntsc said:\n${said}`);
  }
  // tsc emits despite type errors, so the workers run current code; `npm test` fails on the errors.
  if (failed) process.stderr.write(`global setup: rebuilt dist/ for\n${describeStale(stale)}\nbut tsc reported errors:\n${said}\n`);
}
