/**
 * @module http/form-validator
 * Validates the fields of a multipart job submission against `JobSubmission`. openapi-backend validates a
 * request body with the first of its `application/json` or `multipart/form-data` schemas, so with both declared
 * it would hold a form to the JSON schema; forms are checked here instead, with the same error shape.
 */
import ajvFormats from 'ajv-formats';
import { Ajv2020 } from 'ajv/dist/2020.js';

import { AppError } from '../errors.ts';

export type FormValidator = (fields: Record<string, string>) => void;

/** `schema` must be dereferenced (openapi-backend's `definition` after `init()` is). */
export function createFormValidator(schema: object): FormValidator {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajvFormats.default(ajv);
  const validate = ajv.compile(schema);
  return (fields) => {
    if (validate(fields)) {
      return;
    }
    const errors = (validate.errors ?? []).map((error) => ({
      location: `requestBody${error.instancePath.replaceAll('/', '.')}`,
      message: error.message ?? 'is invalid',
    }));
    throw new AppError('invalid_request', errors.map((e) => `${e.location} ${e.message}`).join('; '), { errors });
  };
}
