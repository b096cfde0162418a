// Small DOM helpers, notices (toasts) and formatting shared by the views.

// h('div', {class: 'x', onclick: fn}, child, ...): an element. Props that the element has
// (value, disabled, hidden, ...) are set as properties, others as attributes.
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'style' && typeof value === 'object') Object.assign(node.style, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key in node && !key.includes('-')) node[key] = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  node.append(...flatten(children));
  return node;
}

// Replace a node's children (null, false and nested arrays are skipped, as in h).
export function fill(node, ...children) {
  node.replaceChildren(...flatten(children));
  return node;
}

function flatten(children) {
  return children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : String(c)));
}

const SVG = 'http://www.w3.org/2000/svg';

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  }
  node.append(...flatten(children));
  return node;
}

// An SVG layer over an <img> shown with object-fit: contain that draws boxes given in the
// image's own pixels: its viewBox is the image's natural size, so the browser scales them.
export function boxLayer(img, boxes) {
  const layer = svg('svg', { class: 'box-layer', preserveAspectRatio: 'xMidYMid meet',
    'aria-hidden': 'true' });
  const draw = () => {
    if (!img.naturalWidth) return;
    layer.setAttribute('viewBox', `0 0 ${img.naturalWidth} ${img.naturalHeight}`);
    layer.replaceChildren(...boxes.map((box) => svg('rect', {
      class: `box ${box.kind || ''}`,
      x: box.left, y: box.top,
      width: Math.max(1, box.right - box.left), height: Math.max(1, box.bottom - box.top),
      'vector-effect': 'non-scaling-stroke',
    }, box.label ? svg('title', {}, box.label) : null)));
  };
  if (img.complete) draw();
  img.addEventListener('load', draw);
  return layer;
}

// Notices in the corner: never blocking, dismissed by a click or after a while.
const MAX_TOASTS = 5;

export function toast(text, { kind = 'info', title, timeout } = {}) {
  const region = document.getElementById('toasts');
  if (!region) return null;
  const role = kind === 'error' ? 'alert' : 'status';
  const item = h('div', { class: `toast toast-${kind}`, role },
    h('div', { class: 'toast-body' },
      title ? h('strong', { class: 'toast-title' }, title) : null,
      h('div', { class: 'toast-text' }, text)),
    h('button', { class: 'toast-close', type: 'button', 'aria-label': 'Dismiss',
      onclick: () => item.remove() }, '×'));
  region.append(item);
  while (region.children.length > MAX_TOASTS) region.firstElementChild.remove();
  const ms = timeout ?? (kind === 'error' ? 12000 : 4000);
  let timer = setTimeout(() => item.remove(), ms);
  item.addEventListener('mouseenter', () => clearTimeout(timer));
  item.addEventListener('mouseleave', () => { timer = setTimeout(() => item.remove(), ms / 2); });
  return item;
}

export function errorText(err) {
  if (!err) return 'unknown error';
  return err.code ? `${err.code}: ${err.message}` : String(err.message || err);
}

// Tell the user what went wrong (an API error shows its code and message).
export function reportError(err, context) {
  if (err?.name === 'AbortError') return;
  toast(errorText(err), { kind: 'error', title: context ? `${context} failed` : 'Error' });
}

// A button that asks for a second click before it acts (no blocking confirm()).
export function confirmButton(label, onConfirm, { armedLabel = 'Click again to confirm',
  className = 'btn danger small', title } = {}) {
  let timer = null;
  const button = h('button', { type: 'button', class: className, title }, label);
  const disarm = () => {
    clearTimeout(timer);
    button.classList.remove('armed');
    button.textContent = label;
  };
  button.addEventListener('click', async () => {
    if (!button.classList.contains('armed')) {
      button.classList.add('armed');
      button.textContent = armedLabel;
      timer = setTimeout(disarm, 5000);
      return;
    }
    disarm();
    button.disabled = true;
    try {
      await onConfirm();
    } finally {
      button.disabled = false;
    }
  });
  button.addEventListener('blur', disarm);
  return button;
}

export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return '';
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatDate(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso)
    : date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function formatScore(score) {
  return Number.isFinite(score) ? score.toFixed(3) : '–';
}

export function formatBox(box) {
  if (!box) return '—';
  return `${box.left}, ${box.top} → ${box.right}, ${box.bottom}`;
}

export function field(label, control, hint) {
  return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), control,
    hint ? h('small', { class: 'hint' }, hint) : null);
}

export function emptyState(text, ...extra) {
  return h('div', { class: 'empty' }, h('p', {}, text), ...extra);
}

export function blobToBase64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(',', 2)[1] || '');
    reader.onerror = () => reject(reader.error || new Error('cannot read the file'));
    reader.readAsDataURL(blob);
  });
}

/** Make `zone` a drop target: highlighted while dragged over; `onDrop(dataTransfer)`. */
export function dropZone(zone, onDrop) {
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', (event) => {
    if (!zone.contains(event.relatedTarget)) zone.classList.remove('over');
  });
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    onDrop(event.dataTransfer);
  });
}
