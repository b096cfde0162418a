// The query image: chosen, dropped, pasted or given by URL; optionally cropped by drawing a
// rectangle on its preview. getRef() gives what the search API takes: {data} or {url}.

import { blobToBase64, dropZone, h } from './ui.js';

const MIN_CROP_PX = 6; // a smaller drag is a click: it clears the crop

export class QueryPicker {
  // onChange(reason): 'image' when a new query is set, 'crop' when the crop changes.
  constructor({ onChange, testId = 'query' } = {}) {
    this.onChange = onChange;
    this.source = null; // {kind: 'file', blob, name} | {kind: 'url', url}
    this.crop = null; // {x, y, w, h} in the image's own pixels
    this.croppable = false;
    this.objectUrl = null;

    this.fileInput = h('input', { type: 'file', accept: 'image/*', hidden: true,
      'data-testid': `${testId}-file`, onchange: () => this.takeFiles(this.fileInput.files) });
    this.urlInput = h('input', { type: 'url', placeholder: 'https://example.com/photo.jpg',
      'aria-label': 'Image URL', 'data-testid': `${testId}-url` });
    const urlForm = h('form', { class: 'url-form', onsubmit: (event) => {
      event.preventDefault();
      const url = this.urlInput.value.trim();
      if (url) this.setUrl(url);
    } }, this.urlInput, h('button', { class: 'btn', type: 'submit' }, 'Use URL'));

    this.img = h('img', { class: 'query-img', alt: 'Query image', draggable: false });
    this.cropBox = h('div', { class: 'crop-box', hidden: true });
    this.stage = h('div', { class: 'query-stage', 'data-testid': `${testId}-stage` },
      this.img, this.cropBox);
    this.info = h('span', { class: 'query-info' });
    this.clearCropButton = h('button', { type: 'button', class: 'btn small', hidden: true,
      onclick: () => this.setCrop(null) }, 'Clear crop');
    this.preview = h('div', { class: 'query-preview', hidden: true }, this.stage,
      h('div', { class: 'query-bar' }, this.info,
        h('span', { class: 'query-actions' }, this.clearCropButton,
          h('button', { type: 'button', class: 'btn small', onclick: () => this.fileInput.click() },
            'Replace'),
          h('button', { type: 'button', class: 'btn small ghost', onclick: () => this.clear() },
            'Remove'))));
    this.prompt = h('div', { class: 'drop-prompt' },
      h('div', { class: 'drop-icon', 'aria-hidden': 'true' }, '⤓'),
      h('p', {}, h('strong', {}, 'Drop an image'), ', paste one (Ctrl+V) or ',
        h('button', { type: 'button', class: 'linkish', onclick: () => this.fileInput.click() },
          'choose a file')));
    this.root = h('div', { class: 'query-picker dropzone', 'data-testid': testId },
      this.fileInput, this.prompt, this.preview, urlForm);

    this.wireDrop();
    this.wireCrop();
  }

  hasQuery() {
    return Boolean(this.source);
  }

  wireDrop() {
    dropZone(this.root, (data) => {
      if (data?.files?.length) this.takeFiles(data.files);
      else {
        const url = (data?.getData('text/uri-list') || data?.getData('text/plain') || '')
          .split('\n').map((line) => line.trim()).find((line) => /^https?:\/\//.test(line));
        if (url) this.setUrl(url);
      }
    });
  }

  // A paste while this picker's view is shown: an image, or a URL in text.
  takePaste(event) {
    const items = [...(event.clipboardData?.items || [])];
    const image = items.find((item) => item.kind === 'file' && item.type.startsWith('image/'));
    if (image) {
      event.preventDefault();
      const file = image.getAsFile();
      if (file) this.setFile(file, file.name || 'pasted image');
      return;
    }
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) return;
    const text = event.clipboardData?.getData('text/plain')?.trim() || '';
    if (/^https?:\/\/\S+$/.test(text)) {
      event.preventDefault();
      this.setUrl(text);
    }
  }

  takeFiles(files) {
    const file = [...(files || [])][0];
    this.fileInput.value = '';
    if (file) this.setFile(file, file.name);
  }

  setFile(blob, name = 'image') {
    this.source = { kind: 'file', blob, name };
    this.urlInput.value = '';
    this.show(URL.createObjectURL(blob), { objectUrl: true, cors: false });
  }

  setUrl(url) {
    this.source = { kind: 'url', url };
    this.urlInput.value = url;
    this.show(url, { objectUrl: false, cors: true });
  }

  clear() {
    this.source = null;
    this.forgetObjectUrl();
    this.img.removeAttribute('src');
    this.preview.hidden = true;
    this.prompt.hidden = false;
    this.setCrop(null, { quiet: true });
  }

  forgetObjectUrl() {
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = null;
  }

  // Show the preview. A URL is loaded with CORS first, so that it can be cropped in a
  // canvas; a server that does not allow it still gives a preview, searched whole.
  show(src, { objectUrl, cors }) {
    this.forgetObjectUrl();
    if (objectUrl) this.objectUrl = src;
    this.setCrop(null, { quiet: true });
    this.croppable = false;
    this.prompt.hidden = true;
    this.preview.hidden = false;
    this.stage.hidden = false;
    this.info.textContent = 'Loading…';
    const source = this.source;
    const img = this.img;
    let triedWithoutCors = !cors;
    img.onload = () => {
      if (this.source !== source) return;
      this.croppable = !triedWithoutCors || objectUrl;
      this.describe();
    };
    img.onerror = () => {
      if (this.source !== source) return;
      if (!triedWithoutCors) {
        triedWithoutCors = true;
        img.removeAttribute('crossorigin');
        img.src = src;
        return;
      }
      this.croppable = false;
      this.stage.hidden = true;
      this.info.textContent = source.kind === 'file'
        ? 'The browser cannot show this file; the server will say what it makes of it.'
        : 'The browser cannot load this URL; the server will fetch it.';
    };
    if (cors) img.crossOrigin = 'anonymous';
    else img.removeAttribute('crossorigin');
    img.src = src;
    this.onChange?.('image');
  }

  describe() {
    const { naturalWidth: w, naturalHeight: h0 } = this.img;
    const name = this.source?.kind === 'file' ? this.source.name : 'URL';
    let text = `${name} · ${w}×${h0}`;
    if (this.crop) text += ` · crop ${this.crop.w}×${this.crop.h}`;
    else if (this.croppable) text += ' · drag on the image to crop';
    else text += ' · cannot be cropped here';
    this.info.textContent = text;
  }

  wireCrop() {
    const stage = this.stage;
    let drag = null;
    const point = (event, rect) => ({
      x: Math.min(Math.max(event.clientX - rect.left, 0), rect.width),
      y: Math.min(Math.max(event.clientY - rect.top, 0), rect.height),
    });
    stage.addEventListener('pointerdown', (event) => {
      if (!this.croppable || event.button !== 0) return;
      event.preventDefault();
      const rect = this.img.getBoundingClientRect();
      drag = { rect, start: point(event, rect) };
      stage.setPointerCapture(event.pointerId);
      stage.classList.add('cropping');
    });
    stage.addEventListener('pointermove', (event) => {
      if (!drag) return;
      const now = point(event, drag.rect);
      this.drawBox(drag.start, now, drag.rect);
    });
    const finish = (event) => {
      if (!drag) return;
      const { rect, start } = drag;
      drag = null;
      stage.classList.remove('cropping');
      const end = point(event, rect);
      if (Math.abs(end.x - start.x) < MIN_CROP_PX || Math.abs(end.y - start.y) < MIN_CROP_PX) {
        this.setCrop(null);
        return;
      }
      const sx = this.img.naturalWidth / rect.width;
      const sy = this.img.naturalHeight / rect.height;
      const x = Math.round(Math.min(start.x, end.x) * sx);
      const y = Math.round(Math.min(start.y, end.y) * sy);
      const w = Math.min(Math.round(Math.abs(end.x - start.x) * sx), this.img.naturalWidth - x);
      const h0 = Math.min(Math.round(Math.abs(end.y - start.y) * sy), this.img.naturalHeight - y);
      this.setCrop({ x, y, w, h: h0 });
    };
    stage.addEventListener('pointerup', finish);
    stage.addEventListener('pointercancel', () => {
      drag = null;
      stage.classList.remove('cropping');
      this.setCrop(this.crop, { quiet: true });
    });
  }

  // Show the rectangle from a to b (points in displayed pixels) while dragging.
  drawBox(a, b, rect) {
    const box = this.cropBox;
    box.hidden = false;
    box.style.left = `${(Math.min(a.x, b.x) / rect.width) * 100}%`;
    box.style.top = `${(Math.min(a.y, b.y) / rect.height) * 100}%`;
    box.style.width = `${(Math.abs(b.x - a.x) / rect.width) * 100}%`;
    box.style.height = `${(Math.abs(b.y - a.y) / rect.height) * 100}%`;
  }

  setCrop(crop, { quiet = false } = {}) {
    const changed = JSON.stringify(crop) !== JSON.stringify(this.crop);
    this.crop = crop;
    this.clearCropButton.hidden = !crop;
    this.cropBox.hidden = !crop;
    if (crop) {
      const { naturalWidth: w, naturalHeight: h0 } = this.img;
      Object.assign(this.cropBox.style, {
        left: `${(crop.x / w) * 100}%`, top: `${(crop.y / h0) * 100}%`,
        width: `${(crop.w / w) * 100}%`, height: `${(crop.h / h0) * 100}%`,
      });
    }
    if (this.source && this.img.naturalWidth) this.describe();
    if (changed && !quiet) this.onChange?.('crop');
  }

  // What to send: the crop (re-encoded in a canvas), the file as it is, or the URL.
  async getRef() {
    if (!this.source) throw new Error('choose a query image first');
    if (this.crop && this.croppable) {
      const { x, y, w, h: height } = this.crop;
      const canvas = h('canvas', { width: w, height });
      canvas.getContext('2d').drawImage(this.img, x, y, w, height, 0, 0, w, height);
      const type = this.source.blob?.type === 'image/png' ? 'image/png' : 'image/jpeg';
      const blob = await new Promise((resolve, reject) => {
        canvas.toBlob((out) => (out ? resolve(out)
          : reject(new Error('the browser could not encode the crop'))), type, 0.95);
      });
      return { data: await blobToBase64(blob) };
    }
    if (this.source.kind === 'file') return { data: await blobToBase64(this.source.blob) };
    return { url: this.source.url };
  }

  // A short label of the query for result headings.
  label() {
    if (!this.source) return '';
    const base = this.source.kind === 'file' ? this.source.name : this.source.url;
    return this.crop ? `${base} (cropped ${this.crop.w}×${this.crop.h})` : base;
  }
}
