// Applications: list, create, delete; a side panel of operators (live health) and pipelines.

import { api, imageFields } from '../api.js';
import { applications, applicationsChanged, chooseApp } from '../state.js';
import { confirmButton, emptyState, errorText, field, fill, h, reportError, toast } from '../ui.js';

const HEALTH_EVERY_MS = 15000;

export default class ApplicationsView {
  id = 'applications';
  title = 'Applications';

  constructor() {
    this.pipelines = [];
    this.healthTimer = null;

    this.nameInput = h('input', { name: 'name', required: true, placeholder: 'my-photos',
      pattern: '[A-Za-z][A-Za-z0-9_\\-]{0,63}',
      title: '1-64 letters, digits, _ or -, starting with a letter',
      autocomplete: 'off', 'data-testid': 'new-app-name' });
    this.fieldInput = h('input', { name: 'field', required: true, value: 'image',
      'data-testid': 'new-app-field' });
    this.pipelineSelect = h('select', { name: 'pipeline', required: true,
      'data-testid': 'new-app-pipeline' });
    this.bucketInput = h('input', { name: 'bucket', placeholder: 'derived from the name' });
    this.formError = h('p', { class: 'error-text', hidden: true });
    this.form = h('form', { class: 'create-form', 'data-testid': 'create-app',
      onsubmit: (event) => this.create(event) },
    h('div', { class: 'form-row' },
      field('Name', this.nameInput),
      field('Image field', this.fieldInput),
      field('Pipeline', this.pipelineSelect),
      h('div', { class: 'field submit' },
        h('button', { class: 'btn primary', type: 'submit' }, 'Create'))),
    h('details', { class: 'advanced' }, h('summary', {}, 'More options'),
      field('Bucket', this.bucketInput, 'where its images are stored (optional)')),
    this.formError);

    this.list = h('div', { class: 'app-list', 'data-testid': 'app-list' });
    this.operators = h('div', { class: 'side-list', 'data-testid': 'operators' });
    this.pipelineList = h('div', { class: 'side-list', 'data-testid': 'pipelines' });

    this.root = h('div', { class: 'layout-main-side' },
      h('div', { class: 'stack' },
        h('section', { class: 'panel' }, h('h2', {}, 'New application'), this.form),
        h('section', { class: 'panel' },
          h('div', { class: 'panel-head' }, h('h2', {}, 'Applications'),
            h('button', { type: 'button', class: 'btn small ghost',
              onclick: () => this.loadApplications(true) }, 'Refresh')),
          this.list)),
      h('aside', { class: 'stack' },
        h('section', { class: 'panel' },
          h('div', { class: 'panel-head' }, h('h2', {}, 'Operators'),
            h('button', { type: 'button', class: 'btn small ghost',
              onclick: () => this.checkHealth() }, 'Check health')),
          this.operators),
        h('section', { class: 'panel' }, h('h2', {}, 'Pipelines'), this.pipelineList)));
  }

  show() {
    this.loadApplications(true);
    this.loadCatalog();
    clearInterval(this.healthTimer);
    this.healthTimer = setInterval(() => this.checkHealth(), HEALTH_EVERY_MS);
  }

  hide() {
    clearInterval(this.healthTimer);
  }

  async loadCatalog() {
    const [operators, pipelines] = await Promise.allSettled([api.operators(), api.pipelines()]);
    if (pipelines.status === 'fulfilled') {
      this.pipelines = pipelines.value;
      this.renderPipelines();
    } else {
      reportError(pipelines.reason, 'Loading pipelines');
    }
    if (operators.status === 'fulfilled') {
      this.renderOperators(operators.value);
      this.checkHealth();
    } else {
      reportError(operators.reason, 'Loading operators');
    }
  }

  renderPipelines() {
    const chosen = this.pipelineSelect.value;
    fill(this.pipelineSelect, ...(this.pipelines.length
      ? this.pipelines.map((p) => h('option', { value: p._pipeline_name }, p._pipeline_name))
      : [h('option', { value: '' }, 'No pipelines yet')]));
    if (chosen) this.pipelineSelect.value = chosen;
    fill(this.pipelineList, ...(this.pipelines.length
      ? this.pipelines.map((p) => h('div', { class: 'side-item' },
        h('div', { class: 'side-title' }, h('strong', {}, p._pipeline_name),
          h('span', { class: 'chip' }, `${p._dimension}-d ${p._metric_type}`)),
        h('div', { class: 'muted small flow' },
          [...p._processors, p._encoder].map((step, i) => [i ? ' → ' : '', h('code', {}, step)])),
        p._pipeline_description
          ? h('div', { class: 'small' }, p._pipeline_description) : null))
      : [emptyState('No pipelines. Create one with POST /v1/pipeline/<name>.')]));
  }

  renderOperators(operators) {
    this.operatorNames = operators.map((o) => o._name);
    fill(this.operators, ...(operators.length
      ? operators.map((o) => h('div', { class: 'side-item', dataset: { operator: o._name } },
        h('div', { class: 'side-title' }, h('strong', {}, o._name),
          h('span', { class: 'health', dataset: { state: 'checking' } }, 'checking…')),
        h('div', { class: 'muted small' }, `${o._type} · ${o._backend}`,
          o._dimension ? ` · ${o._dimension}-d` : ''),
        h('div', { class: 'muted small' }, h('code', {}, o._endpoint))))
      : [emptyState('No operators. Register one with POST /v1/operator/regist.')]));
  }

  async checkHealth() {
    await Promise.all((this.operatorNames || []).map(async (name) => {
      let state;
      let text;
      try {
        text = String(await api.health(name)).trim();
        state = text === 'healthy' ? 'healthy' : 'unhealthy';
      } catch (err) {
        state = 'down';
        text = err.code === 'NETWORK' ? 'no answer' : 'unreachable';
        this.setHealth(name, state, text, errorText(err));
        return;
      }
      this.setHealth(name, state, text, `GET /v1/operator/${name}/health: ${text}`);
    }));
  }

  setHealth(name, state, text, title) {
    const item = this.operators.querySelector(`[data-operator="${CSS.escape(name)}"] .health`);
    if (!item) return;
    item.dataset.state = state;
    item.textContent = text;
    item.title = title;
  }

  async loadApplications(refresh = false) {
    let list;
    try {
      list = await applications({ refresh });
    } catch (err) {
      reportError(err, 'Loading applications');
      return;
    }
    if (!list.length) {
      fill(this.list, emptyState('No applications yet: create one above.'));
      return;
    }
    const rows = list.map((a) => this.appRow(a));
    fill(this.list, h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Image fields'),
        h('th', { class: 'num' }, 'Entities'), h('th', {}, 'Bucket'), h('th', {}, ''))),
      h('tbody', {}, rows.map((r) => r.tr))));
    await Promise.all(rows.map(async (r) => {
      try {
        r.count.textContent = (await api.count(r.name)).toLocaleString();
        r.tr.dataset.count = r.count.textContent;
      } catch (err) {
        r.count.textContent = '?';
        r.count.title = errorText(err);
      }
    }));
  }

  appRow(application) {
    const name = application._application_name;
    const count = h('span', {}, '…');
    const go = (view) => {
      chooseApp(name);
      location.hash = `#/${view}`;
    };
    const force = h('input', { type: 'checkbox', 'data-testid': 'force-delete' });
    const message = h('div', { class: 'error-text small', hidden: true });
    const remove = confirmButton('Delete', () => this.remove(name, force.checked, message),
      { armedLabel: 'Confirm delete' });
    const tr = h('tr', { dataset: { app: name } },
      h('td', {}, h('strong', {}, name)),
      h('td', {}, imageFields(application).map((f) =>
        h('span', { class: 'chip' }, `${f.name} → ${f.pipeline}`))),
      h('td', { class: 'num' }, count),
      h('td', { class: 'muted small bucket' }, application._buckets),
      h('td', { class: 'actions' },
        h('div', { class: 'btn-row' },
          ['upload', 'search', 'browse', 'duplicates'].map((view) => h('button',
            { type: 'button', class: 'btn small', onclick: () => go(view) },
            view[0].toUpperCase() + view.slice(1))),
          h('label', { class: 'check small', title: 'also delete every entity it holds' },
            force, 'force'),
          remove),
        message));
    return { tr, count, name };
  }

  async remove(name, force, message) {
    message.hidden = true;
    try {
      await api.deleteApplication(name, force);
    } catch (err) {
      message.textContent = errorText(err);
      message.hidden = false;
      reportError(err, `Deleting ${name}`);
      return;
    }
    toast(`Application ${name} deleted`, { kind: 'ok' });
    await applicationsChanged();
    this.loadApplications();
  }

  async create(event) {
    event.preventDefault();
    this.formError.hidden = true;
    const name = this.nameInput.value.trim();
    const fieldName = this.fieldInput.value.trim();
    const pipeline = this.pipelineSelect.value;
    if (!pipeline) {
      this.formError.textContent = 'Choose a pipeline (create one through the API first).';
      this.formError.hidden = false;
      return;
    }
    const submit = this.form.querySelector('button[type=submit]');
    submit.disabled = true;
    try {
      await api.createApplication(name, { [fieldName]: { type: 'object', pipeline } },
        this.bucketInput.value.trim());
    } catch (err) {
      this.formError.textContent = errorText(err);
      this.formError.hidden = false;
      reportError(err, 'Creating the application');
      return;
    } finally {
      submit.disabled = false;
    }
    toast(`Application ${name} created`, { kind: 'ok' });
    chooseApp(name);
    this.nameInput.value = '';
    this.bucketInput.value = '';
    await applicationsChanged();
    this.loadApplications();
  }
}
