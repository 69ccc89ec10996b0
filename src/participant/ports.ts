/**
 * The ports a participant definition gives, as it announces them: read from the definition alone, with no
 * transport and nothing started (the runtime reads participant files this way to list their ports).
 */
import type { ParticipantInfo, PortDefinition } from '../protocol/discovery.js';
import { queueName } from '../protocol/naming.js';
import type { ParticipantDefinition, PortSpec } from './definition.js';

/** The outport every participant has, unless its definition declares its own `error` port. */
export const ERROR_PORT: PortSpec = Object.freeze({ id: 'error', type: 'error', description: 'Errors of failed inputs' });

/** The queue of a port of `role` (none for a hidden port). */
export function portQueue(role: string, port: PortSpec): string | undefined {
  return port.hidden ? undefined : (port.queue ?? queueName(role, port.id));
}

/** A definition's outports, with the `error` port added when it declares none. */
export function outportsOf(definition: Pick<ParticipantDefinition, 'outports'>): PortSpec[] {
  const ports: PortSpec[] = [...definition.outports];
  if (!ports.some((p) => p.id === 'error')) ports.push(ERROR_PORT);
  return ports;
}

/** What a participant of `definition` announces about itself as `role`: component, label, icon and its visible ports. */
export function describeDefinition(
  definition: ParticipantDefinition,
  role: string,
): Pick<ParticipantInfo, 'component' | 'inports' | 'outports' | 'label' | 'icon'> {
  const port = (p: PortSpec): PortDefinition | undefined => {
    const queue = portQueue(role, p);
    if (!queue) return undefined;
    const d: PortDefinition = { id: p.id, type: p.type ?? 'any', queue, hidden: false };
    if (p.description) d.description = p.description;
    if (p.schema) d.schema = p.schema;
    return d;
  };
  const visible = (ports: readonly PortSpec[]) => ports.map(port).filter((p): p is PortDefinition => p !== undefined);
  const out: Pick<ParticipantInfo, 'component' | 'inports' | 'outports' | 'label' | 'icon'> = {
    component: definition.component,
    inports: visible(definition.inports),
    outports: visible(outportsOf(definition)),
  };
  const label = definition.label ?? definition.description;
  if (label) out.label = label;
  if (definition.icon) out.icon = definition.icon;
  return out;
}
