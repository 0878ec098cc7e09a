/**
 * @module http/locals
 * What the middleware leaves in `res.locals` for the handlers after it, typed once for every express `Response`.
 * Nothing imports this file: a global augmentation holds for the whole program.
 */
import type { AuthLocals } from './auth.ts';
import type { IdempotencyLocals } from './idempotency.ts';
import type { UploadLocals } from './upload.ts';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace -- express's own augmentation point is a namespace.
  namespace Express {
    interface Locals extends AuthLocals, IdempotencyLocals, UploadLocals {}
  }
}
