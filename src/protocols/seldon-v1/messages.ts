// Seldon v1 messages in their proto3-JSON form (field names as in prediction.proto's JSON mapping).
// REST bodies arrive in this form; the gRPC layer converts protobuf objects to it, so the data plane
// sees one shape whatever the transport.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

export interface Tensor {
  shape: number[];
  values: number[];
}

export interface DefaultData {
  names?: string[];
  tensor?: Tensor;
  ndarray?: JsonValue[];
  tftensor?: JsonValue;
}

export interface Metric {
  key: string;
  type?: 'COUNTER' | 'GAUGE' | 'TIMER';
  value: number;
  tags?: Record<string, string>;
}

export interface Meta {
  puid?: string;
  tags?: Record<string, JsonValue>;
  routing?: Record<string, number>;
  requestPath?: Record<string, string>;
  metrics?: Metric[];
}

export interface Status {
  code?: number;
  info?: string;
  reason?: string;
  status?: number | 'SUCCESS' | 'FAILURE';
}

export interface SeldonMessage {
  status?: Status;
  meta?: Meta;
  data?: DefaultData;
  /** base64 */
  binData?: string;
  strData?: string;
  jsonData?: JsonValue;
  customData?: JsonValue;
}

export interface Feedback {
  request?: SeldonMessage;
  response?: SeldonMessage;
  reward?: number;
  truth?: SeldonMessage;
}

export interface MessageMetadata {
  messagetype?: string;
  schema?: JsonValue;
  name?: string;
  datatype?: string;
  shape?: number[];
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: MessageMetadata[];
  outputs: MessageMetadata[];
  custom: Record<string, string>;
}

/** Which payload field a message uses; the response answers in the same form. */
export type PayloadKind = 'ndarray' | 'tensor' | 'jsonData' | 'strData' | 'binData';
