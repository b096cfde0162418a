// Search: one query image (optionally cropped) against one application, optionally only
// among the entities that match the filter bar.

import { api } from '../api.js';
import { FilterBar } from '../filter.js';
import { QueryPicker } from '../query.js';
import { Results } from '../results.js';
import { AppSelect, on } from '../state.js';
import { errorText, field, fill, h, reportError } from '../ui.js';

export default class SearchView {
  id = 'search';
  title = 'Search';

  constructor() {
    this.controller = null;
    this.picker = new QueryPicker({ testId: 'query', onChange: () => this.search() });
    this.apps = new AppSelect({ testId: 'search-app', onChange: () => this.appChanged() });
    this.fieldSelect = h('select', { 'data-testid': 'search-field' });
    this.fieldChoice = field('Image field', this.fieldSelect);
    this.fieldChoice.hidden = true;
    this.topk = h('input', { type: 'number', min: 1, max: 1000, value: 12,
      'data-testid': 'search-topk' });
    this.button = h('button', { type: 'submit', class: 'btn primary',
      'data-testid': 'search-go' }, 'Search');
    this.filterBar = new FilterBar({ testId: 'search-filter', onChange: () => this.search() });
    this.results = new Results({ testId: 'search-results' });
    this.results.idle('Choose, drop or paste an image to search with.');

    const form = h('form', { class: 'stack tight', onsubmit: (event) => {
      event.preventDefault();
      this.search();
    } },
    h('div', { class: 'form-row' }, this.apps.root, field('Results', this.topk)),
    this.fieldChoice, this.button);
    this.root = h('div', { class: 'layout-query' },
      h('section', { class: 'panel query-panel' }, h('h2', {}, 'Query'), this.picker.root, form),
      h('section', { class: 'panel' }, this.filterBar.root, this.results.root));

    on('query-image', ({ blob, name, app }) => {
      this.apps.refresh(app).then(() => this.picker.setFile(blob, name));
      location.hash = '#/search';
    });
  }

  show() {
    this.apps.refresh();
  }

  appChanged() {
    const fields = this.apps.fields;
    const before = this.fieldSelect.value;
    fill(this.fieldSelect, ...fields.map((f) =>
      h('option', { value: f.name }, `${f.name} (${f.pipeline})`)));
    if (fields.some((f) => f.name === before)) this.fieldSelect.value = before;
    this.fieldChoice.hidden = fields.length < 2;
    if (this.picker.hasQuery()) this.search();
  }

  async search() {
    if (!this.picker.hasQuery()) {
      this.results.idle('Choose, drop or paste an image to search with.');
      return;
    }
    const app = this.apps.value;
    const fieldName = this.fieldSelect.value || this.apps.fields[0]?.name;
    if (!app || !fieldName) {
      this.results.failed('Choose an application with an image field first.');
      return;
    }
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    const topk = Math.max(1, Number.parseInt(this.topk.value, 10) || 12);
    this.results.loading(`Searching ${app}…`);
    const started = performance.now();
    const { filter } = this.filterBar;
    try {
      const ref = await this.picker.getRef();
      const hits = await api.search(app, fieldName, ref, topk, controller.signal, filter);
      if (controller !== this.controller) return;
      this.results.show(hits, { app, label: this.picker.label(), ms: performance.now() - started,
        filtered: Boolean(filter) });
    } catch (err) {
      if (err.name === 'AbortError' || controller !== this.controller) return;
      this.results.failed(errorText(err));
      reportError(err, 'Search');
    }
  }

  paste(event) {
    this.picker.takePaste(event);
  }
}
