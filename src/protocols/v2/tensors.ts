// The Open Inference Protocol's tensors in no transport's shape: what the REST JSON body (with or
// without the binary extension) and the gRPC ModelInferRequest both decode into, so one codec
// (codec.ts) gives them the same meaning.

/** A parameter value as the wire carries it; REST may also send a filter as a JSON object. */
export type ParamValue = string | number | boolean;
export type Parameters = Record<string, unknown>;

export interface InputTensor {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: Parameters;
  /** Elements from JSON (flat or nested) or gRPC typed contents (numbers, bigints or strings). */
  data?: unknown;
  /** The tensor's bytes (binary extension, gRPC raw_input_contents): little-endian, BYTES length-prefixed. */
  raw?: Buffer;
}

export interface RequestedOutput {
  name: string;
  parameters?: Parameters;
}

export interface InferRequest {
  id?: string;
  parameters?: Parameters;
  inputs: InputTensor[];
  /** Absent: every output the operation has. */
  outputs?: RequestedOutput[];
}

/** The datatypes recserve answers in. */
export type OutputDatatype = 'BYTES' | 'FP32' | 'INT64';

export interface OutputTensor {
  name: string;
  datatype: OutputDatatype;
  shape: number[];
  /** Flat, row-major: strings for BYTES, numbers for FP32 and INT64. */
  data: string[] | number[];
  parameters?: Record<string, ParamValue>;
}

export interface InferResponse {
  model_name: string;
  model_version: string;
  id: string;
  parameters?: Record<string, ParamValue>;
  outputs: OutputTensor[];
}

/** Number of elements a shape holds. */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
