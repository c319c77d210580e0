// deploy/replicas/*.yaml checked structurally against seldon-deployment.yaml and the server: kinds and
// API versions, selectors that match the pods they mean (recserve's pods carry the label the Seldon
// Core v1 operator puts on every pod of a SeldonDeployment, seldon-deployment-id: <metadata.name>, the
// selector of the operator's own PDB), the Secret the manifest reads, a URL the server accepts, and the
// metric the adapter turns into the HPA's request rate.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { splitSchema } from '../../src/feedback/store/postgres.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIR = path.join(ROOT, 'deploy/replicas');
const sdep = yaml.load(readFileSync(path.join(ROOT, 'seldon-deployment.yaml'), 'utf8')) as Obj;
const docs: { file: string; doc: Obj }[] = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((file) => yaml.loadAll(readFileSync(path.join(DIR, file), 'utf8')).filter(Boolean).map((doc) => ({ file, doc: doc as Obj })));
const k8s = docs.filter((d) => d.doc.kind);
const byKind = (kind: string) => k8s.filter((d) => d.doc.kind === kind).map((d) => d.doc);
const container = sdep.spec.predictors[0].componentSpecs[0].spec.containers[0] as Obj;
const storeRef = (container.env as Obj[]).find((e) => e.name === 'RECSERVE_STORE_URL')!.valueFrom.secretKeyRef as Obj;

const KNOWN: Record<string, string> = {
  Secret: 'v1',
  Service: 'v1',
  PersistentVolumeClaim: 'v1',
  StatefulSet: 'apps/v1',
  PodDisruptionBudget: 'policy/v1',
  Cluster: 'postgresql.cnpg.io/v1',
};

describe('deploy/replicas manifests', () => {
  it('are known kinds with their API versions and DNS-label names', () => {
    expect(k8s.length).toBeGreaterThanOrEqual(5);
    for (const { file, doc } of k8s) {
      expect(KNOWN[doc.kind], `${file}: kind ${doc.kind}`).toBeDefined();
      expect(doc.apiVersion, `${file}: ${doc.kind}`).toBe(KNOWN[doc.kind]);
      expect(doc.metadata?.name, `${file}: ${doc.kind} name`).toMatch(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/);
    }
  });

  it('the shared versions volume is ReadWriteMany and is the claim seldon-deployment.yaml mounts', () => {
    const pvc = byKind('PersistentVolumeClaim').find((p) => p.metadata.name === 'recserve-models');
    expect(pvc, 'a PersistentVolumeClaim recserve-models').toBeDefined();
    expect(pvc!.spec.accessModes).toEqual(['ReadWriteMany']);
  });

  it('the Secret example is the one seldon-deployment.yaml reads, with a URL the server accepts', () => {
    const secret = byKind('Secret').find((s) => s.metadata.name === storeRef.name);
    expect(secret, `a Secret named ${storeRef.name}`).toBeDefined();
    const url = secret!.stringData[storeRef.key] as string;
    expect(url).toMatch(/^postgres(ql)?:\/\//);
    expect(loadConfig({ RECSERVE_STORE_URL: url, RECSERVE_DATA_DIR: '/tmp' }).storeUrl).toBe(url);
    const { connectionString, schema } = splitSchema(url);
    expect(schema).toBe('recserve');
    // It names the minimal PostgreSQL's Service and port.
    const svc = byKind('Service').find((s) => s.metadata.name === new URL(connectionString).hostname);
    expect(svc, `a Service ${new URL(connectionString).hostname}`).toBeDefined();
    expect(svc!.spec.ports.map((p: Obj) => p.port)).toContain(Number(new URL(connectionString).port));
  });

  it('the minimal PostgreSQL: Service and StatefulSet select the same pods, password from a Secret, bounded scratch', () => {
    const [sts] = byKind('StatefulSet');
    const [svc] = byKind('Service');
    const podLabels = sts.spec.template.metadata.labels as Obj;
    expect(podLabels).toMatchObject(sts.spec.selector.matchLabels);
    expect(podLabels).toMatchObject(svc.spec.selector);
    expect(sts.spec.serviceName).toBe(svc.metadata.name);
    const pgContainer = sts.spec.template.spec.containers[0] as Obj;
    const named = Object.fromEntries((pgContainer.ports as Obj[]).map((p) => [p.name, p.containerPort]));
    expect(named[svc.spec.ports[0].targetPort]).toBe(5432);
    const password = (pgContainer.env as Obj[]).find((e) => e.name === 'POSTGRES_PASSWORD')!;
    expect(password.value).toBeUndefined();
    expect(password.valueFrom.secretKeyRef.key).toBeTruthy();
    const claims = (sts.spec.volumeClaimTemplates as Obj[]).map((c) => c.metadata.name);
    expect((pgContainer.volumeMounts as Obj[]).map((m) => m.name)).toEqual(expect.arrayContaining(claims));
    for (const v of (sts.spec.template.spec.volumes ?? []) as Obj[]) if (v.emptyDir) expect(v.emptyDir.sizeLimit, v.name).toBeTruthy();
    expect(sts.spec.template.spec.securityContext.seccompProfile).toEqual({ type: 'RuntimeDefault' });
  });

  it('the standalone PDB selects recserve pods as the operator labels them, and keeps one available', () => {
    const [pdb] = byKind('PodDisruptionBudget');
    expect(pdb.spec.selector.matchLabels).toEqual({ 'seldon-deployment-id': sdep.metadata.name });
    expect(pdb.spec.minAvailable).toBeLessThan(sdep.spec.predictors[0].componentSpecs[0].hpaSpec.minReplicas);
  });

  it('the CloudNativePG Cluster bootstraps the recserve database with a synchronous standby', () => {
    const [cluster] = byKind('Cluster');
    expect(cluster.spec.instances).toBeGreaterThanOrEqual(2);
    expect(cluster.spec.minSyncReplicas).toBeGreaterThanOrEqual(1);
    expect(cluster.spec.bootstrap.initdb).toMatchObject({ database: 'recserve', owner: 'recserve' });
    // Its app Secret (<name>-app, key uri) is what the file tells users to reference.
    expect(readFileSync(path.join(DIR, 'cnpg-cluster.yaml'), 'utf8')).toContain(`name: ${cluster.metadata.name}-app, key: uri`);
  });

  it('the adapter rule serves the metric hpaSpec names, from a counter the server exports', () => {
    const values = docs.find((d) => d.file === 'prometheus-adapter-values.yaml')!.doc;
    const [rule] = values.rules.custom as Obj[];
    expect(rule.name.as).toBe('recserve_requests_per_second');
    expect(readFileSync(path.join(ROOT, 'seldon-deployment.yaml'), 'utf8')).toMatch(/metricName: recserve_requests_per_second/);
    const series = /^(\w+)\{/.exec(rule.seriesQuery)![1];
    expect(readFileSync(path.join(ROOT, 'src/telemetry/metrics.ts'), 'utf8')).toContain(`name: '${series}'`);
    expect(rule.resources.overrides).toMatchObject({ namespace: { resource: 'namespace' }, pod: { resource: 'pod' } });
    expect(rule.metricsQuery).toMatch(/rate\(<<\.Series>>\{<<\.LabelMatchers>>/);
  });
});
