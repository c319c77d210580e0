// The Open Inference Protocol (V2) deployments: deploy/seldon-core-2/*.yaml and deploy/kserve/*.yaml
// against their CRD schemas in ../shared/crds (each skipped, with a message, when its CRD file is absent),
// and against what each platform does to the pod (../shared/reference/oip-v2.md §11–§12) and what the
// server takes on its command line and serves.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import * as yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/server.js';
import { testConfig } from '../helpers/server.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CRD_DIR = process.env.RECSERVE_CRD_DIR ?? path.resolve(ROOT, '../shared/crds');
const load = (rel: string) => yaml.load(readFileSync(path.join(ROOT, rel), 'utf8')) as Obj;

const serverConfig = load('deploy/seldon-core-2/server-config.yaml');
const sc2Server = load('deploy/seldon-core-2/server.yaml');
const sc2Model = load('deploy/seldon-core-2/model.yaml');
const modelSettings = JSON.parse(readFileSync(path.join(ROOT, 'deploy/seldon-core-2/model-settings.json'), 'utf8')) as Obj;
const runtime = load('deploy/kserve/cluster-serving-runtime.yaml');
const isvc = load('deploy/kserve/inference-service.yaml');
const sdep = load('seldon-deployment.yaml');

/** The routes the V2 module serves for probes (issue 12: `GET /v2/health/live`, `/v2/health/ready`). */
const V2_HEALTH = ['/v2/health/live', '/v2/health/ready'];
/** Flags the manifests pass that the CLI gains with the V2 work; checked as soon as `serve --help` lists them. */

const pod = serverConfig.spec.podSpec as Obj;
const byName = (containers: Obj[], name: string) => containers.find((c) => c.name === name) as Obj;
const sc2Container = byName(pod.containers, 'server');
const agent = byName(pod.containers, 'agent');
const agentEnv = envMap(agent);
const kserveContainer = byName(runtime.spec.containers, 'kserve-container');
const imageEnv = dockerEnv();

describe('V2 manifests against their CRD schemas', () => {
  // sample: an upstream manifest known to be valid (../shared/crds/samples), so the validator is not too strict.
  const cases: { file: string; crd: string; sample?: string; broken: [string, (d: Obj) => void, RegExp][] }[] = [
    { file: 'deploy/seldon-core-2/server-config.yaml', crd: 'seldon-core-2-serverconfig-crd.yaml', sample: 'samples/seldon-core-2-serverconfig-mlserver.yaml', broken: [
      ['string containerPort', (d) => (byName(d.spec.podSpec.containers, 'server').ports[0].containerPort = 'x'), /containerPort must be integer/],
      ['misspelt probe field', (d) => (byName(d.spec.podSpec.containers, 'server').readinesProbe = {}), /must NOT have additional properties "readinesProbe"/],
      ['no podSpec', (d) => delete d.spec.podSpec, /must have required property 'podSpec'/],
    ] },
    { file: 'deploy/seldon-core-2/server.yaml', crd: 'seldon-core-2-server-crd.yaml', broken: [
      ['no serverConfig', (d) => delete d.spec.serverConfig, /must have required property 'serverConfig'/],
      ['capabilities as a string', (d) => (d.spec.capabilities = 'recserve'), /capabilities must be array/],
    ] },
    { file: 'deploy/seldon-core-2/model.yaml', crd: 'seldon-core-2-model-crd.yaml', broken: [
      ['no storageUri', (d) => delete d.spec.storageUri, /must have required property 'storageUri'/],
      ['malformed memory', (d) => (d.spec.memory = '200 megs'), /memory must match pattern/],
      ['misspelt requirements', (d) => (d.spec.requirement = d.spec.requirements), /must NOT have additional properties "requirement"/],
    ] },
    { file: 'deploy/kserve/cluster-serving-runtime.yaml', crd: 'kserve-clusterservingruntime-crd.yaml', sample: 'samples/kserve-clusterservingruntime-mlserver.yaml', broken: [
      ['protocolVersions as a string', (d) => (d.spec.protocolVersions = 'v2'), /protocolVersions must be array/],
      ['format without a name', (d) => delete d.spec.supportedModelFormats[0].name, /supportedModelFormats\/0 must have required property 'name'/],
      ['string containerPort', (d) => (d.spec.containers[0].ports[0].containerPort = 'x'), /containerPort must be integer/],
    ] },
    { file: 'deploy/kserve/inference-service.yaml', crd: 'kserve-inferenceservice-crd.yaml', broken: [
      ['modelFormat without a name', (d) => delete d.spec.predictor.model.modelFormat.name, /modelFormat must have required property 'name'/],
      ['misspelt storageUri', (d) => (d.spec.predictor.model.storageURI = d.spec.predictor.model.storageUri), /must NOT have additional properties "storageURI"/],
    ] },
  ];

  for (const spec of cases) {
    const c = { ...spec, doc: load(spec.file) };
    const crdPath = path.join(CRD_DIR, c.crd);
    const have = existsSync(crdPath);
    if (!have) console.warn(`[v2-manifests.test] ${c.file}: CRD schema check SKIPPED, ${crdPath} is absent (set RECSERVE_CRD_DIR to validate).`);
    describe.skipIf(!have)(`${c.file} (${c.doc.kind})`, () => {
      let validate: ValidateFunction;
      let crd: Obj;
      beforeAll(() => {
        crd = yaml.load(readFileSync(crdPath, 'utf8')) as Obj;
        const served = (crd.spec.versions as Obj[]).find((v) => `${crd.spec.group}/${v.name}` === c.doc.apiVersion && v.served);
        expect(served, `${c.doc.apiVersion} is served by ${c.crd}`).toBeDefined();
        validate = structuralValidator(served!.schema.openAPIV3Schema);
      }, 120_000); // the InferenceService schema is ~2 MB

      it('names the kind and a version the CRD serves, with a DNS-label name', () => {
        expect(c.doc.kind).toBe(crd.spec.names.kind);
        expect(c.doc.metadata.name).toMatch(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/);
      });

      it('is valid, unknown fields rejected', () => {
        expect(validate(c.doc) ? [] : errorLines(validate)).toEqual([]);
      });

      const sampleFile = c.sample;
      if (sampleFile) {
        it('the validator accepts the upstream sample of this kind', () => {
          const sample = yaml.load(readFileSync(path.join(CRD_DIR, sampleFile), 'utf8')) as Obj;
          expect(sample.kind).toBe(c.doc.kind);
          expect(validate(sample) ? [] : errorLines(validate)).toEqual([]);
        });
      }

      it('the validator is not vacuous: broken copies fail for the planted reason', () => {
        for (const [what, mutate, reason] of c.broken) {
          const copy = structuredClone(c.doc);
          mutate(copy);
          expect(validate(copy), what).toBe(false);
          expect(errorLines(validate).some((e) => reason.test(e)), `${what}: ${errorLines(validate).join('; ')}`).toBe(true);
        }
      });
    });
  }
});

describe('the command lines the manifests run are ones the CLI takes', () => {
  const cli = path.join(ROOT, 'dist/src/cli/index.js');
  let helpFlags: Set<string>;

  beforeAll(() => {
    expect(existsSync(cli), `${cli} (run \`npm run build\`)`).toBe(true);
    const help = execFileSync(process.execPath, [cli, 'serve', '--help'], { encoding: 'utf8', timeout: 30_000 });
    helpFlags = new Set(help.match(/--[a-z][-a-z]*/g) ?? []);
  }, 60_000);

  for (const [where, container] of [
    ['Seldon Core 2 server', sc2Container],
    ['KServe kserve-container', kserveContainer],
  ] as const) {
    it(`${where}: the image's node runs the compiled CLI's serve with flags \`serve --help\` lists`, () => {
      expect(container.command).toEqual(['node', 'dist/src/cli/index.js']);
      expect(container.args[0]).toBe('serve');
      for (const flag of Object.keys(cliArgs(container))) {
        expect(helpFlags, `${where}: ${flag}`).toContain(flag);
      }
    });
  }
});

describe('Seldon Core 2: the pod the agent expects (oip-v2.md §11)', () => {
  const args = cliArgs(sc2Container);
  const ports = containerPorts(sc2Container);

  it('has the operator-named containers rclone, agent and server', () => {
    expect((pod.containers as Obj[]).map((c) => c.name).sort()).toEqual(['agent', 'rclone', 'server']);
  });

  it('starts the server with no model: a models root and no --model, --demo or RECSERVE_DEMO', () => {
    expect(args['--models-root']).toBe('/mnt/agent/models');
    for (const flag of ['--model', '--demo']) expect(args[flag], flag).toBeUndefined();
    expect(envMap(sc2Container).RECSERVE_DEMO).toBeUndefined();
    expect(envMap(sc2Container).RECSERVE_MODELS_ROOT, 'one source for the models root').toBeUndefined();
  });

  it('the models root is the agent folder the agent writes, on the same volume, read-only in the server', () => {
    const agentMount = (agent.volumeMounts as Obj[]).find((m) => m.mountPath === '/mnt/agent');
    expect(agentMount, 'the agent folder /mnt/agent').toBeDefined();
    const serverMount = (sc2Container.volumeMounts as Obj[]).find((m) => m.name === agentMount!.name)!;
    expect(serverMount, `the server mounts ${agentMount!.name}`).toBeDefined();
    expect(serverMount.readOnly).toBe(true);
    expect(args['--models-root']).toBe(path.posix.join(serverMount.mountPath, 'models'));
    expect((serverConfig.spec.volumeClaimTemplates as Obj[]).map((t) => t.metadata?.name ?? t.name)).toContain(agentMount!.name);
    const rclone = byName(pod.containers, 'rclone');
    expect((rclone.volumeMounts as Obj[]).find((m) => m.name === agentMount!.name)?.mountPath).toBe('/mnt/agent');
  });

  it('the server listens where the agent looks: --http-port/--grpc-port = its container ports = SELDON_SERVER_*_PORT', () => {
    expect(Number(args['--http-port'])).toBe(ports['server-http']);
    expect(Number(args['--grpc-port'])).toBe(ports['server-grpc']);
    expect(Number(agentEnv.SELDON_SERVER_HTTP_PORT)).toBe(ports['server-http']);
    expect(Number(agentEnv.SELDON_SERVER_GRPC_PORT)).toBe(ports['server-grpc']);
    expect(ports['server-metrics']).toBe(Number(args['--metrics-port'] ?? imageEnv.PREDICTIVE_UNIT_METRICS_SERVICE_PORT));
  });

  it('no two listeners of the pod share a port (one network namespace)', () => {
    const listening: [string, number][] = (pod.containers as Obj[]).flatMap((c) => Object.entries(containerPorts(c)).map(([n, p]) => [`${c.name}/${n}`, p] as [string, number]));
    // The agent also listens on ports it is told in env and does not list (the drainer).
    for (const v of ['SELDON_DRAINER_PORT', 'SELDON_READINESS_PORT', 'SELDON_METRICS_PORT', 'SELDON_REVERSE_PROXY_HTTP_PORT', 'SELDON_REVERSE_PROXY_GRPC_PORT']) {
      listening.push([`agent/${v}`, Number(agentEnv[v])]);
    }
    const byPort = new Map<number, Set<string>>();
    for (const [who, p] of listening) byPort.set(p, new Set([...(byPort.get(p) ?? []), who.split('/')[0]]));
    expect([...byPort].filter(([, owners]) => owners.size > 1)).toEqual([]);
  });

  it('probes: the server on /v2/health/live of its HTTP port, the agent on /ready of its readiness port', () => {
    for (const kind of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      const get = sc2Container[kind]?.httpGet as Obj;
      expect(get, `server ${kind}`).toBeDefined();
      // Live, never ready: the server starts with no model and the agent owns the models' readiness.
      expect(get.path, `server ${kind}`).toBe('/v2/health/live');
      expect(resolvePort(sc2Container, get.port), `server ${kind} port`).toBe(Number(args['--http-port']));
    }
    expect(agent.readinessProbe.httpGet).toEqual({ path: '/ready', port: Number(agentEnv.SELDON_READINESS_PORT) });
  });

  it("every container's preStop asks the agent's drainer first", () => {
    for (const c of pod.containers as Obj[]) expect(c.lifecycle?.preStop?.httpGet, c.name).toEqual({ path: '/terminate', port: Number(agentEnv.SELDON_DRAINER_PORT) });
  });

  it('MEMORY_REQUEST is the server container’s memory request, and the Model fits in it', () => {
    const ref = (agent.env as Obj[]).find((e) => e.name === 'MEMORY_REQUEST')!.valueFrom.resourceFieldRef as Obj;
    expect(ref).toEqual({ containerName: 'server', resource: 'requests.memory' });
    const request = quantity(sc2Container.resources.requests.memory);
    expect(request).toBeGreaterThan(0);
    expect(quantity(sc2Model.spec.memory)).toBeGreaterThan(0);
    expect(quantity(sc2Model.spec.memory)).toBeLessThanOrEqual(request);
  });

  it('Model → Server → ServerConfig: requirements within the capabilities, names that survive the agent’s rename', () => {
    expect(sc2Model.spec.server).toBe(sc2Server.metadata.name);
    expect(sc2Server.spec.serverConfig).toBe(serverConfig.metadata.name);
    expect(sc2Server.spec.capabilities).toEqual(expect.arrayContaining(sc2Model.spec.requirements));
    expect(agentEnv.SELDON_SERVER_CAPABILITIES.split(',')).toEqual(expect.arrayContaining(sc2Model.spec.requirements));
    // The scheduler refuses dots; the agent's REST rewrite matches [\w-]+ and appends _<version>.
    expect(sc2Model.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(`${sc2Model.metadata.name}_12`).toMatch(/^[\w-]+$/);
  });

  it('the model-settings.json example is the mlserver layout the agent rewrites, and nothing it would drop', () => {
    expect(agentEnv.SELDON_SERVER_TYPE).toBe('mlserver');
    expect(modelSettings.name).toBe(sc2Model.metadata.name);
    expect(modelSettings.implementation).toBe('recserve');
    expect(modelSettings.parameters?.version).toBe('1');
    // The agent re-encodes the file through its own struct: other keys would be gone when recserve reads it.
    const kept = ['name', 'platform', 'versions', 'parallel_workers', 'implementation', 'parameters'];
    expect(Object.keys(modelSettings).filter((k) => !kept.includes(k))).toEqual([]);
    const keptParameters = ['uri', 'version', 'format', 'content_type', 'extra'];
    expect(Object.keys(modelSettings.parameters).filter((k) => !keptParameters.includes(k))).toEqual([]);
  });
});

describe('KServe: the runtime and the InferenceService (oip-v2.md §12)', () => {
  const args = cliArgs(kserveContainer);
  const ports = (kserveContainer.ports as Obj[]).map((p) => ({ name: p.name as string, port: p.containerPort as number }));
  const model = isvc.spec.predictor.model as Obj;

  it('the InferenceService picks this runtime: named, its format listed, its protocol declared', () => {
    expect(model.runtime).toBe(runtime.metadata.name);
    const formats = runtime.spec.supportedModelFormats as Obj[];
    expect(formats).toContainEqual(expect.objectContaining({ name: model.modelFormat.name, version: model.modelFormat.version }));
    expect(formats.find((f) => f.name === model.modelFormat.name)?.autoSelect).toBe(true);
    for (const v of runtime.spec.protocolVersions as string[]) expect(['v1', 'v2', 'grpc-v1', 'grpc-v2']).toContain(v);
    expect(runtime.spec.protocolVersions).toEqual(expect.arrayContaining(['v2', 'grpc-v2']));
    // Left out, the InferenceService's protocol would default to v1, which the runtime does not declare.
    expect(model.protocolVersion).toBe('v2');
    expect(runtime.spec.protocolVersions).toContain(model.protocolVersion);
    expect(model.storageUri).toMatch(/^[a-z0-9]+:\/\/\S+/);
  });

  it('serves the files the storage initializer puts at /mnt/models, under the InferenceService’s name', () => {
    expect(args['--model']).toBe('/mnt/models');
    expect(args['--model-name']).toBe('{{.Name}}');
    expect(args['--demo']).toBeUndefined();
  });

  it('HTTP on 8080 as the first port, gRPC on a port KServe marks h2c, both as the args say', () => {
    expect(ports[0]).toEqual({ name: 'http', port: 8080 });
    expect(Number(args['--http-port'])).toBe(8080);
    const grpc = ports.filter((p) => /grpc|h2c/.test(p.name));
    expect(grpc.map((p) => p.port)).toEqual([Number(args['--grpc-port'])]);
    // More than one port needs a raw Deployment: Knative routes a single one.
    if (ports.length > 1) expect(isvc.metadata.annotations?.['serving.kserve.io/deploymentMode']).toBe('RawDeployment');
  });

  it('an HTTP readiness probe on a route that waits for the model (never the TCP default), liveness on live', () => {
    const ready = kserveContainer.readinessProbe?.httpGet as Obj;
    expect(ready, 'an HTTP readiness probe').toBeDefined();
    expect(['/v2/health/ready', '/v2/models/{{.Name}}/ready']).toContain(ready.path);
    expect(resolvePort(kserveContainer, ready.port)).toBe(Number(args['--http-port']));
    const live = kserveContainer.livenessProbe?.httpGet as Obj;
    expect(live.path).toBe('/v2/health/live');
    expect(resolvePort(kserveContainer, live.port)).toBe(Number(args['--http-port']));
  });

  it('scrape annotations name the server’s metrics port and path', () => {
    expect(Number(runtime.spec.annotations['prometheus.kserve.io/port'])).toBe(Number(args['--metrics-port'] ?? imageEnv.PREDICTIVE_UNIT_METRICS_SERVICE_PORT));
    expect(runtime.spec.annotations['prometheus.kserve.io/path']).toBe(imageEnv.PREDICTIVE_UNIT_METRICS_ENDPOINT);
  });

  it('resources and a heap that fits the limit', () => {
    expect(quantity(kserveContainer.resources.requests.memory)).toBeGreaterThan(0);
    const limit = quantity(kserveContainer.resources.limits.memory);
    const heapMb = Number(/--max-old-space-size=(\d+)/.exec(envMap(kserveContainer).NODE_OPTIONS ?? imageEnv.NODE_OPTIONS)?.[1]);
    expect(heapMb * 2 ** 20).toBeLessThanOrEqual(0.7 * limit);
  });
});

describe('both V2 platforms run the image as seldon-deployment.yaml does', () => {
  const platforms: [string, Obj, Obj][] = [
    ['Seldon Core 2', sc2Container, pod],
    ['KServe', { ...kserveContainer, env: [...(kserveContainer.env ?? []), ...(isvc.spec.predictor.model.env ?? [])] }, runtime.spec],
  ];
  const v1Store = (sdep.spec.predictors[0].componentSpecs[0].spec.containers[0].env as Obj[]).find((e) => e.name === 'RECSERVE_STORE_URL')!.valueFrom;

  for (const [where, c, podLike] of platforms) {
    it(`${where}: the image's uid, hardened, the data dir on a bounded volume, the store from the same Secret`, () => {
      expect(c.securityContext?.runAsUser ?? podLike.securityContext?.runAsUser).toBe(dockerUid());
      expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
      expect(c.securityContext.capabilities.drop).toEqual(['ALL']);
      expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
      const mounts = (c.volumeMounts as Obj[]).map((m) => m.mountPath as string);
      expect(mounts).toEqual(expect.arrayContaining([imageEnv.RECSERVE_DATA_DIR, '/tmp']));
      for (const v of (podLike.volumes ?? []) as Obj[]) if (v.emptyDir) expect(quantity(v.emptyDir.sizeLimit), v.name).toBeGreaterThan(0);
      // Replicas share one feedback store, as the v1 manifest's do; a missing Secret stops the pod.
      const store = (c.env as Obj[]).find((e) => e.name === 'RECSERVE_STORE_URL');
      expect(store?.valueFrom, 'RECSERVE_STORE_URL from a Secret').toEqual(v1Store);
      const names = (c.env as Obj[]).map((e) => e.name);
      expect(new Set(names).size, 'env names unique').toBe(names.length);
    });
  }
});

describe('the probe paths against the running server', () => {
  it('are documented in openapi.yaml', () => {
    const documented = (load('openapi.yaml').paths ?? {}) as Obj;
    expect(V2_HEALTH.filter((p) => !(p in documented))).toEqual([]);
  });

  let server: RunningServer;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'recserve-v2-manifests-'));
    server = await startServer(testConfig(dataDir, { PREDICTIVE_UNIT_METRICS_ENDPOINT: imageEnv.PREDICTIVE_UNIT_METRICS_ENDPOINT }));
  });

  afterAll(async () => {
    await server?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('every HTTP probe of the server containers answers 200, and metrics are at the annotated path', async () => {
    for (const c of [sc2Container, kserveContainer]) {
      for (const kind of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
        const get = c[kind]?.httpGet as Obj | undefined;
        if (!get) continue;
        const res = await fetch(`http://127.0.0.1:${server.ports.http}${get.path}`);
        expect(res.status, `${c.name} ${kind} GET ${get.path}`).toBe(200);
      }
    }
    const metrics = await fetch(`http://127.0.0.1:${server.ports.metrics}${runtime.spec.annotations['prometheus.kserve.io/path']}`);
    expect(metrics.status).toBe(200);
  });
});

// ---------------------------------------------------------------------------------------------------
// Helpers

/**
 * A validator for a CRD's structural schema. The int-or-string fields of these CRDs carry an anyOf, so
 * Ajv's own keywords suffice; formats are Kubernetes' (int32, …) and left unchecked. Fields the schema
 * does not list are refused: the API server would prune them silently.
 */
function structuralValidator(schema: Obj): ValidateFunction {
  const closed = structuredClone(schema);
  const close = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    const s = node as Obj;
    if (s.properties && s.additionalProperties === undefined && !s['x-kubernetes-preserve-unknown-fields']) s.additionalProperties = false;
    for (const child of [...Object.values(s.properties ?? {}), s.items, s.additionalProperties, ...(s.anyOf ?? []), ...(s.allOf ?? []), ...(s.oneOf ?? [])]) close(child);
  };
  close(closed);
  return new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(closed);
}

function errorLines(validate: ValidateFunction): string[] {
  return (validate.errors ?? []).map((e) => {
    const field = e.keyword === 'additionalProperties' ? ` "${(e.params as { additionalProperty: string }).additionalProperty}"` : '';
    return `${e.instancePath || '/'} ${e.message}${field}`;
  });
}

/** `serve --flag value --switch …` as {flag: value}; a flag followed by another flag is a switch (true). */
function cliArgs(container: Obj): Record<string, string | true> {
  const argv = (container.args as string[]).slice(1);
  const out: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s);
    expect(flag, `${container.name}: ${argv[i]} is a flag`).toMatch(/^--[a-z][-a-z]*$/);
    if (inline !== undefined) out[flag] = inline;
    else if (argv[i + 1] !== undefined && !argv[i + 1].startsWith('--')) out[flag] = argv[++i];
    else out[flag] = true;
  }
  return out;
}

function containerPorts(container: Obj): Record<string, number> {
  return Object.fromEntries(((container.ports ?? []) as Obj[]).map((p) => [p.name, p.containerPort]));
}

/** A probe's port: a number, or the name of one of the container's ports. */
function resolvePort(container: Obj, port: string | number): number | undefined {
  return typeof port === 'number' ? port : containerPorts(container)[port];
}

function envMap(container: Obj): Record<string, string> {
  return Object.fromEntries(((container.env ?? []) as Obj[]).filter((e) => 'value' in e).map((e) => [e.name, e.value]));
}

/** ENV of the Dockerfile's final stage (the runtime image's defaults). */
function dockerEnv(): Record<string, string> {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\r?\n/g, ' ');
  const finalStage = text.split(/^FROM\s/m).at(-1)!;
  const out: Record<string, string> = {};
  for (const line of finalStage.split('\n').filter((l) => /^ENV\s/.test(l))) {
    for (const [, k, v] of line.matchAll(/(\w+)=("[^"]*"|\S+)/g)) out[k] = v.replace(/^"|"$/g, '');
  }
  return out;
}

function dockerUid(): number {
  const user = [...readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').matchAll(/^USER\s+(\d+)/gm)].at(-1)?.[1];
  return Number(user);
}

/** A Kubernetes quantity in bytes (NaN when malformed). */
function quantity(q: unknown): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q ?? ''));
  const scale: Record<string, number> = { '': 1, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return m ? Number(m[1]) * scale[m[2] ?? ''] : NaN;
}
