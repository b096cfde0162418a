// A modal question before something that cannot be undone: resolves true when confirmed,
// false when cancelled (the button, Escape or a click on the backdrop).

import { h } from './ui.js';

export function askConfirm({ title, text, confirmLabel = 'Confirm', danger = true }) {
  return new Promise((resolve) => {
    let answer = false;
    const dialog = h('dialog', { class: 'confirm-dialog', 'data-testid': 'confirm-dialog',
      'aria-label': title },
    h('div', { class: 'confirm-body' },
      h('h2', {}, title),
      h('p', {}, text),
      h('div', { class: 'btn-row' },
      h('button', { type: 'button', class: 'btn', 'data-testid': 'confirm-cancel',
        onclick: () => dialog.close() }, 'Cancel'),
      h('button', { type: 'button', class: danger ? 'btn danger armed' : 'btn primary',
        'data-testid': 'confirm-ok', onclick: () => {
          answer = true;
          dialog.close();
        } }, confirmLabel))));
    dialog.addEventListener('click', (event) => {
      if (event.target === dialog) dialog.close();
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
