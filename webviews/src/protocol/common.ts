/**
 * The envelope every panel shares: the `ready` handshake and the runtime guards both sides use to check
 * messages. Pure TypeScript (no DOM, no `vscode`): imported by the extension host and by the webviews.
 *
 * Flow: the webview registers its message listener, then posts `{ type: 'ready', protocol, state }`.
 * The host sends nothing before `ready` (messages posted earlier would be lost); after a reload it gets a
 * new `ready` and sends everything again. Each panel has its own file here (experiments.ts, ...) with
 * `HostTo<Panel>` / `<Panel>ToHost` unions and `is...` guards built from the helpers below.
 */

/** Bumped on an incompatible change of any panel's contract; both sides are built together. */
export const PROTOCOL_VERSION = 1;

export interface ReadyMessage {
  type: 'ready';
  protocol: number;
  /** The webview's saved state (getState()), so the host can restore e.g. a selection after reload. */
  state?: unknown;
}

export type Guard<T> = (v: unknown) => v is T;

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
export const isString = (v: unknown): v is string => typeof v === 'string';
export const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
export const isBoolean = (v: unknown): v is boolean => typeof v === 'boolean';
/** A string of reasonable size (ids, names, paths): hostile megabyte strings are refused. */
export const isShortString = (v: unknown, max = 4096): v is string => typeof v === 'string' && v.length <= max;
export const optional =
  <T>(g: Guard<T>): Guard<T | undefined> =>
  (v: unknown): v is T | undefined =>
    v === undefined || g(v);
export const arrayOf =
  <T>(g: Guard<T>, max = 1_000_000): Guard<T[]> =>
  (v: unknown): v is T[] =>
    Array.isArray(v) && v.length <= max && v.every(g);
export const recordOf =
  <T>(g: Guard<T>): Guard<Record<string, T>> =>
  (v: unknown): v is Record<string, T> =>
    isObject(v) && Object.values(v).every(g);
export const oneOf =
  <T extends string>(...values: T[]): Guard<T> =>
  (v: unknown): v is T =>
    typeof v === 'string' && (values as string[]).includes(v);

/**
 * A guard for one message shape: `type` must equal `type`, and each listed field must pass its guard
 * (fields not listed are ignored, so adding optional fields stays compatible).
 */
export function messageGuard<T extends { type: string }>(type: T['type'], fields: { [K in Exclude<keyof T, 'type'>]-?: Guard<T[K]> }): Guard<T> {
  const entries = Object.entries(fields) as [string, Guard<unknown>][];
  return (v: unknown): v is T => isObject(v) && v.type === type && entries.every(([k, g]) => g(v[k]));
}

/** A guard for a union of messages, dispatched on `type`. */
export function unionGuard<T extends { type: string }>(guards: { [K in T['type']]: Guard<Extract<T, { type: K }>> }): Guard<T> {
  const byType = guards as Record<string, Guard<unknown>>;
  return (v: unknown): v is T => isObject(v) && typeof v.type === 'string' && Object.prototype.hasOwnProperty.call(byType, v.type) && byType[v.type](v);
}

export const isReadyMessage: Guard<ReadyMessage> = (v: unknown): v is ReadyMessage => isObject(v) && v.type === 'ready' && isFiniteNumber(v.protocol);

/** Why a message was refused, for the host's log (never echoes the message's content, which may be huge or hostile). */
export function describeBadMessage(v: unknown): string {
  if (!isObject(v)) return `not an object (${Array.isArray(v) ? 'array' : typeof v})`;
  return typeof v.type === 'string' ? `type "${v.type.slice(0, 40)}" with missing or malformed fields` : 'no "type" field';
}
