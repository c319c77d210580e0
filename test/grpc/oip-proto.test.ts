// proto/inference/grpc_service.proto against the Open Inference Protocol V2 field tables (the layout Triton,
// MLServer and Seldon Core 2 share, with MLServer/Seldon Core 2's `parameters` on metadata), read from the
// generated descriptors: a wrong number here would make every V2 client read the wrong field.
import type { DescMessage } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { file_inference_grpc_service, GRPCInferenceService } from '../../src/gen/inference/grpc_service_pb.js';

const FIELDS: Record<string, string> = {
  ServerLiveResponse: '1 live bool',
  ServerReadyResponse: '1 ready bool',
  ModelReadyRequest: '1 name string; 2 version string',
  ModelReadyResponse: '1 ready bool',
  ServerMetadataResponse: '1 name string; 2 version string; 3 extensions repeated string',
  ModelMetadataRequest: '1 name string; 2 version string',
  ModelMetadataResponse: '1 name string; 2 versions repeated string; 3 platform string; 4 inputs repeated TensorMetadata; 5 outputs repeated TensorMetadata; 6 parameters map InferParameter',
  'ModelMetadataResponse.TensorMetadata': '1 name string; 2 datatype string; 3 shape repeated int64; 4 parameters map InferParameter',
  ModelInferRequest: '1 model_name string; 2 model_version string; 3 id string; 4 parameters map InferParameter; 5 inputs repeated InferInputTensor; 6 outputs repeated InferRequestedOutputTensor; 7 raw_input_contents repeated bytes',
  'ModelInferRequest.InferInputTensor': '1 name string; 2 datatype string; 3 shape repeated int64; 4 parameters map InferParameter; 5 contents InferTensorContents',
  'ModelInferRequest.InferRequestedOutputTensor': '1 name string; 2 parameters map InferParameter',
  ModelInferResponse: '1 model_name string; 2 model_version string; 3 id string; 4 parameters map InferParameter; 5 outputs repeated InferOutputTensor; 6 raw_output_contents repeated bytes',
  'ModelInferResponse.InferOutputTensor': '1 name string; 2 datatype string; 3 shape repeated int64; 4 parameters map InferParameter; 5 contents InferTensorContents',
  InferParameter: '1 bool_param bool; 2 int64_param int64; 3 string_param string; 4 double_param double; 5 uint64_param uint64',
  InferTensorContents: '1 bool_contents repeated bool; 2 int_contents repeated int32; 3 int64_contents repeated int64; 4 uint_contents repeated uint32; 5 uint64_contents repeated uint64; 6 fp32_contents repeated float; 7 fp64_contents repeated double; 8 bytes_contents repeated bytes',
  ModelRepositoryParameter: '1 bool_param bool; 2 int64_param int64; 3 string_param string; 4 bytes_param bytes',
  RepositoryIndexRequest: '1 repository_name string; 2 ready bool',
  RepositoryIndexResponse: '1 models repeated ModelIndex',
  'RepositoryIndexResponse.ModelIndex': '1 name string; 2 version string; 3 state string; 4 reason string',
  RepositoryModelLoadRequest: '1 repository_name string; 2 model_name string; 3 parameters map ModelRepositoryParameter',
  RepositoryModelLoadResponse: '',
  RepositoryModelUnloadRequest: '1 repository_name string; 2 model_name string; 3 parameters map ModelRepositoryParameter',
  RepositoryModelUnloadResponse: '',
};

const SCALARS: Record<number, string> = { 1: 'double', 2: 'float', 3: 'int64', 4: 'uint64', 5: 'int32', 8: 'bool', 9: 'string', 12: 'bytes', 13: 'uint32' };

/** "number name [repeated|map] type" for every field, in number order. */
function layout(m: DescMessage): string {
  return [...m.fields]
    .sort((a, b) => a.number - b.number)
    .map((f) => {
      const type = (sub: DescMessage) => sub.name;
      switch (f.fieldKind) {
        case 'scalar':
          return `${f.number} ${f.name} ${SCALARS[f.scalar]}`;
        case 'message':
          return `${f.number} ${f.name} ${type(f.message)}`;
        case 'list':
          return `${f.number} ${f.name} repeated ${f.listKind === 'message' ? type(f.message) : f.listKind === 'scalar' ? SCALARS[f.scalar] : f.enum.name}`;
        case 'map':
          return `${f.number} ${f.name} map ${f.mapKind === 'message' ? type(f.message) : 'scalar'}`;
        default:
          return `${f.number} ${f.name} enum`;
      }
    })
    .join('; ');
}

describe('inference.GRPCInferenceService (OIP V2)', () => {
  it('has the nine RPCs at /inference.GRPCInferenceService/<Rpc>, all unary', () => {
    expect(GRPCInferenceService.typeName).toBe('inference.GRPCInferenceService');
    expect(GRPCInferenceService.methods.map((m) => `${m.name}(${m.input.name}) → ${m.output.name} ${m.methodKind}`)).toEqual(
      ['ServerLive', 'ServerReady', 'ModelReady', 'ServerMetadata', 'ModelMetadata', 'ModelInfer', 'RepositoryIndex', 'RepositoryModelLoad', 'RepositoryModelUnload'].map(
        (rpc) => `${rpc}(${rpc}Request) → ${rpc}Response unary`,
      ),
    );
  });

  it('has the protocol’s field numbers, names and types', () => {
    const all = new Map<string, DescMessage>();
    const walk = (m: DescMessage, prefix: string) => {
      all.set(prefix + m.name, m);
      for (const n of m.nestedMessages) if (!n.name.endsWith('Entry')) walk(n, `${prefix}${m.name}.`);
    };
    for (const m of file_inference_grpc_service.messages) walk(m, '');
    for (const [name, fields] of Object.entries(FIELDS)) expect(all.get(name) && layout(all.get(name)!), name).toBe(fields);
    expect(all.get('InferParameter')!.oneofs.map((o) => o.name)).toEqual(['parameter_choice']);
    expect(all.get('ModelRepositoryParameter')!.oneofs.map((o) => o.name)).toEqual(['parameter_choice']);
  });
});
