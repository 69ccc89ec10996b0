/**
 * The runtime sub-protocol: `getruntime` (what this runtime is and may do for the client, then the live
 * graph's exported ports), and `packet` (data for an exported inport of the started live graph; what leaves
 * its exported outports comes back as runtime:packet from the live network).
 */
import { ProtocolError } from '../../errors.js';
import { GRAPH_NOT_FOUND, PlainProtocolError, type ProtocolHandlers } from '../context.js';

/** Packet events msgflo has no equivalent for: accepted, answered with packetsent, nothing is sent. */
const BRACKETS = new Set(['connect', 'begingroup', 'endgroup', 'disconnect']);

export const runtimeHandlers: ProtocolHandlers = {
  getruntime(ctx) {
    ctx.reply('runtime', ctx.runtime.description(true));
    const live = ctx.runtime.live.graph;
    if (live) ctx.reply('ports', ctx.runtime.portsPayload(live));
  },

  async packet(ctx, payload) {
    const rt = ctx.runtime;
    const graph = String(payload.graph);
    const doc = rt.graphs.get(graph);
    if (!doc) throw new PlainProtocolError(GRAPH_NOT_FOUND);
    const echo = { ...payload };
    if (BRACKETS.has(String(payload.event))) {
      ctx.reply('packetsent', echo);
      return;
    }
    if (!rt.live.isLive(graph) || !rt.live.isStarted) {
      throw new ProtocolError(`graph '${graph}' is not running: send network:start first`, 'Start the network (network:start), then send packets to its exported inports.');
    }
    const port = doc.exported('inport', String(payload.port));
    if (!port) {
      const known = doc.inports.map((p) => p.public);
      throw new ProtocolError(`graph '${graph}' has no exported inport '${String(payload.port)}'; it has: ${known.join(', ') || '(none)'}`, 'Export an inport with graph:addinport, or use one of those.');
    }
    await rt.sendToNode(port.node, port.port, payload.payload);
    ctx.reply('packetsent', echo);
  },
};
