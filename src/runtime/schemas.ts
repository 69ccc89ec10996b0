/**
 * The FBP runtime protocol's JSON schemas (npm `fbp-protocol`) compiled with ajv, to check every frame a client
 * sends and every frame the runtime sends.
 *
 * The package ships draft-04 schemas whose `$ref`s point into the combined `{shared, graph, network, …}` object
 * (`#/shared/port`), with relative ids such as `input/addnode`. They are loaded here as one root document
 * without those ids, so every reference resolves against that root. The two formats they use (`uri`,
 * `date-time`) are checked by small functions of our own.
 */
import { createRequire } from 'node:module';
import type { Ajv } from 'ajv';
import { type ErrorObject, type ValidateFunction, newAjv } from '../util/ajv.js';
import { logger } from '../util/logger.js';

const log = logger('runtime');

export type Direction = 'input' | 'output';

type SchemaTree = Record<string, Record<string, unknown>>;

const require = createRequire(import.meta.url);

/**
 * Drop draft-04 relative `id`s and `$schema` (strings only: a property may be *named* id), and empty
 * `properties:` entries (null in the YAML source, e.g. network:persist).
 */
function withoutIds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutIds);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if ((k === 'id' || k === '$schema') && typeof v === 'string') continue;
    if (k === 'properties' && v === null) continue;
    out[k] = withoutIds(v);
  }
  return out;
}

/** RFC 3339 date-time, as JSON Schema's `date-time` format means it. */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function isUri(text: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(text)) return false;
  try {
    new URL(text);
    return true;
  } catch {
    return false;
  }
}

let compiled: { ajv: Ajv; schemas: SchemaTree } | undefined;

function load(): { ajv: Ajv; schemas: SchemaTree } {
  if (compiled) return compiled;
  const schemas = require('fbp-protocol/schema/schemas.js') as SchemaTree;
  const ajv = newAjv();
  ajv.addFormat('date-time', { type: 'string', validate: (s: string) => DATE_TIME.test(s) && !Number.isNaN(Date.parse(s)) });
  ajv.addFormat('uri', { type: 'string', validate: isUri });
  ajv.addSchema({ $id: 'fbp', ...(withoutIds(schemas) as object) });
  compiled = { ajv, schemas };
  return compiled;
}

const validators = new Map<string, ValidateFunction | null>();
const ACCEPT_ALL = Object.assign(() => true, { errors: null }) as unknown as ValidateFunction;

function validatorFor(direction: Direction, protocol: string, command: string): ValidateFunction | undefined {
  const key = `${direction}:${protocol}:${command}`;
  let v = validators.get(key);
  if (v === undefined) {
    const { ajv, schemas } = load();
    const exists = Object.hasOwn(schemas, protocol) && Object.hasOwn((schemas[protocol] as Record<string, object>)[direction] ?? {}, command);
    try {
      v = exists ? (ajv.getSchema(`fbp#/${protocol}/${direction}/${command}`) ?? null) : null;
    } catch (err) {
      // A schema ajv cannot compile: the message is only known, not checked.
      log('cannot compile the schema of %s %s:%s: %s', direction, protocol, command, (err as Error).message);
      v = ACCEPT_ALL;
    }
    validators.set(key, v);
  }
  return v ?? undefined;
}

/** Whether the schemas define this message (e.g. `graph` `input` `addnode`). */
export function hasSchema(direction: Direction, protocol: string, command: string): boolean {
  return validatorFor(direction, protocol, command) !== undefined;
}

/** Protocols and their commands, as the schemas define them for `direction`. */
export function commandsOf(direction: Direction): Record<string, string[]> {
  const { schemas } = load();
  const out: Record<string, string[]> = {};
  for (const [protocol, tree] of Object.entries(schemas)) {
    const messages = (tree as Record<string, Record<string, unknown> | undefined>)[direction];
    if (messages) out[protocol] = Object.keys(messages);
  }
  return out;
}

function describe(e: ErrorObject): string {
  const at = e.instancePath || '(message)';
  if (e.keyword === 'additionalProperties') return `${at} has an unexpected key '${(e.params as { additionalProperty: string }).additionalProperty}'`;
  if (e.keyword === 'required') return `${at} lacks '${(e.params as { missingProperty: string }).missingProperty}'`;
  if (e.keyword === 'enum') return `${at} must be one of ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}`;
  return `${at} ${e.message ?? 'is invalid'}`;
}

/**
 * Problems of a message against its schema, as readable sentences (empty when valid). A message the schemas do
 * not know is one problem.
 */
export function schemaProblems(direction: Direction, message: unknown): string[] {
  const m = message as { protocol?: unknown; command?: unknown } | null;
  if (m === null || typeof m !== 'object' || Array.isArray(m)) return ['a message must be a JSON object {protocol, command, payload}'];
  if (typeof m.protocol !== 'string' || typeof m.command !== 'string') return ["a message needs string 'protocol' and 'command'"];
  const v = validatorFor(direction, m.protocol, m.command);
  if (!v) return [`unknown message ${m.protocol}:${m.command}`];
  if (v(message)) return [];
  // allOf branches repeat the same complaint; keep each once.
  return [...new Set((v.errors ?? []).map(describe))];
}

/** The capabilities the schemas define, with the messages each one permits. */
export interface CapabilityDefinition {
  name: string;
  inputs: string[];
  outputs: string[];
}

export function capabilityDefinitions(): CapabilityDefinition[] {
  const { schemas } = load();
  const items = (schemas.shared as { capabilities?: { items?: { _enumDescriptions?: unknown[] } } }).capabilities?.items?._enumDescriptions ?? [];
  return items.map((raw) => {
    const c = raw as { name: string; inputs?: string[]; outputs?: string[] };
    return { name: c.name, inputs: c.inputs ?? [], outputs: c.outputs ?? [] };
  });
}
