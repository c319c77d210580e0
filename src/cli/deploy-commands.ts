// `recserve manifest`: the Kubernetes resource that serves a trained model, for `kubectl apply -f -`
// (the Kubeflow pipeline's deploy step runs it, and so can a user). The image ships no deploy/ folder,
// so the manifests are built here; their long-lived siblings (seldon-deployment.yaml, deploy/) carry the
// commentary and the cluster-wide parts (ServerConfig, ClusterServingRuntime, PostgreSQL).
import { writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import * as yaml from 'js-yaml';
import { packageVersion } from '../util/paths.js';
import { positiveArg } from './args.js';

export const MANIFEST_TARGETS = ['seldon-v1', 'seldon-core-2', 'kserve'] as const;
export type ManifestTarget = (typeof MANIFEST_TARGETS)[number];

export interface ManifestOptions {
  target: ManifestTarget;
  modelUri: string;
  name: string;
  replicas: number;
  namespace?: string;
  /** seldon-v1: the recserve image (KServe and Seldon Core 2 take it from their runtime / ServerConfig). */
  image: string;
  /** Secret whose key `url` is RECSERVE_STORE_URL (PostgreSQL); needed by more than one replica. */
  storeSecret?: string;
  /** seldon-v1: Secret with the storage initializer's credentials; kserve: the service account carrying them. */
  storageSecret?: string;
  /** seldon-v1: ReadWriteMany claim for retrained versions, which one replica publishes and all load. */
  modelsClaim?: string;
  /** seldon-core-2: the Server that loads the model, and what the scheduler reserves for it. */
  server: string;
  memory: string;
}

type Obj = Record<string, unknown>;

const DNS_LABEL = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** Secret, claim and Server names: a DNS subdomain (RFC 1123). */
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A Kubernetes memory quantity such as 200Mi, 1Gi or 500M. */
const QUANTITY = /^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;

/** Refuses names and quantities kubectl would refuse. An empty value is an unset one (a pipeline parameter's default). */
function checkOptions(o: ManifestOptions): void {
  // The storage initializer downloads from a URI with a scheme (s3://, gs://, pvc://, https://…); anything else starts a pod with no model.
  if (!/^[a-z][a-z0-9+.-]*:\/\/\S+$/i.test(o.modelUri)) throw new Error(`--model-uri ${JSON.stringify(o.modelUri)}: give the model folder's URI with its scheme, e.g. s3://bucket/models/movielens/3 or pvc://claim/path`);
  if (o.namespace && !DNS_LABEL.test(o.namespace)) throw new Error(`--namespace ${o.namespace}: use a DNS label (lower-case letters, digits and '-')`);
  for (const [flag, v] of [['--store-secret', o.storeSecret], ['--storage-secret', o.storageSecret], ['--models-claim', o.modelsClaim], ['--server', o.server]] as const) {
    if (v && !DNS_SUBDOMAIN.test(v)) throw new Error(`${flag} ${v}: use a Kubernetes name (lower-case letters, digits, '-' and '.')`);
  }
  if (!QUANTITY.test(o.memory)) throw new Error(`--memory ${o.memory}: use a Kubernetes quantity such as 200Mi or 1Gi`);
}

/** The resource for one model, as a plain object (YAML-dumped by the command). */
export function buildManifest(o: ManifestOptions): Obj {
  if (!DNS_LABEL.test(o.name)) throw new Error(`--name ${o.name}: use a DNS label (lower-case letters, digits and '-', starting with a letter; Seldon Core 2 appends _<version>)`);
  if (!Number.isInteger(o.replicas) || o.replicas < 1) throw new Error('--replicas must be a positive integer');
  checkOptions(o);
  // Replicas share feedback only through one PostgreSQL store; each would otherwise learn alone in SQLite.
  if (o.replicas > 1 && o.target !== 'seldon-core-2' && !o.storeSecret) throw new Error(`--replicas ${o.replicas} needs --store-secret (a Secret with key url = the PostgreSQL store every replica shares)`);
  const metadata: Obj = { name: o.name, labels: { 'app.kubernetes.io/name': 'recserve', 'app.kubernetes.io/instance': o.name } };
  if (o.namespace) metadata.namespace = o.namespace;
  const storeEnv = o.storeSecret ? [{ name: 'RECSERVE_STORE_URL', valueFrom: { secretKeyRef: { name: o.storeSecret, key: 'url' } } }] : [];

  if (o.target === 'seldon-core-2') {
    // The ServerConfig (deploy/seldon-core-2/server-config.yaml) holds the store; the Model names the folder.
    return { apiVersion: 'mlops.seldon.io/v1alpha1', kind: 'Model', metadata, spec: { storageUri: o.modelUri, requirements: ['recserve'], server: o.server, memory: o.memory, replicas: o.replicas } };
  }
  if (o.target === 'kserve') {
    const model: Obj = { modelFormat: { name: 'recserve', version: '1' }, runtime: 'recserve', protocolVersion: 'v2', storageUri: o.modelUri };
    if (storeEnv.length) model.env = storeEnv;
    const predictor: Obj = { minReplicas: o.replicas, maxReplicas: o.replicas, model };
    if (o.storageSecret) predictor.serviceAccountName = o.storageSecret;
    return { apiVersion: 'serving.kserve.io/v1beta1', kind: 'InferenceService', metadata: { ...metadata, annotations: { 'serving.kserve.io/deploymentMode': 'RawDeployment' } }, spec: { predictor } };
  }
  return seldonDeployment(o, metadata, storeEnv);
}

function seldonDeployment(o: ManifestOptions, metadata: Obj, storeEnv: Obj[]): Obj {
  const probe = (route: string, initialDelaySeconds: number, periodSeconds: number) => ({ httpGet: { path: route, port: 'http' }, initialDelaySeconds, periodSeconds, timeoutSeconds: 2, failureThreshold: 3, successThreshold: 1 });
  const container = {
    name: 'recserve', // equals graph.name: the operator finds the model's container by it
    image: o.image,
    imagePullPolicy: 'IfNotPresent',
    ports: [
      { name: 'http', containerPort: 9000, protocol: 'TCP' },
      { name: 'grpc', containerPort: 9500, protocol: 'TCP' },
      { name: 'metrics', containerPort: 6000, protocol: 'TCP' },
    ],
    env: [
      ...storeEnv,
      { name: 'LOG_LEVEL', value: 'info' },
      { name: 'RECSERVE_WORKERS', value: '2' }, // inference worker threads: the CPU limit below
      { name: 'NODE_OPTIONS', value: '--max-old-space-size=640' }, // V8's heap at about 60 % of the 1Gi limit; the rest is ONNX sessions and buffers
    ],
    resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '2', memory: '1Gi' } },
    readinessProbe: probe('/ready', 5, 5),
    livenessProbe: probe('/live', 20, 10),
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
    volumeMounts: [
      { name: 'recserve-data', mountPath: '/var/lib/recserve' },
      ...(o.modelsClaim ? [{ name: 'recserve-models', mountPath: '/var/lib/recserve/models' }] : []),
      { name: 'tmp', mountPath: '/tmp' },
    ],
  };
  const graph: Obj = { name: 'recserve', type: 'MODEL', endpoint: { type: 'REST' }, modelUri: o.modelUri, children: [] };
  if (o.storageSecret) graph.envSecretRefName = o.storageSecret;
  return {
    apiVersion: 'machinelearning.seldon.io/v1',
    kind: 'SeldonDeployment',
    metadata,
    spec: {
      protocol: 'seldon',
      transport: 'rest',
      predictors: [
        {
          name: 'default',
          replicas: o.replicas,
          componentSpecs: [
            {
              metadata: { annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/path': '/prometheus', 'prometheus.io/port': '6000' } },
              spec: {
                terminationGracePeriodSeconds: 30,
                automountServiceAccountToken: false,
                securityContext: { runAsUser: 8888, runAsGroup: 8888, runAsNonRoot: true, fsGroup: 8888, seccompProfile: { type: 'RuntimeDefault' } },
                containers: [container],
                // Scratch only (with a store secret nothing shared lives here): bounded, so a full one evicts the pod.
                volumes: [
                  { name: 'recserve-data', emptyDir: { sizeLimit: '2Gi' } },
                  { name: 'tmp', emptyDir: { sizeLimit: '256Mi' } },
                  ...(o.modelsClaim ? [{ name: 'recserve-models', persistentVolumeClaim: { claimName: o.modelsClaim } }] : []),
                ],
              },
            },
          ],
          graph,
        },
      ],
    },
  };
}


export function registerDeployCommands(program: Command): void {
  program
    .command('manifest')
    .description('Print the Kubernetes resource that serves a model folder (SeldonDeployment, Seldon Core 2 Model or KServe InferenceService), for `kubectl apply -f -`')
    .addOption(new Option('--target <target>', 'seldon-v1 (SeldonDeployment, Seldon v1 protocol), seldon-core-2 (Model on the recserve Server) or kserve (InferenceService on the recserve runtime)').choices([...MANIFEST_TARGETS]).default('seldon-v1'))
    .requiredOption('--model-uri <uri>', 'where the model folder (model.onnx, …) is stored, e.g. s3://bucket/models/movielens/3')
    .requiredOption('--name <name>', 'the resource name (a DNS label); V2 clients address the model by it')
    .option('--replicas <n>', 'serving replicas (more than one needs --store-secret, except on Seldon Core 2)', positiveArg('--replicas'), 1)
    .option('--namespace <ns>', 'metadata.namespace (default: kubectl\'s namespace)')
    .option('--image <image>', 'seldon-v1: the recserve image', `recserve:${packageVersion()}`)
    .option('--store-secret <secret>', 'Secret whose key url is the PostgreSQL RECSERVE_STORE_URL all replicas share')
    .option('--storage-secret <name>', 'seldon-v1: Secret with the storage initializer\'s credentials (envSecretRefName); kserve: the service account carrying them')
    .option('--models-claim <pvc>', 'seldon-v1: ReadWriteMany claim for retrained versions, shared by the replicas (deploy/replicas/models-pvc.yaml)')
    .option('--server <name>', 'seldon-core-2: the Server that loads the model', 'recserve')
    .option('--memory <quantity>', 'seldon-core-2: memory the scheduler reserves for the model', '200Mi')
    .option('--out <file>', 'write the YAML here instead of stdout')
    .addHelpText(
      'after',
      `
Examples:
  npx recserve manifest --model-uri s3://recserve-models/movielens/3 --name movielens | kubectl apply -n models -f -
  npx recserve manifest --target kserve --model-uri s3://recserve-models/movielens/3 --name movielens --replicas 2 --store-secret recserve-store`,
    )
    .action((o: Record<string, unknown>) => {
      try {
        const manifest = buildManifest({
          target: o.target as ManifestTarget,
          modelUri: o.modelUri as string,
          name: o.name as string,
          replicas: o.replicas as number,
          namespace: o.namespace as string | undefined,
          image: o.image as string,
          storeSecret: o.storeSecret as string | undefined,
          storageSecret: o.storageSecret as string | undefined,
          modelsClaim: o.modelsClaim as string | undefined,
          server: o.server as string,
          memory: o.memory as string,
        });
        // Only the SeldonDeployment mounts a claim: say so rather than drop it without a word.
        if (o.modelsClaim && o.target !== 'seldon-v1') console.error(`recserve manifest: note: --models-claim is used by --target seldon-v1 only; the ${o.target} manifest does not mount it`);
        const text = yaml.dump(manifest, { lineWidth: -1, noRefs: true });
        if (o.out) writeFileSync(o.out as string, text);
        else process.stdout.write(text);
      } catch (e) {
        console.error(`recserve manifest: ${(e as Error).message}`);
        process.exit(1);
      }
    });
}
