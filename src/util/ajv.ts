/**
 * Ajv, loaded on first use. Importing it costs about 8 MB of memory, which a participant without port schemas, or a
 * process that never reads a discovery message, need not pay.
 */
import type { Ajv as AjvClass } from 'ajv';
import { requireCjs } from './cjs.js';

export type { ErrorObject, ValidateFunction } from 'ajv';

/** A new Ajv instance with the options msgflo-ts uses everywhere (all errors, not strict about unknown keywords). */
export function newAjv(): AjvClass {
  const { Ajv } = requireCjs('ajv') as typeof import('ajv');
  return new Ajv({ allErrors: true, strict: false });
}
