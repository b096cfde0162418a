// Browse: page through an application's entities; open or delete one.

import { api, showImage } from '../api.js';
import { openEntity } from '../entity.js';
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
    this.root = h('section', { class: 'panel' },
      h('div', { class: 'toolbar' }, this.apps.root, field('Per page', this.perPage),
        h('div', { class: 'pager' }, this.prev, this.where, this.next)),
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

  async load(page) {
    const app = this.apps.value;
    const id = ++this.loadId;
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
      total = await api.count(app);
      const pages = Math.max(1, Math.ceil(total / this.num));
      page = Math.min(Math.max(0, page), pages - 1);
      rows = await api.entities(app, this.num, page);
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
    const pages = Math.max(1, Math.ceil(total / this.num));
    this.where.textContent = `Page ${page + 1} of ${pages} · ${total.toLocaleString()} entities`;
    this.where.dataset.page = String(page);
    this.prev.disabled = page === 0;
    this.next.disabled = page >= pages - 1;
    this.grid.removeAttribute('aria-busy');
    fill(this.grid, ...(rows.length
      ? rows.map((entity) => this.card(app, entity))
      : [emptyState('This application holds no entities yet.')]));
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
      showImage(h('img', { alt: `Entity ${entity._id}`, loading: 'lazy' }), entity._image_url)),
      h('div', { class: 'card-meta' },
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
