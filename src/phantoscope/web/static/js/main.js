// The page: tabs for the views (#/applications, #/upload, ...), kept alive between visits so
// uploads and results survive switching; global paste, drop and error handling.

import { api, apiKey, setApiKey } from './api.js';
import { applications, applicationsChanged } from './state.js';
import { h, reportError } from './ui.js';
import ApplicationsView from './views/applications.js';
import BrowseView from './views/browse.js';
import CompareView from './views/compare.js';
import DuplicatesView from './views/duplicates.js';
import JobsView from './views/jobs.js';
import SearchView from './views/search.js';
import UploadView from './views/upload.js';

const views = [
  new ApplicationsView(), new UploadView(), new SearchView(), new CompareView(), new BrowseView(),
  new DuplicatesView(), new JobsView(),
];
let current = null;

function build() {
  const tabs = document.getElementById('tabs');
  const main = document.getElementById('views');
  for (const view of views) {
    view.tab = h('a', { href: `#/${view.id}`, class: 'tab', 'data-view': view.id }, view.title);
    view.section = h('section', { class: 'view', id: `view-${view.id}`, hidden: true,
      'aria-label': view.title }, view.root);
    tabs.append(view.tab);
    main.append(view.section);
  }
}

function route() {
  const id = location.hash.replace(/^#\/?/, '').split(/[?/]/)[0] || 'applications';
  const view = views.find((v) => v.id === id) || views[0];
  if (current && current !== view) {
    current.section.hidden = true;
    current.tab.removeAttribute('aria-current');
    current.hide?.();
  }
  current = view;
  view.section.hidden = false;
  view.tab.setAttribute('aria-current', 'page');
  document.title = `${view.title} · Phantoscope`;
  applications({ refresh: true }).catch(() => null); // the view shows the current list
  try {
    const shown = view.show?.();
    if (shown instanceof Promise) shown.catch((err) => reportError(err, view.title));
  } catch (err) {
    reportError(err, view.title);
  }
}

async function watchServer() {
  const badge = document.getElementById('server-state');
  try {
    await api.ping();
    badge.textContent = 'API online';
    badge.dataset.state = 'up';
  } catch {
    badge.textContent = 'API offline';
    badge.dataset.state = 'down';
    return;
  }
  try {
    await applications({ refresh: true });
  } catch (err) {
    if (err.status === 401) {
      badge.textContent = 'API key needed';
      badge.dataset.state = 'down';
    }
  }
}

// The API key field: a change is kept and every view reloads with the new key.
const keyInput = document.getElementById('api-key');
keyInput.value = apiKey();
keyInput.addEventListener('change', async () => {
  setApiKey(keyInput.value.trim());
  document.getElementById('toasts')?.replaceChildren();  // what failed with the old key
  await watchServer();
  await applicationsChanged();
  route();
});

build();
window.addEventListener('hashchange', route);
route();
watchServer();
setInterval(watchServer, 20000);

// Ctrl+V of an image goes to the query of the view shown (search or compare).
document.addEventListener('paste', (event) => current?.paste?.(event));

// A file dropped outside a drop zone must not replace the page with the file.
window.addEventListener('dragover', (event) => event.preventDefault());
window.addEventListener('drop', (event) => event.preventDefault());

// Whatever slips through is shown, never left to break the page silently.
window.addEventListener('unhandledrejection', (event) => {
  event.preventDefault();
  reportError(event.reason, 'Something');
});
window.addEventListener('error', (event) => {
  if (event.error) reportError(event.error, 'Something');
});

// Close the entity dialog by clicking its backdrop.
document.getElementById('entity-dialog').addEventListener('click', (event) => {
  if (event.target === event.currentTarget) event.currentTarget.close();
});
