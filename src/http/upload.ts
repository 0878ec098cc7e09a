/**
 * @module http/upload
 * Streams a `multipart/form-data` job submission with busboy (openapi-backend does not parse multipart bodies)
 * straight into the blob store under `uploads/<job id>`: a local file, or a multipart upload to the bucket, so it
 * is never whole in memory nor, with a bucket, on this node's disk; it is cut off at the size limit. The
 * client's file name is kept only as sanitized metadata. Each upload holds a socket and an open file or upload,
 * so their number is capped and a client that stops sending is cut (see `bodyIdleTimeout`). A store that cannot
 * be reached is a 503 `storage_unavailable`, and no job is created.
 */
import { createHash, randomUUID } from 'node:crypto';
import { pipeline, Transform } from 'node:stream';

import busboy from 'busboy';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

import { AppError, isAppError } from '../errors.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { BlobTooLargeError, uploadKey } from '../storage/blob-store.ts';

export interface StoredUpload {
  /** The job id the upload is stored under. */
  id: string;
  /** Its key in the blob store, which the job's row keeps as `input_path`. */
  key: string;
  fileName: string | null;
  sizeBytes: number;
  /** SHA-256 of the file's bytes (hex), computed while streaming; part of the idempotency fingerprint. */
  sha256: string;
}

export interface UploadLocals {
  upload?: StoredUpload;
  /** Where `upload` is, for discarding it. */
  uploadStore?: BlobStore;
  /** Set once a job owns the file; otherwise it is deleted when the answer has been sent. */
  uploadClaimed?: boolean;
}

const MAX_FILE_NAME_LENGTH = 200;
/** Control characters (C0, DEL, C1) and the bidirectional marks and overrides that can make `gpj.exe` read `exe.jpg`. */
const UNSAFE_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
/** What a refused upload is told to wait: about as long as an upload slot takes to free up. */
const UPLOADS_BUSY_RETRY_AFTER_SECONDS = 5;
/** What an upload refused because the storage is down is told to wait. */
const STORAGE_RETRY_AFTER_SECONDS = 30;

/** Keeps a display name: no directories, no control or bidi-override characters, bounded length. */
export function sanitizeFileName(name: string | undefined): string | null {
  if (name === undefined) {
    return null;
  }
  const base = name.split(/[\\/]/).pop() ?? '';
  const cleaned = base.replace(UNSAFE_CHARACTERS, '').trim();
  if (cleaned === '' || cleaned === '.' || cleaned === '..') {
    return null;
  }
  return [...cleaned].slice(0, MAX_FILE_NAME_LENGTH).join('');
}

/** The most bytes of one form field: 4096 characters of at most 4 UTF-8 bytes. */
const FIELD_MAX_BYTES = 4096 * 4;

interface ParsedForm {
  fields: Record<string, string | string[]>;
  upload: StoredUpload;
}

/** Which fields a form may have. */
export interface FormShape {
  allowed: ReadonlySet<string>;
  /** Fields that may repeat; their values are collected into an array. */
  arrays?: ReadonlySet<string> | undefined;
  /** Other spellings of a field (`timestamp_granularities[]`, as OpenAI's SDKs send arrays). */
  aliases?: Readonly<Record<string, string>> | undefined;
}

function parseForm(req: Request, blobs: BlobStore, maxBytes: number, shape: FormShape): Promise<ParsedForm> {
  const id = randomUUID();
  const key = uploadKey(id);
  const tooLarge = (): AppError => new AppError('upload_too_large', `The file is larger than the limit of ${maxBytes} bytes.`, { limit_bytes: maxBytes });
  const storeFailure = (error: unknown): AppError =>
    error instanceof BlobTooLargeError ? tooLarge() : isAppError(error) ? error : new AppError('internal_error', 'Storing the upload failed.', {}, { cause: error });
  return new Promise<ParsedForm>((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        // Browsers and curl send file names as raw UTF-8; busboy's default reads them as latin1.
        defParamCharset: 'utf8',
        // busboy reports a limit when the size reaches it; the limits are inclusive, so a file may have maxBytes.
        // A field's length in characters is the schema's to check (the longest, OpenAI's `prompt`, is 4096
        // characters of up to 4 bytes each); busboy only bounds the bytes.
        limits: { files: 1, fileSize: maxBytes + 1, fields: 20, fieldSize: FIELD_MAX_BYTES + 1, parts: 25, fieldNameSize: 100 },
      });
    } catch {
      reject(new AppError('unsupported_content_type', 'The body must be multipart/form-data with a boundary.'));
      return;
    }
    const fields: Record<string, string | string[]> = {};
    const unknown: string[] = [];
    /** A `file` part that carries no file: a browser form with none chosen (`filename=""`), or a text field. */
    let noFileChosen = false;
    let failure: AppError | null = null;
    let fileWrite: Promise<StoredUpload> | null = null;
    const fail = (error: AppError): void => {
      failure ??= error;
    };
    let stopped = false;
    /** Stops the store's write; the store then removes what it had written. */
    const storing = new AbortController();
    /**
     * Answers without reading the rest of the body: the request is unpiped and left paused, so TCP flow control
     * holds the client back until the error answer (sent with `Connection: close`) ends the connection. The
     * answer waits until the partial object is gone.
     */
    const stopEarly = (error: AppError): void => {
      if (stopped) {
        return;
      }
      stopped = true;
      req.unpipe(parser);
      req.pause();
      storing.abort(error);
      void (fileWrite ?? Promise.resolve()).catch(() => undefined).then(() => reject(error));
    };

    parser.on('field', (sent, value, info) => {
      const name = shape.aliases?.[sent] ?? sent;
      const collected = fields[name];
      if (name === 'url') {
        fail(new AppError('invalid_request', 'A form carries a file; a URL is submitted as JSON to POST /jobs/from-url.'));
      } else if (name === 'file') {
        noFileChosen = true;
      } else if (!shape.allowed.has(name)) {
        unknown.push(sent);
      } else if (info.valueTruncated) {
        fail(new AppError('invalid_request', `The field ${name} is too long.`));
      } else if (shape.arrays?.has(name)) {
        fields[name] = [...(Array.isArray(collected) ? collected : []), value];
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
      stream.on('limit', () => {
        truncated = true;
        stopEarly(tooLarge());
      });
      const hash = createHash('sha256');
      // Piped at once: a listener attached later would miss the chunks that already flowed.
      const body = pipeline(
        stream,
        new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            hash.update(chunk);
            callback(null, chunk);
          },
        }),
        () => undefined,
      );
      fileWrite = (async () => {
        const { sizeBytes } = await blobs.put(key, body, { maxBytes, signal: storing.signal });
        if (truncated) {
          throw tooLarge();
        }
        return { id, key, fileName: sanitizeFileName(info.filename), sizeBytes, sha256: hash.digest('hex') };
      })();
      // A store that fails (unreachable, full) stops reading, so the form would never end: answer at once.
      fileWrite.catch((error: unknown) => stopEarly(storeFailure(error)));
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
          fail(storeFailure(error));
        }
        if (unknown.length > 0) {
          fail(new AppError('unknown_field', `Unknown form fields: ${unknown.join(', ')}.`, { errors: unknown.map((name) => ({ location: `body.${name}`, message: 'unknown field' })) }));
        }
        // No name and no bytes: the part a browser sends for a file input with no file chosen (filename="").
        if (upload?.sizeBytes === 0 && upload.fileName === null) {
          noFileChosen = true;
          upload = null;
        }
        if (!failure && upload === null) {
          fail(
            noFileChosen
              ? new AppError('missing_file', 'The field "file" holds no file (no file was chosen); send the audio as a file part.')
              : new AppError('missing_file', 'The form needs a file in the field "file".'),
          );
        }
        if (!failure && upload?.sizeBytes === 0) {
          fail(new AppError('empty_file', 'The uploaded file is empty.'));
        }
        if (!failure && upload !== null) {
          resolve({ fields, upload });
          return;
        }
        if (fileWrite !== null) {
          await blobs.remove(key).catch(() => undefined);
        }
        reject(failure ?? new AppError('missing_file', 'The form needs a file in the field "file".'));
      })();
    });
    // A client that goes away mid-upload never ends the parser: close the file and delete what was written.
    req.once('close', () => {
      if (!req.complete) {
        stopEarly(new AppError('invalid_request', 'The request ended before its body did.'));
      }
    });
    // One that stalls is answered 408 by `bodyIdleTimeout`; once that answer is out node no longer ties the request
    // to its connection (no 'close' comes when it shuts), so the file is let go of here.
    req.once('timeout', () => {
      if (!req.complete) {
        stopEarly(new AppError('request_timeout', 'The client stopped sending the upload.'));
      }
    });
    req.pipe(parser);
  });
}

/** Deletes the stored upload of a request that no job took; call before answering with an error. */
export async function discardUpload(res: Response): Promise<void> {
  const { locals } = res;
  if (locals.upload && locals.uploadStore && !locals.uploadClaimed) {
    locals.uploadClaimed = true;
    await locals.uploadStore.remove(locals.upload.key);
  }
}

/**
 * Express middleware for multipart job submissions: stores the file, puts the fields (and the file name as
 * `file`) in `req.body` for openapi-backend to validate, and deletes the file if no job took it.
 */
export function multipartUpload(options: {
  blobs: BlobStore;
  maxBytes: number;
  /** Uploads read at once; past it the answer is 503 before the body is read. */
  maxConcurrent: number;
  allowedFields: ReadonlySet<string>;
  arrayFields?: ReadonlySet<string>;
  fieldAliases?: Readonly<Record<string, string>>;
  /** Checks the fields (and the file name as `file`); throws to refuse the form. */
  validateFields?: (fields: Record<string, unknown>) => void;
  onError: (res: Response, error: unknown) => void;
}): RequestHandler {
  let active = 0;
  return (req: Request, res: Response, next: NextFunction) => {
    const type = (req.headers['content-type'] ?? '').toLowerCase();
    if (!type.startsWith('multipart/form-data')) {
      options.onError(res, new AppError('unsupported_content_type', 'Send the audio as multipart/form-data with a "file" field; a URL goes as application/json to POST /jobs/from-url.'));
      return;
    }
    const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (encoding !== 'identity') {
      // busboy would read the compressed bytes as the form; audio hardly compresses anyway.
      res.setHeader('Connection', 'close');
      options.onError(res, new AppError('unsupported_content_type', `A form cannot be sent with Content-Encoding ${JSON.stringify(encoding)}; send it uncompressed.`));
      return;
    }
    if (active >= options.maxConcurrent) {
      // Each upload holds a socket and an open file: past the cap, refuse before reading anything.
      res.setHeader('Retry-After', String(UPLOADS_BUSY_RETRY_AFTER_SECONDS));
      res.setHeader('Connection', 'close');
      options.onError(res, new AppError('too_many_uploads', `${active} uploads are being received, the most this server takes at once; try again shortly.`));
      return;
    }
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > options.maxBytes + 1024 * 1024) {
      // Refuse at once; reading a body we will not keep only wastes the client's time.
      res.setHeader('Connection', 'close');
      options.onError(res, new AppError('upload_too_large', `The upload is larger than the limit of ${options.maxBytes} bytes.`, { limit_bytes: options.maxBytes }));
      return;
    }
    active++;
    parseForm(req, options.blobs, options.maxBytes, { allowed: options.allowedFields, arrays: options.arrayFields, aliases: options.fieldAliases })
      .finally(() => {
        active--;
      })
      .then(
      ({ fields, upload }) => {
        res.locals.upload = upload;
        res.locals.uploadStore = options.blobs;
        // A safety net: error answers discard the upload before they are sent (see `discardUpload`).
        res.on('close', () => void discardUpload(res));
        const body = { ...fields, file: upload.fileName ?? '' };
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
        // (A stalled upload has had its 408 already.)
        if (!req.complete && !res.headersSent) {
          res.setHeader('Connection', 'close');
        }
        if (isAppError(error) && error.code === 'storage_unavailable' && !res.headersSent) {
          res.setHeader('Retry-After', String(STORAGE_RETRY_AFTER_SECONDS));
        }
        options.onError(res, error);
      },
    );
  };
}
