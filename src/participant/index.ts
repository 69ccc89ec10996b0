import { connectTransport } from '../transport/index.js';
import type { ParticipantDefinition } from './definition.js';
import { Participant, type ParticipantOptions } from './participant.js';

export * from './definition.js';
export { ChartBehaviour, functionBehaviour, statechartBehaviour, type ChartContext } from './chart.js';
export { ForeignChart, NetworkWatcher, watchNetwork, DEFAULT_MAX_LINES, type WatchOptions, type SpyEvent, type TraceEvent, type WatcherEvents } from './watch.js';
export { Snooper, SnoopLease, setSnoop, snoopFromEnv, DEFAULT_LEASE_MS, type SnoopRequest, type SnooperOptions } from './snoop.js';
export { Participant, type ParticipantOptions, heartbeatSeconds, heartbeatOf, DEFAULT_HEARTBEAT_SECONDS, LIBRARY_ID } from './participant.js';

/** Connect to `broker`, then start the participant. */
export async function startParticipant<In extends string, Out extends string>(
  definition: ParticipantDefinition<In, Out>,
  broker: string,
  options: ParticipantOptions,
): Promise<Participant<In, Out>> {
  const transport = await connectTransport(broker, { name: options.role });
  const participant = new Participant(definition, transport, options);
  try {
    await participant.start();
  } catch (err) {
    await transport.close().catch(() => {});
    throw err;
  }
  return participant;
}
