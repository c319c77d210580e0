// The seven Seldon v1 services (Generic, Model, Router, Transformer, OutputTransformer, Combiner,
// Seldon) mapped onto the data plane. Each RPC does what the REST route of the same name does:
//   Predict                          → contract check + DataPlane.predict (as POST /api/v1.0/predictions)
//   SendFeedback (every service)     → DataPlane.feedback                (as POST /api/v1.0/feedback)
//   Metadata / Seldon.ModelMetadata  → DataPlane.metadata                (as GET /api/v1.0/metadata)
//   TransformInput / TransformOutput → contract check + DataPlane.passThrough (a model without hooks)
//   Route / Aggregate                → UNIMPLEMENTED: recserve is a MODEL node, not a router or combiner
//   Seldon.GraphMetadata             → UNIMPLEMENTED: graph metadata belongs to the executor
// The method table comes from prediction.proto itself (its generated code), so a service added there without a behaviour
// here fails at startup rather than at call time.
import type { DescMessage } from '@bufbuild/protobuf';
import type { Config } from '../../config/index.js';
import { quote, RecserveError } from '../../errors.js';
import { bindMethods, type GrpcProtocol } from '../grpc-binding.js';
import { checkDepth } from '../json.js';
import type { CallContext, DataPlane } from './dataplane.js';
import type { Feedback, SeldonMessage } from './messages.js';
import { decodeToJson, encodeFromJson, seldonProtos, type JsonObject } from './proto-json.js';

/** The header the Seldon executor puts a request's puid in (REST reads the same one). */
const PUID_HEADER = 'seldon-puid';
/** Trailer naming the Seldon reason (MICROSERVICE_BAD_DATA, …) next to the gRPC status. */
export const REASON_TRAILER = 'seldon-reason';

type Behaviour = (request: JsonObject, ctx: CallContext) => unknown;

export function seldonServices({ dataplane, config }: { dataplane: DataPlane; config: Config }): GrpcProtocol {
  const predict: Behaviour = (msg, ctx) => dataplane.predict(msg as SeldonMessage, ctx);
  const feedback: Behaviour = (fb, ctx) => dataplane.feedback(fb as Feedback, ctx);
  const metadata: Behaviour = () => dataplane.metadata();
  const passThrough: Behaviour = (msg, ctx) => dataplane.passThrough(msg as SeldonMessage, ctx);
  const modelMetadata: Behaviour = (req) => {
    const md = dataplane.metadata();
    const name = typeof req.name === 'string' ? req.name : '';
    // A graph node is named by its PREDICTIVE_UNIT_ID; the model by its own name. Either answers.
    if (name && name !== md.name && name !== config.unitId) {
      throw new RecserveError('not_found', `no model named ${quote(name)} here; this node serves "${md.name}"${config.unitId ? ` (unit ${config.unitId})` : ''}`);
    }
    return md;
  };
  const notARouter: Behaviour = () => {
    throw new RecserveError('not_implemented', 'Route not defined: recserve is a MODEL node and does not route; call Model/Predict');
  };
  const notACombiner: Behaviour = () => {
    throw new RecserveError('not_implemented', 'Aggregate not defined: recserve is a MODEL node and does not combine; call Model/Predict');
  };
  const noGraph: Behaviour = () => {
    throw new RecserveError('not_implemented', 'GraphMetadata not available on the Model level; ask the Seldon executor, or call ModelMetadata');
  };

  const behaviours: Partial<Record<string, Behaviour>> = {
    'Generic/TransformInput': passThrough,
    'Generic/TransformOutput': passThrough,
    'Generic/Route': notARouter,
    'Generic/Aggregate': notACombiner,
    'Generic/SendFeedback': feedback,
    'Model/Predict': predict,
    'Model/SendFeedback': feedback,
    'Model/Metadata': metadata,
    'Router/Route': notARouter,
    'Router/SendFeedback': feedback,
    'Transformer/TransformInput': passThrough,
    'OutputTransformer/TransformOutput': passThrough,
    'Combiner/Aggregate': notACombiner,
    'Seldon/Predict': predict,
    'Seldon/SendFeedback': feedback,
    'Seldon/ModelMetadata': modelMetadata,
    'Seldon/GraphMetadata': noGraph,
  };

  // Requests become the JSON form a REST caller would post; the same nesting bound as a REST body's
  // applies before anything recurses over it.
  const decode = (type: DescMessage) => (bytes: Uint8Array) => {
    const request = decodeToJson(type, bytes);
    checkDepth(request, config.limits.maxJsonDepth, 'the message');
    return request;
  };
  const protos = seldonProtos();
  return {
    protocol: 'seldon-v1',
    files: protos.files,
    isServing: () => dataplane.isReady(),
    puidHeader: PUID_HEADER,
    errorTrailers: ({ reason }) => ({ [REASON_TRAILER]: reason }),
    services: protos.services.map((svc) => ({
      name: svc.typeName,
      methods: bindMethods(
        svc,
        (m) => {
          const run = behaviours[`${svc.name}/${m.name}`];
          return (
            run && {
              decode: decode(m.input),
              run,
              encode: (result: unknown) => encodeFromJson(m.output, result),
              answerId: (result: unknown) => (result as { meta?: { puid?: string } } | null)?.meta?.puid || undefined,
            }
          );
        },
        'src/protocols/seldon-v1/grpc-services.ts',
      ),
    })),
  };
}
