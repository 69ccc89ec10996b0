/** How the live network names edges and IIPs (noflo's textual ids) and compares their ends. */
import type { PortRef } from '../../graph/types.js';

const portText = (r: PortRef) => `${r.port.toUpperCase()}${r.index !== undefined ? `[${r.index}]` : ''}`;

/** noflo's textual edge id: `A() OUT -> IN B()`, with `[index]` for addressable ports. */
export function edgeId(src: PortRef, tgt: PortRef): string {
  return `${src.node}() ${portText(src)} -> ${portText(tgt)} ${tgt.node}()`;
}

/** The id of an IIP's data event: `DATA -> IN B()`. */
export function iipId(tgt: PortRef): string {
  return `DATA -> ${portText(tgt)} ${tgt.node}()`;
}

/** Whether two references name the same node port (ports compared case-insensitively). */
export function sameNodePort(a: PortRef, b: { node: string; port: string; index?: number | undefined }): boolean {
  return a.node === b.node && a.port.toLowerCase() === b.port.toLowerCase() && (a.index ?? null) === (b.index ?? null);
}

/** The identity of an edge, as a map key. */
export function edgeKey(e: { src: PortRef; tgt: PortRef }): string {
  return `${e.src.node}\u0000${e.src.port.toLowerCase()}\u0000${e.src.index ?? ''}\u0001${e.tgt.node}\u0000${e.tgt.port.toLowerCase()}\u0000${e.tgt.index ?? ''}`;
}
