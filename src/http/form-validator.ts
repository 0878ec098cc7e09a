/**
 * @module http/form-validator
 * Validates the fields of a multipart job submission against `JobSubmission`. openapi-backend validates a
 * request body with the first of its `application/json` or `multipart/form-data` schemas, so with both declared
 * it would hold a form to the JSON schema; forms are checked here instead, with the same error shape.
 */
import ajvFormats from 'ajv-formats';
import { Ajv2020 } from 'ajv/dist/2020.js';

import { AppError } from '../errors.ts';

/** Checks the fields and turns those the schema types as integers from text into numbers, in place. */
export type FormValidator = (fields: Record<string, unknown>) => void;

/** `schema` must be dereferenced (openapi-backend's `definition` after `init()` is). */
export function createFormValidator(schema: object): FormValidator {
  // Form fields are text: coercion lets integer fields (retention_seconds) meet their schema and its bounds.
  const ajv = new Ajv2020({ strict: false, allErrors: true, coerceTypes: true });
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
