// Browse: page through an application's entities, all or those that match the filter bar;
// open or delete one.

import { api, showImage } from '../api.js';
import { openEntity } from '../entity.js';
import { FilterBar } from '../filter.js';
import { metaLines } from '../meta.js';
import { AppSelect, emit, on } from '../state.js';
import {
  confirmButton, emptyState, errorText, field, fill, formatBytes, formatDate, h, reportError,
  toast,
} from '../ui.js';

export default class BrowseView {
  id = 'browse';
  title = 'Browse';

  constructor() {
    this.page = 0;
    this.total = 0;
    this.loadId = 0;
    this.apps = new AppSelect({ testId: 'browse-app', onChange: () => this.load(0) });
    this.perPage = h('select', { 'data-testid': 'browse-per-page', onchange: () => this.load(0) },
      [6, 12, 24, 48, 96].map((n) => h('option', { value: n, selected: n === 12 }, String(n))));
    this.prev = h('button', { type: 'button', class: 'btn', 'data-testid': 'browse-prev',
      onclick: () => this.load(this.page - 1) }, '‹ Previous');
    this.next = h('button', { type: 'button', class: 'btn', 'data-testid': 'browse-next',
      onclick: () => this.load(this.page + 1) }, 'Next ›');
    this.where = h('span', { class: 'pager-where', 'data-testid': 'browse-where' });
    this.grid = h('div', { class: 'grid entities', 'data-testid': 'browse-grid' });
    this.filterBar = new FilterBar({ testId: 'browse-filter', onChange: () => this.load(0) });
    this.root = h('section', { class: 'panel' },
      h('div', { class: 'toolbar' }, this.apps.root, field('Per page', this.perPage),
        h('div', { class: 'pager' }, this.prev, this.where, this.next)),
      this.filterBar.root,
      this.grid);
    const reload = ({ app }) => {
      if (app === this.apps.value && this.visible) this.load(this.page);
    };
    on('entity-deleted', reload);
    on('entities-changed', reload);
  }

  show() {
    this.visible = true;
    this.apps.refresh().then(() => this.load(this.page));
  }

  hide() {
    this.visible = false;
  }

  get num() {
    return Number.parseInt(this.perPage.value, 10) || 12;
  }

  async load(page, { lastPage = null } = {}) {
    const app = this.apps.value;
    const id = ++this.loadId;
    const { filter } = this.filterBar;
    if (!app) {
      fill(this.grid, emptyState('No applications yet.'));
      this.where.textContent = '';
      this.prev.disabled = this.next.disabled = true;
      return;
    }
    this.grid.setAttribute('aria-busy', 'true');
    let total;
    let rows;
    try {
      if (filter) {
        // No count for a filter: a short page is the last one, and gives the total.
        page = Math.max(0, page);
        rows = await api.entities(app, this.num, page, filter);
        if (!rows.length && page > 0) {
          if (id === this.loadId) this.load(page - 1, { lastPage: page - 1 });
          return;
        }
        const last = rows.length < this.num || page === lastPage;
        total = last ? page * this.num + rows.length : null;
      } else {
        total = await api.count(app);
        const pages = Math.max(1, Math.ceil(total / this.num));
        page = Math.min(Math.max(0, page), pages - 1);
        rows = await api.entities(app, this.num, page);
      }
    } catch (err) {
      if (id !== this.loadId) return;
      this.grid.removeAttribute('aria-busy');
      fill(this.grid, h('p', { class: 'error-text' }, errorText(err)));
      reportError(err, 'Loading entities');
      return;
    }
    if (id !== this.loadId) return;
    this.page = page;
    this.total = total;
    const matching = filter ? ' matching' : '';
    if (total === null) {
      const seen = ((page + 1) * this.num).toLocaleString();
      this.where.textContent = `Page ${page + 1} · more than ${seen}${matching} entities`;
      this.next.disabled = false;
    } else {
      const pages = Math.max(1, Math.ceil(total / this.num));
      this.where.textContent =
        `Page ${page + 1} of ${pages} · ${total.toLocaleString()}${matching} entities`;
      this.next.disabled = page >= pages - 1;
    }
    this.where.dataset.page = String(page);
    this.prev.disabled = page === 0;
    this.grid.removeAttribute('aria-busy');
    const empty = filter ? 'No entity matches the filter.'
      : 'This application holds no entities yet.';
    fill(this.grid, ...(rows.length
      ? rows.map((entity) => this.card(app, entity))
      : [emptyState(empty)]));
  }

  card(app, entity) {
    const remove = confirmButton('Delete', async () => {
      try {
        await api.deleteEntity(app, entity._id);
      } catch (err) {
        reportError(err, 'Deleting the entity');
        return;
      }
      toast(`Entity #${entity._id} deleted`, { kind: 'ok' });
      emit('entity-deleted', { app, id: entity._id }); // this page reloads on it
    }, { armedLabel: 'Confirm', className: 'btn danger small' });
    return h('div', { class: 'card entity', dataset: { id: entity._id } },
      h('button', { type: 'button', class: 'thumb', title: 'Open details',
        onclick: () => openEntity({ app, id: entity._id }) },
      showImage(h('img', { alt: entity.name || `Entity ${entity._id}`, loading: 'lazy' }),
        entity._image_url)),
      h('div', { class: 'card-meta' },
        metaLines(entity),
        h('code', { class: 'entity-id', title: `entity ${entity._id}` }, `#${entity._id}`),
        h('div', { class: 'muted small', title: entity.created_at },
          formatDate(entity.created_at)),
        h('div', { class: 'card-line' },
          h('span', { class: 'muted small', title: `${entity.vectors.length} vector(s)` },
            formatBytes(entity.size),
            entity.vectors.length === 1 ? '' : ` · ${entity.vectors.length} vectors`),
          remove)));
  }
}
