// DOM building without innerHTML: every value reaches the page as text, so nothing a provider or
// a user typed can become markup.

/** h('button', { class: 'x', onclick }, 'text', child) */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof window.Node ? child : document.createTextNode(String(child)));
  }
}

const SVG = 'http://www.w3.org/2000/svg';

export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  append(element, children);
  return element;
}

export function message(kind, title, detail) {
  return h('div', { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, title && h('strong', {}, title), detail);
}

let toastTimer;
/** A short note at the bottom of the screen, e.g. "Refreshed". */
export function toast(text, kind = 'info') {
  const holder = document.getElementById('toast');
  holder.replaceChildren(h('div', { class: kind }, text));
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => holder.replaceChildren(), 4000);
}

/** "in 0:42", "in 3 h 5 min", "expired 12 s ago". */
export function countdown(iso, now = Date.now()) {
  if (!iso) return { text: 'no expiry', kind: '' };
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  if (seconds <= 0) return { text: `expired ${duration(-seconds)} ago`, kind: 'expired' };
  return { text: `in ${duration(seconds)}`, kind: seconds < 60 ? 'expiring' : '' };
}

/** "12 s ago", "3 min ago", "never". */
export function ago(iso, now = Date.now()) {
  if (!iso) return 'never';
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return seconds < 5 ? 'just now' : `${duration(seconds)} ago`;
}

function duration(seconds) {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')} min`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} d ${Math.floor((seconds % 86400) / 3600)} h`;
}

export function time(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
