/**
 * The snoop channel in memory: every subscriber hears every matching message (fan-out), later in the same process
 * turn; one that falls behind loses its oldest (SNOOP_BACKLOG), as a bounded broker queue would.
 */
import type { SnoopChannel } from '../../protocol/snoop.js';
import { decodeBody, encodeBody } from '../../protocol/envelope.js';
import { logger } from '../../util/logger.js';
import { reasonOf } from '../../errors.js';
import { SNOOP_BACKLOG } from '../defaults.js';
import type { SnoopFilter, SnoopHandler, SnoopReceived, Subscription } from '../types.js';
import type { SnoopListener } from './broker.js';
import type { DirectConnection } from './connection.js';

const log = logger('direct');

export class DirectSnoop {
  constructor(private readonly connection: DirectConnection) {}

  publish(channel: SnoopChannel, role: string, data: unknown): void {
    this.connection.check('publish on the snoop channel');
    const body = encodeBody(data);
    for (const listener of this.connection.broker.snoopListeners) listener(channel, role, body);
  }

  subscribe(filter: SnoopFilter, handler: SnoopHandler): Subscription {
    this.connection.check('subscribe to the snoop channel');
    const channels = new Set<string>(filter.channels);
    const roles = filter.roles ? new Set(filter.roles) : undefined;
    const backlog: SnoopReceived[] = [];
    let scheduled = false;
    let active = true;
    const flush = (): void => {
      scheduled = false;
      for (const m of backlog.splice(0)) {
        if (!active) return;
        try {
          handler(m);
        } catch (err) {
          log('snoop handler failed: %s', reasonOf(err));
        }
      }
    };
    const listener: SnoopListener = (channel, role, body) => {
      if (!channels.has(channel) || (roles && !roles.has(role))) return;
      const { data, jsonError } = decodeBody(body);
      backlog.push({ channel: channel as SnoopChannel, role, data, raw: body, jsonError });
      if (backlog.length > SNOOP_BACKLOG) backlog.shift();
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    };
    const listeners = this.connection.broker.snoopListeners;
    listeners.add(listener);
    const release = this.connection.own(() => {
      active = false;
      listeners.delete(listener);
    });
    return { queue: 'snoop', cancel: async () => release() };
  }
}
