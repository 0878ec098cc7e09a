/**
 * @module http/body-timeout
 * Cuts a request whose client stops sending its body. Node only bounds a whole request (`requestTimeout`, 300 s
 * by default), so a client that sends headers and part of an upload and then stalls would hold a socket (and
 * the upload's open file) for minutes; hundreds of them exhaust the open-file limit. The socket's idle timer
 * measures silence while the body is read (the server writes nothing then); it is cleared once the body ended.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';

import { AppError } from '../errors.ts';

function hasBody(req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? '0') > 0;
}

export function bodyIdleTimeout(options: { idleMs: number; onTimeout: (res: Response, error: AppError) => void }): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (!hasBody(req) || req.complete) {
      next();
      return;
    }
    req.setTimeout(options.idleMs, () => {
      if (req.complete) {
        return;
      }
      if (res.headersSent) {
        req.socket.destroy();
        return;
      }
      // The answer closes the connection; whoever reads the body (an upload) sees the request end unfinished and
      // deletes what it stored.
      res.setHeader('Connection', 'close');
      options.onTimeout(res, new AppError('request_timeout', `The client sent nothing for ${options.idleMs} ms before the request body ended.`));
    });
    const clear = (): void => {
      req.setTimeout(0);
    };
    req.once('end', clear);
    res.once('finish', clear);
    next();
  };
}
