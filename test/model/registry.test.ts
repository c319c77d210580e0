// The registry's slots over real ONNX sessions (the demo model, in-process scorer) and a real version
// repository: load → warm → prepare → swap, refusals that keep the old version serving, rollback,
// version names ('base' and the base model's own), the listing, the grace close of an evicted version,
// serialised loads, and a registry without a repository. loadModel is the registry-free load.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildDemo } from '../../src/model-format/demo.js';
import { writeArtifact } from '../../src/model-format/export-onnx.js';
import { POINTER_FILE, VersionRepository } from '../../src/model-format/version-repository.js';
import { inProcessScorer } from '../../src/model/pool/factory.js';
import { loadModel, ModelNotFoundError, ModelRefusedError, ModelRegistry, NoPreviousVersionError, type RegistryLogger, type ScorerFactory } from '../../src/model/registry.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'recserve-registry-'));
const base = path.join(tmp, 'base');
const root = path.join(tmp, 'models');

async function publish(dir: string, version: string): Promise<void> {
  const { model, extras } = buildDemo();
  await writeArtifact(dir, model, { ...extras, version });
}

beforeAll(async () => {
  await publish(base, 'demo-1');
  await publish(path.join(root, 'r1'), 'r1');
  await publish(path.join(root, 'r2'), 'r2');
  writeFileSync(path.join(root, 'r2', 'publish.json'), JSON.stringify({ reason: 'not worse' }));
  mkdirSync(path.join(root, 'r3-corrupt'));
  writeFileSync(path.join(root, 'r3-corrupt', 'model.onnx'), 'not an onnx model');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Log lines the registry writes, by level. */
function memoryLog(): RegistryLogger & { errors: string[] } {
  const errors: string[] = [];
  return { errors, info: () => undefined, warn: () => undefined, error: (_o, msg) => void errors.push(msg) };
}

/** The in-process scorer, counting the sessions it has closed (by model version). */
function countingScorer(): { make: ScorerFactory; closed: string[] } {
  const closed: string[] = [];
  const make: ScorerFactory = async (a) => {
    const scorer = await inProcessScorer(a);
    const close = scorer.close.bind(scorer);
    scorer.close = async () => {
      closed.push(a.version);
      await close();
    };
    return scorer;
  };
  return { make, closed };
}

const registries: ModelRegistry[] = [];
afterEach(async () => {
  for (const r of registries.splice(0)) await r.close();
});
function registry(opts: ConstructorParameters<typeof ModelRegistry>[1] = {}, make: ScorerFactory = inProcessScorer): ModelRegistry {
  const r = new ModelRegistry(make, opts);
  registries.push(r);
  return r;
}
const repository = () => new VersionRepository({ root, baseDir: base });

describe('ModelRegistry', () => {
  it('swaps versions in, records the active one, and rolls back to the previous', async () => {
    const repo = repository();
    const reg = registry({ repository: repo });
    const activated: string[] = [];
    reg.onActivate((rec, replaced) => activated.push(`${replaced?.version ?? '-'}→${rec.version}`));
    await reg.load(base);
    await reg.loadVersion('r1');
    expect(reg.current?.version).toBe('r1');
    expect(reg.previousModel?.version).toBe('demo-1');
    expect(JSON.parse(readFileSync(path.join(root, POINTER_FILE), 'utf8')).version).toBe('r1');
    expect(repo.startupDir()).toBe(path.join(root, 'r1'));
    const back = await reg.rollback();
    expect(back.version).toBe('demo-1');
    expect(reg.activeDir).toBe(base);
    expect(reg.previousDir).toBe(path.join(root, 'r1'));
    expect(JSON.parse(readFileSync(path.join(root, POINTER_FILE), 'utf8')).version).toBe('demo-1');
    expect(reg.swaps).toBe(3);
    expect(activated).toEqual(['-→demo-1', 'demo-1→r1', 'r1→demo-1']);
  });

  it('refuses a version that does not load or does not prepare, and keeps serving the old one', async () => {
    const log = memoryLog();
    const reg = registry({ repository: repository(), log });
    let refuse = false;
    reg.onPrepare(() => {
      if (refuse) throw new Error('no bandit for you');
    });
    await reg.load(base);
    await expect(reg.loadVersion('r3-corrupt')).rejects.toThrow(ModelRefusedError);
    refuse = true;
    await expect(reg.loadVersion('r1')).rejects.toThrow(/prepare: no bandit for you/);
    expect(reg.current?.version).toBe('demo-1');
    expect(reg.swaps).toBe(1);
    expect(log.errors).toEqual([expect.stringMatching(/^model version refused \(load: .*still serving demo-1/s), expect.stringMatching(/^model version refused \(prepare: .*still serving demo-1/)]);
  });

  it("names versions: 'base' and the base model's own version, published ones, and refuses the rest", async () => {
    const log = memoryLog();
    const reg = registry({ repository: repository(), log });
    expect(reg.versionDir('base')).toBe(base);
    await reg.load(base);
    expect(reg.versionDir('demo-1')).toBe(base);
    expect(reg.versionDir('r1')).toBe(path.join(root, 'r1'));
    expect(() => reg.versionDir('r9')).toThrow(ModelNotFoundError);
    expect(() => reg.versionDir('../base')).toThrow(/not a version name/);
    expect(log.errors).toEqual(['model version refused: r9 does not exist; still serving demo-1']);
    expect(reg.newestVersion()).toBe('r3-corrupt');
    expect(reg.versionsRoot).toBe(root);
    expect(reg.baseModelDir).toBe(base);
  });

  it('lists what is loaded and what is published, with publish.json', async () => {
    const reg = registry({ repository: repository() });
    await reg.load(base);
    await reg.loadVersion('r2');
    expect(reg.listVersions()).toEqual([
      { version: 'r2', dir: path.join(root, 'r2'), state: 'active', published: { reason: 'not worse' } },
      { version: 'demo-1', dir: base, state: 'previous' },
      { version: 'r1', dir: path.join(root, 'r1'), state: 'available' },
      { version: 'r3-corrupt', dir: path.join(root, 'r3-corrupt'), state: 'available' },
    ]);
  });

  it('closes an evicted version after the grace period, and serialises loads', async () => {
    const { make, closed } = countingScorer();
    const reg = registry({ repository: repository(), graceMs: 50 }, make);
    await Promise.all([reg.load(base), reg.loadVersion('r1'), reg.loadVersion('r2')]);
    // In call order: r2 serves, r1 is the rollback target, the base model was evicted.
    expect([reg.current?.version, reg.previousModel?.version]).toEqual(['r2', 'r1']);
    expect(closed).toEqual([]);
    await new Promise((r) => setTimeout(r, 200));
    expect(closed).toEqual(['demo-1']);
    await reg.close();
    expect(closed.sort()).toEqual(['demo-1', 'r1', 'r2']);
  });

  it('without a repository, serves the directories it is given and knows no version names', async () => {
    const reg = registry();
    await expect(reg.rollback()).rejects.toThrow(NoPreviousVersionError);
    const rec = await reg.load(path.join(root, 'r1'));
    expect(rec.version).toBe('r1');
    expect(() => reg.versionDir('base')).toThrow(/no versions root/);
    expect(reg.newestVersion()).toBeNull();
    expect(reg.listVersions()).toEqual([{ version: 'r1', dir: path.join(root, 'r1'), state: 'active' }]);
  });
});

describe('loadModel', () => {
  it('loads one model directory into a Recommender that answers', async () => {
    const rec = await loadModel(path.join(root, 'r1'), inProcessScorer);
    try {
      const user = rec.artifact.userIds[0];
      const [r] = await rec.recommend({ users: [user], k: 3, excludeSeen: false, filter: null });
      expect(r.items).toHaveLength(3);
      expect(r.items.every((i) => Number.isFinite(i.score))).toBe(true);
    } finally {
      await rec.scorer.close();
    }
  });
});
