// DOM helpers. Every string reaches the page as a text node or an attribute value,
// never as HTML: user text cannot become markup.

/**
 * Creates an element: `h('li', {class: 'x', dataset: {testid: 'y'}}, 'text', child)`.
 * `on*` attributes take functions (event listeners); `null`/`false` attributes and
 * children are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (value === true) {
      el.setAttribute(name, '');
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** The element with `data-testid="<id>"`; throws if the page lacks it. */
export function byTestId(id, root = document) {
  const el = root.querySelector(`[data-testid="${id}"]`);
  if (!el) throw new Error(`missing element ${id}`);
  return el;
}

/** Replaces an element's children. */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateFormat = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
});

/** A Unix-ms time as the clock time today, with the date otherwise. */
export function formatTime(ms) {
  const date = new Date(ms);
  const today = new Date();
  return date.toDateString() === today.toDateString()
    ? timeFormat.format(date)
    : dateFormat.format(date);
}

/** Resolves after `ms` milliseconds, or at once when `signal` aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/**
 * A list element whose items are keyed: `update(wanted)` takes `[{key, sig, make}]`
 * in order and touches only the items that are new or whose `sig` changed, so a live
 * region announces additions, not the whole list again.
 */
export class KeyedList {
  constructor(el) {
    this.el = el;
    this.nodes = new Map();
  }

  clear() {
    this.nodes.clear();
    this.el.replaceChildren();
  }

  update(wanted) {
    const keys = new Set(wanted.map((w) => w.key));
    for (const [key, node] of this.nodes) {
      if (!keys.has(key)) {
        node.el.remove();
        this.nodes.delete(key);
      }
    }
    wanted.forEach((w, index) => {
      let node = this.nodes.get(w.key);
      if (!node || node.sig !== w.sig) {
        node?.el.remove();
        node = { sig: w.sig, el: w.make() };
        this.nodes.set(w.key, node);
      }
      const at = this.el.children[index] ?? null;
      if (at !== node.el) this.el.insertBefore(node.el, at);
    });
  }
}
