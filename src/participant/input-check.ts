/**
 * What an input must be before a handler sees it, by port: a body that is UTF-8 text (any port), JSON on a port
 * with a JSON type, data that fits the port's schema. Each refusal is a coded error the input is dead-lettered with.
 */
import { BadEncodingError, BadJsonError, SchemaError } from '../errors.js';
import type { Delivery } from '../transport/types.js';
import { newAjv, type ValidateFunction } from '../util/ajv.js';
import type { PortSpec } from './definition.js';
import { portQueue } from './ports.js';

export interface ResolvedPort extends PortSpec {
  queue: string | undefined;
  validate: ValidateFunction | undefined;
}

/** Types whose data must be JSON; a body that is not JSON is refused on such a port. */
const JSON_TYPES = new Set(['object', 'array', 'number', 'int', 'integer', 'boolean', 'bang']);

/** Compiles the port schemas of every participant of this process; loaded when the first schema is met. */
let ajv: ReturnType<typeof newAjv> | undefined;

/** A port of `role` with its queue and its schema compiled. */
export function resolvePort(role: string, p: PortSpec): ResolvedPort {
  return { ...p, queue: portQueue(role, p), validate: p.schema ? (ajv ??= newAjv()).compile(p.schema) : undefined };
}

/** Why a delivery's body cannot be handled on `port` (not UTF-8; not JSON on a JSON port), or undefined. */
export function bodyRefusal(role: string, port: ResolvedPort, delivery: Delivery): Error | undefined {
  if (delivery.jsonError instanceof BadEncodingError) return delivery.jsonError;
  if (delivery.jsonError && port.type && JSON_TYPES.has(port.type)) {
    return new BadJsonError(`Input on ${role}.${port.id}`, { cause: delivery.jsonError });
  }
  return undefined;
}

/** Why `data` does not fit `port`'s schema, or undefined. */
export function schemaRefusal(role: string, port: ResolvedPort, data: unknown): SchemaError | undefined {
  if (!port.validate || port.validate(data)) return undefined;
  return new SchemaError(`Input on ${role}.${port.id}`, (port.validate.errors ?? []).map((e) => `${e.instancePath || 'data'} ${e.message}`));
}
