// The Phantoscope v1 REST API, same origin. Every failure becomes an ApiError carrying the
// server's {"code", "error", "message"} answer (or NETWORK when the server cannot be reached).
// The API key typed in the page (kept in localStorage) goes with every same-origin request.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

const enc = encodeURIComponent;
const API_KEY = 'phantoscope.apiKey';

export function apiKey() {
  try {
    return localStorage.getItem(API_KEY) || '';
  } catch {
    return '';
  }
}

export function setApiKey(key) {
  try {
    if (key) localStorage.setItem(API_KEY, key);
    else localStorage.removeItem(API_KEY);
  } catch {
    // private mode: no key is kept
  }
}

// The key's header for a request to `url`: never sent to another origin (S3, an image URL).
function keyHeaders(url) {
  const key = apiKey();
  return key && new URL(url, location.href).origin === location.origin
    ? { 'x-api-key': key } : {};
}

// Entity ids are 64-bit integers, beyond what a JS number holds exactly: parse integers over
// 2^53 as strings (with the parser's source text where the browser has it, else a rewrite).
const HAS_SOURCE = (() => {
  let seen = false;
  JSON.parse('1', (key, value, context) => {
    seen = Boolean(context && 'source' in context);
    return value;
  });
  return seen;
})();

export function parseJson(text) {
  if (HAS_SOURCE) {
    return JSON.parse(text, (key, value, context) =>
      (typeof value === 'number' && !Number.isSafeInteger(value) && /^-?\d+$/.test(context.source)
        ? context.source : value));
  }
  return JSON.parse(text.replace(/([:[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '$1"$2"'));
}

function errorFrom(status, statusText, text) {
  let body = null;
  try {
    body = parseJson(text);
  } catch {
    // not JSON: a proxy's page, or bare text
  }
  if (body && typeof body === 'object' && body.code) {
    return new ApiError(status, body.code, body.message || body.error || statusText);
  }
  const short = (text || '').trim().slice(0, 200);
  return new ApiError(status, `HTTP_${status}`, short || statusText || 'request failed');
}

// json: a value sent as JSON; or body: JSON text made by the caller (for ids past 2^53).
export async function request(method, path, { json, body, form, signal } = {}) {
  const init = { method, signal, headers: { accept: 'application/json', ...keyHeaders(path) } };
  if (json !== undefined || body !== undefined) {
    init.body = body ?? JSON.stringify(json);
    init.headers['content-type'] = 'application/json';
  } else if (form) {
    init.body = form;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'NETWORK', `cannot reach the API server (${err.message})`);
  }
  const text = await response.text();
  if (!response.ok) throw errorFrom(response.status, response.statusText, text);
  const type = response.headers.get('content-type') || '';
  return type.includes('json') ? parseJson(text) : text;
}

const app = (name) => `v1/application/${enc(name)}`;

// Entity ids as a JSON array of bare integers: the API takes numbers, and an id past 2^53 is
// held here as a string of its digits (see parseJson), which JSON.stringify would quote.
export function idArray(ids) {
  const digits = ids.map(String);
  const bad = digits.find((id) => !/^\d+$/.test(id));
  if (bad !== undefined) throw new ApiError(0, 'BAD_ID', `not an entity id: ${bad}`);
  return `[${digits.join(',')}]`;
}

export const api = {
  ping: () => request('GET', 'v1/settings/ping'),
  operators: () => request('GET', 'v1/operator/'),
  health: (name) => request('GET', `v1/operator/${enc(name)}/health`),
  pipelines: () => request('GET', 'v1/pipeline/'),
  pipeline: (name) => request('GET', `v1/pipeline/${enc(name)}`),
  applications: () => request('GET', 'v1/application/'),
  application: (name) => request('GET', app(name)),
  createApplication: (name, fields, bucket) =>
    request('POST', app(name), { json: bucket ? { fields, s3Buckets: bucket } : { fields } }),
  deleteApplication: (name, force = false) =>
    request('DELETE', `${app(name)}${force ? '?force=true' : ''}`),
  count: async (name) => (await request('GET', `${app(name)}/entity/count`)).count,
  // filter: the listing's ?filter= (only the entities that match), or null for all.
  entities: (name, num, page, filter = null) => request('GET',
    `${app(name)}/entity?num=${num}&page=${page}`
      + (filter ? `&filter=${enc(JSON.stringify(filter))}` : '')),
  entity: (name, id) => request('GET', `${app(name)}/entity/${enc(id)}`),
  // changes: {name} and/or {attributes} (which replace the entity's attributes wholly).
  updateEntity: (name, id, changes) =>
    request('PATCH', `${app(name)}/entity/${enc(id)}`, { json: changes }),
  deleteEntity: (name, id) => request('DELETE', `${app(name)}/entity/${enc(id)}`),
  // Groups of duplicates: {kind, groups: [{id, kind, entities, keep, reason}], page, num, total}.
  duplicates: (name, kind, num, page) => request('GET',
    `${app(name)}/duplicates?kind=${enc(kind)}&num=${num}&page=${page}`),
  // Settle a group: delete `remove`, keep the others (`keep` named); or dismiss it.
  resolveGroup: (name, group, keep, remove) => request('POST',
    `${app(name)}/duplicates/${enc(group)}/resolve`,
    { body: `{"keep":${idArray(keep)},"delete":${idArray(remove)}}` }),
  dismissGroup: (name, group) => request('POST',
    `${app(name)}/duplicates/${enc(group)}/resolve`, { json: { dismiss: true } }),
  // Background jobs, newest first: [{id, kind, state, total, done, failed, errors, rate,
  // eta_s, and application, field, pipeline where the server says}].
  jobs: () => request('GET', 'v1/jobs'),
  startJob: (body) => request('POST', 'v1/jobs', { json: body }),
  cancelJob: (id) => request('POST', `v1/jobs/${enc(id)}/cancel`),
  // Searches of an application's field use `pipeline` from now on (a finished reindex's).
  switchField: (name, field, pipeline) => request('POST',
    `${app(name)}/fields/${enc(field)}/switch`, { json: { pipeline } }),
  search: (name, field, ref, topk, signal, filter = null) => request('POST',
    `${app(name)}/search`,
    { json: { fields: { [field]: ref }, topk, ...(filter ? { filter } : {}) }, signal }),
  // Search by words: {hits, terms, unmatched, matched_by}; field null: the application's one
  // searchable by words. image ({data} or {url}): a mixed query, words and image weighed
  // equally (the field's pipeline needs a text encoder).
  searchText: (name, field, text, topk, signal, filter = null, image = null) => request('POST',
    `${app(name)}/search`,
    { json: { text, topk, ...(field ? { field } : {}), ...(filter ? { filter } : {}),
      ...(image ? { image } : {}) }, signal }),
};

// POST files to upload/batch with XMLHttpRequest, for its upload progress events; each is
// named by its file name, and `attributes` (an object, or null) go to all of them.
// onProgress(loadedBytes, totalBytes) while sending; onSent() once the body is out.
export function uploadBatch(name, files, field, { attributes, onProgress, onSent } = {}) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    if (field) form.append('field', field);
    if (attributes) form.append('attributes', JSON.stringify(attributes));
    for (const file of files) form.append('files', file, file.name);
    const xhr = new XMLHttpRequest();
    const url = `${app(name)}/upload/batch`;
    xhr.open('POST', url);
    xhr.setRequestHeader('accept', 'application/json');
    for (const [header, value] of Object.entries(keyHeaders(url))) {
      xhr.setRequestHeader(header, value);
    }
    xhr.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) onProgress?.(event.loaded, event.total);
    });
    xhr.upload.addEventListener('load', () => onSent?.());
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(parseJson(xhr.responseText));
        } catch {
          reject(new ApiError(xhr.status, 'BAD_ANSWER', 'the server answered something not JSON'));
        }
      } else {
        reject(errorFrom(xhr.status, xhr.statusText, xhr.responseText));
      }
    });
    xhr.addEventListener('error', () =>
      reject(new ApiError(0, 'NETWORK', 'the upload did not reach the API server')));
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'ABORTED', 'upload cancelled')));
    xhr.send(form);
  });
}

// Fetch an image (same origin or CORS) as a blob, e.g. a stored entity to search with.
export async function fetchImage(url) {
  const response = await fetch(url, { headers: keyHeaders(url) });
  if (!response.ok) throw new Error(`cannot fetch the image (HTTP ${response.status})`);
  return response.blob();
}

// Show a stored image in `img`. An <img> cannot send the API key: with a key, a same-origin
// image is fetched with it and shown from a blob URL (a failure fires the img's error event).
export function showImage(img, url) {
  if (!Object.keys(keyHeaders(url)).length) {
    img.src = url;
    return img;
  }
  fetchImage(url).then((blob) => {
    const local = URL.createObjectURL(blob);
    img.addEventListener('load', () => URL.revokeObjectURL(local), { once: true });
    img.src = local;
  }).catch(() => img.dispatchEvent(new Event('error')));
  return img;
}

// Open a stored image in a new tab. A link cannot send the API key either: with a key, the
// image is fetched with it and the tab opened on a blob URL.
export function openImage(event, url) {
  if (!Object.keys(keyHeaders(url)).length) return;  // the link opens it
  event.preventDefault();
  const tab = window.open('', '_blank');
  fetchImage(url).then((blob) => {
    tab.location.href = URL.createObjectURL(blob);
  }).catch(() => tab.close());
}

// The application's image fields: [{name, pipeline}].
export function imageFields(application) {
  return Object.entries(application?._fields || {})
    .filter(([, definition]) => definition.type === 'object')
    .map(([name, definition]) => ({ name, pipeline: definition.pipeline }));
}
