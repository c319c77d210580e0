// Every executor of kubeflow/*.yaml that runs the recserve image runs a command and options the CLI really
// has (read from `recserve <command> --help` of the compiled CLI), and every other executor is one of the
// kubectl steps.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { argvErrors, cliOptions } from './cli-help.js';
import { cliArgv, CLI, executors, irFiles, loadYaml, ROOT } from './ir.js';

describe('kubeflow executors run commands the CLI has', () => {
  it('the compiled CLI exists', () => {
    expect(existsSync(CLI), `${CLI} (run \`npm run build\`)`).toBe(true);
  });

  for (const file of irFiles()) {
    it(file, () => {
      const doc = loadYaml(path.join(ROOT, file));
      for (const e of executors(doc)) {
        const run = cliArgv(e);
        if (!run) {
          // Not the recserve image: kubectl (deploy, spark-als), which the CLI check does not cover.
          expect(e.image, e.label).not.toMatch(/\/recserve:/);
          expect([e.command[0], e.command[2] ?? ''].join(' '), e.label).toMatch(/kubectl/);
          continue;
        }
        expect(e.image, e.label).toMatch(/\/recserve:\d/);
        expect(argvErrors(run.argv, e.label)).toEqual([]);
        // Options the wrapper script adds after "$@" are the same command's.
        for (const flag of run.script?.match(/(?<=\s)--[a-z][-a-z]*/g) ?? []) expect(cliOptions(run.argv[0]).has(flag), `${e.label}: ${flag}`).toBe(true);
      }
    });
  }

  it('the help examples of the commands the steps run are written as a user types them (npx recserve …)', () => {
    for (const command of ['validate-data', 'tune', 'train', 'evaluate', 'export', 'manifest']) {
      const help = execFileSync(process.execPath, [CLI, command, '--help'], { encoding: 'utf8', timeout: 30_000 });
      const examples = help.split(/^Examples:$/m)[1]?.split('\n').filter((l) => /^ {2}\S/.test(l)) ?? [];
      for (const line of examples.filter((l) => /\brecserve\b/.test(l))) expect(line, `${command} --help`).toMatch(/^ {2}npx recserve [a-z]/);
      if (command === 'manifest') expect(examples.length, 'manifest has examples').toBeGreaterThan(0);
    }
  });

  it('the check is not vacuous', () => {
    expect(argvErrors(['train', '--data', 'x', '--factor', '8'], 't')).toEqual(['t: `recserve train` has no option --factor']);
    expect(argvErrors(['train', '--data', '--out', 'm'], 't')).toEqual(['t: --data needs a value']);
    expect(argvErrors(['train', '--json', 'yes'], 't')).toEqual(['t: --json takes no value, "yes" follows it']);
    expect(argvErrors(['fit'], 't')).toEqual(['t: recserve has no command "fit"']);
  });
});
