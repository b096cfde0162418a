// Search: one query image (optionally cropped), or words (through the pipeline's text encoder,
// or matched to the images' labels), or both when the pipeline has a text encoder, against one
// application, optionally only among the entities that match the filter bar.

import { api } from '../api.js';
import { FilterBar } from '../filter.js';
import { QueryPicker } from '../query.js';
import { Results } from '../results.js';
import { AppSelect, on } from '../state.js';
import { errorText, field, fill, h, reportError } from '../ui.js';

const IDLE = 'Choose, drop or paste an image to search with, or type some words.';

export default class SearchView {
  id = 'search';
  title = 'Search';

  constructor() {
    this.controller = null;
    this.mode = 'image'; // what the last query was: an image, or the words typed
    this.picker = new QueryPicker({ testId: 'query', onChange: () => this.searchImage() });
    this.words = h('input', { type: 'search', maxlength: 1000, spellcheck: 'true',
      placeholder: 'dog on a beach', 'data-testid': 'search-text',
      'aria-label': 'Search by words' });
    this.wordsButton = h('button', { type: 'submit', class: 'btn',
      'data-testid': 'search-text-go' }, 'Search words');
    const wordsForm = h('form', { class: 'words-form', onsubmit: (event) => {
      event.preventDefault();
      this.mode = 'text';
      this.search();
    } }, field('Or search by words', h('div', { class: 'form-row' }, this.words,
      this.wordsButton)));
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
    this.results.idle(IDLE);

    const form = h('form', { class: 'stack tight', onsubmit: (event) => {
      event.preventDefault();
      this.searchImage();
    } },
    h('div', { class: 'form-row' }, this.apps.root, field('Results', this.topk)),
    this.fieldChoice, this.button);
    this.root = h('div', { class: 'layout-query' },
      h('section', { class: 'panel query-panel' }, h('h2', {}, 'Query'), this.picker.root, form,
        wordsForm),
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
    if (this.mode === 'text' ? this.words.value.trim() : this.picker.hasQuery()) this.search();
  }

  searchImage() {
    this.mode = 'image';
    this.search();
  }

  search() {
    return this.mode === 'text' ? this.searchWords() : this.searchByImage();
  }

  // Runs `query(signal, topk, filter)` as the current search, showing what it finds.
  async run(app, query, show) {
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    const topk = Math.max(1, Number.parseInt(this.topk.value, 10) || 12);
    this.results.loading(`Searching ${app}…`);
    const started = performance.now();
    const { filter } = this.filterBar;
    try {
      const answer = await query(controller.signal, topk, filter);
      if (controller !== this.controller) return;
      show(answer, { app, ms: performance.now() - started, filtered: Boolean(filter) });
    } catch (err) {
      if (err.name === 'AbortError' || controller !== this.controller) return;
      this.results.failed(errorText(err));
      reportError(err, 'Search');
    }
  }

  async searchWords() {
    const text = this.words.value.trim();
    const app = this.apps.value;
    if (!text || !app) {
      this.results.idle(app ? 'Type some words to search with.' : IDLE);
      return;
    }
    const fieldName = this.apps.fields.length > 1 ? this.fieldSelect.value : null;
    const mixed = this.picker.hasQuery() && await this.hasTextEncoder(fieldName);
    const label = mixed ? `words: ${text} + ${this.picker.label()}` : `words: ${text}`;
    await this.run(app, async (signal, topk, filter) =>
      api.searchText(app, fieldName, text, topk, signal, filter,
        mixed ? await this.picker.getRef() : null),
      (answer, options) => this.results.show(answer.hits, { ...options, label,
        note: answer.unmatched.length
          ? `No image class is called: ${answer.unmatched.join(', ')}` : '',
        empty: answer.matched_by === 'text_encoder' ? 'No image matches.'
          : answer.terms.length ? 'No image is labelled with these words.'
            : 'None of these words names an image class.' }));
  }

  // Whether the pipeline of the field searched (the only one when fieldName is null) has a
  // text encoder: then the query image, if one is chosen, goes with the words.
  async hasTextEncoder(fieldName) {
    const fields = this.apps.fields;
    const chosen = fields.find((f) => f.name === fieldName) || fields[0];
    if (!chosen) return false;
    try {
      return Boolean((await api.pipeline(chosen.pipeline))._text_encoder);
    } catch {
      return false; // the search itself says what is wrong
    }
  }

  async searchByImage() {
    if (!this.picker.hasQuery()) {
      this.results.idle(IDLE);
      return;
    }
    const app = this.apps.value;
    const fieldName = this.fieldSelect.value || this.apps.fields[0]?.name;
    if (!app || !fieldName) {
      this.results.failed('Choose an application with an image field first.');
      return;
    }
    await this.run(app, async (signal, topk, filter) =>
      api.search(app, fieldName, await this.picker.getRef(), topk, signal, filter),
    (hits, options) => this.results.show(hits, { ...options, label: this.picker.label() }));
  }

  paste(event) {
    this.picker.takePaste(event);
  }
}
