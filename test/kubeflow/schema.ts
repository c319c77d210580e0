// Validators for the Kubernetes resources the Kubeflow files write or hold: a CRD's openAPIV3Schema, or a
// type of an OpenAPI document (Katib's). Fields a schema does not list are refused: the API server would
// drop them without a word, so a misspelt one would be lost.
import { Ajv, type ValidateFunction } from 'ajv';
import type { Obj } from './ir.js';

/** additionalProperties: false wherever an object schema lists its properties and says nothing else. */
function closed(schema: Obj): Obj {
  const walk = (s: unknown): void => {
    if (!s || typeof s !== 'object') return;
    const node = s as Obj;
    if (node.properties && node.additionalProperties === undefined && !node['x-kubernetes-preserve-unknown-fields']) node.additionalProperties = false;
    for (const child of Object.values(node)) walk(child);
  };
  const copy = structuredClone(schema);
  walk(copy);
  return copy;
}

/** Formats (int32, date-time, …) are Kubernetes' and left unchecked; types, enums and required are checked. */
export function compileClosed(schema: Obj): ValidateFunction {
  return new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(closed(schema));
}

/** The served version of a CRD for apiVersion, as a validator. */
export function crdValidator(crd: Obj, apiVersion: string): ValidateFunction {
  const version = (crd.spec.versions as Obj[]).find((v) => `${crd.spec.group}/${v.name}` === apiVersion && v.served);
  if (!version) throw new Error(`${crd.metadata.name} serves no ${apiVersion}`);
  return compileClosed(version.schema.openAPIV3Schema);
}

/** One type of a self-contained OpenAPI 3 document (its components.schemas), as a validator. */
export function openApiValidator(doc: Obj, type: string): ValidateFunction {
  return compileClosed({ components: doc.components, $ref: `#/components/schemas/${type}` });
}

export function schemaErrors(validate: ValidateFunction, value: unknown): string[] {
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}${e.keyword === 'additionalProperties' ? ` "${(e.params as { additionalProperty: string }).additionalProperty}"` : ''}`);
}
