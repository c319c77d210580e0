// The staleness check the global setup runs before every test run, on a temporary tree (the project's
// own src/ and dist/ are left alone).
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeStale, staleOutputs } from './fixtures/stale-dist.js';

describe('staleOutputs', () => {
  let root: string;
  const write = (rel: string, mtimeSeconds: number) => {
    const file = path.join(root, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, '// x\n');
    utimesSync(file, mtimeSeconds, mtimeSeconds);
  };

  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'recserve-stale-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('is empty when every source has a compiled twin at least as new', () => {
    write('src/a.ts', 1000);
    write('dist/src/a.js', 2000);
    write('src/deep/b.ts', 1000);
    write('dist/src/deep/b.js', 1000);
    expect(staleOutputs(root)).toEqual([]);
  });

  it('names a source edited after the build and one never built, and skips declaration files', () => {
    write('src/fresh.ts', 1000);
    write('dist/src/fresh.js', 2000);
    write('src/model/pool/worker.ts', 3000);
    write('dist/src/model/pool/worker.js', 2000);
    write('src/train/new-job.ts', 1000);
    write('src/types.d.ts', 5000);
    const stale = staleOutputs(root);
    expect(stale).toEqual(
      expect.arrayContaining([
        { source: path.join('src', 'model', 'pool', 'worker.ts'), compiled: path.join('dist', 'src', 'model', 'pool', 'worker.js'), reason: 'older' },
        { source: path.join('src', 'train', 'new-job.ts'), compiled: path.join('dist', 'src', 'train', 'new-job.js'), reason: 'missing' },
      ]),
    );
    expect(stale).toHaveLength(2);
    const text = describeStale(stale);
    expect(text).toContain('src/model/pool/worker.ts → dist/src/model/pool/worker.js (older than the source)');
    expect(text).toContain('src/train/new-job.ts → dist/src/train/new-job.js (not built)');
  });

  it('checks every directory it is given and skips the ones a tree lacks', () => {
    write('bench/lib/x.ts', 3000);
    write('dist/bench/lib/x.js', 2000);
    expect(staleOutputs(root, ['src', 'bench']).map((s) => s.source)).toEqual([path.join('bench', 'lib', 'x.ts')]);
    expect(staleOutputs(root, ['src'])).toEqual([]);
  });

  it('shortens a long list', () => {
    for (let i = 0; i < 12; i++) write(`src/f${i}.ts`, 1000);
    const text = describeStale(staleOutputs(root), 10);
    expect(text.split('\n')).toHaveLength(11);
    expect(text).toMatch(/… and 2 more$/);
  });
});
