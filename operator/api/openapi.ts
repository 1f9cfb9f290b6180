// zod -> Kubernetes structural OpenAPI v3 schema. zod's OpenAPI 3.0 output is
// close; the API server additionally wants int-or-string and preserve-unknown
// fields spelled its own way, and no JSON Schema keywords it does not know.
import { z } from 'zod';

export type JsonSchema = { [key: string]: unknown };

const DROPPED_KEYS = new Set(['$schema', 'id', '$id']);

const isObject = (v: unknown): v is JsonSchema => typeof v === 'object' && v !== null && !Array.isArray(v);

function structural(node: JsonSchema): JsonSchema {
  if (node['x-kubernetes-int-or-string'] === true) {
    const out: JsonSchema = { 'x-kubernetes-int-or-string': true };
    if (node.default !== undefined) out.default = node.default;
    if (typeof node.description === 'string') out.description = node.description;
    if (node['x-kubernetes-validations'] !== undefined) out['x-kubernetes-validations'] = node['x-kubernetes-validations'];
    return out;
  }
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node)) {
    if (DROPPED_KEYS.has(key)) continue;
    if (key === 'properties' && isObject(value)) {
      out.properties = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, isObject(v) ? structural(v) : v]));
    } else if (key === 'additionalProperties') {
      // `false` is implied (unknown fields are pruned); `{}` means "any value",
      // which only preserve-unknown-fields can express.
      if (isObject(value) && Object.keys(value).length > 0 && node['x-kubernetes-preserve-unknown-fields'] !== true) {
        out.additionalProperties = structural(value);
      }
    } else if (key === 'items' && isObject(value)) {
      out.items = structural(value);
    } else if ((key === 'anyOf' || key === 'oneOf' || key === 'allOf') && Array.isArray(value)) {
      throw new Error(`unions are not structural; mark the field x-kubernetes-int-or-string or restructure it (${JSON.stringify(value).slice(0, 120)})`);
    } else {
      out[key] = value;
    }
  }
  if (out['x-kubernetes-preserve-unknown-fields'] === true && out.type === undefined) out.type = 'object';
  return out;
}

/** The structural schema of a zod type, as the API server accepts it in a CRD. */
export function toStructuralSchema(schema: z.ZodType): JsonSchema {
  const raw = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'throw' }) as JsonSchema;
  return structural(raw);
}
