// The command line's conventions, run as a user runs it: a bare `recserve` prints the help (it never
// starts a server on 0.0.0.0), --version prints the package version, and a usage error is one line
// and a hint, not the whole help.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const CLI = path.join(ROOT, 'dist/src/cli/index.js');
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });

describe('recserve CLI', () => {
  it('with no arguments prints the help and exits 0', () => {
    const r = run();
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: recserve/);
    expect(r.stdout).toMatch(/serve\b/);
  });

  it('--version prints the package version', () => {
    const r = run('--version');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  });

  it('a usage error is one line and a hint, not the whole help', () => {
    for (const args of [['train'], ['serv'], ['serve', '--http-port', 'x']]) {
      const r = run(...args);
      expect(r.status, args.join(' ')).not.toBe(0);
      const lines = r.stderr.trim().split('\n');
      expect(lines.length, `${args.join(' ')}: ${r.stderr}`).toBeLessThanOrEqual(3);
      expect(lines[0]).toMatch(/^error: /);
      expect(lines.at(-1)).toBe('(add --help for the options)');
    }
  });

  it('counts a model cannot train with, and an unknown tuning objective, are refused in one line before any work', () => {
    const data = path.join(mkdtempSync(path.join(os.tmpdir(), 'recserve-cli-')), 'r.csv');
    writeFileSync(data, 'user,item,rating\n1,1,5\n1,2,3\n2,1,4\n2,3,2\n');
    for (const [args, said] of [
      [['train', '--data', data, '--out', path.join(path.dirname(data), 'm'), '--epochs', '0'], /--epochs must be a whole number ≥ 1/],
      [['train', '--data', data, '--out', path.join(path.dirname(data), 'm'), '--factors', '0'], /--factors must be a whole number ≥ 1/],
      [['tune', '--data', data, '--trials', '0'], /--trials must be a whole number ≥ 1/],
      [['export', '--user-factors', data, '--item-factors', data, '--out', path.dirname(data), '--regularization', '-1'], /--regularization must be a number > 0/],
      [['tune', '--data', data, '--trials', '1', '--objective', 'NDCG@10', '--progress', 'quiet'], /^recserve tune: objective NDCG@10: use rmse or mae/],
    ] as const) {
      const r = run(...args);
      expect(r.status, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toMatch(said);
      expect(r.stderr, args.join(' ')).not.toMatch(/\n\s+at /);
    }
  });
});
