/**
 * @module http/form-integers
 * Multipart form fields are text, and openapi-backend coerces only query and path parameters: a field the
 * spec types as an integer is turned into a number here when it is written as one, so that validation applies
 * the schema's bounds (anything else stays text and fails validation as not an integer).
 */
import type { RequestHandler } from 'express';
import type { Document } from 'openapi-backend';

/** The properties of the `JobSubmission` schema typed `integer`. */
export function integerSubmissionFields(spec: Document): ReadonlySet<string> {
  const schema = (spec.components?.schemas?.JobSubmission ?? {}) as { properties?: Record<string, { type?: unknown }> };
  return new Set(Object.entries(schema.properties ?? {}).filter(([, property]) => property.type === 'integer').map(([name]) => name));
}

export function coerceFormIntegers(fields: ReadonlySet<string>): RequestHandler {
  return (req, _res, next) => {
    const body = req.body as Record<string, unknown> | undefined;
    for (const name of fields) {
      const value = body?.[name];
      if (body && typeof value === 'string' && /^-?\d{1,15}$/.test(value.trim())) {
        body[name] = Number(value.trim());
      }
    }
    next();
  };
}
