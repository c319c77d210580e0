// `recserve manifest` (src/cli/deploy-commands.ts) builds the serving resources in code, because the image
// ships no deploy/ folder: they must keep what the repository's reviewed manifests say about the pod
// (ports, probes, security, resources) and name the runtime / server / format those manifests define.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { buildManifest, type ManifestOptions } from '../../src/cli/deploy-commands.js';
import { ROOT, type Obj } from './ir.js';

const load = (rel: string) => yaml.load(readFileSync(path.join(ROOT, rel), 'utf8')) as Obj;
const base: ManifestOptions = { target: 'seldon-v1', modelUri: 's3://recserve-models/movielens/3', name: 'recserve', replicas: 2, image: 'registry.example.com/recserve:0.1.0', storeSecret: 'recserve-store', modelsClaim: 'recserve-models', server: 'recserve', memory: '200Mi' };

describe('recserve manifest keeps what the reviewed manifests say', () => {
  it('seldon-v1: the container, pod security, graph and protocol of seldon-deployment.yaml', () => {
    const mine = buildManifest(base) as Obj;
    const theirs = load('seldon-deployment.yaml');
    const [m, t] = [mine.spec.predictors[0], theirs.spec.predictors[0]];
    // The whole pod, container by container (env, pull policy, ports, probes, resources, security, mounts) and volume by volume.
    const [mp, tp] = [m.componentSpecs[0].spec, t.componentSpecs[0].spec];
    expect(Object.keys(mp).sort()).toEqual(Object.keys(tp).sort());
    expect(mp.containers).toHaveLength(1);
    const [mc, tc] = [mp.containers[0], tp.containers[0]];
    for (const key of new Set([...Object.keys(mc), ...Object.keys(tc)])) expect(mc[key], `container ${key}`).toEqual(tc[key]);
    for (const key of Object.keys(tp).filter((k) => k !== 'containers')) expect(mp[key], key).toEqual(tp[key]);
    expect(m.componentSpecs[0].metadata).toEqual(t.componentSpecs[0].metadata);
    expect({ ...m.graph, envSecretRefName: undefined, parameters: undefined }).toEqual({ ...t.graph, envSecretRefName: undefined, parameters: undefined });
    expect([mine.spec.protocol, mine.spec.transport]).toEqual([theirs.spec.protocol, theirs.spec.transport]);
    expect(m.replicas).toBe(2);
  });

  it('seldon-core-2: deploy/seldon-core-2/model.yaml for another name, URI and replica count', () => {
    const theirs = load('deploy/seldon-core-2/model.yaml');
    const mine = buildManifest({ ...base, target: 'seldon-core-2', name: theirs.metadata.name, modelUri: theirs.spec.storageUri, replicas: theirs.spec.replicas }) as Obj;
    expect(mine.spec).toEqual(theirs.spec);
    expect([mine.apiVersion, mine.kind]).toEqual([theirs.apiVersion, theirs.kind]);
  });

  it('kserve: the model block of deploy/kserve/inference-service.yaml, on the runtime cluster-serving-runtime.yaml defines', () => {
    const theirs = load('deploy/kserve/inference-service.yaml');
    const runtime = load('deploy/kserve/cluster-serving-runtime.yaml');
    const mine = buildManifest({ ...base, target: 'kserve', name: theirs.metadata.name, modelUri: theirs.spec.predictor.model.storageUri, storageSecret: theirs.spec.predictor.serviceAccountName }) as Obj;
    expect(mine.spec.predictor.model).toEqual(theirs.spec.predictor.model);
    expect(mine.spec.predictor.serviceAccountName).toBe(theirs.spec.predictor.serviceAccountName);
    expect(mine.metadata.annotations).toEqual(theirs.metadata.annotations);
    expect(mine.spec.predictor.model.runtime).toBe(runtime.metadata.name);
    expect(runtime.spec.supportedModelFormats).toContainEqual(expect.objectContaining(mine.spec.predictor.model.modelFormat));
  });

  it('refuses names the platforms refuse and replicas that would each learn alone', () => {
    expect(() => buildManifest({ ...base, name: 'MovieLens' })).toThrow(/DNS label/);
    expect(() => buildManifest({ ...base, name: 'movie_lens' })).toThrow(/DNS label/);
    expect(() => buildManifest({ ...base, storeSecret: undefined })).toThrow(/needs --store-secret/);
    expect(() => buildManifest({ ...base, target: 'kserve', storeSecret: '' })).toThrow(/needs --store-secret/);
    expect((buildManifest({ ...base, target: 'seldon-core-2', storeSecret: undefined }) as Obj).spec.replicas).toBe(2);
    expect(((buildManifest({ ...base, replicas: 1, storeSecret: undefined }) as Obj).spec.predictors[0].componentSpecs[0].spec.containers[0].env as Obj[]).map((e) => e.name)).toEqual(['LOG_LEVEL', 'RECSERVE_WORKERS', 'NODE_OPTIONS']);
    expect((buildManifest({ ...base, namespace: 'models' }) as Obj).metadata.namespace).toBe('models');
    const alone = (buildManifest({ ...base, modelsClaim: undefined }) as Obj).spec.predictors[0].componentSpecs[0].spec;
    expect((alone.volumes as Obj[]).map((v) => v.name)).toEqual(['recserve-data', 'tmp']);
  });

  it('refuses what kubectl would refuse (an empty value is unset, as pipeline parameters pass it)', () => {
    expect(() => buildManifest({ ...base, namespace: 'a b' })).toThrow(/--namespace a b: use a DNS label/);
    expect(() => buildManifest({ ...base, modelUri: '' })).toThrow(/--model-uri "": give the model folder's URI with its scheme/);
    expect(() => buildManifest({ ...base, modelUri: 'not a uri' })).toThrow(/--model-uri/);
    expect(() => buildManifest({ ...base, storeSecret: 'Bad_Name' })).toThrow(/--store-secret Bad_Name: use a Kubernetes name/);
    expect(() => buildManifest({ ...base, target: 'seldon-core-2', memory: 'lots' })).toThrow(/--memory lots: use a Kubernetes quantity/);
    expect((buildManifest({ ...base, namespace: '', storageSecret: '' }) as Obj).metadata.namespace).toBeUndefined();
    expect((buildManifest({ ...base, target: 'seldon-core-2', modelsClaim: undefined, memory: '1.5Gi', storeSecret: 'store.v1' }) as Obj).kind).toBe('Model');
  });
});
