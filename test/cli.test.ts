// The command line's conventions, run as a user runs it: a bare `recserve` prints the help (it never
// starts a server on 0.0.0.0), --version prints the package version, and a usage error is one line
// and a hint, not the whole help.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
});
