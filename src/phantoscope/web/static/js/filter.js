// The filter bar of the search and browse views: taken between two dates (EXIF), one key equal
// to a value, a name prefix. Its filter is what the API's search `filter` and the entity
// listing's `?filter=` take; onChange(filter or null) when it is applied or cleared.

import { checkKey, parseValue } from './meta.js';
import { h } from './ui.js';

const TEXT_KEYS = ['name', 'camera', 'labels'];
const NUMBER_KEYS = ['width', 'height'];

// The day after `day` (YYYY-MM-DD): "to" includes the whole of its day.
function nextDay(day) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString().slice(0, 10);
}

// One condition: name, camera and labels take the text as it is, width and height a whole
// number, any other key the attribute of that name (value read as true/false, a number or
// text).
function condition(key, text) {
  if (TEXT_KEYS.includes(key)) return [key, text];
  const value = parseValue(text);
  if (NUMBER_KEYS.includes(key)) {
    if (!Number.isInteger(value)) throw new Error(`${key} takes a whole number, not "${text}"`);
    return [key, value];
  }
  return [`attributes.${checkKey(key.replace(/^attributes\./, ''))}`, value];
}

export function buildFilter({ from, to, key, value, prefix }) {
  const filter = {};
  if (key) {
    const [name, wanted] = condition(key, value);
    filter[name] = wanted;
  } else if (value) {
    throw new Error('give the key whose value this is');
  }
  if (prefix) {
    filter.name = 'name' in filter ? { eq: filter.name, prefix } : { prefix };
  }
  if (from || to) {
    if (from && to && to < from) throw new Error('the "to" date is before the "from" date');
    filter.taken_at = { ...(from ? { gte: from } : {}), ...(to ? { lt: nextDay(to) } : {}) };
  }
  return Object.keys(filter).length ? filter : null;
}

export class FilterBar {
  constructor({ testId, onChange }) {
    this.onChange = onChange;
    this.filter = null;
    const input = (name, props) => h('input', { ...props, 'data-testid': `${testId}-${name}` });
    this.from = input('from', { type: 'date', 'aria-label': 'Taken from' });
    this.to = input('to', { type: 'date', 'aria-label': 'Taken to (inclusive)' });
    this.key = input('key', { type: 'text', placeholder: 'key', size: 10,
      'aria-label': 'Attribute key' });
    this.value = input('value', { type: 'text', placeholder: 'value', size: 12,
      'aria-label': 'Attribute value' });
    this.prefix = input('prefix', { type: 'text', placeholder: 'e.g. holidays/', size: 14,
      'aria-label': 'Name starts with' });
    this.error = h('span', { class: 'error-text filter-error', role: 'alert', hidden: true });
    this.state = h('span', { class: 'chip filter-state', hidden: true }, 'filtered');
    const group = (label, ...controls) => h('span', { class: 'filter-group' },
      h('span', { class: 'field-label' }, label), ...controls);
    this.root = h('form', { class: 'filter-bar', 'data-testid': testId, 'aria-label': 'Filter',
      onsubmit: (event) => {
        event.preventDefault();
        this.apply();
      } },
    group('Taken', this.from, h('span', { class: 'muted' }, 'to'), this.to),
    group('Where', this.key, h('span', { class: 'muted' }, '='), this.value),
    group('Name starts with', this.prefix),
    h('span', { class: 'filter-actions' },
      h('button', { type: 'submit', class: 'btn small primary',
        'data-testid': `${testId}-apply` }, 'Apply'),
      h('button', { type: 'button', class: 'btn small ghost', 'data-testid': `${testId}-clear`,
        onclick: () => this.clear() }, 'Clear'),
      this.state),
    this.error);
  }

  fields() {
    return {
      from: this.from.value, to: this.to.value, key: this.key.value.trim(),
      value: this.value.value, prefix: this.prefix.value,
    };
  }

  apply() {
    let filter;
    try {
      filter = buildFilter(this.fields());
    } catch (err) {
      this.error.textContent = err.message;
      this.error.hidden = false;
      return;
    }
    this.error.hidden = true;
    this.set(filter);
  }

  clear() {
    for (const control of [this.from, this.to, this.key, this.value, this.prefix]) {
      control.value = '';
    }
    this.error.hidden = true;
    this.set(null);
  }

  set(filter) {
    const changed = JSON.stringify(filter) !== JSON.stringify(this.filter);
    this.filter = filter;
    this.root.dataset.active = String(Boolean(filter));
    this.state.hidden = !filter;
    this.state.title = filter ? JSON.stringify(filter) : '';
    if (changed) this.onChange?.(filter);
  }
}
