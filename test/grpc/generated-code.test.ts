// src/gen is generated from proto/ (npm run gen:proto) and committed: regenerating it into a temporary
// folder must give the same files, byte for byte, so an edit to a .proto never ships without its code.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/util/paths.js';

const BUF = path.join(PACKAGE_ROOT, 'node_modules/.bin/buf');
const bufRuns = spawnSync(BUF, ['--version'], { encoding: 'utf8' }).status === 0;
if (!bufRuns) console.warn(`generated-code test skipped: ${BUF} --version does not run (npm ci installs @bufbuild/buf)`);

const out = mkdtempSync(path.join(os.tmpdir(), 'recserve-gen-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** Every file below dir, as paths relative to it. */
function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

describe.skipIf(!bufRuns)('generated protobuf code', () => {
  it('src/gen is what buf generate writes from proto/ now', () => {
    // buf.gen.yaml, with its output sent to the temporary folder.
    const template = readFileSync(path.join(PACKAGE_ROOT, 'buf.gen.yaml'), 'utf8').replace(/^(\s*out:\s*)src\/gen\s*$/m, `$1${out}`);
    expect(template).toContain(out);
    const templateFile = path.join(out, '..', `${path.basename(out)}.buf.gen.yaml`);
    writeFileSync(templateFile, template);
    try {
      const run = spawnSync(BUF, ['generate', '--template', templateFile], { cwd: PACKAGE_ROOT, encoding: 'utf8' });
      expect(run.status, run.stderr).toBe(0);
    } finally {
      rmSync(templateFile, { force: true });
    }
    const committed = path.join(PACKAGE_ROOT, 'src/gen');
    expect(files(out)).toEqual(files(committed));
    for (const f of files(out)) expect(readFileSync(path.join(committed, f), 'utf8'), f).toBe(readFileSync(path.join(out, f), 'utf8'));
  });
});
