/**
 * The webview's side of the bridge: a typed wrapper around `acquireVsCodeApi()` (which may be called only
 * once per page), the `ready` handshake, and validation of every message from the host (malformed ones
 * are dropped with a console warning, never thrown).
 *
 *   const bridge = connect<HostToX, XToHost, XState>({ isHostMessage: isHostToX, onMessage: (m) => ... });
 *   bridge.post({ type: 'open', id });  bridge.state;  bridge.setState({ ... });
 */
import { PROTOCOL_VERSION, type Guard, type ReadyMessage } from '../protocol/common';

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

let api: VsCodeApi | undefined;
function vscodeApi(): VsCodeApi {
  api ??= typeof acquireVsCodeApi === 'function' ? acquireVsCodeApi() : { postMessage: () => undefined, getState: () => undefined, setState: () => undefined };
  return api;
}

export interface Bridge<Out extends { type: string }, State> {
  /** Posts a message to the extension host. */
  post(message: Out): void;
  /** The state saved with setState (restored by VS Code after a reload or when the panel is revealed again). */
  readonly state: State | undefined;
  setState(state: State): void;
}

export interface ConnectOptions<In, State> {
  isHostMessage: Guard<In>;
  onMessage: (message: In) => void;
  /** Checks restored state; state that fails (an older version's shape) is discarded. */
  isState?: (v: unknown) => v is State;
}

export function connect<In extends { type: string }, Out extends { type: string }, State>(options: ConnectOptions<In, State>): Bridge<Out, State> {
  const vscode = vscodeApi();
  let state: State | undefined;
  const saved = vscode.getState();
  if (saved !== undefined && saved !== null && (!options.isState || options.isState(saved))) state = saved as State;
  window.addEventListener('message', (event: MessageEvent) => {
    const data: unknown = event.data;
    if (!options.isHostMessage(data)) {
      console.warn('mlpipeline: ignored a malformed message from the extension', typeof data === 'object' && data && 'type' in data ? String((data as { type: unknown }).type).slice(0, 40) : typeof data);
      return;
    }
    try {
      options.onMessage(data);
    } catch (e) {
      console.error('mlpipeline: handling a message failed', e);
    }
  });
  const ready: ReadyMessage = { type: 'ready', protocol: PROTOCOL_VERSION, ...(state !== undefined ? { state } : {}) };
  performance.mark('mlp:ready'); // benches measure bundle load + start-up to here
  vscode.postMessage(ready);
  return {
    post: (message: Out) => vscode.postMessage(message),
    get state() {
      return state;
    },
    setState(next: State) {
      state = next;
      vscode.setState(next);
    },
  };
}
