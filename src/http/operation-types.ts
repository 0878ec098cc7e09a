/**
 * @module http/operation-types
 * Handler types derived from the generated spec types, so that a handler cannot answer with a body the spec
 * does not declare. (openapi-backend's own typed-handler helper does not compile.)
 */
import type { Context } from 'openapi-backend';
import type { Request, Response } from 'express';

import type { components, operations } from '../../generated/openapi.d.ts';

export type OperationId = keyof operations;
export type Schemas = components['schemas'];

type ResponsesOf<O extends OperationId> = operations[O]['responses'];

/** The JSON body the spec declares for status `S` of operation `O`. */
export type JsonBody<O extends OperationId, S extends keyof ResponsesOf<O>> = ResponsesOf<O>[S] extends {
  content: { 'application/json': infer Body };
}
  ? Body
  : never;

export type QueryOf<O extends OperationId> = operations[O]['parameters'] extends { query?: infer Q } ? NonNullable<Q> : never;
export type PathOf<O extends OperationId> = operations[O]['parameters'] extends { path: infer P } ? P : never;

/** What a handler gets: the validated request in `c.request`, typed by operation. */
export type TypedContext<O extends OperationId> = Omit<Context, 'request'> & {
  request: Omit<Context['request'], 'query' | 'params'> & { query: QueryOf<O>; params: PathOf<O> };
};

export type OperationHandler<O extends OperationId> = (c: TypedContext<O>, req: Request, res: Response) => Promise<void>;

/** Sends a JSON body that must match the spec's schema for that status. */
export function sendJson<O extends OperationId, S extends keyof ResponsesOf<O> & number>(
  res: Response,
  _operation: O,
  status: S,
  body: JsonBody<O, S>,
): void {
  res.status(status).json(body);
}

/** HEAD is GET without the body (RFC 9110): the spec lists GET operations, and node drops the body of a HEAD answer. */
export function routedMethod(method: string): string {
  return method === 'HEAD' ? 'GET' : method;
}
