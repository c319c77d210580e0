#!/usr/bin/env node
// `recserve <command>`: a thin layer over library calls; nothing parses argv at import elsewhere.
import { Command, InvalidArgumentError } from 'commander';
import { packageVersion } from '../util/paths.js';
import { ConfigError, loadConfig } from '../config/index.js';
import { startServer } from '../server.js';
import { createLogger } from '../telemetry/logger.js';
import { registerDeployCommands } from './deploy-commands.js';
import { registerFeedbackCommands } from './feedback-commands.js';
import { registerTrainCommands } from './train-commands.js';

const program = new Command('recserve')
  .description('Serve, train and evaluate a collaborative-filtering recommender (Seldon v1 and Open Inference Protocol V2)')
  .version(packageVersion(), '-V, --version')
  // One line and a hint, not the whole help, after a usage error.
  .showHelpAfterError('(add --help for the options)');

const portArg = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('not a TCP port');
  return n;
};

program
  .command('serve')
  .description('Serve the model over Seldon v1 and the Open Inference Protocol V2 (REST and gRPC), with metrics and Swagger UI')
  .option('--model <dir>', 'model directory holding model.onnx (env MODEL_PATH; default /mnt/models, else the demo model with --demo)')
  .option('--data-dir <dir>', 'writable state: demo model, interaction store (env RECSERVE_DATA_DIR; default ./.data)')
  .option('--http-port <port>', 'REST port (env PREDICTIVE_UNIT_HTTP_SERVICE_PORT; default 9000)', portArg)
  .option('--grpc-port <port>', 'gRPC port (env PREDICTIVE_UNIT_GRPC_SERVICE_PORT; default 9500)', portArg)
  .option('--metrics-port <port>', 'Prometheus port (env PREDICTIVE_UNIT_METRICS_SERVICE_PORT; default 6000)', portArg)
  .option('--host <host>', 'interface to bind (env RECSERVE_HOST; default 0.0.0.0)')
  .option('--demo', 'with no model at /mnt/models and none named, build and serve the demo model (env RECSERVE_DEMO=true; `npm start` passes it)')
  .option('--models-root <dir>', 'models loaded and unloaded by name through the V2 repository extension (env RECSERVE_MODELS_ROOT; Seldon Core 2: /mnt/agent/models); with it and no --model, no default model is served')
  .option('--model-name <name>', 'the name the default model answers to in V2 (env RECSERVE_MODEL_NAME; KServe: the InferenceService name); default: the model\'s own name')
  .action(async (opts) => {
    let config;
    try {
      config = loadConfig(process.env, { model: opts.model, dataDir: opts.dataDir, httpPort: opts.httpPort, grpcPort: opts.grpcPort, metricsPort: opts.metricsPort, host: opts.host, demo: opts.demo ? true : undefined, modelsRoot: opts.modelsRoot, modelName: opts.modelName });
    } catch (e) {
      if (e instanceof ConfigError) {
        console.error(`recserve: ${e.message}`);
        process.exit(2);
      }
      throw e;
    }
    const log = createLogger(config.logLevel);
    let server;
    try {
      server = await startServer(config, log);
    } catch (e) {
      log.fatal({ err: (e as Error).message }, 'start-up failed');
      process.exit(1);
    }
    const shown = config.host === '0.0.0.0' ? 'localhost' : config.host;
    log.info({ ports: server.ports }, `serving; Swagger UI at http://${shown}:${server.ports.http}/docs`);
    if (process.stdout.isTTY) console.log(`\n  Swagger UI: http://${shown}:${server.ports.http}/docs\n  Metrics:    http://${shown}:${server.ports.metrics}${config.metricsPath}\n`);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'draining in-flight requests, then exiting');
      server.close().then(
        () => process.exit(0),
        (e) => {
          log.error({ err: (e as Error).message }, 'error while stopping');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });

registerTrainCommands(program);
registerFeedbackCommands(program);
registerDeployCommands(program);

// No command: the help (starting a server on 0.0.0.0 is never what a bare `recserve` should do).
if (process.argv.length <= 2) program.help();
await program.parseAsync(process.argv);
