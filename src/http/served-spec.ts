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
  // The shared answers the removed 401s pointed at (`Unauthorized`, and `OpenAIUnauthorized` on `/v1/*`) go too.
  const unauthorized = new Set<string>();
  for (const item of Object.values(served.paths ?? {})) {
    for (const method of METHODS) {
      const operation = (item as Record<string, Operation | undefined> | undefined)?.[method];
      if (operation) {
        delete operation.security;
        const ref = (operation.responses?.['401'] as { $ref?: unknown } | undefined)?.$ref;
        if (typeof ref === 'string') {
          unauthorized.add(ref.replace('#/components/responses/', ''));
        }
        delete operation.responses?.['401'];
      }
    }
  }
  const components = served.components as { securitySchemes?: unknown; responses?: Record<string, unknown> } | undefined;
  if (components) {
    delete components.securitySchemes;
    for (const name of unauthorized) {
      delete components.responses?.[name];
    }
  }
  return served;
}
