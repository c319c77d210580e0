// Prometheus metrics for both transports, on their own registry (served on the metrics port).
import client from 'prom-client';
import type { Config } from '../config/index.js';

export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics(config: Config) {
  const registry = new client.Registry();
  // Seldon puts these labels on every series the Python wrapper exports.
  registry.setDefaultLabels({
    deployment_name: config.labels.deploymentName,
    predictor_name: config.labels.predictorName,
    predictor_version: config.labels.predictorVersion,
    model_image: config.unitImage.split(':')[0],
    worker_id: String(process.pid),
  });
  client.collectDefaultMetrics({ register: registry });

  const requests = new client.Counter({
    name: 'recserve_requests_total',
    help: 'Requests by protocol (seldon-v1, v2), transport, route (or gRPC method) and status code',
    labelNames: ['transport', 'route', 'code', 'protocol'] as const,
    registers: [registry],
  });
  const latency = new client.Histogram({
    name: 'recserve_request_duration_seconds',
    help: 'Request latency by protocol, transport and route (or gRPC method)',
    labelNames: ['transport', 'route', 'protocol'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  // Names as the Seldon Python wrapper exposes them (a prometheus_client Counter adds _total).
  const feedback = new client.Counter({
    name: 'seldon_api_model_feedback_total',
    help: 'Feedback messages accepted',
    labelNames: ['method', 'model_name', 'model_version'] as const,
    registers: [registry],
  });
  const feedbackReward = new client.Counter({
    name: 'seldon_api_model_feedback_reward_total',
    help: 'Sum of the rewards of accepted feedback',
    labelNames: ['method', 'model_name', 'model_version'] as const,
    registers: [registry],
  });
  const modelInfo = new client.Gauge({
    name: 'recserve_model_info',
    help: 'The model version serving requests (value 1)',
    labelNames: ['model_name', 'model_version', 'signature'] as const,
    registers: [registry],
  });
  const recommendations = new client.Counter({
    name: 'recserve_recommendations_total',
    help: 'Users answered, by protocol and strategy',
    labelNames: ['strategy', 'protocol'] as const,
    registers: [registry],
  });

  // --- inference batching and worker pool -------------------------------------------
  const batchSize = new client.Histogram({
    name: 'recserve_batch_size',
    help: 'Queries per model run after micro-batching (top-k users, or scored pairs), by op',
    labelNames: ['op'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [registry],
  });
  const batchQueue = new client.Histogram({
    name: 'recserve_batch_queue_seconds',
    help: 'Time a request waited in the micro-batcher before its model run was dispatched, by op',
    labelNames: ['op'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers: [registry],
  });
  const workerBusy = new client.Counter({
    name: 'recserve_inference_worker_busy_seconds_total',
    help: 'Time each inference worker spent scoring (divide its rate by 1 s for utilisation)',
    labelNames: ['worker'] as const,
    registers: [registry],
  });
  const workerRestarts = new client.Counter({
    name: 'recserve_inference_worker_restarts_total',
    help: 'Inference workers replaced after they died',
    labelNames: ['worker'] as const,
    registers: [registry],
  });
  const batchChildren = {
    topk: { size: batchSize.labels('topk'), queue: batchQueue.labels('topk') },
    pairs: { size: batchSize.labels('pairs'), queue: batchQueue.labels('pairs') },
  };
  /** Feeds the micro-batcher's observations into the histograms (model/batcher.ts BatchObserver). */
  const batchObserver = {
    batch(kind: 'topk' | 'pairs', size: number, queuedMs: readonly number[]) {
      const c = batchChildren[kind];
      c.size.observe(size);
      for (const ms of queuedMs) c.queue.observe(ms / 1000);
    },
  };
  /** Worker utilisation and restarts (model/pool/pool.ts PoolObserver). */
  const poolObserver = {
    workerBusy(worker: number, ms: number) {
      workerBusy.inc({ worker: String(worker) }, ms / 1000);
    },
    workerRestart(worker: number) {
      workerRestarts.inc({ worker: String(worker) });
    },
  };

  return {
    registry,
    requests,
    latency,
    feedback,
    feedbackReward,
    recommendations,
    batchObserver,
    poolObserver,
    setModel(name: string, version: string, signature: string) {
      modelInfo.reset();
      modelInfo.labels(name, version, signature).set(1);
    },
    /** Times one request; call the returned function with the status code when it ends. */
    startRequest(transport: 'rest' | 'grpc', route: string): (code: string | number) => void {
      const protocol = protocolOfRoute(route);
      const end = latency.startTimer({ transport, route, protocol });
      return (code) => {
        end();
        requests.inc({ transport, route, code: String(code), protocol });
      };
    },
    /** Counts one finished request that was timed elsewhere (the REST access log). */
    recordRequest(transport: 'rest' | 'grpc', route: string, code: string | number, seconds: number): void {
      const protocol = protocolOfRoute(route);
      requests.inc({ transport, route, code: String(code), protocol });
      latency.observe({ transport, route, protocol }, seconds);
    },
  };
}

/** Which protocol a route (REST path template or gRPC method) belongs to, for the protocol label. */
export function protocolOfRoute(route: string): 'v2' | 'seldon-v1' {
  return route === '/v2' || route.startsWith('/v2/') || route.startsWith('inference.') ? 'v2' : 'seldon-v1';
}
