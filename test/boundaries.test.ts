// The import boundaries in .dependency-cruiser.cjs fail a change that crosses them, with the rule's name, while the
// violations recorded in the baseline stay tolerated. Each case cruises a small throw-away tree laid out like src/
// with the repository's own config, so the rules are exercised exactly as `npm run lint:deps` runs them.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const config = path.join(repo, '.dependency-cruiser.cjs');
const depcruise = path.join(repo, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

interface Run { code: number; output: string }

function cruise(cwd: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [depcruise, 'src', '--config', config, ...args], { cwd }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, output: stdout + stderr });
    });
  });
}

const trees: string[] = [];
afterEach(() => { for (const dir of trees.splice(0)) rmSync(dir, { recursive: true, force: true }); });

/** A tree with the given files (path → source) plus a tsconfig and the repository's node_modules. */
function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'recserve-boundaries-'));
  trees.push(dir);
  writeFileSync(path.join(dir, 'tsconfig.json'), readFileSync(path.join(repo, 'tsconfig.json')));
  symlinkSync(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  for (const [file, source] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), source);
  }
  return dir;
}

describe('dependency rules', () => {
  it('a tree that keeps the boundaries passes', async () => {
    const dir = tree({
      'src/core/service.ts': "import { fit } from '../util/maths.js';\nexport const serve = () => fit();\n",
      'src/util/maths.ts': 'export const fit = () => 1;\n',
      'src/protocols/seldon-v1/codec.ts': "import { serve } from '../../core/service.js';\nexport const decode = () => serve();\n",
    });
    const run = await cruise(dir);
    expect(run.output).toContain('no dependency violations found');
    expect(run.code).toBe(0);
  });

  it.each([
    ['no-cycles', {
      'src/config/index.ts': "import { b } from '../feedback/settings.js';\nexport const a = () => b;\n",
      'src/feedback/settings.ts': "import { a } from '../config/index.js';\nexport const b = () => a;\n",
    }],
    ['serving-never-imports-train', {
      'src/core/control.ts': "import { train } from '../train/als.js';\nexport const retrain = () => train();\n",
      'src/train/als.ts': 'export const train = () => 1;\n',
    }],
    ['model-and-feedback-never-import-train', {
      'src/feedback/bandit.ts': "import { seed } from '../train/random.js';\nexport const draw = () => seed;\n",
      'src/train/random.ts': 'export const seed = 1;\n',
    }],
    ['transports-and-protocols-never-reach-inference', {
      'src/transport/rest/app.ts': "import { pool } from '../../model/pool/pool.js';\nexport const app = () => pool;\n",
      'src/model/pool/pool.ts': 'export const pool = 1;\n',
    }],
    ['core-imports-no-protocol', {
      'src/core/service.ts': "import type { Msg } from '../protocols/seldon-v1/messages.js';\nexport type In = Msg;\n",
      'src/protocols/seldon-v1/messages.ts': 'export interface Msg { data: number }\n',
    }],
    ['protocols-never-import-transports', {
      'src/protocols/seldon-v1/rest-routes.ts': "import { mount } from '../../transport/rest/app.js';\nexport const routes = () => mount;\n",
      'src/transport/rest/app.ts': 'export const mount = 1;\n',
    }],
    ['only-ort-scorer-imports-onnxruntime', {
      'src/model/recommender.ts': "import ort from 'onnxruntime-node';\nexport const env = () => ort.env;\n",
    }],
    ['no-orphans', {
      'src/util/forgotten.ts': 'export const unused = 1;\n',
    }],
  ])('%s: a new violation fails with the rule name', async (rule, files) => {
    const run = await cruise(tree(files));
    expect(run.output).toContain(`error ${rule}:`);
    expect(run.code).not.toBe(0);
  });

  it('a known violation is tolerated, a new one beside it is not', async () => {
    const dir = tree({
      'src/protocols/seldon-v1/rest-routes.ts': "import { mount } from '../../transport/rest/app.js';\nexport const routes = () => mount;\n",
      'src/transport/rest/app.ts': 'export const mount = 1;\n',
    });
    const baseline = await cruise(dir, '--output-type', 'baseline', '--output-to', '.dependency-cruiser-known-violations.json');
    expect(baseline.code).toBe(0);
    const known = await cruise(dir, '--ignore-known');
    expect(known.code).toBe(0);
    expect(known.output).toContain('1 known violations ignored');

    writeFileSync(path.join(dir, 'src/protocols/seldon-v1/grpc-services.ts'),
      "import { mount } from '../../transport/rest/app.js';\nexport const services = () => mount;\n");
    const added = await cruise(dir, '--ignore-known');
    expect(added.output).toContain('error protocols-never-import-transports: src/protocols/seldon-v1/grpc-services.ts');
    expect(added.output).not.toContain('rest-routes.ts');
    expect(added.code).not.toBe(0);
  });
});
