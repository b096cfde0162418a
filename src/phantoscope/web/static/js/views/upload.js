// Upload: many files at once (drop or pick), sent to upload/batch a few per request, with a
// progress bar and an outcome per file. Each is named by its file name; the attributes typed
// when files are added go with each of them.

import { uploadBatch } from '../api.js';
import { openEntity } from '../entity.js';
import { attributeChips, parseAttributes } from '../meta.js';
import { AppSelect, emit } from '../state.js';
import { dropZone, errorText, field, fill, formatBytes, h, toast } from '../ui.js';

const PER_REQUEST = 4; // files in one upload/batch request
const REQUEST_BYTES = 16 * 1024 * 1024; // ... and at most this many bytes (one bigger file alone)
const IN_FLIGHT = 2; // requests at a time

export default class UploadView {
  id = 'upload';
  title = 'Upload';

  constructor() {
    this.items = [];
    this.inFlight = 0;
    this.apps = new AppSelect({ testId: 'upload-app', onChange: () => this.renderFieldChoice() });
    this.fieldSelect = h('select', { 'data-testid': 'upload-field' });
    this.fieldChoice = field('Image field', this.fieldSelect);
    this.fieldChoice.hidden = true;
    this.attributes = h('textarea', { rows: 2, placeholder: 'category=shoes\nsale=true',
      'data-testid': 'upload-attributes' });
    this.attributesChoice = field('Attributes for the files added next', this.attributes,
      'One key=value a line (optional).');

    this.fileInput = h('input', { type: 'file', accept: 'image/*', multiple: true, hidden: true,
      'data-testid': 'upload-files', onchange: () => {
        this.add(this.fileInput.files);
        this.fileInput.value = '';
      } });
    this.zone = h('div', { class: 'dropzone big', 'data-testid': 'upload-drop' },
      this.fileInput,
      h('div', { class: 'drop-icon', 'aria-hidden': 'true' }, '⤒'),
      h('p', {}, h('strong', {}, 'Drop images here'), ' or ',
        h('button', { type: 'button', class: 'linkish', onclick: () => this.fileInput.click() },
          'choose files')),
      h('p', { class: 'muted small' },
        'JPEG, PNG, WebP, … — many at once; each succeeds or fails on its own.'));
    this.wireDrop();

    this.summary = h('div', { class: 'upload-summary', 'data-testid': 'upload-summary' });
    this.list = h('ul', { class: 'upload-list', 'data-testid': 'upload-list' });
    this.root = h('div', { class: 'stack' },
      h('section', { class: 'panel' },
        h('div', { class: 'form-row narrow' }, this.apps.root, this.fieldChoice,
          this.attributesChoice), this.zone),
      h('section', { class: 'panel' },
        h('div', { class: 'panel-head' }, h('h2', {}, 'Files'), this.summary,
          h('button', { type: 'button', class: 'btn small ghost',
            onclick: () => this.clearFinished() }, 'Clear finished')),
        this.list));
    this.renderSummary();
  }

  show() {
    this.apps.refresh();
  }

  renderFieldChoice() {
    const fields = this.apps.fields;
    fill(this.fieldSelect, ...fields.map((f) =>
      h('option', { value: f.name }, `${f.name} (${f.pipeline})`)));
    this.fieldChoice.hidden = fields.length < 2;
  }

  wireDrop() {
    dropZone(this.zone, (data) => this.add(data?.files));
  }

  // Images pasted (Ctrl+V) while this view is shown join the queue.
  paste(event) {
    const files = [...(event.clipboardData?.files || [])]
      .filter((file) => file.type.startsWith('image/'));
    if (!files.length) return;
    event.preventDefault();
    this.add(files);
  }

  add(fileList) {
    const files = [...(fileList || [])];
    if (!files.length) return;
    const app = this.apps.value;
    if (!app) {
      toast('Create an application first, then upload to it.', { kind: 'error' });
      return;
    }
    const fieldName = this.fieldChoice.hidden ? null : this.fieldSelect.value || null;
    let attributes;
    try {
      attributes = parseAttributes(this.attributes.value);
    } catch (err) {
      toast(`Attributes: ${err.message}`, { kind: 'error', title: 'Nothing was uploaded' });
      return;
    }
    if (!Object.keys(attributes).length) attributes = null;
    const attributesKey = JSON.stringify(attributes);
    for (const file of files) {
      const item = { file, app, field: fieldName, attributes, attributesKey, state: 'queued' };
      item.row = this.row(item);
      this.items.push(item);
      this.list.append(item.row.li);
    }
    this.renderSummary();
    this.pump();
  }

  row(item) {
    const bar = h('i');
    const status = h('span', { class: 'status' }, 'queued');
    const thumb = h('span', { class: 'file-thumb' });
    if (item.file.type.startsWith('image/')) {
      const url = URL.createObjectURL(item.file);
      const img = h('img', { src: url, alt: '' });
      img.addEventListener('load', () => URL.revokeObjectURL(url), { once: true });
      img.addEventListener('error', () => {
        URL.revokeObjectURL(url);
        img.remove();
      }, { once: true });
      thumb.append(img);
    }
    const li = h('li', { class: 'upload-item', dataset: { name: item.file.name, state: 'queued' } },
      thumb,
      h('div', { class: 'upload-main' },
        h('div', { class: 'upload-line' }, h('span', { class: 'file-name' }, item.file.name),
          h('span', { class: 'muted small' }, `${formatBytes(item.file.size)} → ${item.app}`)),
        attributeChips(item.attributes),
        h('div', { class: 'progress' }, bar),
        status));
    return { li, bar, status };
  }

  setState(item, state, text, fraction) {
    item.state = state;
    item.row.li.dataset.state = state;
    if (text !== undefined) fill(item.row.status, ...[text].flat());
    if (fraction !== undefined) item.row.bar.style.width = `${Math.round(fraction * 100)}%`;
  }

  // Start requests while there is room: consecutive queued files for the same target.
  pump() {
    while (this.inFlight < IN_FLIGHT) {
      const queued = this.items.filter((i) => i.state === 'queued');
      if (!queued.length) break;
      const first = queued[0];
      const chunk = [];
      let bytes = 0;
      for (const item of queued) {
        if (item.app !== first.app || item.field !== first.field
          || item.attributesKey !== first.attributesKey) continue;
        const full = chunk.length >= PER_REQUEST
          || (chunk.length > 0 && bytes + item.file.size > REQUEST_BYTES);
        if (full) break;
        chunk.push(item);
        bytes += item.file.size;
      }
      this.send(chunk);
    }
    this.renderSummary();
  }

  async send(chunk) {
    this.inFlight += 1;
    for (const item of chunk) this.setState(item, 'uploading', 'uploading 0 %', 0);
    const sizes = chunk.map((item) => item.file.size);
    const total = sizes.reduce((a, b) => a + b, 0);
    const progress = (loaded, sent) => {
      // The files go one after another in the body; spread the multipart overhead evenly.
      const overhead = Math.max(0, (sent - total) / chunk.length);
      let start = 0;
      chunk.forEach((item, i) => {
        const span = sizes[i] + overhead;
        const fraction = span ? Math.min(1, Math.max(0, (loaded - start) / span)) : 1;
        start += span;
        this.setState(item, 'uploading', `uploading ${Math.round(fraction * 100)} %`, fraction);
      });
    };
    try {
      const answer = await uploadBatch(chunk[0].app, chunk.map((i) => i.file), chunk[0].field, {
        attributes: chunk[0].attributes,
        onProgress: progress,
        onSent: () => chunk.forEach((item) => this.setState(item, 'processing', 'processing…', 1)),
      });
      chunk.forEach((item, index) => {
        const result = answer.results?.find((r) => r.index === index);
        this.settle(item, result);
      });
      if (answer.imported) emit('entities-changed', { app: chunk[0].app });
    } catch (err) {
      for (const item of chunk) this.setState(item, 'failed', errorText(err), 1);
    } finally {
      this.inFlight -= 1;
      this.pump();
    }
  }

  settle(item, result) {
    if (result?.entity) {
      const entity = result.entity;
      item.entity = entity;
      this.setState(item, 'done', ['stored as ', h('button', { type: 'button', class: 'linkish',
        onclick: () => openEntity({ app: entity._app_name, id: entity._id }) },
      `entity #${entity._id}`)], 1);
    } else {
      const error = result?.error;
      const text = error ? `${error.code}: ${error.message}` : 'no answer for this file';
      this.setState(item, 'failed', text, 1);
    }
  }

  renderSummary() {
    const count = (state) => this.items.filter((i) => i.state === state).length;
    const done = count('done');
    const failed = count('failed');
    const pending = this.items.length - done - failed;
    fill(this.summary, ...(this.items.length ? [
      h('span', { class: 'chip ok' }, `${done} stored`),
      failed ? h('span', { class: 'chip bad' }, `${failed} failed`) : null,
      pending ? h('span', { class: 'chip' }, `${pending} pending`) : null,
    ] : [h('span', { class: 'muted small' }, 'Nothing uploaded yet.')]));
    this.summary.dataset.pending = String(pending);
  }

  clearFinished() {
    this.items = this.items.filter((item) => {
      const finished = item.state === 'done' || item.state === 'failed';
      if (finished) item.row.li.remove();
      return !finished;
    });
    this.renderSummary();
  }
}
