// The deployment artefacts: seldon-deployment.yaml against the SeldonDeployment CRD schema (when
// ../shared/seldondeployment-crd.yaml is present) and the rules Seldon's webhook adds on top, checked
// against what the server really serves; and the Dockerfile against Seldon's runtime contract.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import * as yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, parseParameters } from '../../src/config/index.js';
import { testConfig } from '../helpers/server.js';
import { startServer, type RunningServer } from '../../src/server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CRD_PATH = process.env.SELDON_CRD_PATH ?? path.resolve(ROOT, '../shared/seldondeployment-crd.yaml');
const haveCrd = existsSync(CRD_PATH);
if (!haveCrd) console.warn(`[seldon-deployment.test] CRD schema checks SKIPPED: ${CRD_PATH} is absent (set SELDON_CRD_PATH to validate).`);

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const sdep = yaml.load(readFileSync(path.join(ROOT, 'seldon-deployment.yaml'), 'utf8')) as Obj;
const openapiDoc = yaml.load(readFileSync(path.join(ROOT, 'openapi.yaml'), 'utf8')) as { paths: Record<string, Obj> };
const dockerfile = parseDockerfile(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));

const PARAMETER_TYPES = ['INT', 'FLOAT', 'DOUBLE', 'STRING', 'BOOL'];
const PREPACKAGED = ['SKLEARN_SERVER', 'XGBOOST_SERVER', 'TENSORFLOW_SERVER', 'MLFLOW_SERVER', 'TRITON_SERVER', 'HUGGINGFACE_SERVER', 'TEMPO_SERVER'];

describe.skipIf(!haveCrd)('seldon-deployment.yaml against the SeldonDeployment CRD schema', () => {
  let validate: ValidateFunction;

  beforeAll(() => {
    const crd = yaml.load(readFileSync(CRD_PATH, 'utf8')) as Obj;
    const version = crd.spec.versions[0];
    expect(version.name).toBe('v1');
    validate = compileCrdSchema(version.schema.openAPIV3Schema);
  });

  it('names the served kind and version', () => {
    expect(sdep.apiVersion).toBe('machinelearning.seldon.io/v1');
    expect(sdep.kind).toBe('SeldonDeployment');
    expect(sdep.metadata?.name).toMatch(/^[a-z]([-a-z0-9]*[a-z0-9])?$/); // a DNS-1035 label: it names Services
    expect(sdep.metadata.name.length).toBeLessThanOrEqual(63);
  });

  it('is valid, with unknown fields rejected as kubectl --validate=strict does', () => {
    const ok = validate(sdep);
    expect(ok ? [] : formatErrors(validate.errors)).toEqual([]);
  });

  it('the validator is not vacuous: broken copies are rejected', () => {
    // Each broken copy must fail, and for the reason planted (an error at that place).
    const broken: [string, (d: Obj) => void, RegExp][] = [
      ['misspelt container field', (d) => (container(d).readinesProbe = container(d).readinessProbe), /containers\/0 must NOT have additional properties "readinesProbe"/],
      ['parameter without a value', (d) => delete d.spec.predictors[0].graph.parameters[0].value, /parameters\/0 must have required property 'value'/],
      ['boolean probe port', (d) => (container(d).livenessProbe.httpGet.port = true), /livenessProbe\/httpGet\/port must pass "x-kubernetes-int-or-string"/],
      ['string replicas', (d) => (d.spec.predictors[0].replicas = '2'), /predictors\/0\/replicas must be integer/],
      ['malformed quantity', (d) => (container(d).resources.limits.memory = '1 gigabyte'), /limits\/memory must match pattern/],
      ['duplicate container port', (d) => container(d).ports.push({ ...container(d).ports[0], name: 'again' }), /containers\/0\/ports must pass "x-kubernetes-list-type"/],
      ['no predictors', (d) => delete d.spec.predictors, /^\/spec must have required property 'predictors'/],
      ['graph without a name', (d) => delete d.spec.predictors[0].graph.name, /graph must have required property 'name'/],
      ['malformed emptyDir sizeLimit', (d) => (d.spec.predictors[0].componentSpecs[0].spec.volumes[0].emptyDir.sizeLimit = '2 gigs'), /emptyDir\/sizeLimit must match pattern/],
      ['seccompProfile without a type', (d) => delete d.spec.predictors[0].componentSpecs[0].spec.securityContext.seccompProfile.type, /seccompProfile must have required property 'type'/],
      ['store Secret ref without a key', (d) => delete envEntry(d, 'RECSERVE_STORE_URL').valueFrom.secretKeyRef.key, /secretKeyRef must have required property 'key'/],
      ['hpaSpec without maxReplicas', (d) => delete d.spec.predictors[0].componentSpecs[0].hpaSpec.maxReplicas, /hpaSpec must have required property 'maxReplicas'/],
      ['pdbSpec misspelt', (d) => (d.spec.predictors[0].componentSpecs[0].pdbSpec = { minAvailble: 1 }), /pdbSpec must NOT have additional properties "minAvailble"/],
    ];
    for (const [what, mutate, reason] of broken) {
      const copy = structuredClone(sdep);
      mutate(copy);
      expect(validate(copy), what).toBe(false);
      expect(formatErrors(validate.errors).some((e) => reason.test(e)), `${what}: ${formatErrors(validate.errors).join('; ')}`).toBe(true);
    }
  });

  it('the commented request-rate metric of hpaSpec is valid too once uncommented', () => {
    const copy = structuredClone(sdep);
    copy.spec.predictors[0].componentSpecs[0].hpaSpec.metrics.push(...requestRateMetric());
    const ok = validate(copy);
    expect(ok ? [] : formatErrors(validate.errors)).toEqual([]);
  });
});

describe('seldon-deployment.yaml runs replicas on a shared PostgreSQL store', () => {
  const predictor = (sdep.spec?.predictors ?? [])[0] as Obj;
  const component = predictor.componentSpecs[0] as Obj;

  it('runs at least 2 replicas, also under its HPA, with a budget that lets a drain proceed one pod at a time', () => {
    expect(predictor.replicas).toBeGreaterThanOrEqual(2);
    const hpa = component.hpaSpec as Obj;
    expect(hpa.minReplicas, 'the operator leaves the count to the HPA when hpaSpec is set').toBeGreaterThanOrEqual(2);
    expect(hpa.maxReplicas).toBeGreaterThanOrEqual(hpa.minReplicas);
    expect(hpa.metrics).toEqual([{ type: 'Resource', resource: { name: 'cpu', targetAverageUtilization: expect.any(Number) } }]);
    expect(component.spec.containers[0].resources.requests.cpu, 'utilization is relative to the request').toBeDefined();
    const pdb = component.pdbSpec as Obj;
    expect(pdb.minAvailable).toBeGreaterThanOrEqual(1);
    expect(pdb.minAvailable, 'minAvailable below minReplicas, or no pod could ever be evicted').toBeLessThan(hpa.minReplicas);
    // The commented alternative names the metric the adapter values file serves.
    expect(requestRateMetric()).toEqual([{ type: 'Pods', pods: { metricName: 'recserve_requests_per_second', targetAverageValue: expect.any(String) } }]);
  });

  it('takes RECSERVE_STORE_URL from a Secret (never inline), so every pod uses the same PostgreSQL store', () => {
    for (const c of component.spec.containers as Obj[]) {
      const entry = ((c.env ?? []) as Obj[]).find((e) => e.name === 'RECSERVE_STORE_URL');
      expect(entry, `${c.name}: RECSERVE_STORE_URL`).toBeDefined();
      expect(entry!.value, 'no credentials in the manifest').toBeUndefined();
      expect(entry!.valueFrom.secretKeyRef).toEqual({ name: 'recserve-store', key: 'url' });
      expect(entry!.valueFrom.secretKeyRef.optional, 'a missing Secret must stop the pod, not fall back to per-pod SQLite').toBeUndefined();
    }
  });

  it('keeps no shared state on an emptyDir: the data dir is scratch, every emptyDir bounded, versions on one shared claim', () => {
    const volumes = (component.spec.volumes ?? []) as Obj[];
    // The only claim is the versions root every replica shares (a retrain publishes there, all load from it).
    expect(volumes.filter((v) => v.persistentVolumeClaim).map((v) => [v.name, v.persistentVolumeClaim.claimName])).toEqual([['recserve-models', 'recserve-models']]);
    const container = (component.spec.containers as Obj[])[0];
    const mounts = Object.fromEntries((container.volumeMounts as Obj[]).map((m) => [m.name, m.mountPath]));
    expect(mounts['recserve-models']).toBe(`${mounts['recserve-data']}/models`);
    for (const v of volumes.filter((x) => x.emptyDir)) expect(quantityBytes(v.emptyDir.sizeLimit)).toBeGreaterThan(0);
    const text = readFileSync(path.join(ROOT, 'seldon-deployment.yaml'), 'utf8');
    expect(text).toMatch(/scratch/i); // the manifest says what the emptyDir is for
  });
});

describe('seldon-deployment.yaml and the rules of the Seldon webhook and of recserve', () => {
  const predictors = (sdep.spec?.predictors ?? []) as Obj[];

  it('has one or more uniquely named predictors whose traffic adds up to 100', () => {
    expect(predictors.length).toBeGreaterThan(0);
    const names = predictors.map((p) => p.name);
    expect(new Set(names).size).toBe(names.length);
    if (predictors.length > 1 || predictors.some((p) => p.traffic !== undefined)) {
      expect(predictors.reduce((s, p) => s + (p.traffic ?? 0), 0)).toBe(100);
    }
  });

  it('speaks the protocol and transport recserve serves, with one endpoint type per graph', () => {
    expect(sdep.spec.protocol ?? 'seldon').toBe('seldon');
    expect(['rest', 'grpc']).toContain(sdep.spec.transport ?? 'rest');
    for (const p of predictors) {
      const types = new Set(graphNodes(p.graph).map((n) => n.endpoint?.type ?? 'REST'));
      expect([...types], `predictor ${p.name}`).toHaveLength(1);
      expect([...types][0]).toBe((sdep.spec.transport ?? 'rest').toUpperCase());
    }
  });

  it('has a container named after every graph node (else "Can\'t find container for Predictive Unit")', () => {
    for (const p of predictors) {
      const names = containers(p).map((c) => c.name);
      for (const node of graphNodes(p.graph)) {
        if (PREPACKAGED.includes(node.implementation)) expect(node.modelUri, `${node.name}: prepackaged servers need modelUri`).toBeTruthy();
        else expect(names, `graph node ${node.name}`).toContain(node.name);
        expect(node.type ?? 'MODEL').toBe('MODEL');
      }
    }
  });

  it('passes parameters recserve accepts (PREDICTIVE_UNIT_PARAMETERS), typed as Seldon allows', () => {
    for (const p of predictors) {
      for (const node of graphNodes(p.graph)) {
        const params = (node.parameters ?? []) as Obj[];
        for (const q of params) {
          expect(PARAMETER_TYPES, `parameter ${q.name}`).toContain(q.type);
          expect(typeof q.value, `parameter ${q.name}: value is a string`).toBe('string');
        }
        // What the operator puts into the container's environment, read by the server's own parser.
        const parsed = parseParameters(JSON.stringify(params));
        for (const q of params) expect(String(parsed[q.name as keyof typeof parsed])).toBe(q.value);
      }
    }
  });

  it('probes paths that openapi.yaml defines, on a named port the container declares', () => {
    for (const p of predictors) {
      for (const c of containers(p)) {
        for (const kind of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
          const get = c[kind]?.httpGet as Obj | undefined;
          if (!get) continue;
          expect(openapiDoc.paths[get.path]?.get, `${c.name}.${kind}: GET ${get.path} in openapi.yaml`).toBeDefined();
          const port = (c.ports as Obj[]).find((x) => x.name === get.port || x.containerPort === get.port);
          expect(port, `${c.name}.${kind}: port ${get.port} is declared`).toBeDefined();
          expect(port!.containerPort).toBe(9000); // the image's PREDICTIVE_UNIT_HTTP_SERVICE_PORT
        }
        expect(c.readinessProbe?.httpGet?.path).toBe('/ready');
        expect(c.livenessProbe?.httpGet?.path).toBe('/live');
      }
    }
  });

  it('wires ports, env, metrics annotations and writable storage consistently with the image', () => {
    for (const p of predictors) {
      for (const spec of p.componentSpecs as Obj[]) {
        for (const c of spec.spec.containers as Obj[]) {
          const byName = Object.fromEntries((c.ports as Obj[]).map((x) => [x.name, x.containerPort]));
          expect(byName).toMatchObject({ http: 9000, grpc: 9500, metrics: 6000 });
          const env = Object.fromEntries(((c.env ?? []) as Obj[]).map((e) => [e.name, e.value]));
          expect(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).toContain(env.LOG_LEVEL);
          expect(() => loadConfig({ ...env, RECSERVE_DATA_DIR: os.tmpdir() })).not.toThrow();

          const ann = spec.metadata?.annotations ?? {};
          expect(ann['prometheus.io/scrape']).toBe('true');
          expect(ann['prometheus.io/path']).toBe('/prometheus');
          if (ann['prometheus.io/port']) expect(Number(ann['prometheus.io/port'])).toBe(byName.metrics);

          // The pod runs as the image's non-root user; with a read-only root the data dir is a volume.
          const uid = c.securityContext?.runAsUser ?? spec.spec.securityContext?.runAsUser;
          expect(uid).toBe(dockerfile.userUid());
          if (c.securityContext?.readOnlyRootFilesystem) {
            const dataDir = env.RECSERVE_DATA_DIR ?? dockerfile.env().RECSERVE_DATA_DIR;
            const mounts = ((c.volumeMounts ?? []) as Obj[]).map((m) => m.mountPath as string);
            expect(mounts.some((m) => dataDir === m || dataDir.startsWith(`${m}/`)), `a volume at ${dataDir}`).toBe(true);
            const volumes = ((spec.spec.volumes ?? []) as Obj[]).map((v) => v.name);
            for (const m of c.volumeMounts as Obj[]) expect(volumes).toContain(m.name);
          }
        }
      }
    }
  });

  it('hardens the pod: RuntimeDefault seccomp, no service-account token, bounded emptyDirs, a heap that fits the memory limit', () => {
    for (const p of predictors) {
      for (const spec of p.componentSpecs as Obj[]) {
        const pod = spec.spec as Obj;
        expect(pod.automountServiceAccountToken).toBe(false);
        expect(pod.securityContext?.seccompProfile).toEqual({ type: 'RuntimeDefault' });
        const emptyDirs = ((pod.volumes ?? []) as Obj[]).filter((v) => v.emptyDir !== undefined);
        expect(emptyDirs.length).toBeGreaterThan(0);
        for (const v of emptyDirs) expect(quantityBytes(v.emptyDir.sizeLimit), `emptyDir ${v.name} has a sizeLimit`).toBeGreaterThan(0);
        for (const c of pod.containers as Obj[]) {
          const limit = quantityBytes(c.resources?.limits?.memory);
          expect(limit, `${c.name}: a memory limit`).toBeGreaterThan(0);
          expect(c.resources.limits.memory).toBe('1Gi'); // the measured peak (docs/deploy.md) fits it
          // NODE_OPTIONS here or in the image: V8's old space well under the pod limit (ORT and buffers are native).
          const env = Object.fromEntries(((c.env ?? []) as Obj[]).map((e) => [e.name, e.value]));
          const nodeOptions = env.NODE_OPTIONS ?? dockerfile.env().NODE_OPTIONS;
          const heapMb = Number(/--max-old-space-size=(\d+)/.exec(nodeOptions ?? '')?.[1]);
          expect(heapMb, `${c.name}: NODE_OPTIONS sets --max-old-space-size`).toBeGreaterThan(0);
          expect(heapMb * 1024 * 1024).toBeLessThanOrEqual(0.7 * limit);
          expect(env.RECSERVE_DEMO, 'a deployment never asks for the demo model').toBeUndefined();
        }
      }
    }
  });

  describe('against the running server', () => {
    let server: RunningServer;
    let dataDir: string;
    const node = predictors[0]?.graph as Obj;

    beforeAll(async () => {
      dataDir = mkdtempSync(path.join(os.tmpdir(), 'recserve-sdep-'));
      server = await startServer(
        testConfig(dataDir, {
          PREDICTIVE_UNIT_METRICS_ENDPOINT: '/prometheus',
          PREDICTIVE_UNIT_PARAMETERS: JSON.stringify(node.parameters ?? []),
          PREDICTIVE_UNIT_ID: node.name,
        }),
      );
    });

    afterAll(async () => {
      await server?.close();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    it('answers 200 on every probe path and serves metrics at the annotated path', async () => {
      for (const c of containers(predictors[0])) {
        for (const kind of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
          const get = c[kind]?.httpGet as Obj | undefined;
          if (!get) continue;
          const res = await fetch(`http://127.0.0.1:${server.ports.http}${get.path}`);
          expect(res.status, `${kind} GET ${get.path}`).toBe(200);
        }
      }
      const annPath = predictors[0].componentSpecs[0].metadata.annotations['prometheus.io/path'];
      const metrics = await fetch(`http://127.0.0.1:${server.ports.metrics}${annPath}`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toMatch(/^# HELP /m);
    });

    it('uses the graph parameters as defaults (k from the parameters when the request has none)', async () => {
      const k = Number((node.parameters as Obj[]).find((q) => q.name === 'k')?.value ?? 10);
      const res = await fetch(`http://127.0.0.1:${server.ports.http}/api/v1.0/predictions`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ jsonData: { user_id: '1' } }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { jsonData: { recommendations: { items: unknown[] }[] }; meta: { requestPath?: Record<string, string> } };
      expect(body.jsonData.recommendations[0].items).toHaveLength(k);
    });
  });
});

describe('Dockerfile', () => {
  const final = dockerfile.finalStage();

  it('is multi-stage and runs on a Debian Node 20 slim base that has /bin/sh and /bin/sleep (not distroless)', () => {
    expect(dockerfile.stages.length).toBeGreaterThan(1);
    const base = dockerfile.baseImage(final);
    expect(base).toMatch(/^node:20(\.\d+){0,2}-(bookworm|bullseye|trixie)-slim(@sha256:[0-9a-f]{64})?$/);
    expect(base).not.toMatch(/distroless|scratch|alpine|busybox/);
  });

  it('exposes 9000 (REST), 9500 (gRPC) and 6000 (metrics) and defaults the env to them', () => {
    const exposed = final.instructions.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => p.replace(/\/tcp$/, ''));
    expect(exposed).toEqual(expect.arrayContaining(['9000', '9500', '6000']));
    const env = dockerfile.env();
    expect(env).toMatchObject({ PREDICTIVE_UNIT_HTTP_SERVICE_PORT: '9000', PREDICTIVE_UNIT_GRPC_SERVICE_PORT: '9500', PREDICTIVE_UNIT_METRICS_SERVICE_PORT: '6000' });
    expect(env.RECSERVE_HOST ?? '0.0.0.0').toBe('0.0.0.0'); // the executor connects over the pod network
    expect(() => loadConfig({ ...env, RECSERVE_DATA_DIR: os.tmpdir() })).not.toThrow();
  });

  it('runs as the non-root uid 8888 with a data dir it owns', () => {
    expect(dockerfile.userUid()).toBe(8888);
    const dataDir = dockerfile.env().RECSERVE_DATA_DIR;
    expect(dataDir).toMatch(/^\//);
    const runs = final.instructions.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
    expect(runs).toContain(`mkdir -p ${dataDir}`);
    expect(runs).toMatch(new RegExp(`chown 8888(:\\d+)? ${escapeRe(dataDir)}`));
  });

  it('starts the compiled CLI with node in exec form, and that file exists after the build', () => {
    const cmd = final.instructions.filter((i) => i.op === 'CMD').at(-1);
    expect(cmd).toBeDefined();
    const argv = JSON.parse(cmd!.args) as string[]; // exec form: node is PID 1 and receives SIGTERM
    expect(argv).toEqual(['node', 'dist/src/cli/index.js', 'serve']);
    expect(existsSync(path.join(ROOT, argv[1])), `${argv[1]} (run \`npm run build\`)`).toBe(true);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin?: Record<string, string> };
    expect(Object.values(pkg.bin ?? {})).toContain(argv[1]);
    // dist/ comes from a stage that ran the build.
    const distCopy = final.instructions.find((i) => i.op === 'COPY' && /--from=\S+\s+\S*dist\b/.test(i.args));
    expect(distCopy).toBeDefined();
    const from = /--from=(\S+)/.exec(distCopy!.args)![1];
    expect(dockerfile.runsInChain(from).join('\n')).toMatch(/npm run build|tsc/);
  });

  it('never asks for the demo model, sets the V8 heap, and ships no npm/npx/corepack', () => {
    const argv = JSON.parse(final.instructions.filter((i) => i.op === 'CMD').at(-1)!.args) as string[];
    expect(argv).not.toContain('--demo');
    const env = dockerfile.env();
    expect(env.RECSERVE_DEMO).toBeUndefined();
    expect(env.NODE_OPTIONS).toMatch(/--max-old-space-size=\d+/);
    const runs = final.instructions.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
    for (const p of ['/usr/local/lib/node_modules/npm', '/usr/local/lib/node_modules/corepack', '/usr/local/bin/npm', '/usr/local/bin/npx', '/usr/local/bin/corepack']) {
      expect(runs, `rm ${p}`).toMatch(new RegExp(`rm -rf [^&]*${escapeRe(p)}(\\s|$)`));
    }
    // Nothing after the removal may need npm: the HEALTHCHECK and CMD run node itself.
    for (const i of final.instructions.filter((x) => x.op === 'CMD' || x.op === 'HEALTHCHECK')) expect(i.args).not.toMatch(/\bnpm\b|\bnpx\b/);
  });

  it('copies only the linux-x64 onnxruntime binaries into the runtime', () => {
    const copy = final.instructions.find((i) => i.op === 'COPY' && /--from=\S+\s+\S*node_modules/.test(i.args))!;
    const runs = dockerfile.runsInChain(/--from=(\S+)/.exec(copy.args)![1]).join('\n');
    const bin = 'node_modules/onnxruntime-node/bin/napi-v*';
    // Every platform directory the package ships, except linux/x64, is deleted after npm ci.
    const shipped = readdirSync(path.join(ROOT, 'node_modules/onnxruntime-node/bin')).flatMap((napi) =>
      readdirSync(path.join(ROOT, 'node_modules/onnxruntime-node/bin', napi)).flatMap((os_) =>
        readdirSync(path.join(ROOT, 'node_modules/onnxruntime-node/bin', napi, os_)).map((arch) => `${os_}/${arch}`),
      ),
    );
    expect(shipped).toContain('linux/x64');
    for (const platform of shipped.filter((x) => x !== 'linux/x64')) {
      const [os_] = platform.split('/');
      const removed = runs.includes(`${bin}/${os_} `) || runs.includes(`${bin}/${os_}\n`) || runs.includes(`${bin}/${platform}`) || runs.endsWith(`${bin}/${os_}`);
      expect(removed, `${platform} removed`).toBe(true);
    }
    expect(runs).not.toMatch(/napi-v\*\/linux(\/x64)?(\s|$)/);
  });

  it('installs production dependencies with build tools, then copies them to the runtime', () => {
    const copy = final.instructions.find((i) => i.op === 'COPY' && /--from=\S+\s+\S*node_modules/.test(i.args));
    expect(copy, 'node_modules copied from a build stage').toBeDefined();
    const from = /--from=(\S+)/.exec(copy!.args)![1];
    const runs = dockerfile.runsInChain(from).join('\n');
    expect(runs).toMatch(/npm ci --omit=dev/);
    for (const tool of ['python3', 'make', 'g++']) expect(runs, `${tool} for better-sqlite3`).toContain(tool);
    // Compiled addons must match the runtime's Node ABI and glibc: same base image.
    expect(dockerfile.baseImage(dockerfile.stage(from))).toBe(dockerfile.baseImage(final));
    expect(final.instructions.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n')).not.toMatch(/npm (ci|install)/);
  });

  it('copies only files that exist and that .dockerignore lets through', () => {
    const ignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const ignored = (p: string) => ignore.some((pat) => !pat.startsWith('!') && globToRe(pat).test(p)) || ignore.some((pat) => p.startsWith(`${pat.replace(/\/$/, '')}/`));
    const sources = dockerfile.stages
      .flatMap((s) => s.instructions)
      .filter((i) => (i.op === 'COPY' || i.op === 'ADD') && !/--from=/.test(i.args))
      .flatMap((i) => i.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const s of sources) {
      const rel = s.replace(/^\.\//, '').replace(/\/$/, '');
      expect(existsSync(path.join(ROOT, rel)), `COPY ${s}`).toBe(true);
      expect(ignored(rel), `COPY ${s} is excluded by .dockerignore`).toBe(false);
    }
    for (const must of ['node_modules', 'dist', '.git']) expect(ignored(must), `.dockerignore excludes ${must}`).toBe(true);
  });

  it('the runtime image has every package src/ imports (npm ci --omit=dev installs it)', () => {
    const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const missing: string[] = [];
    for (const file of walk(path.join(ROOT, 'src')).filter((f) => f.endsWith('.ts'))) {
      for (const spec of runtimeImports(readFileSync(file, 'utf8'))) {
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        const entry = lock.packages[`node_modules/${name}`];
        if (!entry || entry.dev) missing.push(`${path.relative(ROOT, file)}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Helpers

function envEntry(d: Obj, name: string): Obj {
  return (container(d).env as Obj[]).find((e) => e.name === name)!;
}

/** The hpaSpec metric between the BEGIN/END request-rate comments of seldon-deployment.yaml, uncommented. */
function requestRateMetric(): Obj[] {
  const text = readFileSync(path.join(ROOT, 'seldon-deployment.yaml'), 'utf8');
  const block = /# BEGIN request-rate metric\n([\s\S]*?)\n\s*# END request-rate metric/.exec(text)?.[1];
  if (!block) throw new Error('seldon-deployment.yaml: no request-rate metric block');
  const lines = block.split('\n').map((l) => l.replace(/^(\s*)# ?/, '$1'));
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => /^\s*/.exec(l)![0].length));
  return yaml.load(lines.map((l) => l.slice(indent)).join('\n')) as Obj[];
}

function container(d: Obj): Obj {
  return d.spec.predictors[0].componentSpecs[0].spec.containers[0];
}

function containers(predictor: Obj): Obj[] {
  return ((predictor.componentSpecs ?? []) as Obj[]).flatMap((s) => (s.spec?.containers ?? []) as Obj[]);
}

function graphNodes(node: Obj | undefined): Obj[] {
  return node ? [node, ...((node.children ?? []) as Obj[]).flatMap(graphNodes)] : [];
}

/**
 * Ajv for a Kubernetes structural schema: the x-kubernetes-* keywords, k8s formats, and unknown fields
 * rejected (the API server prunes them silently, kubectl --validate=strict refuses them; either way a
 * misspelt field would be lost, so the test treats them as errors).
 */
function compileCrdSchema(schema: Obj): ValidateFunction {
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i);
  ajv.addKeyword({
    keyword: 'x-kubernetes-int-or-string',
    schemaType: 'boolean',
    validate: (on: boolean, data: unknown) => !on || typeof data === 'string' || Number.isInteger(data),
  });
  ajv.addKeyword({
    keyword: 'x-kubernetes-list-type',
    schemaType: 'string',
    type: 'array',
    validate: (listType: string, data: unknown[], parent?: Obj) => {
      const keyOf = (item: unknown): string => {
        if (listType !== 'map') return JSON.stringify(item);
        const keys = (parent?.['x-kubernetes-list-map-keys'] ?? []) as string[];
        const props = (parent?.items?.properties ?? {}) as Obj;
        return JSON.stringify(keys.map((k) => (item as Obj)[k] ?? props[k]?.default ?? null));
      };
      if (listType !== 'set' && listType !== 'map') return true;
      const keys = data.map(keyOf);
      return new Set(keys).size === keys.length;
    },
  });
  ajv.addKeyword({ keyword: 'x-kubernetes-list-map-keys' });
  ajv.addKeyword({ keyword: 'x-kubernetes-map-type' });
  ajv.addKeyword({ keyword: 'x-kubernetes-preserve-unknown-fields' });
  ajv.addKeyword({ keyword: 'x-kubernetes-embedded-resource' });
  return ajv.compile(rejectUnknownFields(structuredClone(schema)));
}

/** additionalProperties: false on every object schema that lists properties and allows nothing else. */
function rejectUnknownFields(s: Obj): Obj {
  if (!s || typeof s !== 'object') return s;
  if (s.properties) {
    for (const v of Object.values(s.properties)) rejectUnknownFields(v as Obj);
    if (s.additionalProperties === undefined && !s['x-kubernetes-preserve-unknown-fields']) s.additionalProperties = false;
  }
  if (s.items) rejectUnknownFields(s.items);
  if (s.additionalProperties && typeof s.additionalProperties === 'object') rejectUnknownFields(s.additionalProperties);
  for (const k of ['allOf', 'anyOf', 'oneOf']) for (const sub of (s[k] ?? []) as Obj[]) rejectUnknownFields(sub);
  return s;
}

function formatErrors(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const extra = e.keyword === 'additionalProperties' ? ` "${(e.params as { additionalProperty: string }).additionalProperty}"` : '';
    return `${e.instancePath || '/'} ${e.message}${extra}`;
  });
}

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name: string | null;
  instructions: Instruction[];
}

/** Enough of a Dockerfile parser for these checks: line continuations, comments, ARG defaults, stages. */
function parseDockerfile(text: string) {
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of lines) {
    const m = /^(\w+)\s+([\s\S]*)$/.exec(line);
    if (!m) continue;
    const op = m[1].toUpperCase();
    const args = m[2].replace(/\s+/g, ' ').trim();
    if (op === 'FROM') {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!;
      const from = f[1].replace(/\$\{?(\w+)\}?/g, (_, v: string) => globalArgs[v] ?? '');
      stages.push({ from, name: f[2] ?? null, instructions: [] });
    } else if (stages.length === 0 && op === 'ARG') {
      const [k, v] = args.split('=');
      globalArgs[k] = v ?? '';
    } else if (stages.length > 0) {
      stages[stages.length - 1].instructions.push({ op, args });
    }
  }
  const stage = (name: string): Stage => {
    const s = stages.find((x) => x.name === name) ?? stages[Number(name)];
    if (!s) throw new Error(`Dockerfile: no stage ${name}`);
    return s;
  };
  const isStage = (from: string) => stages.some((x) => x.name === from);
  const chain = (s: Stage): Stage[] => (isStage(s.from) ? [...chain(stage(s.from)), s] : [s]);
  const finalStage = () => stages[stages.length - 1];
  return {
    stages,
    stage,
    finalStage,
    /** The image a stage ultimately builds on. */
    baseImage: (s: Stage) => chain(s)[0].from,
    /** RUN commands of a stage and the stages it builds on. */
    runsInChain: (name: string) => chain(stage(name)).flatMap((s) => s.instructions.filter((i) => i.op === 'RUN').map((i) => i.args)),
    /** ENV of the final image (inherited stages included), KEY=value form. */
    env: (): Record<string, string> => {
      const out: Record<string, string> = {};
      for (const s of chain(finalStage())) {
        for (const i of s.instructions.filter((x) => x.op === 'ENV')) {
          for (const [, k, v] of i.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) out[k] = v.replace(/^"|"$/g, '');
        }
      }
      return out;
    },
    /** The numeric uid of the final USER (null when absent or a name). */
    userUid: (): number | null => {
      const user = chain(finalStage()).flatMap((s) => s.instructions).filter((i) => i.op === 'USER').at(-1)?.args.split(':')[0];
      return user && /^\d+$/.test(user) ? Number(user) : null;
    },
  };
}

function globToRe(pattern: string): RegExp {
  const p = pattern.replace(/^\.\//, '').replace(/\/$/, '');
  const re = p
    .split('**')
    .map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]'))
    .join('.*');
  return new RegExp(`^${re.replace(/^\.\*\//, '(.*/)?')}$`);
}

/** A Kubernetes quantity (1Gi, 512Mi, 2G, 1024) in bytes; NaN when malformed or absent. */
function quantityBytes(q: unknown): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q ?? ''));
  if (!m) return NaN;
  const unit: Record<string, number> = { '': 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m[1]) * unit[m[2] ?? ''];
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/** Bare module specifiers a compiled file loads at run time (type-only imports are erased by tsc). */
function runtimeImports(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(/^\s*(import|export)\s+(type\s+)?(?:[^'"]*?\s+from\s+)?['"]([^'"]+)['"]/gm)) {
    if (m[2]) continue;
    out.push(m[3]);
  }
  for (const m of source.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]);
  return out.filter((s) => !s.startsWith('.') && !s.startsWith('node:') && !s.startsWith('/'));
}
