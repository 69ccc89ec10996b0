import createDebug from 'debug';

/** Namespaced debug logger: `DEBUG=msgflo*` shows them all, `DEBUG=msgflo:amqp` one. */
export function logger(namespace: string): createDebug.Debugger {
  return createDebug(`msgflo:${namespace}`);
}
