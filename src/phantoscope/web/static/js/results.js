// A grid of search hits: thumbnail, rank, score, the matched box for processor pipelines, and
// the entity's name, EXIF and attributes.

import { showImage } from './api.js';
import { openEntity } from './entity.js';
import { metaLines } from './meta.js';
import { on } from './state.js';
import { boxLayer, emptyState, fill, formatBytes, formatScore, h } from './ui.js';

export class Results {
  constructor({ testId = 'results', compact = false } = {}) {
    this.head = h('div', { class: 'results-head' });
    this.grid = h('div', { class: `grid hits${compact ? ' compact' : ''}` });
    this.root = h('div', { class: 'results', 'data-testid': testId }, this.head, this.grid);
    this.idle();
    on('entity-deleted', ({ app, id }) => {
      for (const card of this.grid.querySelectorAll(`.hit[data-app="${CSS.escape(app)}"]`)) {
        if (card.dataset.id === String(id)) {
          card.classList.add('gone');
          card.title = 'deleted';
        }
      }
    });
  }

  idle(text = 'Results appear here.') {
    this.root.dataset.state = 'idle';
    fill(this.head);
    fill(this.grid, emptyState(text));
  }

  loading(text = 'Searching…') {
    this.root.dataset.state = 'loading';
    this.root.setAttribute('aria-busy', 'true');
    fill(this.head, h('span', { class: 'spinner', 'aria-hidden': 'true' }), text);
  }

  failed(message) {
    this.root.dataset.state = 'error';
    this.root.removeAttribute('aria-busy');
    fill(this.head, h('span', { class: 'error-text' }, message));
    fill(this.grid);
  }

  // note: a line under the head (e.g. the words a text search did not know); empty: what to say
  // when there are no hits.
  show(hits, { app, label, ms, filtered = false, note = '', empty = '' }) {
    this.root.dataset.state = 'done';
    this.root.removeAttribute('aria-busy');
    const took = Number.isFinite(ms) ? ` in ${(ms / 1000).toFixed(2)} s` : '';
    fill(this.head,
      h('strong', {}, `${hits.length} result${hits.length === 1 ? '' : 's'}`),
      h('span', { class: 'muted' },
        ` from ${app}${filtered ? ' matching the filter' : ''}${took}`),
      ...(label ? [h('span', { class: 'muted query-label', title: label }, ` · ${label}`)] : []),
      ...(note ? [h('div', { class: 'muted small results-note' }, note)] : []));
    fill(this.grid, ...(hits.length
      ? hits.map((hit, index) => hitCard(hit, index + 1))
      : [emptyState(empty || (filtered ? 'No entity matches the filter.'
        : 'No matches: the application holds no entities yet.'))]));
  }
}

export function hitCard(hit, rank) {
  const img = h('img', { alt: `Entity ${hit._id}`, loading: 'lazy', decoding: 'async' });
  img.addEventListener('error', () => img.closest('.thumb')?.classList.add('broken'),
    { once: true });
  showImage(img, hit._image_url);
  const boxes = hit.box
    ? [{ ...hit.box, kind: 'match', label: `matched box, score ${formatScore(hit.box.score)}` }]
    : [];
  const width = Math.max(0, Math.min(1, hit.score)) * 100;
  return h('button', { type: 'button', class: 'card hit',
    dataset: { id: hit._id, app: hit._app_name, rank },
    title: `${hit.name || `Entity ${hit._id}`}: open details`,
    onclick: () => openEntity({ app: hit._app_name, id: hit._id, hit }) },
  h('span', { class: 'thumb' }, img, boxes.length ? boxLayer(img, boxes) : null,
    h('span', { class: 'rank' }, String(rank))),
  h('span', { class: 'card-meta' },
    h('span', { class: 'score-line' },
      h('span', { class: 'score', title: `distance ${hit.distance}` }, formatScore(hit.score)),
      h('span', { class: 'bar' }, h('i', { style: { width: `${width}%` } }))),
    metaLines(hit),
    h('span', { class: 'muted small' }, kind(hit.content_type), ' · ', formatBytes(hit.size),
      hit.box ? ' · boxed' : '')));
}

function kind(contentType) {
  return (contentType || 'image/?').replace(/^image\//, '').toUpperCase();
}
