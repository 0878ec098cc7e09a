/**
 * Generators that name enum constants (Go, Java) take `x-enum-varnames` by position: a value added to an enum
 * without its name shifts every name after it (openapi-generator's Python client then does not even import).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { loadSpec } from '../src/http/app.ts';

test('every enum with x-enum-varnames names each of its values once, in order', () => {
  const schemas = (loadSpec().components?.schemas ?? {}) as Record<string, { enum?: unknown[]; 'x-enum-varnames'?: string[] }>;
  const named = Object.entries(schemas).filter(([, schema]) => schema['x-enum-varnames'] !== undefined);
  assert.ok(named.length > 0);
  for (const [name, schema] of named) {
    const names = schema['x-enum-varnames'] ?? [];
    assert.equal(names.length, schema.enum?.length, `${name}: ${String(names.length)} names for ${String(schema.enum?.length)} values`);
    assert.equal(new Set(names).size, names.length, `${name}: a name appears twice`);
  }
});
