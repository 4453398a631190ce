import { EventEmitter } from 'node:events';
import { createInspector, createWebSocketInspector, type StatelyInspectionEvent } from '@statelyai/inspect';
import type { InspectionEvent } from 'xstate';

/** Cap of one serialised inspection event; bigger contexts are truncated, never streamed whole. */
export const MAX_INSPECTION_EVENT_BYTES = 64 * 1024;

export interface InspectionFeed {
  /** Emits 'event' with each {@link StatelyInspectionEvent} (the tRPC `live.inspect` feed). */
  readonly emitter: EventEmitter;
  /** Pass to `createActor(..., { inspect })`. */
  readonly inspect: (event: InspectionEvent) => void;
  stop(): void;
}

/** Fencing tokens are secrets of their attempt; strip them from anything inspected. */
function redact(event: StatelyInspectionEvent): StatelyInspectionEvent {
  const text = JSON.stringify(event, (key, value) => (key === 'leaseToken' ? '[redacted]' : value));
  if (text.length > MAX_INSPECTION_EVENT_BYTES) {
    return { ...event, ...('snapshot' in event ? { snapshot: { status: (event.snapshot as { status?: string }).status, value: (event.snapshot as { value?: unknown }).value } } : {}) } as StatelyInspectionEvent;
  }
  return JSON.parse(text);
}

/**
 * Actor transitions as Stately inspection events, for the RPC subscription and, when
 * `webSocketUrl` is given (`--inspect`), for `@statelyai/inspect`'s WebSocket inspector.
 */
export function createInspectionFeed(options: { webSocketUrl?: string } = {}): InspectionFeed {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  const feed = createInspector({ send: (e: StatelyInspectionEvent) => emitter.listenerCount('event') > 0 && emitter.emit('event', redact(e)) }, {});
  const ws = options.webSocketUrl ? createWebSocketInspector({ url: options.webSocketUrl, serialize: redact }) : null;
  ws?.start();
  return {
    emitter,
    inspect: (event) => {
      if (emitter.listenerCount('event') > 0) feed.inspect.next?.(event);
      ws?.inspect.next?.(event);
    },
    stop: () => ws?.stop(),
  };
}
