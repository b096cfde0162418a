// An entity's details in a dialog: the stored image with its vectors' boxes, its fields, and
// actions (search with it, open the original, delete it).

import { api, fetchImage, openImage, showImage } from './api.js';
import { emit } from './state.js';
import {
  boxLayer, confirmButton, errorText, fill, formatBox, formatBytes, formatDate, formatScore, h,
  reportError, toast,
} from './ui.js';

function dialog() {
  return document.getElementById('entity-dialog');
}

function row(label, ...value) {
  return [h('dt', {}, label), h('dd', {}, ...value)];
}

// Open the dialog for entity `id` of `app`; `hit` (a search hit) adds its score and box.
export async function openEntity({ app, id, hit = null }) {
  const box = dialog();
  const close = h('button', { type: 'button', class: 'btn ghost icon', 'aria-label': 'Close',
    onclick: () => box.close() }, '×');
  const body = h('div', { class: 'entity-body' }, h('p', { class: 'muted' }, 'Loading…'));
  fill(box, h('header', { class: 'dialog-head' },
    h('h2', {}, `Entity #${id}`, h('span', { class: 'muted' }, ` in ${app}`)), close), body);
  box.dataset.entityId = String(id);
  if (!box.open) box.showModal();
  let entity;
  try {
    entity = await api.entity(app, id);
  } catch (err) {
    fill(body, h('p', { class: 'error-text' }, errorText(err)));
    return;
  }
  if (box.dataset.entityId !== String(id)) return; // another one was opened meanwhile
  fill(body, ...entityView(entity, hit, () => box.close()));
}

function entityView(entity, hit, close) {
  const img = showImage(h('img', { alt: `Entity ${entity._id}` }), entity._image_url);
  const boxes = entity.vectors.filter((v) => v.box)
    .map((v) => ({ ...v.box, kind: 'vector', label: `vector ${v.id}` }));
  if (hit?.box) boxes.push({ ...hit.box, kind: 'match', label: 'matched box' });
  const details = h('dl', { class: 'details' },
    row('ID', String(entity._id)),
    row('Application', entity._app_name),
    row('Field', entity.field ?? '—'),
    row('Type', entity.content_type || '—'),
    row('Size', `${formatBytes(entity.size)} (${entity.size?.toLocaleString()} bytes)`),
    row('Created', formatDate(entity.created_at)),
    row('SHA-256', h('code', { class: 'hash', title: entity.sha256 }, entity.sha256 || '—')),
    hit ? row('Score', `${formatScore(hit.score)} (distance ${formatScore(hit.distance)})`) : [],
    hit?.box ? row('Matched box', formatBox(hit.box)) : []);
  const vectors = h('table', { class: 'table small vectors' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Vector'), h('th', {}, 'Pipeline'),
      h('th', {}, 'Box'), h('th', {}, 'Box score'))),
    h('tbody', {}, entity.vectors.map((v) => h('tr', {},
      h('td', {}, String(v.id)), h('td', {}, v.pipeline), h('td', {}, formatBox(v.box)),
      h('td', {}, v.box ? formatScore(v.box.score) : '—')))));
  const searchWith = h('button', { type: 'button', class: 'btn primary', onclick: async () => {
    try {
      const blob = await fetchImage(entity._image_url);
      close();
      emit('query-image', { blob, name: `entity ${entity._id}`, app: entity._app_name });
    } catch (err) {
      reportError(err, 'Loading the image');
    }
  } }, 'Search with this image');
  const remove = confirmButton('Delete entity', async () => {
    try {
      await api.deleteEntity(entity._app_name, entity._id);
    } catch (err) {
      reportError(err, 'Deleting the entity');
      return;
    }
    toast(`Entity #${entity._id} deleted`, { kind: 'ok' });
    emit('entity-deleted', { app: entity._app_name, id: entity._id });
    close();
  }, { className: 'btn danger' });
  return [
    h('div', { class: 'entity-grid' },
      h('div', { class: 'entity-image thumb' }, img, boxes.length ? boxLayer(img, boxes) : null),
      h('div', { class: 'entity-side' }, details,
        h('h3', {}, `Vectors (${entity.vectors.length})`), vectors)),
    h('footer', { class: 'dialog-foot' }, searchWith,
      h('a', {
        class: 'btn', href: entity._image_url, target: '_blank', rel: 'noopener',
        onclick: (event) => openImage(event, entity._image_url),
      }, 'Open image ↗'),
      h('span', { class: 'spacer' }), remove),
  ];
}
