// Compare: the same query against two applications, side by side.

import { api } from '../api.js';
import { QueryPicker } from '../query.js';
import { Results } from '../results.js';
import { AppSelect, applications } from '../state.js';
import { errorText, field, fill, h, reportError } from '../ui.js';

export default class CompareView {
  id = 'compare';
  title = 'Compare';

  constructor() {
    this.controller = null;
    this.picker = new QueryPicker({ testId: 'compare-query', onChange: () => this.compare() });
    this.sides = ['A', 'B'].map((letter) => ({
      letter,
      apps: new AppSelect({ label: `Application ${letter}`, shared: false,
        testId: `compare-app-${letter.toLowerCase()}`, onChange: () => this.compare() }),
      results: new Results({ testId: `compare-results-${letter.toLowerCase()}`, compact: true }),
    }));
    this.topk = h('input', { type: 'number', min: 1, max: 1000, value: 8,
      'data-testid': 'compare-topk' });
    const form = h('form', { class: 'stack tight', onsubmit: (event) => {
      event.preventDefault();
      this.compare();
    } },
    this.sides.map((side) => side.apps.root),
    field('Results per side', this.topk),
    h('button', { type: 'submit', class: 'btn primary', 'data-testid': 'compare-go' }, 'Compare'));
    for (const side of this.sides) side.results.idle('Choose a query image.');
    this.root = h('div', { class: 'layout-query' },
      h('section', { class: 'panel query-panel' }, h('h2', {}, 'Query'), this.picker.root, form),
      h('div', { class: 'compare-cols', 'data-testid': 'compare-columns' },
        this.sides.map((side) => h('section', { class: 'panel compare-col' },
          h('h2', { class: 'col-title' }), side.results.root))));
    this.titles();
  }

  async show() {
    // Two different applications by default, when there are two.
    let names = [];
    try {
      names = (await applications()).map((a) => a._application_name);
    } catch (err) {
      reportError(err, 'Loading applications');
    }
    const [a, b] = this.sides;
    await a.apps.refresh(a.apps.value || names[0]);
    await b.apps.refresh(b.apps.value || names.find((n) => n !== a.apps.value));
    this.titles();
  }

  titles() {
    for (const side of this.sides) {
      const title = side.results.root.closest('.compare-col')?.querySelector('.col-title');
      if (title) {
        fill(title, h('span', { class: 'badge' }, side.letter),
          side.apps.value || 'no application');
      }
    }
  }

  async compare() {
    this.titles();
    if (!this.picker.hasQuery()) return;
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    const topk = Math.max(1, Number.parseInt(this.topk.value, 10) || 8);
    let ref;
    try {
      ref = await this.picker.getRef();
    } catch (err) {
      reportError(err, 'Reading the query');
      return;
    }
    await Promise.all(this.sides.map(async (side) => {
      const app = side.apps.value;
      const fieldName = side.apps.fields[0]?.name;
      if (!app || !fieldName) {
        side.results.failed('Choose an application with an image field.');
        return;
      }
      side.results.loading(`Searching ${app}…`);
      const started = performance.now();
      try {
        const hits = await api.search(app, fieldName, ref, topk, controller.signal);
        if (controller !== this.controller) return;
        side.results.show(hits, { app, ms: performance.now() - started });
      } catch (err) {
        if (err.name === 'AbortError' || controller !== this.controller) return;
        side.results.failed(errorText(err));
        reportError(err, `Search in ${app}`);
      }
    }));
  }

  paste(event) {
    this.picker.takePaste(event);
  }
}
