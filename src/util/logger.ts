import { createRequire } from 'node:module';
import type { Debugger, Debug } from 'debug';

// debug is CommonJS; required, not imported: an ESM import of it costs a participant about 4 MB more memory.
const createDebug = createRequire(import.meta.url)('debug') as Debug;

/** Namespaced debug logger: `DEBUG=msgflo*` shows them all, `DEBUG=msgflo:amqp` one. */
export function logger(namespace: string): Debugger {
  return createDebug(`msgflo:${namespace}`);
}

/** Whether DEBUG enables `namespace` (e.g. another library's, to leave its logging off when it is not). */
export function debugEnabled(namespace: string): boolean {
  return createDebug.enabled(namespace);
}
