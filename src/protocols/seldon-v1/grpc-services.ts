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
import type * as grpc from '@grpc/grpc-js';
import { quote, RecserveError } from '../../errors.js';
import { boundsOf, validate } from '../contract.js';
import type { CallContext } from './dataplane.js';
import type { Feedback, SeldonMessage } from './messages.js';
import { seldonProtos, type JsonObject } from './proto-json.js';
import { unary, type HandleDeps } from '../../transport/grpc/handle.js';

type Behaviour = (request: JsonObject, ctx: CallContext) => unknown;

export interface ServiceBinding {
  name: string;
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

const identity = (b: Buffer) => b;

export function seldonServices(deps: HandleDeps): ServiceBinding[] {
  const { dataplane, config } = deps;

  const bounds = boundsOf(config);
  const predict: Behaviour = (msg, ctx) => {
    validate('SeldonMessage', msg, '', bounds);
    return dataplane.predict(msg as SeldonMessage, ctx);
  };
  const feedback: Behaviour = (fb, ctx) => dataplane.feedback(fb as Feedback, ctx);
  const metadata: Behaviour = () => dataplane.metadata();
  const passThrough: Behaviour = (msg, ctx) => {
    validate('SeldonMessage', msg, '', bounds);
    return dataplane.passThrough(msg as SeldonMessage, ctx);
  };
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

  const behaviours: Record<string, Behaviour> = {
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

  return seldonProtos().services.map((svc) => {
    const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
    const implementation: grpc.UntypedServiceImplementation = {};
    for (const method of svc.methods) {
      const key = `${svc.name}/${method.name}`;
      const run = behaviours[key];
      if (!run) throw new Error(`prediction.proto declares ${key} but src/protocols/seldon-v1/grpc-services.ts has no behaviour for it`);
      const path = `/${svc.typeName}/${method.name}`;
      definition[method.name] = {
        path,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
        originalName: method.localName,
      };
      implementation[method.name] = unary({ path, requestType: method.input, responseType: method.output, run }, deps);
    }
    return { name: svc.typeName, definition: definition as grpc.ServiceDefinition, implementation };
  });
}
