/**
 * @module http/upload
 * Streams a `multipart/form-data` job submission to disk with busboy (openapi-backend does not parse multipart
 * bodies). The file goes straight to `<uploads>/<job id>`, never into memory, and is cut off at the size limit;
 * the client's file name is kept only as sanitized metadata.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

import busboy from 'busboy';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

import { AppError } from '../errors.ts';

export interface StoredUpload {
  /** The job id the upload is stored under. */
  id: string;
  path: string;
  fileName: string | null;
  sizeBytes: number;
  /** SHA-256 of the file's bytes (hex), computed while streaming; part of the idempotency fingerprint. */
  sha256: string;
}

export interface UploadLocals {
  upload?: StoredUpload;
  /** Set once a job owns the file; otherwise it is deleted when the answer has been sent. */
  uploadClaimed?: boolean;
}

const MAX_FILE_NAME_LENGTH = 200;

/** Keeps a display name: no directories, no control characters, bounded length. */
export function sanitizeFileName(name: string | undefined): string | null {
  if (name === undefined) {
    return null;
  }
  const base = name.split(/[\\/]/).pop() ?? '';
  const cleaned = base.replace(/[\u0000-\u001f\u007f]/g, '').trim();
  if (cleaned === '' || cleaned === '.' || cleaned === '..') {
    return null;
  }
  return [...cleaned].slice(0, MAX_FILE_NAME_LENGTH).join('');
}

interface ParsedForm {
  fields: Record<string, string>;
  /** Null for a submission by `url`. */
  upload: StoredUpload | null;
}

function parseForm(req: Request, uploadsDir: string, maxBytes: number, allowedFields: ReadonlySet<string>): Promise<ParsedForm> {
  const id = randomUUID();
  const target = path.join(uploadsDir, id);
  return new Promise<ParsedForm>((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        limits: { files: 1, fileSize: maxBytes, fields: 20, fieldSize: 4096, parts: 25, fieldNameSize: 100 },
      });
    } catch {
      reject(new AppError('unsupported_content_type', 'The body must be multipart/form-data with a boundary.'));
      return;
    }
    const fields: Record<string, string> = {};
    const unknown: string[] = [];
    let failure: AppError | null = null;
    let fileWrite: Promise<StoredUpload> | null = null;
    const fail = (error: AppError): void => {
      failure ??= error;
    };
    let stopped = false;
    let currentOutput: ReturnType<typeof createWriteStream> | null = null;
    /**
     * Answers without reading the rest of the body: the request is unpiped and left paused, so TCP flow control
     * holds the client back until the error answer (sent with `Connection: close`) ends the connection.
     */
    const stopEarly = (error: AppError, output?: NodeJS.WritableStream & { destroy(): void }): void => {
      if (stopped) {
        return;
      }
      stopped = true;
      req.unpipe(parser);
      req.pause();
      output?.destroy();
      void rm(target, { force: true }).then(() => reject(error));
    };

    parser.on('field', (name, value, info) => {
      if (!allowedFields.has(name) || name === 'file') {
        unknown.push(name);
      } else if (info.valueTruncated) {
        fail(new AppError('invalid_request', `The field ${name} is too long.`));
      } else if (name in fields) {
        fail(new AppError('invalid_request', `The field ${name} appears more than once.`));
      } else {
        fields[name] = value;
      }
    });
    parser.on('file', (name, stream, info) => {
      if (name !== 'file') {
        unknown.push(name);
        stream.resume();
        return;
      }
      let truncated = false;
      // Piped at once: a listener attached later would miss the chunks that already flowed.
      const output = createWriteStream(target, { flags: 'wx' });
      currentOutput = output;
      stream.on('limit', () => {
        truncated = true;
        stopEarly(new AppError('upload_too_large', `The file is larger than the limit of ${maxBytes} bytes.`, { limit_bytes: maxBytes }), output);
      });
      const hash = createHash('sha256');
      fileWrite = (async () => {
        await pipeline(
          stream,
          async function* (source: AsyncIterable<Buffer>) {
            for await (const chunk of source) {
              hash.update(chunk);
              yield chunk;
            }
          },
          output,
        );
        if (truncated) {
          throw new AppError('upload_too_large', `The file is larger than the limit of ${maxBytes} bytes.`, { limit_bytes: maxBytes });
        }
        return { id, path: target, fileName: sanitizeFileName(info.filename), sizeBytes: output.bytesWritten, sha256: hash.digest('hex') };
      })();
      // Keep the rejection handled until `finish` looks at it.
      fileWrite.catch(() => undefined);
    });
    parser.on('filesLimit', () => fail(new AppError('too_many_files', 'Send exactly one file, in the field "file".')));
    parser.on('partsLimit', () => fail(new AppError('invalid_request', 'The form has too many parts.')));
    parser.on('fieldsLimit', () => fail(new AppError('invalid_request', 'The form has too many fields.')));
    parser.on('error', (error: Error) => {
      stopEarly(new AppError('invalid_request', `The multipart body is malformed: ${error.message}`));
    });
    parser.on('close', () => {
      if (stopped) {
        return;
      }
      void (async () => {
        let upload: StoredUpload | null = null;
        try {
          upload = fileWrite ? await fileWrite : null;
        } catch (error) {
          fail(error instanceof AppError ? error : new AppError('internal_error', 'Storing the upload failed.'));
        }
        if (unknown.length > 0) {
          fail(new AppError('unknown_field', `Unknown form fields: ${unknown.join(', ')}.`, { errors: unknown.map((name) => ({ location: `body.${name}`, message: 'unknown field' })) }));
        }
        if (!failure && upload === null && fields.url === undefined) {
          fail(new AppError('missing_file', 'The form needs a file in the field "file", or a "url".'));
        }
        if (!failure && upload !== null && fields.url !== undefined) {
          fail(new AppError('invalid_request', 'Send either a file or a url, not both.'));
        }
        if (!failure && upload?.sizeBytes === 0) {
          fail(new AppError('empty_file', 'The uploaded file is empty.'));
        }
        if (failure) {
          await rm(target, { force: true });
          reject(failure);
          return;
        }
        resolve({ fields, upload });
      })();
    });
    // A client that goes away mid-upload never ends the parser: close the file and delete what was written.
    req.once('close', () => {
      if (!req.complete) {
        stopEarly(new AppError('invalid_request', 'The request ended before its body did.'), currentOutput ?? undefined);
      }
    });
    req.pipe(parser);
  });
}

/** Deletes the stored upload of a request that no job took; call before answering with an error. */
export async function discardUpload(res: Response): Promise<void> {
  const { locals } = res;
  if (locals.upload && !locals.uploadClaimed) {
    locals.uploadClaimed = true;
    await rm(locals.upload.path, { force: true });
  }
}

/**
 * Express middleware for multipart job submissions: stores the file, puts the fields (and the file name as
 * `file`) in `req.body` for openapi-backend to validate, and deletes the file if no job took it.
 */
export function multipartUpload(options: {
  uploadsDir: string;
  maxBytes: number;
  allowedFields: ReadonlySet<string>;
  /** Checks the fields (and the file name as `file`); throws to refuse the form. */
  validateFields?: (fields: Record<string, unknown>) => void;
  onError: (res: Response, error: unknown) => void;
}): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const type = (req.headers['content-type'] ?? '').toLowerCase();
    if (!type.startsWith('multipart/form-data')) {
      options.onError(res, new AppError('unsupported_content_type', 'Send the audio as multipart/form-data with a "file" field, or a url as application/json.'));
      return;
    }
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > options.maxBytes + 1024 * 1024) {
      // Refuse at once; reading a body we will not keep only wastes the client's time.
      res.setHeader('Connection', 'close');
      options.onError(res, new AppError('upload_too_large', `The upload is larger than the limit of ${options.maxBytes} bytes.`, { limit_bytes: options.maxBytes }));
      return;
    }
    mkdir(options.uploadsDir, { recursive: true })
      .then(() => parseForm(req, options.uploadsDir, options.maxBytes, options.allowedFields))
      .then(
      ({ fields, upload }) => {
        if (upload) {
          res.locals.upload = upload;
          // A safety net: error answers discard the upload before they are sent (see `discardUpload`).
          res.on('close', () => void discardUpload(res));
        }
        const body = upload ? { ...fields, file: upload.fileName ?? '' } : fields;
        try {
          options.validateFields?.(body);
        } catch (error) {
          void discardUpload(res).then(() => options.onError(res, error));
          return;
        }
        req.body = body;
        next();
      },
      (error: unknown) => {
        if (!req.complete) {
          res.setHeader('Connection', 'close');
        }
        options.onError(res, error);
      },
    );
  };
}
