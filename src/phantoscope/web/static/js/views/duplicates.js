// Duplicates: an application's groups of copies or of similar shots, page by page, each a row
// of its images with the copy suggested to keep and why; keep the suggestion and delete the
// others, choose image by image and apply, or say they are not duplicates.

import { api, showImage } from '../api.js';
import { askConfirm } from '../confirm.js';
import { openEntity } from '../entity.js';
import { formatTaken } from '../meta.js';
import { AppSelect, emit, on } from '../state.js';
import {
  emptyState, errorText, field, fill, formatBytes, formatScore, h, reportError, toast,
} from '../ui.js';

const KINDS = [
  { kind: 'copies', label: 'Copies', hint: 'the same picture, however re-encoded or edited' },
  { kind: 'similar', label: 'Similar shots', hint: 'different shots of the same scene' },
];
// What a refused resolve means to the user: the listing is out of date.
const STALE = new Set(['GROUP_CHANGED', 'GROUP_NOT_FOUND']);

export default class DuplicatesView {
  id = 'duplicates';
  title = 'Duplicates';

  constructor() {
    this.kind = 'copies';
    this.page = 0;
    this.total = 0;
    this.loadId = 0;
    this.acting = false;
    this.apps = new AppSelect({ testId: 'duplicates-app', onChange: () => this.load(0) });
    this.kindButtons = KINDS.map(({ kind, label, hint }) => h('button', { type: 'button',
      class: 'btn segment', title: hint, 'data-testid': `dup-kind-${kind}`,
      'aria-pressed': String(kind === this.kind), onclick: () => this.chooseKind(kind) }, label));
    this.perPage = h('select', { 'data-testid': 'dup-per-page', onchange: () => this.load(0) },
      [5, 10, 20, 50].map((n) => h('option', { value: n, selected: n === 10 }, String(n))));
    this.prev = h('button', { type: 'button', class: 'btn', 'data-testid': 'dup-prev',
      onclick: () => this.load(this.page - 1) }, '‹ Previous');
    this.next = h('button', { type: 'button', class: 'btn', 'data-testid': 'dup-next',
      onclick: () => this.load(this.page + 1) }, 'Next ›');
    this.where = h('span', { class: 'pager-where', 'data-testid': 'dup-where' });
    this.list = h('div', { class: 'dup-list', 'data-testid': 'dup-list' });
    this.root = h('section', { class: 'panel' },
      h('div', { class: 'toolbar' }, this.apps.root,
        h('div', { class: 'field' }, h('span', { class: 'field-label' }, 'Kind'),
          h('div', { class: 'segmented', role: 'group', 'aria-label': 'Kind' },
            this.kindButtons)),
        field('Groups per page', this.perPage),
        h('button', { type: 'button', class: 'btn ghost', 'data-testid': 'dup-reload',
          onclick: () => this.load(this.page) }, 'Reload'),
        h('div', { class: 'pager' }, this.prev, this.where, this.next)),
      this.list);
    // An entity deleted elsewhere (the entity dialog) changes the groups shown.
    on('entity-deleted', ({ app }) => {
      if (!this.acting && this.visible && app === this.apps.value) this.load(this.page);
    });
  }

  show() {
    this.visible = true;
    this.apps.refresh().then(() => this.load(this.page));
  }

  hide() {
    this.visible = false;
  }

  get num() {
    return Number.parseInt(this.perPage.value, 10) || 10;
  }

  chooseKind(kind) {
    this.kind = kind;
    for (const button of this.kindButtons) {
      button.setAttribute('aria-pressed', String(button.dataset.testid === `dup-kind-${kind}`));
    }
    this.load(0);
  }

  async load(page) {
    const app = this.apps.value;
    const id = ++this.loadId;
    if (!app) {
      fill(this.list, emptyState('No applications yet.'));
      this.where.textContent = '';
      this.prev.disabled = this.next.disabled = true;
      return;
    }
    page = Math.max(0, page);
    this.list.setAttribute('aria-busy', 'true');
    if (!this.list.querySelector('.dup-group')) {
      fill(this.list, h('p', { class: 'muted' }, h('span', { class: 'spinner' }),
        'Looking for duplicates… (the first look at a large application takes a while)'));
    }
    let answer;
    try {
      answer = await api.duplicates(app, this.kind, this.num, page);
      const pages = Math.max(1, Math.ceil(answer.total / this.num));
      if (page > pages - 1) {  // groups settled since: the last page is earlier now
        page = pages - 1;
        answer = await api.duplicates(app, this.kind, this.num, page);
      }
    } catch (err) {
      if (id !== this.loadId) return;
      this.list.removeAttribute('aria-busy');
      fill(this.list, h('p', { class: 'error-text', 'data-testid': 'dup-error' }, errorText(err)));
      reportError(err, 'Loading duplicates');
      return;
    }
    if (id !== this.loadId) return;
    this.list.removeAttribute('aria-busy');
    this.page = page;
    this.total = answer.total;
    this.pager();
    const what = this.kind === 'copies' ? 'no two images are copies of each other'
      : 'no two images are shots of the same scene';
    fill(this.list, ...(answer.groups.length
      ? answer.groups.map((group) => this.groupRow(app, group))
      : [emptyState(`No duplicates found: ${what}.`)]));
  }

  pager() {
    const pages = Math.max(1, Math.ceil(this.total / this.num));
    const noun = this.total === 1 ? 'group' : 'groups';
    this.where.textContent = `Page ${this.page + 1} of ${pages} · ${this.total} ${noun}`;
    this.where.dataset.page = String(this.page);
    this.prev.disabled = this.page === 0;
    this.next.disabled = this.page >= pages - 1;
  }

  groupRow(app, group) {
    const ids = group.entities.map((entity) => String(entity._id));
    const keepId = String(group.keep);
    const choice = new Map(ids.map((id) => [id, id === keepId ? 'keep' : 'delete']));
    const suggested = group.entities.find((entity) => String(entity._id) === keepId);
    const message = h('p', { class: 'error-text', 'data-testid': 'dup-group-error', hidden: true });
    const row = h('section', { class: 'dup-group', 'data-testid': 'dup-group',
      dataset: { group: group.id } });
    const members = group.entities.map((entity) => this.memberCard(app, entity,
      String(entity._id) === keepId, choice, () => update()));
    // An action, then the Apply button as the choices allow (act enables every button).
    const run = (action) => this.act(row, message, action).then(() => update());
    const apply = h('button', { type: 'button', class: 'btn', 'data-testid': 'dup-apply',
      onclick: () => run(() => this.applyChoice(app, group, choice)) });
    const buttons = [
      h('button', { type: 'button', class: 'btn primary', 'data-testid': 'dup-keep-suggested',
        onclick: () => run(() => this.keepSuggested(app, group)) },
      'Keep suggested, delete others'),
      apply,
      h('button', { type: 'button', class: 'btn ghost', 'data-testid': 'dup-dismiss',
        title: 'Keep them all and stop listing them together',
        onclick: () => run(() => this.dismiss(app, group)) },
      'Not duplicates'),
    ];
    const update = () => {
      const removing = [...choice.values()].filter((value) => value === 'delete').length;
      apply.textContent = removing ? `Apply (delete ${removing})` : 'Apply (keep all)';
      apply.disabled = removing === ids.length;
      apply.title = apply.disabled ? 'Keep at least one image (or say they are not duplicates)'
        : 'Delete the images marked Delete, keep the others';
    };
    update();
    const count = group.entities.length;
    const noun = group.kind === 'copies' ? 'copies' : 'similar shots';
    fill(row,
      h('div', { class: 'dup-head' },
        h('strong', {}, `${count} ${noun}`),
        h('span', { class: 'muted dup-reason', 'data-testid': 'dup-reason' },
          `Suggested: keep ${suggested?.name || `#${keepId}`} — ${group.reason}`)),
      h('div', { class: 'dup-members' }, members),
      h('div', { class: 'dup-actions' }, message, h('div', { class: 'btn-row' }, buttons)));
    return row;
  }

  memberCard(app, entity, suggested, choice, changed) {
    const id = String(entity._id);
    const img = h('img', { alt: entity.name || `Entity ${id}`, loading: 'lazy' });
    img.addEventListener('error', () => img.closest('.thumb')?.classList.add('broken'),
      { once: true });
    showImage(img, entity._image_url || `v1/application/${encodeURIComponent(app)}/entity/`
      + `${encodeURIComponent(id)}/image`);
    const toggle = h('button', { type: 'button', class: 'btn small dup-toggle',
      'data-testid': 'dup-toggle' });
    const card = h('div', { class: 'card dup-member', 'data-testid': 'dup-member',
      dataset: { id, suggested: String(suggested) } });
    const draw = () => {
      const keep = choice.get(id) === 'keep';
      card.dataset.choice = choice.get(id);
      toggle.textContent = keep ? 'Keep' : 'Delete';
      toggle.setAttribute('aria-pressed', String(!keep));
      toggle.title = keep ? 'Kept: click to delete it instead' : 'Deleted: click to keep it';
    };
    toggle.addEventListener('click', () => {
      choice.set(id, choice.get(id) === 'keep' ? 'delete' : 'keep');
      draw();
      changed();
    });
    draw();
    const format = (entity.format || '?').toUpperCase();
    return fill(card,
      h('button', { type: 'button', class: 'thumb', title: 'Open details',
        onclick: () => openEntity({ app, id }) }, img,
      suggested ? h('span', { class: 'keep-mark', 'data-testid': 'dup-keep-mark' }, 'keep')
        : null),
      h('div', { class: 'card-meta' },
        h('span', { class: 'entity-name', title: entity.name || '' }, entity.name || `#${id}`),
        h('span', { class: 'small', 'data-testid': 'dup-size' },
          `${entity.width} × ${entity.height} · ${formatBytes(entity.bytes)}`),
        h('span', { class: 'muted small' },
          Number.isFinite(entity.quality) ? `${format} · quality ${entity.quality}` : format,
          entity.taken_at ? ` · taken ${formatTaken(entity.taken_at)}` : ''),
        h('div', { class: 'card-line' },
          h('span', { class: 'score', title: 'how close it is to the copy to keep',
            'data-testid': 'dup-score' }, suggested ? 'suggested' : formatScore(entity.score)),
          toggle)));
  }

  // Run one of a group's actions: its buttons wait meanwhile; the group leaves when done,
  // and a refusal is said in the group.
  async act(row, message, action) {
    const buttons = row.querySelectorAll('button:not(.thumb)');
    message.hidden = true;
    for (const button of buttons) button.disabled = true;
    let done = false;
    try {
      done = await action();
    } catch (err) {
      message.replaceChildren(STALE.has(err.code)
        ? 'This group changed since it was listed: reload to see it as it is now. '
        : `${errorText(err)} `,
      h('button', { type: 'button', class: 'linkish', onclick: () => this.load(this.page) },
        'Reload'));
      message.title = errorText(err);
      message.hidden = false;
    } finally {
      for (const button of buttons) button.disabled = false;
    }
    if (!done) return;
    row.remove();
    this.total = Math.max(0, this.total - 1);
    this.pager();
    if (!this.list.querySelector('.dup-group')) this.load(this.page);
  }

  async keepSuggested(app, group) {
    const keep = String(group.keep);
    const remove = group.entities.map((e) => String(e._id)).filter((id) => id !== keep);
    const ok = await askConfirm({ title: 'Delete the other copies?',
      text: `Keep the suggested image and delete ${plural(remove.length, 'other')}. `
        + 'This cannot be undone.',
      confirmLabel: `Delete ${remove.length}` });
    if (!ok) return false;
    return this.resolve(app, group, [keep], remove);
  }

  async applyChoice(app, group, choice) {
    const keep = [...choice].filter(([, value]) => value === 'keep').map(([id]) => id);
    const remove = [...choice].filter(([, value]) => value === 'delete').map(([id]) => id);
    if (remove.length) {
      const ok = await askConfirm({ title: 'Delete the images marked Delete?',
        text: `Delete ${plural(remove.length, 'image')} and keep ${keep.length}. `
          + 'This cannot be undone.',
        confirmLabel: `Delete ${remove.length}` });
      if (!ok) return false;
    }
    return this.resolve(app, group, keep, remove);
  }

  async resolve(app, group, keep, remove) {
    const answer = await api.resolveGroup(app, group.id, keep, remove);
    const deleted = answer.deleted.length;
    toast(deleted ? `${plural(deleted, 'image')} deleted, ${answer.kept.length} kept`
      : 'Group settled: all images kept', { kind: 'ok' });
    this.acting = true;
    try {
      for (const id of answer.deleted) emit('entity-deleted', { app, id });
    } finally {
      this.acting = false;
    }
    return true;
  }

  async dismiss(app, group) {
    await api.dismissGroup(app, group.id);
    toast('Marked as not duplicates: the group is not listed again', { kind: 'ok' });
    return true;
  }
}

function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
