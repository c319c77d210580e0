// The Open Inference Protocol V2 over gRPC: inference.GRPCInferenceService on the core, with the same
// meaning as the V2 REST routes because both go through the same tensors (tensors.ts), codec (codec.ts),
// metadata (metadata.ts) and model lookup (serving.ts). What is gRPC's own is here:
//   • typed contents: a tensor's elements in the InferTensorContents field of its datatype (BYTES in
//     bytes_contents, INT64 in int64_contents); elements in another field are refused, not ignored;
//   • raw contents: raw_input_contents holds one entry per input, in order (BYTES elements each with a
//     4-byte little-endian length); a request that sends raw gets raw_output_contents back (as MLServer
//     does), else typed contents; an input with both is refused;
//   • parameters: InferParameter's bool/int64/string (a filter is its JSON text);
//   • the repository extension's RPCs in Triton's, MLServer's and Seldon Core 2's message layout.
// Errors use the one table of src/errors.ts (INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE, …), as V2 wants.
import { randomUUID } from 'node:crypto';
import { create, fromBinary, toBinary, toJson, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import type { Config } from '../../config/index.js';
import { limitHint, type Limits } from '../../config/limits.js';
import type { ModelHub } from '../../core/models.js';
import type { ModelRepository } from '../../core/repository.js';
import type { CallContext } from '../../core/types.js';
import { badData, quote, RecserveError } from '../../errors.js';
import {
  file_inference_grpc_service,
  GRPCInferenceService,
  type InferParameter,
  type InferParameterSchema,
  type InferTensorContents,
  type InferTensorContentsSchema,
  type ModelInferRequest,
} from '../../gen/inference/grpc_service_pb.js';
import { bindMethods, type GrpcProtocol, type UnaryMethod } from '../grpc-binding.js';
import { encodeTensor } from './binary.js';
import { decodeInfer, encodeInfer } from './codec.js';
import { modelMetadata, serverMetadata, type TensorMetadata } from './metadata.js';
import { anyModelServing, modelReadiness, serverReadiness, servingModel } from './serving.js';
import type { InferRequest, InputTensor, OutputTensor, Parameters, ParamValue } from './tensors.js';

type Methods = typeof GRPCInferenceService.method;
type Behaviours = {
  [K in keyof Methods]: (request: MessageShape<Methods[K]['input']>, ctx: CallContext) => MessageInitShape<Methods[K]['output']> | Promise<MessageInitShape<Methods[K]['output']>>;
};

// Unknown fields are dropped: nothing reads them, and keeping them costs memory.
const BINARY_READ = { readUnknownFields: false } as const;

export interface V2GrpcDeps {
  models: ModelHub;
  /** Null: the repository RPCs are not offered. */
  repository: ModelRepository | null;
  config: Config;
}

export function v2Services({ models, repository, config }: V2GrpcDeps): GrpcProtocol {
  const { params, limits } = config;

  const repo = (repositoryName: string): ModelRepository => {
    if (!repository) throw new RecserveError('not_implemented', 'this server has no model repository');
    if (repositoryName !== '') throw badData('this server has one repository: leave repository_name empty');
    return repository;
  };

  const behaviours: Behaviours = {
    serverLive: () => ({ live: true }),
    serverReady: () => ({ ready: serverReadiness(models).ready }),
    modelReady: (req) => ({ ready: modelReadiness(models, req.name, req.version).ready }),
    serverMetadata: () => serverMetadata({ repository: config.modelsRoot !== null }),
    modelMetadata: async (req) => {
      const { model } = await servingModel(models, req.name, req.version);
      const md = modelMetadata(req.name, model, params, limits);
      return { ...md, inputs: md.inputs.map(tensorMetadata), outputs: md.outputs.map(tensorMetadata), parameters: parametersOut(md.parameters) };
    },
    modelInfer: async (req, ctx) => {
      const { service } = await servingModel(models, req.modelName, req.modelVersion);
      const decoded = decodeInfer(inferRequestOf(req, limits), params, limits);
      // The request id is the prediction's id: feedback names it (a generated one when absent, as MLServer).
      const id = req.id || randomUUID();
      const { model, output } = await service.predict(decoded.input, ctx, id);
      const tensors = encodeInfer(output, decoded.outputs);
      const raw = req.rawInputContents.length > 0;
      return {
        modelName: req.modelName,
        modelVersion: model.version,
        id,
        outputs: tensors.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape.map(BigInt), parameters: parametersOut(t.parameters ?? {}), contents: raw ? undefined : contentsOf(t) })),
        rawOutputContents: raw ? tensors.map(encodeTensor) : [],
      };
    },
    repositoryIndex: (req) => ({
      models: repo(req.repositoryName)
        .index(req.ready)
        .map((e) => ({ name: e.name, version: e.version ?? '', state: e.state, reason: e.reason })),
    }),
    // Returns once the model serves: Seldon Core 2's agent checks nothing after a load succeeds.
    // Load parameters (Triton's config, file:…) are not taken: models come from the models root.
    repositoryModelLoad: async (req) => {
      await repo(req.repositoryName).load(req.modelName);
      return {};
    },
    repositoryModelUnload: async (req) => {
      await repo(req.repositoryName).unload(req.modelName);
      return {};
    },
  };

  return {
    protocol: 'v2',
    files: [file_inference_grpc_service],
    isServing: () => anyModelServing(models),
    services: [
      {
        name: GRPCInferenceService.typeName,
        methods: bindMethods(
          GRPCInferenceService,
          (m) => {
            const run = behaviours[m.localName as keyof Behaviours] as UnaryMethod['run'] | undefined;
            return (
              run && {
                decode: (bytes: Uint8Array) => fromBinary(m.input, bytes, BINARY_READ),
                run,
                encode: (result: MessageInitShape<typeof m.output>) => toBinary(m.output, create(m.output, result)),
                answerId: (result: { id?: string }) => result.id || undefined,
                logged: (request: MessageShape<typeof m.input>) => toJson(m.input, request),
              }
            );
          },
          'src/protocols/v2/grpc-services.ts',
        ),
      },
    ],
  };
}

// ---- ModelInferRequest → the neutral tensors ---------------------------------------------------

/** Where each id datatype's typed elements travel. */
const CONTENTS_OF: Record<string, keyof Omit<InferTensorContents, '$typeName' | '$unknown'>> = { BYTES: 'bytesContents', INT64: 'int64Contents' };
const CONTENT_FIELDS = [
  ['boolContents', 'bool_contents'],
  ['intContents', 'int_contents'],
  ['int64Contents', 'int64_contents'],
  ['uintContents', 'uint_contents'],
  ['uint64Contents', 'uint64_contents'],
  ['fp32Contents', 'fp32_contents'],
  ['fp64Contents', 'fp64_contents'],
  ['bytesContents', 'bytes_contents'],
] as const;

function inferRequestOf(req: ModelInferRequest, limits: Limits): InferRequest {
  if (req.id.length > limits.maxIdLength) throw badData(`id is ${req.id.length} characters; at most ${limits.maxIdLength}${limitHint(limits, 'maxIdLength')}`);
  const raw = req.rawInputContents;
  if (raw.length > 0 && raw.length !== req.inputs.length) {
    throw badData(`raw_input_contents has ${raw.length} entries for ${req.inputs.length} inputs; send one entry per input, in the order of inputs`);
  }
  const inputs = req.inputs.map((t, i): InputTensor => {
    const where = `inputs/${i} (${quote(t.name)})`;
    const input: InputTensor = { name: t.name, datatype: t.datatype, shape: t.shape.map(Number), parameters: parametersIn(t.parameters, `inputs/${i}/parameters`) };
    const typed = t.contents && hasElements(t.contents) ? t.contents : undefined;
    if (raw.length > 0) {
      if (typed) throw badData(`${where} has both contents and raw_input_contents; send its elements in one of them`);
      const bytes = raw[i];
      input.raw = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } else if (t.contents) {
      input.data = typedElements(t.contents, t.datatype, where);
    }
    return input;
  });
  return {
    id: req.id,
    parameters: parametersIn(req.parameters, 'parameters'),
    inputs,
    outputs: req.outputs.map((o, i) => ({ name: o.name, parameters: parametersIn(o.parameters, `outputs/${i}/parameters`) })),
  };
}

function hasElements(c: InferTensorContents): boolean {
  return CONTENT_FIELDS.some(([field]) => c[field].length > 0);
}

/**
 * The elements of an id tensor's typed contents. Other datatypes are left without data: the codec
 * refuses their datatype before it looks at data.
 */
function typedElements(c: InferTensorContents, datatype: string, where: string): unknown[] | undefined {
  const field = CONTENTS_OF[datatype];
  if (!field) return undefined;
  for (const [other, wireName] of CONTENT_FIELDS) {
    if (other !== field && c[other].length > 0) {
      throw badData(`${where} is ${datatype} but its elements are in contents.${wireName}; ${datatype} elements go in contents.${CONTENT_FIELDS.find(([f]) => f === field)![1]}`);
    }
  }
  return c[field];
}

/** gRPC parameters as the codec reads them: booleans, int64 as bigints, strings. */
function parametersIn(map: Record<string, InferParameter>, where: string): Parameters {
  return Object.fromEntries(
    Object.entries(map).map(([key, p]) => {
      if (p.parameterChoice.case === undefined) throw badData(`${where}/${quote(key)} has no value; set bool_param, int64_param or string_param`);
      return [key, p.parameterChoice.value];
    }),
  );
}

// ---- the neutral tensors → ModelInferResponse --------------------------------------------------

type ParameterInit = MessageInitShape<typeof InferParameterSchema>;

/** Whole numbers travel as int64_param; a fractional number has no standard form, so it goes as text. */
function parametersOut(values: Record<string, ParamValue>): Record<string, ParameterInit> {
  return Object.fromEntries(
    Object.entries(values).map(([key, v]): [string, ParameterInit] => {
      if (typeof v === 'boolean') return [key, { parameterChoice: { case: 'boolParam', value: v } }];
      if (typeof v === 'number' && Number.isSafeInteger(v)) return [key, { parameterChoice: { case: 'int64Param', value: BigInt(v) } }];
      return [key, { parameterChoice: { case: 'stringParam', value: String(v) } }];
    }),
  );
}

function tensorMetadata(t: TensorMetadata) {
  return { name: t.name, datatype: t.datatype, shape: t.shape.map(BigInt), parameters: parametersOut(t.parameters ?? {}) };
}

function contentsOf(t: OutputTensor): MessageInitShape<typeof InferTensorContentsSchema> {
  switch (t.datatype) {
    case 'BYTES':
      return { bytesContents: (t.data as string[]).map((s) => Buffer.from(s, 'utf8')) };
    case 'FP32':
      return { fp32Contents: t.data as number[] };
    case 'INT64':
      return { int64Contents: (t.data as number[]).map(BigInt) };
  }
}
