// The version repository on real directories: naming (r<N> past published and staging dirs), publishing
// with one rename (publish.json beside the model), listing in version order, the ACTIVE.json pointer and
// the start-up choice (the other replicas' version, the pointer when the base model is unchanged, else the base).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelNotFoundError, POINTER_FILE, versionOrder, VersionRepository } from '../../src/model-format/version-repository.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'recserve-versions-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
/** A fresh root and a base model directory (a model.onnx file is all the repository looks at). */
function fixture(): { root: string; base: string } {
  const dir = path.join(tmp, `case-${n++}`);
  const base = path.join(dir, 'base');
  mkdirSync(base, { recursive: true });
  writeFileSync(path.join(base, 'model.onnx'), 'base model bytes');
  return { root: path.join(dir, 'models'), base };
}

function fakeVersion(root: string, version: string): string {
  const dir = path.join(root, version);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'model.onnx'), `model ${version}`);
  return dir;
}

describe('VersionRepository', () => {
  it('names the next version past published and staging directories, and sorts r2 before r10', () => {
    const { root } = fixture();
    const repo = new VersionRepository({ root });
    expect(repo.nextVersion()).toBe('r1'); // the root does not exist yet
    fakeVersion(root, 'r2');
    fakeVersion(root, 'r10');
    mkdirSync(path.join(root, '.staging-r11-123'));
    expect(repo.nextVersion()).toBe('r12');
    expect(repo.newest()).toBe('r10');
    expect(repo.list().map((v) => v.version)).toEqual(['r2', 'r10']); // the staging dir is hidden
    expect(['r10', 'r2', 'r1'].sort(versionOrder)).toEqual(['r1', 'r2', 'r10']);
  });

  it('publishes a staged version with its report in one rename, or discards it', () => {
    const { root } = fixture();
    const repo = new VersionRepository({ root });
    const staging = repo.stage('r1');
    mkdirSync(staging);
    writeFileSync(path.join(staging, 'model.onnx'), 'candidate');
    expect(repo.list()).toEqual([]);
    const dir = repo.publish(staging, 'r1', { reason: 'not worse' });
    expect(dir).toBe(path.join(root, 'r1'));
    expect(readdirSync(root)).toEqual(['r1']);
    expect(repo.list()).toEqual([{ version: 'r1', dir, published: { reason: 'not worse' } }]);
    const again = repo.stage('r2');
    mkdirSync(again);
    repo.discard(again);
    expect(readdirSync(root)).toEqual(['r1']);
  });

  it('lists a version whose publish.json is unreadable, without a report', () => {
    const { root } = fixture();
    const dir = fakeVersion(root, 'r1');
    writeFileSync(path.join(dir, 'publish.json'), '{ not json');
    expect(new VersionRepository({ root }).list()).toEqual([{ version: 'r1', dir }]);
  });

  it('finds version directories and refuses what is not a version name', () => {
    const { root } = fixture();
    const repo = new VersionRepository({ root });
    const dir = fakeVersion(root, 'r1');
    expect(repo.findVersion('r1')).toBe(dir);
    expect(repo.findVersion('r2')).toBeNull();
    expect(() => repo.findVersion('../etc')).toThrow(ModelNotFoundError);
    expect(() => repo.findVersion('.staging-r1')).toThrow(/not a version name/);
  });

  it('starts from the version ACTIVE.json names while the base model is unchanged', () => {
    const { root, base } = fixture();
    const repo = new VersionRepository({ root, baseDir: base });
    expect(repo.startupDir()).toBe(base); // no pointer yet
    const r1 = fakeVersion(root, 'r1');
    repo.recordActive(r1, 'r1');
    const pointer = JSON.parse(readFileSync(path.join(root, POINTER_FILE), 'utf8'));
    expect(pointer).toMatchObject({ dir: r1, version: 'r1', base: { dir: base } });
    expect(readdirSync(root).filter((f) => f.includes('.tmp-'))).toEqual([]);
    expect(new VersionRepository({ root, baseDir: base }).startupDir()).toBe(r1);
    // Another base model directory, or the same one rewritten, starts from the base.
    const other = fixture().base;
    expect(new VersionRepository({ root, baseDir: other }).startupDir()).toBe(other);
    utimesSync(path.join(base, 'model.onnx'), new Date(), new Date(Date.now() + 60_000));
    expect(new VersionRepository({ root, baseDir: base }).startupDir()).toBe(base);
  });

  it('ignores an unreadable pointer and one naming a version that is gone', () => {
    const { root, base } = fixture();
    const repo = new VersionRepository({ root, baseDir: base });
    const r1 = fakeVersion(root, 'r1');
    repo.recordActive(r1, 'r1');
    rmSync(r1, { recursive: true });
    expect(repo.startupDir()).toBe(base);
    writeFileSync(path.join(root, POINTER_FILE), '{ torn');
    expect(repo.startupDir()).toBe(base);
  });

  it('prefers the version the other replicas serve, when it is under the root', () => {
    const { root, base } = fixture();
    const repo = new VersionRepository({ root, baseDir: base });
    const r1 = fakeVersion(root, 'r1');
    const r2 = fakeVersion(root, 'r2');
    repo.recordActive(r1, 'r1');
    expect(repo.startupDir({ version: 'r2', isBase: false })).toBe(r2);
    expect(repo.startupDir({ version: 'demo-1', isBase: true })).toBe(base);
    expect(repo.startupDir({ version: 'r9', isBase: false })).toBe(r1); // not here: the pointer decides
  });
});
