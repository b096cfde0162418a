// What the page knows about an entity besides its image: its name, the user's attributes, the
// EXIF the server read and the labels its encoder saw. Read from typed text (key=value) as the
// CLI reads --attr, and shown as a name line, an EXIF line, key: value chips and label chips.

import { h } from './ui.js';

// The API's rule for attribute keys.
export const ATTRIBUTE_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const INTEGER = /^[+-]?(0|[1-9][0-9]*)$/;
const DECIMAL = /^[+-]?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

// true/false as booleans, integer or decimal text as a number (not 007, which stays text, nor
// an integer a JS number cannot hold exactly), anything else as the text itself.
export function parseValue(text) {
  if (text === 'true' || text === 'false') return text === 'true';
  if (INTEGER.test(text)) {
    const number = Number(text);
    return Number.isSafeInteger(number) ? number : text;
  }
  if (DECIMAL.test(text)) {
    const number = Number(text);
    if (Number.isFinite(number)) return number;
  }
  return text;
}

export function checkKey(key) {
  if (!ATTRIBUTE_KEY.test(key)) {
    throw new Error(`"${key}" is not a valid attribute key: use 1 to 64 letters, digits or `
      + 'underscores, not starting with a digit');
  }
  return key;
}

// Attributes from lines of key=value (blank lines skipped); a key given again collects its
// values as a list of text, as `phantoscope import --attr` does.
export function parseAttributes(text) {
  const texts = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf('=');
    if (at < 1) throw new Error(`expected key=value, not "${line}"`);
    const key = checkKey(line.slice(0, at).trim());
    texts.set(key, [...(texts.get(key) || []), line.slice(at + 1).trim()]);
  }
  return Object.fromEntries([...texts].map(([key, values]) =>
    [key, values.length === 1 ? parseValue(values[0]) : values]));
}

export function formatValue(value) {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.join(', ');
  return JSON.stringify(value);
}

// 2024-05-01T12:30:00+02:00 -> "2024-05-01 12:30" (the time as the camera gave it).
export function formatTaken(iso) {
  return iso ? String(iso).slice(0, 16).replace('T', ' ') : '';
}

// "2024-05-01 12:30 · Canon EOS 5D · 4000×3000": what the EXIF says, as far as it says it.
export function exifText(exif = {}) {
  const size = exif.width && exif.height ? `${exif.width}×${exif.height}` : '';
  return [formatTaken(exif.taken_at), exif.camera, size].filter(Boolean).join(' · ');
}

export function attributeChips(attributes = {}) {
  const entries = Object.entries(attributes || {});
  if (!entries.length) return null;
  return h('span', { class: 'attr-chips' }, entries.map(([key, value]) =>
    h('span', { class: 'chip attr', dataset: { key }, title: `${key}: ${formatValue(value)}` },
      h('b', {}, `${key}:`), ` ${formatValue(value)}`)));
}

// "tabby 61%": the image's best labels (what the encoder saw), best first.
export function labelChips(labels = [], shown = 3) {
  if (!labels?.length) return null;
  return h('span', { class: 'label-chips' }, labels.slice(0, shown).map((label) =>
    h('span', { class: 'chip label', dataset: { id: label.id },
      title: `${label.name} (${label.id}): ${(label.score * 100).toFixed(1)} %` },
    `${label.name} ${Math.round(label.score * 100)}%`)));
}

// The lines a card shows under its image: name, EXIF, attribute and label chips (each when
// known).
export function metaLines(entity) {
  const exif = exifText(entity.exif);
  return [
    entity.name ? h('span', { class: 'entity-name', title: entity.name }, entity.name) : null,
    exif ? h('span', { class: 'exif-line muted small', title: exif }, exif) : null,
    attributeChips(entity.attributes),
    labelChips(entity.labels),
  ];
}
