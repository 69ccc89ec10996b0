/** What a sub-protocol handler gets: the runtime's state and ways to answer. */
import type { FbpRuntime } from './runtime.js';

export type Payload = Record<string, unknown>;

export interface HandlerContext {
  readonly runtime: FbpRuntime;
  /** The sub-protocol of the request. */
  readonly protocol: string;
  /** Answer the requester with `<protocol>:<command>`. */
  reply(command: string, payload: unknown): void;
  /** Tell every authenticated client (the requester's copy answers its request). */
  broadcast(command: string, payload: unknown): void;
  /** Answer the requester with a message of another sub-protocol. */
  send(protocol: string, command: string, payload: unknown): void;
  /** Tell every authenticated client, with a message of another sub-protocol. */
  broadcastAs(protocol: string, command: string, payload: unknown): void;
}

export type Handler = (ctx: HandlerContext, payload: Payload) => void | Promise<void>;

/** The commands of one sub-protocol. */
export type ProtocolHandlers = Readonly<Record<string, Handler>>;

/** An error whose message is sent exactly as it is (the messages fbp-test and clients look for). */
export class PlainProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlainProtocolError';
  }
}

export const GRAPH_NOT_FOUND = 'Requested graph not found';
export const NO_GRAPH = 'No graph specified';
