import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseParameters, settingsTable, unknownSettingWarnings } from '../src/config/index.js';
import { loadTrainingSettings } from '../src/config/training.js';

describe('PREDICTIVE_UNIT_PARAMETERS', () => {
  it('parses typed values', () => {
    const p = parseParameters('[{"name":"k","value":"7","type":"INT"},{"name":"exclude_seen","value":"False","type":"BOOL"}]');
    expect(p).toMatchObject({ k: 7, exclude_seen: false, max_k: 1000 });
  });

  it.each([
    ['not json', /not JSON/],
    ['{"name":"k"}', /must be a JSON array/],
    ['[{"name":"top_k","value":"3","type":"INT"}]', /unknown name "top_k"; known parameters: k \(INT/],
    ['[{"name":"k","value":"three","type":"INT"}]', /k="three" is not an INT/],
    ['[{"name":"k","value":"3","type":"FLOAT"}]', /k must have type INT/],
    ['[{"name":"k","value":"3","type":"NUMBER"}]', /use one of INT, FLOAT, DOUBLE, STRING, BOOL/],
    ['[{"name":"exclude_seen","value":"maybe","type":"BOOL"}]', /not a BOOL/],
    ['[{"name":"k","value":"0","type":"INT"}]', /k=0 must be ≥ 1/],
    ['[{"name":"k","value":"50","type":"INT"},{"name":"max_k","value":"10","type":"INT"}]', /exceeds max_k/],
  ])('refuses %s', (raw, message) => {
    expect(() => parseParameters(raw)).toThrow(message);
  });
});

describe('loadConfig', () => {
  it('reads the Seldon runtime contract', () => {
    const c = loadConfig({
      PREDICTIVE_UNIT_HTTP_SERVICE_PORT: '9001',
      PREDICTIVE_UNIT_GRPC_SERVICE_PORT: '9501',
      PREDICTIVE_UNIT_METRICS_SERVICE_PORT: '6001',
      PREDICTIVE_UNIT_METRICS_ENDPOINT: 'prom',
      PREDICTIVE_UNIT_ID: 'rec',
      PREDICTIVE_UNIT_IMAGE: 'img:1',
      MODEL_PATH: '/models/x',
      SELDON_LOG_LEVEL: 'DEBUG',
    });
    expect(c).toMatchObject({ httpPort: 9001, grpcPort: 9501, metricsPort: 6001, metricsPath: '/prom', unitId: 'rec', unitImage: 'img:1', modelDir: '/models/x', useDemoModel: false, logLevel: 'debug' });
  });

  it('refuses a malformed port or size', () => {
    expect(() => loadConfig({ PREDICTIVE_UNIT_HTTP_SERVICE_PORT: 'http' })).toThrow(/not a whole number/);
    expect(() => loadConfig({ PREDICTIVE_UNIT_HTTP_SERVICE_PORT: '70000' })).toThrow(/not a TCP port/);
    expect(() => loadConfig({ RECSERVE_BODY_LIMIT: 'lots' })).toThrow(/not a size/);
  });
});

/** The configuration table of docs/configuration.md (the README links it): `| \`NAME\` | \`default\` | meaning |` rows. */
function readmeTable(): Map<string, string> {
  const doc = readFileSync(path.resolve(import.meta.dirname, '../docs/configuration.md'), 'utf8');
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => /^\| variable \| default \| meaning \|$/.test(l));
  expect(start, 'docs/configuration.md has a "| variable | default | meaning |" table').toBeGreaterThan(0);
  const rows = new Map<string, string>();
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const m = /^\| `([A-Z0-9_]+)` \| `([^`]*)` \|/.exec(line);
    expect(m, `docs/configuration.md row ${line.slice(0, 80)} reads | \`NAME\` | \`default\` | meaning |`).not.toBeNull();
    expect(rows.has(m![1]), `${m![1]} has one row`).toBe(false);
    rows.set(m![1], m![2]);
  }
  return rows;
}

/** Defaults that describe rather than spell a value (computed, or unset). */
const DESCRIBED = new Set(['min(2, cores)', 'none', 'off', 'empty', 'random', 'LOG_LEVEL', 'the current model', 'sqlite:<data dir>/interactions.db']);

describe('the configuration table (docs/configuration.md)', () => {
  const table = readmeTable();
  const declared = new Map(settingsTable().map((r) => [r.env, r.default]));

  it('has one row per variable the config declares, with its default, and no other rows', () => {
    expect([...table.keys()].filter((name) => !declared.has(name)), 'docs/configuration.md rows no setting reads').toEqual([]);
    expect([...declared.keys()].filter((name) => !table.has(name)), 'settings missing from docs/configuration.md').toEqual([]);
    for (const [name, dflt] of declared) expect(table.get(name), name).toBe(dflt);
  });

  it('lists every variable loadConfig and the trainer read', () => {
    const read = new Set<string>();
    const spy = new Proxy({} as NodeJS.ProcessEnv, {
      get: (_, key) => {
        if (typeof key === 'string') read.add(key);
        return undefined;
      },
    });
    loadConfig(spy);
    loadTrainingSettings(spy);
    expect(read.size).toBeGreaterThan(50);
    expect([...read].filter((name) => !table.has(name))).toEqual([]);
  });

  it('each spelled default, set explicitly, gives the same Config as leaving it unset', () => {
    const unset = loadConfig({});
    const spelled = [...table].filter(([, dflt]) => !DESCRIBED.has(dflt));
    expect(spelled.length).toBeGreaterThan(50);
    for (const [name, dflt] of spelled) {
      expect(loadConfig({ [name]: dflt }), `${name}=${dflt}`).toEqual(unset);
    }
  });
});

describe('unknown RECSERVE_* variables', () => {
  it('are warned about once each, with the nearest known name', () => {
    const c = loadConfig({ RECSERVE_MAX_PAIR: '5', RECSERVE_WORKRES: '1', RECSERVE_SOMETHING_ELSE_ENTIRELY: 'x', RECSERVE_MAX_PAIRS: '7' });
    expect(c.limits.maxPairs).toBe(7);
    expect(c.warnings).toEqual([
      'RECSERVE_MAX_PAIR is not a recserve setting and is ignored; did you mean RECSERVE_MAX_PAIRS?',
      'RECSERVE_SOMETHING_ELSE_ENTIRELY is not a recserve setting and is ignored',
      'RECSERVE_WORKRES is not a recserve setting and is ignored; did you mean RECSERVE_WORKERS?',
    ]);
  });

  it('leave known settings, other prefixes and the tools’ own variables alone', () => {
    expect(unknownSettingWarnings({ RECSERVE_STORE_URL: 'sqlite:x', LOG_LEVEL: 'info', RECSERVE_TEST_PG_URL: 'p', RECSERVE_FUZZ_SEED: '1', RECSERVE_BENCH_GRPC_CLIENT: 'x', RECSERVE_RETRAIN_JOB: '{}', HOME: '/' })).toEqual([]);
  });
});

describe('settings that were constants', () => {
  it('are read from their variables', () => {
    const c = loadConfig({ RECSERVE_KEEP_ALIVE_TIMEOUT_MS: '5000', RECSERVE_HEALTH_POLL_MS: '250', RECSERVE_SWAP_GRACE_MS: '0', RECSERVE_STORE_POOL_SIZE: '4', RECSERVE_WORKER_MAX_START_FAILURES: '1' });
    expect(c).toMatchObject({ keepAliveTimeoutMs: 5000, healthPollMs: 250, swapGraceMs: 0, workerMaxStartFailures: 1 });
    expect(c.feedback.storePoolSize).toBe(4);
    expect(loadTrainingSettings({ RECSERVE_TRAIN_THREADS: '3' }).trainThreads).toBe(3);
  });

  it('refuse malformed values naming the variable', () => {
    expect(() => loadTrainingSettings({ RECSERVE_TRAIN_THREADS: '0' })).toThrow(/RECSERVE_TRAIN_THREADS=0 must be ≥ 1/);
    expect(() => loadConfig({ RECSERVE_STORE_POOL_SIZE: 'ten' })).toThrow(/RECSERVE_STORE_POOL_SIZE="ten" is not a whole number/);
  });
});
