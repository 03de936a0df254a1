// The marketer's page: contact imports, audiences, campaigns (compose, preview,
// test, schedule or send) and their live progress. Admins and marketers only:
// the API refuses everyone else, the page merely does not offer it to them.
// Everything that came from a file, a contact or a template reaches the DOM
// through textContent; the server renders previews (same sandboxed templates
// as the sends) and the page only shows them.
import { api, ApiError } from './api.js';
import { $, el } from './dom.js';
import { lang, t } from './i18n.js';

const ROUTES = /^#(campaigns|audiences|contacts-import)(\/.*)?$/;
const POLL_MS = 3000;
const COUNT_DEBOUNCE_MS = 300;
const PREVIEW_DEBOUNCE_MS = 400;
const PREVIEW_BYTES = 65536;
const CAMPAIGN_STATUSES = ['draft', 'scheduled', 'running', 'paused', 'cancelled', 'completed'];
const FIGURES = [
  ['total', 'c_total'], ['sent', 'c_sent'], ['delivered', 'c_delivered'], ['failed', 'c_failed'],
  ['opted_out', 'c_opted_out'], ['waiting', 'c_waiting'], ['frequency_capped', 'c_frequency_capped'],
  ['bouncing', 'c_bouncing'], ['queued', 'c_queued'], ['skipped_other', 'c_skipped_other'],
  ['replied', 'c_replied'],
];

const state = {
  me: null,
  options: null,
  root: null,
  route: '',
  campaign: null, // the campaign on the detail screen
  recipients: [],
  recipientsCursor: null,
  recipientStatus: '',
  socket: null,
  socketRetry: 0,
  pollTimer: 0,
  countTimer: 0,
  previewTimer: 0,
  previewRequest: 0,
  countRequest: 0,
  importTimer: 0,
};

// Like replaceChildren, leaving out the parts a condition left empty (null).
function fill(node, ...children) {
  node.replaceChildren(...children.filter((child) => child !== null && child !== undefined && child !== false));
}

function number(value) {
  return new Intl.NumberFormat(lang() === 'vi' ? 'vi-VN' : 'en-GB').format(value || 0);
}

function when(iso) {
  if (!iso) return '';
  return new Date(iso).toLocaleString(lang() === 'vi' ? 'vi-VN' : 'en-GB', { dateStyle: 'short', timeStyle: 'short' });
}

// A fixed text that follows the language (i18n's translate() rewrites it).
function tx(key) { return { text: t(key), 'data-i18n': key }; }

function field(labelKey, control, hint) {
  return el('label', { class: 'm-field' }, el('span', tx(labelKey)), control,
    hint ? el('small', { class: 'm-hint', text: hint }) : null);
}

// Errors in plain words: the API's own message, never a blank page.
function showError(error) {
  const box = $('#m-error');
  if (!box) return;
  box.textContent = error ? (error instanceof ApiError ? error.message : String(error.message || error)) : '';
  box.hidden = !error;
}

async function guarded(action) {
  showError(null);
  try {
    return await action();
  } catch (error) {
    showError(error);
    return undefined;
  }
}

// -- mounting and routes ---------------------------------------------------------
export function mountCampaigns(me) {
  state.me = me;
  const allowed = me.role === 'admin' || me.role === 'marketer';
  const open = $('#campaigns-open');
  if (open) {
    open.hidden = !allowed;
    open.addEventListener('click', () => { location.hash = '#campaigns'; });
  }
  if (!allowed) return;
  state.root = $('#marketing');
  window.addEventListener('hashchange', route);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) refreshLive(); });
  for (const select of document.querySelectorAll('select.lang')) {
    // Forms keep what people typed (their fixed words follow by themselves);
    // the list and a campaign's page are drawn again in the new language.
    select.addEventListener('change', () => { if (isOurs() && /^campaigns(\/[^/]+)?$/.test(state.route) && state.route !== 'campaigns/new') route(); });
  }
  if (me.role === 'marketer' && !ROUTES.test(location.hash)) {
    location.hash = '#campaigns'; // nothing else in the workspace is theirs
  } else {
    route();
  }
}

function isOurs() { return ROUTES.test(location.hash); }

async function route() {
  stopLive();
  clearTimeout(state.importTimer);
  const ours = isOurs();
  $('#workspace').classList.toggle('page-campaigns', ours);
  state.root.hidden = !ours;
  $('#campaigns-open')?.classList.toggle('current', ours);
  if (!ours) { fill(state.root); return; }
  const [, section, rest = ''] = location.hash.match(ROUTES);
  state.route = `${section}${rest}`;
  const main = el('div', { class: 'm-screen' });
  fill(state.root, tabs(section, rest), el('p', { id: 'm-error', class: 'm-error', role: 'alert', hidden: true }), main);
  try {
    if (!state.options) state.options = await api('GET', '/api/v1/campaign-options');
    if (section === 'contacts-import') await importScreen(main);
    else if (section === 'audiences') await audiencesScreen(main);
    else if (rest === '/new') await composeScreen(main, null);
    else if (rest.endsWith('/edit')) await composeScreen(main, rest.slice(1, -5));
    else if (rest.length > 1) await detailScreen(main, rest.slice(1));
    else await listScreen(main);
  } catch (error) {
    showError(error);
  }
}

function tabs(section, rest) {
  const items = [
    ['#campaigns', 'c_campaigns', section === 'campaigns' && rest !== '/new'],
    ['#campaigns/new', 'c_new_campaign', section === 'campaigns' && rest === '/new'],
    ['#audiences', 'c_audiences', section === 'audiences'],
    ['#contacts-import', 'c_import', section === 'contacts-import'],
  ];
  return el('nav', { class: 'm-tabs', 'aria-label': t('c_campaigns') }, ...items.map(([href, key, current]) =>
    el('a', { href, class: current ? 'current' : '', 'aria-current': current ? 'page' : null, text: t(key) })),
  // Admins also work the inbox: the way back to it (a marketer has none).
  state.me.role === 'admin' ? el('a', { href: '#', class: 'm-inbox', id: 'm-inbox', ...tx('c_to_inbox') }) : null);
}

// -- live figures -------------------------------------------------------------------
// The worker publishes `campaign.progress` (the figures) on the stream at the end
// of each batch and on every change of status. A batch at a limited rate lasts
// minutes, and the figures are not published during it: asking the store for
// them there would hold the worker's loop between sends (and let sends bunch past
// the rate). So while a campaign is running the page also polls every few
// seconds, as it does whenever the socket is down; never while it is hidden.
function startLive(onProgress, poll, pollWhile = () => false) {
  stopLive();
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new WebSocket(`${scheme}://${location.host}/api/v1/stream`);
  state.socket = socket;
  socket.addEventListener('message', (event) => {
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    if (frame.type === 'event' && frame.event === 'campaign.progress') onProgress(frame.data);
  });
  socket.addEventListener('open', () => { state.socketRetry = 0; poll(); });
  socket.addEventListener('close', () => {
    if (state.socket !== socket) return; // replaced or stopped on purpose
    state.socket = null;
    state.socketRetry += 1;
    setTimeout(() => { if (state.live === onProgress) startLive(onProgress, poll, pollWhile); },
      Math.min(30000, 1000 * 2 ** Math.min(state.socketRetry, 5)));
  });
  state.live = onProgress;
  state.poll = poll;
  state.pollTimer = setInterval(() => {
    if (document.hidden) return;
    if (pollWhile() || !state.socket || state.socket.readyState !== WebSocket.OPEN) poll();
  }, POLL_MS);
}

function stopLive() {
  clearInterval(state.pollTimer);
  state.live = null;
  state.poll = null;
  const socket = state.socket;
  state.socket = null;
  if (socket) socket.close();
}

function refreshLive() { if (state.poll) state.poll(); }

// -- contact import ----------------------------------------------------------------
function slug(text) {
  return text.normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/[đĐ]/g, 'd')
    .toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 64);
}

async function importScreen(main) {
  const file = el('input', { id: 'import-file', type: 'file', accept: '.csv,text/csv' });
  const tags = el('input', { id: 'import-tags', placeholder: t('c_tags_placeholder'), maxlength: '300' });
  // Automatic by default: the hub finds the separator from the header line
  // (Excel with Vietnamese regional settings writes ";").
  const delimiter = el('select', { id: 'import-delimiter' },
    el('option', { value: '', ...tx('c_delimiter_auto') }),
    el('option', { value: ',', text: ', (comma)' }), el('option', { value: ';', text: '; (semicolon)' }),
    el('option', { value: '\t', text: 'Tab' }), el('option', { value: '|', text: '|' }));
  const mapping = el('div', { id: 'import-mapping', class: 'm-mapping' });
  const start = el('button', { id: 'import-start', type: 'submit', ...tx('c_import_start'), disabled: true });
  const progress = el('div', { id: 'import-progress', class: 'm-card', hidden: true });
  const form = el('form', { class: 'm-card m-form', id: 'import-form' },
    el('h2', { ...tx('c_import_title') }),
    el('p', { class: 'm-hint', text: t('c_import_help', { max: number(Math.round(state.options.import_max_bytes / 1048576)) }) }),
    field('c_file', file), field('c_import_tags', tags), field('c_delimiter', delimiter),
    mapping, el('div', { class: 'm-actions' }, start));
  main.append(form, progress);

  const readColumns = () => guarded(async () => {
    fill(mapping);
    start.disabled = true;
    const chosen = file.files[0];
    if (!chosen) return;
    const head = await chosen.slice(0, PREVIEW_BYTES).arrayBuffer();
    const query = new URLSearchParams({ delimiter: delimiter.value });
    const preview = await api('POST', `/api/v1/contacts/imports/preview?${query}`, head,
      { raw: true, headers: { 'Content-Type': 'text/csv' } });
    mapping.append(el('p', { class: 'm-hint', id: 'import-read-as', text: readAs(preview) }), mappingTable(preview));
    start.disabled = false;
  });
  file.addEventListener('change', readColumns);
  delimiter.addEventListener('change', readColumns);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    guarded(async () => {
      const chosen = file.files[0];
      const query = new URLSearchParams({ delimiter: delimiter.value, name: chosen.name });
      for (const select of mapping.querySelectorAll('select[data-column]')) {
        query.append('map', `${select.dataset.column}=${select.value}`);
      }
      for (const tag of tags.value.split(',').map((x) => x.trim()).filter(Boolean)) query.append('tag', tag);
      start.disabled = true;
      const started = await api('POST', `/api/v1/contacts/imports?${query}`, chosen,
        { raw: true, headers: { 'Content-Type': 'text/csv' } });
      followImport(progress, started, start);
    }).finally(() => { if (!state.importTimer) start.disabled = false; });
  });
}

// Which encoding and separator the file was read with: a marketer who sees odd
// names knows why (a file saved in another code page than it says).
function readAs(s) {
  return t('c_read_as', { encoding: s.encoding, delimiter: s.delimiter === '\t' ? 'Tab' : s.delimiter });
}

function mappingTable(preview) {
  const fieldOptions = (column) => [
    el('option', { value: '', ...tx('c_ignore') }),
    ...preview.fields.map((name) => el('option', { value: name, text: t(`c_field_${name}`) })),
    el('option', { value: `attributes.${slug(column) || 'extra'}`, text: t('c_field_attribute', { name: slug(column) || 'extra' }) }),
  ];
  const rows = preview.columns.map((column, index) => {
    const select = el('select', { 'data-column': column.name, 'aria-label': column.name }, ...fieldOptions(column.name));
    select.value = column.field || '';
    const samples = preview.rows.slice(0, 3).map((row) => row[index] || '').filter(Boolean).join(' · ');
    return el('tr', {}, el('th', { scope: 'row', text: column.name }), el('td', {}, select), el('td', { class: 'm-muted', text: samples }));
  });
  return el('div', { class: 'm-scroll' }, el('table', { class: 'm-table' },
    el('thead', {}, el('tr', {}, el('th', { ...tx('c_column') }), el('th', { ...tx('c_maps_to') }), el('th', { ...tx('c_examples') }))),
    el('tbody', {}, ...rows)));
}

function followImport(panel, importState, button) {
  panel.hidden = false;
  const render = (s) => {
    const percent = s.bytes_total ? Math.round((100 * s.bytes_done) / s.bytes_total) : 100;
    const bar = el('progress', { max: '100', value: String(percent) });
    const figures = el('dl', { class: 'm-figures' },
      ...[['c_rows', s.rows], ['c_created', s.created], ['c_merged', s.merged], ['c_rejected', s.rejected_count]]
        .map(([key, value]) => el('div', { class: `m-figure ${key}` }, el('dt', { text: t(key) }), el('dd', { text: number(value) }))));
    const statusText = t(`c_import_${s.status}`);
    fill(panel,
      el('h3', { text: `${s.file_name} — ${statusText}` }),
      el('p', { class: 'm-muted', id: 'import-file-read-as', text: readAs(s) + (s.blank ? ` ${t('c_blank_rows', { count: number(s.blank) })}` : '') }),
      el('div', { class: 'm-progress' }, bar, el('span', { text: `${percent}%` })),
      figures,
      s.error ? el('p', { class: 'm-error', text: s.error }) : null);
    panel.dataset.status = s.status;
    if (s.status !== 'running' && s.rejected_count) {
      panel.append(el('h3', { ...tx('c_rejected_rows') }),
        el('div', { class: 'm-scroll' }, el('table', { class: 'm-table', id: 'import-rejected' },
          el('thead', {}, el('tr', {}, el('th', { ...tx('c_line') }), el('th', { ...tx('c_reason') }), el('th', { ...tx('c_row') }))),
          el('tbody', {}, ...s.rejected.map((r) => el('tr', {},
            el('td', { text: String(r.line) }), el('td', { class: 'reason', text: r.reason }),
            el('td', { class: 'm-muted', text: Object.values(r.row).join(', ') })))))),
        el('a', { class: 'm-download', href: `/api/v1/contacts/imports/${encodeURIComponent(s.id)}/rejected`, download: '', ...tx('c_download_rejected') }));
    }
  };
  render(importState);
  const poll = async () => {
    state.importTimer = 0;
    let latest;
    try {
      latest = await api('GET', `/api/v1/contacts/imports/${encodeURIComponent(importState.id)}`);
    } catch (error) {
      showError(error);
      button.disabled = false;
      return;
    }
    if (!isOurs() || !panel.isConnected) return;
    render(latest);
    if (latest.status === 'running') state.importTimer = setTimeout(poll, 700);
    else button.disabled = false;
  };
  state.importTimer = setTimeout(poll, 300);
}

// -- audiences ---------------------------------------------------------------------
function splitTags(text) { return text.split(',').map((x) => x.trim()).filter(Boolean); }

async function audiencesScreen(main) {
  const name = el('input', { id: 'audience-name', required: true, maxlength: '200' });
  const channel = el('select', { id: 'audience-channel' },
    el('option', { value: 'sms', text: 'SMS' }), el('option', { value: 'email', ...tx('email') }));
  const tagsAll = el('input', { id: 'audience-tags-all', placeholder: 'vip, hanoi' });
  const tagsAny = el('input', { id: 'audience-tags-any' });
  const tagsNone = el('input', { id: 'audience-tags-none' });
  const attributes = el('div', { id: 'audience-attributes', class: 'm-attributes' });
  const addAttribute = el('button', { type: 'button', id: 'audience-add-attribute', ...tx('c_add_condition') });
  const consent = el('select', { id: 'audience-consent' },
    ...['any', 'not_opted_out', 'opted_in'].map((v) => el('option', { value: v, text: t(`c_consent_${v}`) })));
  const after = el('input', { id: 'audience-active-after', type: 'date' });
  const before = el('input', { id: 'audience-active-before', type: 'date' });
  const conversation = el('select', { id: 'audience-has-conversation' },
    el('option', { value: '', ...tx('c_any') }), el('option', { value: 'yes', ...tx('c_yes') }),
    el('option', { value: 'no', ...tx('c_no') }));
  const count = el('output', { id: 'audience-count', class: 'm-count', 'aria-live': 'polite' });
  const list = el('div', { id: 'audience-list', class: 'm-card' });
  const attributeRow = (key = '', value = '') => {
    const row = el('div', { class: 'm-attribute' },
      el('input', { class: 'key', placeholder: t('c_attribute'), value: key, maxlength: '64', 'aria-label': t('c_attribute') }),
      el('span', { text: '=' }),
      el('input', { class: 'value', placeholder: t('c_value'), value, maxlength: '500', 'aria-label': t('c_value') }),
      el('button', { type: 'button', class: 'm-remove', text: '×', 'aria-label': t('remove'), onclick: () => { row.remove(); recount(); } }));
    attributes.append(row);
  };
  const filter = () => {
    const result = {
      tags_all: splitTags(tagsAll.value), tags_any: splitTags(tagsAny.value), tags_none: splitTags(tagsNone.value),
      consent: consent.value, attributes: {},
    };
    for (const row of attributes.querySelectorAll('.m-attribute')) {
      const key = $('.key', row).value.trim();
      if (key) result.attributes[key] = $('.value', row).value;
    }
    if (after.value) result.active_after = new Date(`${after.value}T00:00`).toISOString();
    if (before.value) result.active_before = new Date(`${before.value}T00:00`).toISOString();
    if (conversation.value) result.has_conversation = conversation.value === 'yes';
    return result;
  };
  // The count follows the filter as it changes (debounced; a late answer to an
  // older filter never overwrites a newer one).
  const recount = () => {
    clearTimeout(state.countTimer);
    count.classList.add('stale');
    state.countTimer = setTimeout(async () => {
      const request = ++state.countRequest;
      try {
        const answer = await api('POST', '/api/v1/audiences/count', { filter: filter(), channel: channel.value });
        if (request !== state.countRequest) return;
        count.textContent = t('c_count', { n: number(answer.count) });
        count.dataset.count = String(answer.count);
        count.classList.remove('stale', 'm-error');
      } catch (error) {
        if (request !== state.countRequest) return;
        count.textContent = error.message;
        count.classList.add('m-error');
        delete count.dataset.count;
      }
    }, COUNT_DEBOUNCE_MS);
  };
  addAttribute.addEventListener('click', () => { attributeRow(); });
  // An audience saved earlier as the starting point of a new one (audiences
  // are not edited in place: campaigns sent to one keep meaning what they did).
  const load = (a) => {
    const f = a.filter;
    name.value = `${a.name} (2)`;
    tagsAll.value = f.tags_all.join(', ');
    tagsAny.value = f.tags_any.join(', ');
    tagsNone.value = f.tags_none.join(', ');
    attributes.replaceChildren();
    for (const [key, value] of Object.entries(f.attributes)) attributeRow(key, String(value));
    consent.value = f.consent;
    after.value = f.active_after ? f.active_after.slice(0, 10) : '';
    before.value = f.active_before ? f.active_before.slice(0, 10) : '';
    conversation.value = f.has_conversation === null || f.has_conversation === undefined ? '' : f.has_conversation ? 'yes' : 'no';
    recount();
    name.focus();
  };
  const form = el('form', { id: 'audience-form', class: 'm-card m-form' },
    el('h2', { ...tx('c_new_audience') }),
    field('c_audience_name', name),
    el('fieldset', {}, el('legend', { ...tx('c_tags') }),
      field('c_tags_all', tagsAll), field('c_tags_any', tagsAny), field('c_tags_none', tagsNone)),
    el('fieldset', {}, el('legend', { ...tx('attributes') }), attributes, addAttribute),
    field('c_consent', consent),
    el('div', { class: 'm-row' }, field('c_active_after', after), field('c_active_before', before)),
    field('c_has_conversation', conversation),
    el('div', { class: 'm-actions' }, field('c_count_on', channel), count, el('span', { class: 'spacer' }),
      el('button', { type: 'submit', id: 'audience-save', ...tx('c_save_audience') })));
  form.addEventListener('input', recount);
  form.addEventListener('change', recount);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    guarded(async () => {
      await api('POST', '/api/v1/audiences', { name: name.value.trim(), filter: filter() });
      name.value = '';
      await renderAudiences(list, load);
    });
  });
  main.classList.add('m-split');
  main.append(form, list);
  recount();
  await renderAudiences(list, load);
}

function describeFilter(f) {
  const parts = [];
  if (f.tags_all.length) parts.push(`${t('c_tags_all')}: ${f.tags_all.join(', ')}`);
  if (f.tags_any.length) parts.push(`${t('c_tags_any')}: ${f.tags_any.join(', ')}`);
  if (f.tags_none.length) parts.push(`${t('c_tags_none')}: ${f.tags_none.join(', ')}`);
  for (const [key, value] of Object.entries(f.attributes)) parts.push(`${key} = ${value}`);
  if (f.consent !== 'any') parts.push(t(`c_consent_${f.consent}`));
  if (f.active_after) parts.push(`${t('c_active_after')} ${when(f.active_after)}`);
  if (f.active_before) parts.push(`${t('c_active_before')} ${when(f.active_before)}`);
  if (f.has_conversation !== null && f.has_conversation !== undefined) {
    parts.push(`${t('c_has_conversation')}: ${t(f.has_conversation ? 'c_yes' : 'c_no')}`);
  }
  return parts.join(' · ') || t('c_everyone');
}

async function renderAudiences(list, load) {
  const audiences = (await api('GET', '/api/v1/audiences')).items;
  const counts = await Promise.all(audiences.slice(0, 30).map((a) => api('GET', `/api/v1/audiences/${a.id}`).then((x) => x.counts, () => null)));
  fill(list, el('h2', { ...tx('c_audiences') }),
    audiences.length ? el('ul', { class: 'm-audiences' }, ...audiences.map((a, index) => el('li', { 'data-id': a.id },
      el('strong', { text: a.name }),
      el('span', { class: 'm-muted', text: describeFilter(a.filter) }),
      counts[index] ? el('span', { class: 'm-badges' },
        el('span', { class: 'badge', text: `SMS ${number(counts[index].sms)}` }),
        el('span', { class: 'badge', text: `${t('email')} ${number(counts[index].email)}` })) : null,
      el('span', { class: 'm-actions' },
        el('button', { type: 'button', class: 'm-copy', ...tx('c_use_as_start'), onclick: () => load && load(a) }),
        el('button', { type: 'button', class: 'm-use', ...tx('c_campaign_for'), onclick: () => {
          state.audienceForNew = a.id;
          location.hash = '#campaigns/new';
        } })))))
      : el('p', { class: 'm-muted', ...tx('c_no_audiences') }));
}

// -- composing -----------------------------------------------------------------------
async function composeScreen(main, campaignId) {
  const [audiences, existing] = await Promise.all([
    api('GET', '/api/v1/audiences'),
    campaignId ? api('GET', `/api/v1/campaigns/${encodeURIComponent(campaignId)}`) : null,
  ]);
  if (existing && existing.status !== 'draft') { location.hash = `#campaigns/${existing.id}`; return; }
  let saved = existing; // the stored draft, once there is one
  const name = el('input', { id: 'campaign-name', required: true, maxlength: '200' });
  const channel = el('select', { id: 'campaign-channel' },
    el('option', { value: 'sms', text: 'SMS' }), el('option', { value: 'email', ...tx('email') }));
  const account = el('select', { id: 'campaign-account' });
  const audience = el('select', { id: 'campaign-audience', required: true },
    el('option', { value: '', ...tx('c_pick_audience') }),
    ...audiences.items.map((a) => el('option', { value: a.id, text: a.name })));
  const audienceCount = el('span', { id: 'campaign-audience-count', class: 'm-muted' });
  const subject = el('input', { id: 'campaign-subject', maxlength: '300' });
  const subjectField = field('c_subject', subject);
  const text = el('textarea', { id: 'campaign-text', rows: '7', maxlength: '20000', required: true });
  const variables = el('div', { class: 'm-variables', id: 'campaign-variables' },
    el('span', { class: 'm-muted', ...tx('c_variables') }),
    ...state.options.variables.map((v) => el('button', {
      type: 'button', class: 'm-chip', text: `{{ ${v} }}`,
      onclick: () => insertAtCursor(text, `{{ ${v} }}`),
    })));
  const preview = el('section', { id: 'campaign-preview', class: 'm-card m-preview', 'aria-live': 'polite' });
  const testTo = el('input', { id: 'campaign-test-to', 'aria-label': t('c_test_to') });
  const testResult = el('span', { id: 'campaign-test-result', class: 'm-muted', role: 'status' });
  const at = el('input', { id: 'campaign-at', type: 'datetime-local', 'aria-label': t('c_schedule_at') });

  if (!existing && state.audienceForNew) {
    audience.value = state.audienceForNew;
    state.audienceForNew = null;
  }
  if (existing) {
    name.value = existing.name;
    channel.value = existing.channel;
    audience.value = existing.audience_id;
    subject.value = existing.subject;
    text.value = existing.text;
  }
  // Said, not left as an empty menu: no account of that channel is configured.
  const noAccount = el('p', { id: 'campaign-no-account', class: 'm-warning', role: 'alert', hidden: true });
  const fillAccounts = () => {
    const current = saved ? saved.account_id : account.value;
    fill(account, ...state.options.accounts.filter((a) => a.channel === channel.value)
      .map((a) => el('option', { value: a.id, text: a.name === a.id ? a.id : `${a.name} (${a.id})` })));
    if ([...account.options].some((o) => o.value === current)) account.value = current;
    noAccount.hidden = account.options.length > 0;
    noAccount.textContent = t('c_no_account', { channel: channel.selectedOptions[0]?.text || channel.value });
    for (const button of form.querySelectorAll('#campaign-test, #campaign-schedule, #campaign-send-now')) {
      button.disabled = !noAccount.hidden;
    }
    subjectField.hidden = channel.value !== 'email';
    const mine = channel.value === 'sms' ? state.options.me.phone : state.options.me.email;
    if (!testTo.value || testTo.dataset.auto === '1') { testTo.value = mine; testTo.dataset.auto = '1'; }
    testTo.placeholder = channel.value === 'sms' ? '0901 234 567' : 'me@example.com';
  };
  testTo.addEventListener('input', () => { testTo.dataset.auto = '0'; });

  const body = () => {
    const result = {
      name: name.value.trim() || t('c_untitled'), channel: channel.value, account_id: account.value,
      audience_id: audience.value, text: text.value,
    };
    if (channel.value === 'email') result.subject = subject.value;
    return result;
  };
  const audienceSize = async () => {
    if (!audience.value) { audienceCount.textContent = ''; return 0; }
    const found = await api('GET', `/api/v1/audiences/${encodeURIComponent(audience.value)}`);
    const n = found.counts[channel.value];
    audienceCount.textContent = t('c_recipients', { n: number(n) });
    audienceCount.dataset.count = String(n);
    return n;
  };
  const renderPreview = async () => {
    const request = ++state.previewRequest;
    if (!audience.value || !text.value.trim() || !account.value) {
      fill(preview, el('h3', { ...tx('c_preview') }), el('p', { class: 'm-muted', ...tx('c_preview_needs') }));
      return;
    }
    let shown;
    try {
      shown = await api('POST', '/api/v1/campaigns/preview', body());
    } catch (error) {
      if (request !== state.previewRequest) return;
      fill(preview, el('h3', { ...tx('c_preview') }), el('p', { class: 'm-error', id: 'campaign-preview-error', text: error.message }));
      return;
    }
    if (request !== state.previewRequest) return;
    const size = shown.sms;
    fill(preview,
      el('h3', { ...tx('c_preview') }),
      el('p', { class: 'm-muted', text: t('c_preview_for', { name: shown.contact_name || shown.contact_id, to: shown.to }) }),
      shown.subject ? el('p', { class: 'm-subject', id: 'campaign-preview-subject', text: shown.subject }) : null,
      el('pre', { class: 'm-message', id: 'campaign-preview-text', text: shown.text }),
      size ? el('p', { id: 'campaign-sms-size', class: `m-sms${size.segments > 1 ? ' m-warn' : ''}` , text: t('c_sms_size', {
        characters: number(size.characters), encoding: size.encoding, segments: number(size.segments),
      }) + (size.diacritics_stripped ? ` · ${t('c_diacritics_stripped')}` : '') }) : null);
  };
  const changed = () => {
    clearTimeout(state.previewTimer);
    state.previewTimer = setTimeout(renderPreview, PREVIEW_DEBOUNCE_MS);
  };
  // Saving first: a test send, a schedule and a launch act on the stored draft.
  const save = async () => {
    if (saved) {
      const changes = body();
      saved = await api('PATCH', `/api/v1/campaigns/${saved.id}`, changes);
    } else {
      saved = await api('POST', '/api/v1/campaigns', body());
      history.replaceState(null, '', `#campaigns/${saved.id}/edit`);
      state.route = `campaigns/${saved.id}/edit`;
    }
    $('#campaign-saved').textContent = t('c_saved_at', { time: when(new Date().toISOString()) });
    return saved;
  };
  channel.addEventListener('change', () => { fillAccounts(); audienceSize().catch(showError); changed(); });
  audience.addEventListener('change', () => { audienceSize().catch(showError); changed(); });
  for (const input of [name, account, subject, text]) input.addEventListener('input', changed);
  account.addEventListener('change', changed);

  const form = el('form', { id: 'campaign-form', class: 'm-card m-form' },
    el('h2', { text: existing ? t('c_edit_campaign') : t('c_new_campaign') }),
    field('c_campaign_name', name),
    el('div', { class: 'm-row' }, field('c_channel', channel), field('c_account', account)),
    noAccount,
    el('label', { class: 'm-field' }, el('span', { ...tx('c_audience') }), audience, audienceCount),
    subjectField,
    field('c_text', text), variables,
    el('div', { class: 'm-actions' },
      el('button', { type: 'submit', id: 'campaign-save', ...tx('c_save_draft') }),
      el('span', { id: 'campaign-saved', class: 'm-muted', role: 'status' })),
    el('fieldset', { class: 'm-test' }, el('legend', { ...tx('c_test_send') }),
      el('div', { class: 'm-actions' }, testTo,
        el('button', { type: 'button', id: 'campaign-test', ...tx('c_send_test') }), testResult)),
    el('fieldset', { class: 'm-launch' }, el('legend', { ...tx('c_when') }),
      el('div', { class: 'm-actions' }, at,
        el('button', { type: 'button', id: 'campaign-schedule', ...tx('c_schedule') }),
        el('span', { class: 'spacer' }),
        el('button', { type: 'button', id: 'campaign-send-now', class: 'm-primary', ...tx('c_send_now') }))));
  form.addEventListener('submit', (event) => { event.preventDefault(); guarded(save); });
  $('#campaign-test', form).addEventListener('click', () => guarded(async () => {
    testResult.textContent = '';
    const draft = await save();
    const sent = await api('POST', `/api/v1/campaigns/${draft.id}/test`, testTo.value.trim() ? { to: testTo.value.trim() } : {});
    testResult.textContent = t('c_test_sent', { to: sent.to });
  }));
  $('#campaign-schedule', form).addEventListener('click', () => guarded(async () => {
    if (!at.value) throw new Error(t('c_pick_time'));
    const moment = new Date(at.value);
    const n = await audienceSize();
    if (!await confirmDialog(t('c_confirm_schedule', { n: number(n), time: when(moment.toISOString()) }), t('c_schedule'))) return;
    const draft = await save();
    await api('POST', `/api/v1/campaigns/${draft.id}/schedule`, { at: moment.toISOString() });
    location.hash = `#campaigns/${draft.id}`;
  }));
  $('#campaign-send-now', form).addEventListener('click', () => guarded(async () => {
    if (!form.reportValidity()) return;
    const draft = await save();
    const n = await audienceSize();
    if (!await confirmDialog(t('c_confirm_send', { n: number(n) }), t('c_send_now'))) return;
    await api('POST', `/api/v1/campaigns/${draft.id}/launch`);
    location.hash = `#campaigns/${draft.id}`;
  }));
  main.classList.add('m-split');
  main.append(form, preview);
  fillAccounts(); // once the form exists: it also disables the form's send buttons
  await audienceSize().catch(showError);
  await renderPreview();
}

function insertAtCursor(area, snippet) {
  const start = area.selectionStart ?? area.value.length;
  const end = area.selectionEnd ?? area.value.length;
  area.value = area.value.slice(0, start) + snippet + area.value.slice(end);
  area.focus();
  area.selectionStart = area.selectionEnd = start + snippet.length;
  area.dispatchEvent(new Event('input', { bubbles: true }));
}

// A modal question with the page's own words (window.confirm cannot be styled
// or translated, and some browsers suppress it).
function confirmDialog(question, yes) {
  return new Promise((resolve) => {
    const dialog = el('dialog', { id: 'm-confirm', class: 'm-confirm' },
      el('p', { text: question }),
      el('form', { method: 'dialog', class: 'm-actions' },
        el('button', { value: 'no', type: 'submit', id: 'm-confirm-no', ...tx('c_back') }),
        el('button', { value: 'yes', type: 'submit', id: 'm-confirm-yes', class: 'm-primary', text: yes })));
    dialog.addEventListener('close', () => { resolve(dialog.returnValue === 'yes'); dialog.remove(); });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// -- the list -------------------------------------------------------------------------
// What went out of the total, as figures and a bar (in the list).
function outOf(progress) {
  const went = (progress.sent || 0) + (progress.delivered || 0);
  return [el('progress', { max: String(Math.max(1, progress.total || 0)), value: String(went) }),
    el('span', { class: 'm-muted', text: ` ${number(went)} / ${number(progress.total)}` })];
}

async function listScreen(main) {
  const table = el('tbody', { id: 'campaign-rows' });
  const LIVE = ['running', 'paused', 'completed', 'cancelled'];
  const render = (items) => {
    fill(table, ...items.map((c) => el('tr', {
      'data-id': c.id, 'data-status': c.status, tabindex: '0',
      onclick: () => { location.hash = c.status === 'draft' ? `#campaigns/${c.id}/edit` : `#campaigns/${c.id}`; },
      onkeydown: (event) => { if (event.key === 'Enter') event.currentTarget.click(); },
    },
    el('td', { text: c.name }),
    el('td', { text: c.channel === 'sms' ? 'SMS' : t('email') }),
    el('td', {}, el('span', { class: `badge m-status-${c.status}`, text: t(`cs_${c.status}`) })),
    el('td', { class: 'm-out-of', 'data-progress': c.id }, LIVE.includes(c.status) ? '…' : number(c.recipient_count)),
    el('td', { text: when(c.launched_at || c.scheduled_at || c.created_at) }))));
    if (!items.length) table.append(el('tr', {}, el('td', { colspan: '5', class: 'm-muted', ...tx('c_no_campaigns') })));
  };
  const showProgress = (campaignId, progress) => {
    const cell = table.querySelector(`td[data-progress="${CSS.escape(campaignId)}"]`);
    if (cell) fill(cell, ...outOf(progress));
  };
  let shown = [];
  const load = async () => {
    try {
      shown = (await api('GET', '/api/v1/campaigns')).items;
      render(shown);
      // Figures of the recent ones that sent something (one request each).
      await Promise.all(shown.filter((c) => LIVE.includes(c.status)).slice(0, 20).map(async (c) => {
        const found = await api('GET', `/api/v1/campaigns/${encodeURIComponent(c.id)}`);
        showProgress(c.id, found.progress);
      }));
    } catch (error) {
      showError(error);
    }
  };
  main.append(el('div', { class: 'm-card' },
    el('div', { class: 'm-actions' }, el('h2', { ...tx('c_campaigns') }), el('span', { class: 'spacer' }),
      el('a', { class: 'm-button m-primary', href: '#campaigns/new', ...tx('c_new_campaign') })),
    el('div', { class: 'm-scroll' }, el('table', { class: 'm-table m-clickable' },
      el('thead', {}, el('tr', {}, ...['c_campaign_name', 'c_channel', 'c_status', 'c_sent_of', 'time']
        .map((key) => el('th', { text: t(key) })))), table))));
  await load();
  let pending = 0;
  startLive((data) => {
    const known = shown.find((c) => c.id === data.campaign_id);
    if (known && known.status === data.status) { showProgress(data.campaign_id, data); return; }
    if (!pending) pending = setTimeout(() => { pending = 0; load(); }, 1000); // a new status or campaign
  }, load, () => shown.some((c) => c.status === 'running'));
}

const REASONS = ['opted_out', 'frequency_cap', 'bouncing', 'no_address', 'cancelled'];

// Skips have known reasons; a failure's reason is the provider's own words.
function reasonText(reason) {
  if (!reason) return '';
  return REASONS.includes(reason) ? t(`rr_${reason}`) : reason;
}

// -- one campaign ---------------------------------------------------------------------
async function detailScreen(main, campaignId) {
  const campaign = await api('GET', `/api/v1/campaigns/${encodeURIComponent(campaignId)}`);
  state.campaign = campaign;
  state.recipients = [];
  state.recipientsCursor = null;
  const audiences = await api('GET', '/api/v1/audiences').catch(() => ({ items: [] }));
  const audience = audiences.items.find((a) => a.id === campaign.audience_id);
  const head = el('div', { class: 'm-card', id: 'campaign-head' });
  const figures = el('dl', { class: 'm-figures', id: 'campaign-figures' });
  const bar = el('progress', { id: 'campaign-bar', max: '1', value: '0' });
  const statusFilter = el('select', { id: 'recipient-status', 'aria-label': t('c_status') },
    el('option', { value: '', ...tx('c_all_statuses') }),
    ...state.options.recipient_statuses.map((s) => el('option', { value: s, text: t(`rs_${s}`) })));
  statusFilter.value = state.recipientStatus;
  const rows = el('tbody', { id: 'recipient-rows' });
  const more = el('button', { type: 'button', id: 'recipient-more', ...tx('more'), hidden: true });
  const download = el('a', { class: 'm-button', id: 'recipient-csv', download: '', ...tx('c_download_csv') });

  let shownStatus = '';
  const renderHead = (c) => {
    const actions = [];
    if (c.status === 'draft') actions.push(el('a', { class: 'm-button', href: `#campaigns/${c.id}/edit`, ...tx('c_edit') }));
    if (c.status === 'running') actions.push(el('button', { type: 'button', id: 'campaign-pause', ...tx('c_pause'), onclick: () => act('pause') }));
    if (c.status === 'paused') actions.push(el('button', { type: 'button', id: 'campaign-resume', class: 'm-primary', ...tx('c_resume'), onclick: () => act('resume') }));
    if (['draft', 'scheduled', 'running', 'paused'].includes(c.status)) {
      actions.push(el('button', { type: 'button', id: 'campaign-cancel', class: 'm-danger', ...tx('c_cancel'), onclick: async () => {
        if (await confirmDialog(t('c_confirm_cancel'), t('c_cancel'))) act('cancel');
      } }));
    }
    const account = state.options.accounts.find((a) => a.id === c.account_id);
    fill(head,
      el('div', { class: 'm-actions' },
        el('h2', { id: 'campaign-title', text: c.name }),
        el('span', { id: 'campaign-status', class: `badge m-status-${c.status}`, 'data-status': c.status, text: t(`cs_${c.status}`) }),
        el('span', { class: 'spacer' }), ...actions),
      el('p', { class: 'm-muted', text: [
        c.channel === 'sms' ? 'SMS' : t('email'),
        account ? account.name : c.account_id,
        audience ? `${t('c_audience')}: ${audience.name}` : '',
        c.scheduled_at && c.status === 'scheduled' ? t('c_scheduled_for', { time: when(c.scheduled_at) }) : '',
        c.launched_at ? t('c_launched_at', { time: when(c.launched_at) }) : '',
        c.finished_at ? t('c_finished_at', { time: when(c.finished_at) }) : '',
      ].filter(Boolean).join(' · ') }),
      ...(c.subject ? [el('p', { class: 'm-subject', text: c.subject })] : []),
      el('pre', { class: 'm-message', text: c.text }));
    shownStatus = c.status;
  };
  const renderFigures = (progress) => {
    const values = {
      ...progress,
      sent: (progress.sent || 0) + (progress.delivered || 0), // everything that went out
      queued: (progress.pending || 0) - (progress.waiting || 0) + (progress.sending || 0),
    };
    fill(figures, ...FIGURES.map(([key, label]) => el('div', { class: `m-figure f-${key}`, 'data-figure': key },
      el('dt', { text: t(label) }), el('dd', { text: number(values[key]) }))));
    const done = (progress.sent || 0) + (progress.delivered || 0) + (progress.failed || 0) + (progress.opted_out || 0)
      + (progress.frequency_capped || 0) + (progress.bouncing || 0) + (progress.skipped_other || 0);
    bar.max = Math.max(1, progress.total || 0);
    bar.value = done;
  };
  const renderRecipients = () => {
    fill(rows, ...state.recipients.map((r) => el('tr', { 'data-id': r.contact_id, 'data-status': r.status },
      el('td', { text: r.address }),
      el('td', {}, el('span', { class: `badge m-rs-${r.status}`, text: t(`rs_${r.status}`) })),
      el('td', { class: 'reason', text: reasonText(r.reason) }),
      el('td', { text: String(r.attempts) }),
      el('td', { text: when(r.sent_at) }),
      el('td', { text: when(r.replied_at) }))));
    if (!state.recipients.length) rows.append(el('tr', {}, el('td', { colspan: '6', class: 'm-muted', ...tx('c_no_recipients') })));
    more.hidden = !state.recipientsCursor;
    const query = new URLSearchParams({ format: 'csv' });
    if (state.recipientStatus) query.set('status', state.recipientStatus);
    download.href = `/api/v1/campaigns/${encodeURIComponent(campaignId)}/recipients?${query}`;
  };
  const loadRecipients = async (next = false) => {
    const query = new URLSearchParams({ limit: '50' });
    if (state.recipientStatus) query.set('status', state.recipientStatus);
    if (next && state.recipientsCursor) query.set('cursor', state.recipientsCursor);
    const page = await api('GET', `/api/v1/campaigns/${encodeURIComponent(campaignId)}/recipients?${query}`);
    state.recipients = next ? [...state.recipients, ...page.items] : page.items;
    state.recipientsCursor = page.next_cursor;
    renderRecipients();
  };
  const act = (action) => guarded(async () => {
    const updated = await api('POST', `/api/v1/campaigns/${encodeURIComponent(campaignId)}/${action}`);
    state.campaign = updated;
    renderHead(updated);
    renderFigures(updated.progress);
    await loadRecipients();
  });
  // Only the first page is reloaded as figures move: one paged further keeps its rows.
  const reload = async () => {
    try {
      const latest = await api('GET', `/api/v1/campaigns/${encodeURIComponent(campaignId)}`);
      if (state.route !== `campaigns/${campaignId}`) return;
      state.campaign = latest;
      if (latest.status !== shownStatus) renderHead(latest);
      renderFigures(latest.progress);
      if (state.recipients.length <= 50) await loadRecipients();
    } catch (error) {
      showError(error);
    }
  };
  let pending = 0;
  const onProgress = (data) => {
    if (data.campaign_id !== campaignId) return;
    renderFigures(data);
    if (data.status && data.status !== shownStatus) {
      reload(); // the head and its buttons change with the status
    } else if (state.recipients.length <= 50) {
      // The table follows the figures: at once, then at most once a second.
      if (pending) { pending = 'again'; return; }
      const load = () => {
        pending = setTimeout(() => { const again = pending === 'again'; pending = 0; if (again) load(); }, 1000);
        loadRecipients().catch(showError);
      };
      load();
    }
  };
  statusFilter.addEventListener('change', () => { state.recipientStatus = statusFilter.value; loadRecipients().catch(showError); });
  more.addEventListener('click', () => loadRecipients(true).catch(showError));

  renderHead(campaign);
  renderFigures(campaign.progress);
  main.append(head,
    el('section', { class: 'm-card' }, el('h3', { ...tx('c_progress') }), bar, figures),
    el('section', { class: 'm-card' },
      el('div', { class: 'm-actions' }, el('h3', { ...tx('c_recipients_title') }), el('span', { class: 'spacer' }), statusFilter, download),
      el('div', { class: 'm-scroll' }, el('table', { class: 'm-table', id: 'recipient-table' },
        el('thead', {}, el('tr', {}, ...['c_address', 'c_status', 'c_reason', 'c_attempts', 'c_sent_at', 'c_replied_at']
          .map((key) => el('th', { text: t(key) })))), rows)),
      more));
  await loadRecipients();
  // Polled while running, and after a pause while the sends in flight finish.
  startLive(onProgress, reload, () => state.campaign.status === 'running' || (state.campaign.progress || {}).sending > 0);
}
