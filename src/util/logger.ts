import type { Debugger, Debug } from 'debug';
import { requireCjs } from './cjs.js';

const createDebug = requireCjs('debug') as Debug;

/** Namespaced debug logger: `DEBUG=msgflo*` shows them all, `DEBUG=msgflo:amqp` one. */
export function logger(namespace: string): Debugger {
  return createDebug(`msgflo:${namespace}`);
}

/** Whether DEBUG enables `namespace` (e.g. another library's, to leave its logging off when it is not). */
export function debugEnabled(namespace: string): boolean {
  return createDebug.enabled(namespace);
}
