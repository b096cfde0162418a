// An entity's details in a dialog: the stored image with its vectors' boxes, its fields, name,
// attributes and EXIF, and actions (edit its name and attributes, search with it, open the
// original, delete it).

import { api, fetchImage, openImage, showImage } from './api.js';
import { attributeChips, formatTaken, formatValue, parseAttributes } from './meta.js';
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
  const shown = () => fill(body, ...entityView(entity, hit, () => box.close(), edit));
  const edit = () => fill(body, editView(entity, (changed) => {
    if (changed) entity = changed;
    shown();
  }));
  shown();
}

// What the EXIF says, a row each (none when it says nothing).
function exifRows(exif = {}) {
  const gps = exif.gps;
  return [
    exif.taken_at ? row('Taken', h('span', { title: exif.taken_at }, formatTaken(exif.taken_at)))
      : [],
    exif.camera ? row('Camera', exif.camera) : [],
    exif.width && exif.height ? row('Dimensions', `${exif.width} × ${exif.height} px`) : [],
    gps ? row('Location', `${gps.lat.toFixed(5)}, ${gps.lon.toFixed(5)}`) : [],
  ];
}

function attributesText(attributes = {}) {
  return Object.entries(attributes).flatMap(([key, value]) => (Array.isArray(value)
    ? value.map((item) => `${key}=${item}`) : [`${key}=${formatValue(value)}`])).join('\n');
}

// A form to rename the entity and replace its attributes; done(entity) after a save,
// done(null) on cancel.
function editView(entity, done) {
  const name = h('input', { type: 'text', value: entity.name || '', maxLength: 1024,
    'data-testid': 'entity-name-input' });
  const attributes = h('textarea', { rows: 5,
    'data-testid': 'entity-attributes-input' }, attributesText(entity.attributes));
  const error = h('p', { class: 'error-text', hidden: true });
  const save = h('button', { type: 'submit', class: 'btn primary' }, 'Save');
  return h('form', { class: 'stack tight entity-edit', onsubmit: async (event) => {
    event.preventDefault();
    let changes;
    try {
      changes = { name: name.value, attributes: parseAttributes(attributes.value) };
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      return;
    }
    save.disabled = true;
    try {
      const changed = await api.updateEntity(entity._app_name, entity._id, changes);
      toast(`Entity #${entity._id} saved`, { kind: 'ok' });
      emit('entities-changed', { app: entity._app_name });
      done(changed);
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
      save.disabled = false;
    }
  } },
  h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Name'), name),
  h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Attributes'), attributes,
    h('small', { class: 'hint' }, 'One key=value a line: true/false and numbers are read as '
      + 'such; a key on several lines holds a list.')),
  error,
  h('div', { class: 'btn-row' },
    h('button', { type: 'button', class: 'btn ghost', onclick: () => done(null) }, 'Cancel'),
    save));
}

function entityView(entity, hit, close, edit) {
  const img = showImage(h('img', { alt: `Entity ${entity._id}` }), entity._image_url);
  const boxes = entity.vectors.filter((v) => v.box)
    .map((v) => ({ ...v.box, kind: 'vector', label: `vector ${v.id}` }));
  if (hit?.box) boxes.push({ ...hit.box, kind: 'match', label: 'matched box' });
  const details = h('dl', { class: 'details' },
    row('Name', entity.name ? h('span', { class: 'entity-name' }, entity.name)
      : h('span', { class: 'muted' }, '—')),
    row('Attributes', attributeChips(entity.attributes) || h('span', { class: 'muted' }, '—')),
    ...exifRows(entity.exif),
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
      h('button', { type: 'button', class: 'btn', 'data-testid': 'entity-edit', onclick: edit },
        'Edit name and attributes'),
      h('a', {
        class: 'btn', href: entity._image_url, target: '_blank', rel: 'noopener',
        onclick: (event) => openImage(event, entity._image_url),
      }, 'Open image ↗'),
      h('span', { class: 'spacer' }), remove),
  ];
}
