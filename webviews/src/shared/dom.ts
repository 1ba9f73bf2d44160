/**
 * Safe DOM building: user strings (run names, params, paths, log lines) only ever become text nodes or
 * properties, never markup. There is deliberately no helper that takes HTML.
 */

type Props<K extends keyof HTMLElementTagNameMap> = Partial<Omit<HTMLElementTagNameMap[K], 'style' | 'dataset' | 'children' | 'innerHTML' | 'outerHTML'>> & {
  /** CSS class names. */
  class?: string;
  /** data-* attributes. */
  data?: Record<string, string>;
  /** Attributes (aria-*, role, ...); values are set with setAttribute, which never parses markup. */
  attrs?: Record<string, string | number | boolean | undefined>;
  /** Inline styles through the CSSOM (allowed by the CSP, unlike style="" attributes in markup). */
  style?: Partial<Record<string, string>>;
};

export type Child = Node | string | number | null | undefined | false;

/** `h('button', { class: 'x', onclick }, 'Run ', name)`: strings become text nodes. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props?: Props<K> | null, ...children: Child[]): HTMLElementTagNameMap[K];
export function h(tag: string, props?: Record<string, unknown> | null, ...children: Child[]): HTMLElement;
export function h(tag: string, props?: Record<string, unknown> | null, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  if (props) applyProps(el, props);
  append(el, ...children);
  return el;
}

function applyProps(el: HTMLElement, props: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined) continue;
    if (k === 'class') el.className = String(v);
    else if (k === 'data') for (const [dk, dv] of Object.entries(v as Record<string, string>)) el.dataset[dk] = dv;
    else if (k === 'attrs') {
      for (const [ak, av] of Object.entries(v as Record<string, unknown>)) {
        if (av === undefined || av === false) continue;
        if (/^on/i.test(ak)) throw new Error(`dom: event handler attributes are not allowed (${ak})`);
        el.setAttribute(ak, av === true ? '' : String(av));
      }
    } else if (k === 'style') for (const [sk, sv] of Object.entries(v as Record<string, string>)) el.style.setProperty(sk, sv);
    else if (k === 'innerHTML' || k === 'outerHTML') throw new Error('dom: markup is not allowed');
    else (el as unknown as Record<string, unknown>)[k] = v;
  }
}

export function append(el: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

/** Removes every child. */
export function clear(el: Node): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** Replaces the children of `el`. */
export function replaceChildren(el: Element, ...children: Child[]): void {
  el.replaceChildren(...children.filter((c): c is Node | string | number => c !== null && c !== undefined && c !== false).map((c) => (typeof c === 'number' ? String(c) : c)));
}

/** Sets the text of an element (no-op when unchanged, which keeps re-renders cheap). */
export function setText(el: Node, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/** A codicon as an element (codicon.css is in every panel's stylesheet). */
export function icon(name: string, label?: string): HTMLSpanElement {
  const el = h('span', { class: `codicon codicon-${name.replace(/[^a-z0-9-]/g, '')}` });
  if (label) {
    el.setAttribute('role', 'img');
    el.setAttribute('aria-label', label);
  } else el.setAttribute('aria-hidden', 'true');
  return el;
}
