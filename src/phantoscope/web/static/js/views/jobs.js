// Jobs: the server's background jobs (import, reindex, watch), newest first, each with its
// progress, rate and time left, refreshed while any is under way; start an import from a
// folder on the server, cancel a queued or running job, and switch a field to the pipeline
// a finished reindex embedded it with.

import { api, imageFields } from '../api.js';
import { applicationsChanged, AppSelect } from '../state.js';
import { emptyState, errorText, field, fill, h, reportError, toast } from '../ui.js';

const BUSY_EVERY_MS = 1000;   // while an import or a reindex is queued or running
const WATCH_EVERY_MS = 10000; // while only watches run (they never end)
const OPEN = new Set(['queued', 'running']);

// Seconds as "45 s", "12 min", "2 h 5 min".
function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return `${s} s`;
  const minutes = Math.round(s / 60);
  if (minutes < 90) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export default class JobsView {
  id = 'jobs';
  title = 'Jobs';

  constructor() {
    this.timer = null;
    this.loadId = 0;
    this.jobs = [];
    this.notes = new Map();  // job id -> what its last action said (an error, a switch)
    this.apps = new AppSelect({ testId: 'job-start-app', onChange: () => this.fillFields() });
    this.fieldSelect = h('select', { 'data-testid': 'job-field' });
    this.fieldBox = field('Image field', this.fieldSelect);
    this.folderInput = h('input', { name: 'folder', required: true, size: 40,
      placeholder: '/srv/photos/2024', autocomplete: 'off', spellcheck: false,
      'data-testid': 'job-folder' });
    this.startError = h('p', { class: 'error-text', hidden: true,
      'data-testid': 'job-start-error' });
    this.startButton = h('button', { class: 'btn primary', type: 'submit',
      'data-testid': 'job-start' }, 'Start import');
    this.form = h('form', { class: 'create-form', 'data-testid': 'job-form',
      onsubmit: (event) => this.start(event) },
    h('div', { class: 'form-row' }, this.apps.root, this.fieldBox,
      field('Folder on the server', this.folderInput,
        'an absolute path under one of the server\'s PHANTOSCOPE_IMPORT_ROOTS'),
      h('div', { class: 'field submit' }, this.startButton)),
    this.startError);
    this.list = h('div', { class: 'job-list', 'data-testid': 'job-list' });
    this.root = h('div', { class: 'stack' },
      h('section', { class: 'panel' }, h('h2', {}, 'Import a folder'), this.form),
      h('section', { class: 'panel' },
        h('div', { class: 'panel-head' }, h('h2', {}, 'Jobs'),
          h('button', { type: 'button', class: 'btn small ghost', 'data-testid': 'job-reload',
            onclick: () => this.load() }, 'Refresh')),
        this.list));
  }

  show() {
    this.visible = true;
    this.apps.refresh().then(() => this.fillFields());
    return this.load();
  }

  hide() {
    this.visible = false;
    clearTimeout(this.timer);
  }

  fillFields() {
    const fields = imageFields(this.apps.application);
    const before = this.fieldSelect.value;
    fill(this.fieldSelect, fields.map((f) => h('option', { value: f.name }, f.name)));
    if (fields.some((f) => f.name === before)) this.fieldSelect.value = before;
    this.fieldBox.hidden = fields.length < 2;  // the only field is the default
  }

  async start(event) {
    event.preventDefault();
    const application = this.apps.value;
    if (!application) {
      this.showStartError('Create an application first.');
      return;
    }
    const folder = this.folderInput.value.trim();
    const body = { kind: 'import', application, source: { folder } };
    if (!this.fieldBox.hidden && this.fieldSelect.value) body.field = this.fieldSelect.value;
    this.startError.hidden = true;
    this.startButton.disabled = true;
    try {
      const job = await api.startJob(body);
      toast(`Import job ${job.id} started: ${job.total} image${job.total === 1 ? '' : 's'}`,
        { kind: 'ok' });
      this.folderInput.value = '';
      await this.load();
    } catch (err) {
      this.showStartError(errorText(err));
    } finally {
      this.startButton.disabled = false;
    }
  }

  showStartError(text) {
    this.startError.textContent = text;
    this.startError.hidden = false;
  }

  async load() {
    const id = ++this.loadId;
    clearTimeout(this.timer);
    let jobs;
    try {
      jobs = await api.jobs();
    } catch (err) {
      if (id !== this.loadId) return;
      fill(this.list, h('p', { class: 'error-text', 'data-testid': 'job-error' }, errorText(err)));
      reportError(err, 'Loading jobs');
      return;
    }
    if (id !== this.loadId) return;
    this.jobs = jobs;
    this.render();
    this.schedule();
  }

  // Refresh again soon while a job is under way (rarely when only watches run).
  schedule() {
    clearTimeout(this.timer);
    if (!this.visible) return;
    const open = this.jobs.filter((job) => OPEN.has(job.state));
    if (!open.length) return;
    const every = open.some((job) => job.kind !== 'watch') ? BUSY_EVERY_MS : WATCH_EVERY_MS;
    this.timer = setTimeout(() => this.load(), every);
  }

  render() {
    if (!this.jobs.length) {
      fill(this.list, emptyState('No jobs yet: start an import above, or one from a terminal '
        + '(phantoscope jobs start).'));
      return;
    }
    fill(this.list, h('table', { class: 'table jobs-table' },
      h('thead', {}, h('tr', {}, ['Job', 'Kind', 'Application', 'State', 'Progress', 'Rate',
        'Left', ''].map((title) => h('th', {}, title)))),
      h('tbody', {}, this.jobs.map((job) => this.row(job)))));
  }

  row(job) {
    const id = String(job.id);
    const watch = job.kind === 'watch';
    const ended = (job.done || 0) + (job.failed || 0);
    const target = job.application
      ? [job.application, job.field ? ` · ${job.field}` : '',
        job.pipeline ? ` → ${job.pipeline}` : '']
      : ['—'];
    const running = job.state === 'running';
    const rate = running && job.rate > 0 ? `${job.rate.toFixed(job.rate < 10 ? 1 : 0)}/s` : '';
    const left = running && !watch && job.eta_s !== null && job.eta_s !== undefined
      ? `about ${formatDuration(job.eta_s)}` : '';
    const note = this.notes.get(id);
    return h('tr', { class: 'job-row', 'data-testid': 'job-row',
      dataset: { id, kind: job.kind, state: job.state } },
    h('td', {}, h('code', { class: 'job-id', title: id }, `#${id.slice(-6)}`)),
    h('td', { 'data-testid': 'job-kind' }, job.kind),
    h('td', { 'data-testid': 'job-app' }, target),
    h('td', {}, h('span', { class: 'job-state', 'data-testid': 'job-state',
      dataset: { state: job.state } }, job.state)),
    h('td', { class: 'job-progress' }, this.progress(job, ended, watch)),
    h('td', { class: 'num', 'data-testid': 'job-rate' }, rate),
    h('td', { class: 'num', 'data-testid': 'job-eta' }, left),
    h('td', { class: 'actions' },
      h('div', { class: 'btn-row' }, this.actions(job)),
      note ? h('p', { class: note.error ? 'error-text small' : 'muted small',
        'data-testid': 'job-note' }, note.text) : null));
  }

  progress(job, ended, watch) {
    const failed = job.failed ? h('span', { class: 'job-failed' }, ` · ${job.failed} failed`)
      : null;
    const errors = job.errors?.length
      ? h('details', { class: 'job-errors', 'data-testid': 'job-errors' },
        h('summary', {}, 'Errors'),
        h('ul', {}, job.errors.map((e) => h('li', {}, h('code', {}, e.item), ` ${e.reason}`))))
      : null;
    if (watch || !job.total) {  // a watch has no end: what it did so far
      return [h('span', { 'data-testid': 'job-count' },
        `${job.done || 0} done`, failed, watch ? ' · watching' : ''), errors];
    }
    const share = Math.min(1, ended / job.total);
    return [
      h('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': 0,
        'aria-valuemax': job.total, 'aria-valuenow': ended, 'data-testid': 'job-bar',
        dataset: { state: job.state } },
      h('i', { style: { width: `${(share * 100).toFixed(1)}%` } })),
      h('span', { class: 'small', 'data-testid': 'job-count' },
        `${ended} of ${job.total}`, failed),
      errors,
    ];
  }

  actions(job) {
    const buttons = [];
    if (OPEN.has(job.state)) {
      buttons.push(h('button', { type: 'button', class: 'btn small', 'data-testid': 'job-cancel',
        title: 'Stop it: no more of its items start (those done stay)',
        onclick: (event) => this.cancel(job, event.currentTarget) }, 'Cancel'));
    }
    if (job.kind === 'reindex' && job.state === 'done' && job.application && job.field
        && job.pipeline) {
      const inUse = this.fieldPipeline(job.application, job.field) === job.pipeline;
      buttons.push(h('button', { type: 'button', class: 'btn small primary',
        'data-testid': 'job-switch', disabled: inUse,
        title: inUse ? `${job.field} searches with ${job.pipeline} already`
          : `Search ${job.application}'s ${job.field} with ${job.pipeline} from now on`,
        onclick: (event) => this.switchField(job, event.currentTarget) },
      inUse ? 'In use' : 'Switch'));
    }
    return buttons;
  }

  // The pipeline an application's field searches with now, from the applications known.
  fieldPipeline(app, fieldName) {
    const application = this.apps.list.find((a) => a._application_name === app);
    return application?._fields?.[fieldName]?.pipeline ?? null;
  }

  async cancel(job, button) {
    button.disabled = true;
    try {
      await api.cancelJob(job.id);
      this.notes.delete(String(job.id));
      toast(`Job ${job.id} cancelled`, { kind: 'ok' });
    } catch (err) {
      this.notes.set(String(job.id), { error: true, text: errorText(err) });
    }
    await this.load();
  }

  async switchField(job, button) {
    button.disabled = true;
    try {
      await api.switchField(job.application, job.field, job.pipeline);
      this.notes.set(String(job.id), { error: false,
        text: `Searches of ${job.field} use ${job.pipeline} now` });
      toast(`${job.application}: ${job.field} switched to ${job.pipeline}`, { kind: 'ok' });
    } catch (err) {
      this.notes.set(String(job.id), { error: true, text: errorText(err) });
    }
    // every view's applications, ours included: what the field uses now (a refusal may
    // say it was switched meanwhile)
    await applicationsChanged();
    await this.apps.refresh();
    await this.load();
  }
}
