/**
 * How a client's frame becomes a request the runtime handles: parsed; its sub-protocol one the runtime speaks;
 * then, once the runtime has checked the secret, its command known and offered, its graph named and there, and
 * its payload valid against the protocol's schema. Every refusal names the sub-protocol to answer `error` on.
 */
import { ProtocolError } from '../errors.js';
import { GRAPH_NOT_FOUND, NO_GRAPH, PlainProtocolError } from './context.js';
import { capabilityDefinitions, commandsOf, schemaProblems } from './schemas.js';

export interface Request {
  protocol: string;
  command: string;
  /** A copy of the frame's payload, for the handler. */
  payload: unknown;
  requestId: string | undefined;
  /** The secret it carries: top-level, or in the payload as older clients and fbp-client send it. */
  secret: unknown;
  /** The frame as sent. */
  message: Record<string, unknown>;
}

/** Why a frame is refused, and the sub-protocol of the `error` reply. */
export interface Refusal {
  protocol: string;
  error: Error;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A frame (text, a Buffer, or an already parsed message) as a request, or why it is none. */
export function parseFrame(frame: string | Buffer | object): Request | Refusal {
  let message: unknown = frame;
  if (typeof frame === 'string' || Buffer.isBuffer(frame)) {
    const text = typeof frame === 'string' ? frame : frame.toString('utf8');
    try {
      message = JSON.parse(text);
    } catch (err) {
      return { protocol: 'runtime', error: new ProtocolError(`frame is not JSON (${(err as Error).message})`) };
    }
  }
  if (!isObject(message) || typeof message.protocol !== 'string' || typeof message.command !== 'string') {
    return { protocol: 'runtime', error: new ProtocolError('a message must be a JSON object {protocol, command, payload} with string protocol and command') };
  }
  const payload = isObject(message.payload) ? { ...message.payload } : message.payload;
  return {
    protocol: message.protocol,
    command: message.command,
    payload,
    requestId: typeof message.requestId === 'string' ? message.requestId : undefined,
    secret: message.secret ?? (isObject(payload) ? payload.secret : undefined),
    message,
  };
}

/** What a runtime with these capabilities and sub-protocol handlers accepts. */
export class FrameRules {
  private readonly known: Record<string, string[]>;
  private readonly allowed: Set<string>;

  constructor(
    capabilities: readonly string[],
    private readonly protocols: Readonly<Record<string, Readonly<Record<string, unknown>>>>,
  ) {
    this.known = commandsOf('input');
    const defs = capabilityDefinitions();
    this.allowed = new Set(['runtime:getruntime', ...defs.filter((d) => capabilities.includes(d.name)).flatMap((d) => d.inputs)]);
  }

  /** Before the secret: a sub-protocol this runtime speaks. */
  checkProtocol(req: Request): Refusal | undefined {
    if (Object.hasOwn(this.known, req.protocol) && Object.hasOwn(this.protocols, req.protocol)) return undefined;
    return { protocol: 'runtime', error: new ProtocolError(`unknown sub-protocol '${req.protocol}'; this runtime speaks ${Object.keys(this.protocols).join(', ')}`) };
  }

  /**
   * After the secret: a known command this runtime offers, the graph it names (`hasGraph`), a payload its schema
   * accepts. The legacy secret location and noflo's graph:clear `baseDir` are dropped from the payload.
   */
  checkRequest(req: Request, hasGraph: (id: string) => boolean): Refusal | undefined {
    const { protocol, command, payload } = req;
    const refuse = (error: Error): Refusal => ({ protocol, error });
    const known = this.known[protocol]!;
    if (!known.includes(command)) return refuse(new ProtocolError(`unknown command ${protocol}:${command}; known: ${known.join(', ')}`));
    if (!this.allowed.has(`${protocol}:${command}`) || !this.protocols[protocol]![command]) {
      return refuse(new ProtocolError(`${protocol}:${command} is not supported by this runtime (see the capabilities of runtime:runtime)`));
    }
    // The legacy secret location and noflo's graph:clear `baseDir` are accepted, not part of the schemas.
    const checked: Record<string, unknown> = { ...req.message, payload };
    if (isObject(payload)) {
      delete payload.secret;
      if (protocol === 'graph' && command === 'clear') delete payload.baseDir;
    }
    // The exact errors clients look for when a graph is missing or unknown, before anything else.
    if (protocol === 'graph' && command !== 'clear' && isObject(payload)) {
      if (payload.graph === undefined) return refuse(new PlainProtocolError(NO_GRAPH));
      if (typeof payload.graph === 'string' && !hasGraph(payload.graph)) return refuse(new PlainProtocolError(GRAPH_NOT_FOUND));
    }
    const problems = schemaProblems('input', checked);
    if (problems.length) return refuse(new ProtocolError(`invalid ${protocol}:${command}: ${problems.join('; ')}`));
    return undefined;
  }
}
