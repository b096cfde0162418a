// What the views share: the list of applications, the one last chosen, and change events.

import { api, imageFields } from './api.js';
import { fill, h, reportError } from './ui.js';

const KEY = 'phantoscope.application';
const bus = new EventTarget();
let cached = null;
let loading = null;

export function chosenApp() {
  try {
    return localStorage.getItem(KEY) || '';
  } catch {
    return '';
  }
}

export function chooseApp(name) {
  try {
    localStorage.setItem(KEY, name);
  } catch {
    // private mode: the choice lasts as long as the page
  }
}

// The applications: the last list fetched, or a fresh one when asked (a fetch under way
// answers every caller).
export async function applications({ refresh = false } = {}) {
  if (loading) return loading;
  if (cached && !refresh) return cached;
  loading = api.applications()
    .then((list) => {
      cached = list;
      return list;
    })
    .finally(() => { loading = null; });
  return loading;
}

export function emit(type, detail) {
  bus.dispatchEvent(new CustomEvent(type, { detail }));
}

export function on(type, listener) {
  bus.addEventListener(type, (event) => listener(event.detail));
}

// Applications created or deleted: every picker reloads.
export async function applicationsChanged() {
  await applications({ refresh: true }).catch(() => null);
  emit('applications');
}

// A <select> of applications that keeps in step with the others (unless shared is false).
export class AppSelect {
  constructor({ label = 'Application', shared = true, onChange, testId } = {}) {
    this.shared = shared;
    this.onChange = onChange;
    this.list = [];
    this.select = h('select', { class: 'app-select', 'data-testid': testId,
      onchange: () => this.changed() });
    this.root = h('label', { class: 'field' }, h('span', { class: 'field-label' }, label),
      this.select);
    on('applications', () => this.refresh());
  }

  get value() {
    return this.select.value;
  }

  get application() {
    return this.list.find((a) => a._application_name === this.value) || null;
  }

  get fields() {
    return imageFields(this.application);
  }

  changed() {
    if (this.shared && this.value) chooseApp(this.value);
    this.onChange?.(this.value);
  }

  // Reload the options, keeping the choice (or taking `preferred`).
  async refresh(preferred) {
    const before = this.select.value;
    try {
      this.list = await applications();
    } catch (err) {
      reportError(err, 'Loading applications');
      return;
    }
    const names = this.list.map((a) => a._application_name);
    const wanted = [preferred, this.shared ? chosenApp() : null, before]
      .find((name) => name && names.includes(name)) || names[0] || '';
    fill(this.select, ...(names.length
      ? names.map((name) => h('option', { value: name }, name))
      : [h('option', { value: '' }, 'No applications yet')]));
    this.select.disabled = !names.length;
    this.select.value = wanted;
    if (wanted !== before) this.changed();
  }
}
