/** Rules about bindings that every transport and the coordinator share. */
import type { Binding } from './types.js';

/** One string per distinct binding: two bindings with the same key are the same edge on the broker. */
export function bindingKey(b: Binding): string {
  return `${b.type}|${b.src}|${b.tgt}|${b.deadletter ?? ''}`;
}

/** A copy that holds only the binding's own fields (callers may pass objects with more). */
export function copyBinding(b: Binding): Binding {
  return b.deadletter === undefined ? { type: b.type, src: b.src, tgt: b.tgt } : { type: b.type, src: b.src, tgt: b.tgt, deadletter: b.deadletter };
}
