/**
 * @module http/served-spec
 * The spec as this server serves it (`/openapi.yaml`, `/openapi.json`, `/docs`): `openapi.yaml` describes a server
 * with API keys; one started without keys requires none, so its spec must not declare a security requirement
 * (clients, Swagger UI and fuzzers would send keys or expect 401s that never come).
 */
import type { Document } from 'openapi-backend';

export interface ServedSpecOptions {
  apiKeys: boolean;
}

/** The methods an OpenAPI path item can hold. */
export const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

type Operation = { security?: unknown; responses?: Record<string, unknown> };

/** A copy of `spec` true to a server configured with `options`; `spec` itself is left as it is. */
export function servedSpec(spec: Document, options: ServedSpecOptions): Document {
  const served = structuredClone(spec);
  if (options.apiKeys) {
    return served;
  }
  delete served.security;
  for (const item of Object.values(served.paths ?? {})) {
    for (const method of METHODS) {
      const operation = (item as Record<string, Operation | undefined> | undefined)?.[method];
      if (operation) {
        delete operation.security;
        delete operation.responses?.['401'];
      }
    }
  }
  const components = served.components as { securitySchemes?: unknown; responses?: Record<string, unknown> } | undefined;
  if (components) {
    delete components.securitySchemes;
    delete components.responses?.Unauthorized;
  }
  return served;
}
