import { describe, expect, it } from 'vitest';
import { loadConfig, parseParameters } from '../src/config/index.js';

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
