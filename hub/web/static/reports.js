// The Reports page: the figures of /api/v1/reports as cards, charts (Chart.js,
// vendored in ./vendor, loaded on first use) and tables, each table with its CSV
// download (the API's own ?format=csv). What a role may see is decided by the API;
// the page only leaves out what it would refuse (marketers: campaigns only;
// agents: no campaigns). Every text from the hub goes in through textContent.
import { api } from './api.js';
import { $, el } from './dom.js';
import { lang, t, translate } from './i18n.js';
import { when } from './time.js';

const CHART_SCRIPT = '/app/static/vendor/chart.umd.min.js';
const PRESETS = ['7d', '30d', '90d'];

const page = {
  me: null,
  built: false,
  charts: [],
  chartLibrary: null,
  filters: { preset: '7d', since: '', until: '', team: '', channel: '', agent: '', label: '' },
};

function loadChartLibrary() {
  if (!page.chartLibrary) {
    page.chartLibrary = new Promise((resolve, reject) => {
      if (window.Chart) { resolve(window.Chart); return; }
      const script = el('script', { src: CHART_SCRIPT });
      script.addEventListener('load', () => resolve(window.Chart));
      script.addEventListener('error', () => reject(new Error('chart library')));
      document.head.append(script);
    });
  }
  return page.chartLibrary;
}

// -- formatting -------------------------------------------------------------
function number(value) {
  return value === null || value === undefined ? '–'
    : Number(value).toLocaleString(lang() === 'vi' ? 'vi-VN' : 'en-GB', { maximumFractionDigits: 2 });
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  const whole = Math.round(seconds);
  const days = Math.floor(whole / 86400);
  const hours = Math.floor((whole % 86400) / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  if (days) return t('r_days_hours', { d: days, h: hours });
  if (hours) return t('r_hours_minutes', { h: hours, m: String(minutes).padStart(2, '0') });
  return t('r_minutes_seconds', { m: minutes, s: String(whole % 60).padStart(2, '0') });
}

function percent(share) {
  return share === null || share === undefined ? '–' : `${Math.round(share * 100)}%`;
}

function day(iso) {
  return new Date(`${iso}T00:00:00`).toLocaleDateString(lang() === 'vi' ? 'vi-VN' : 'en-GB', {
    weekday: 'short', day: 'numeric', month: 'numeric',
  });
}

// -- the query --------------------------------------------------------------
function query(extra = {}) {
  const params = new URLSearchParams();
  const f = page.filters;
  if (f.preset) params.set('since', f.preset);
  else {
    if (f.since) params.set('since', f.since);
    if (f.until) params.set('until', f.until);
  }
  for (const name of ['team', 'channel', 'agent', 'label']) if (f[name]) params.set(name, f[name]);
  for (const [name, value] of Object.entries(extra)) params.set(name, value);
  return params.toString();
}

function csvLink(report) {
  return el('a', {
    class: 'csv', href: `/api/v1/reports/${report}?${query({ format: 'csv' })}`, download: '',
    'data-report': report, text: t('r_download_csv'),
  });
}

// -- building the page ------------------------------------------------------
function section(id, title, report) {
  return el('section', { class: 'report', id: `report-${id}` },
    el('header', {}, el('h3', { 'data-i18n': title, text: t(title) }), report ? csvLink(report) : null),
    el('div', { class: 'report-body' }));
}

function build(dialog) {
  const presets = el('select', { id: 'report-preset', 'aria-label': t('r_period') },
    ...PRESETS.map((p) => el('option', { value: p, 'data-i18n': `r_last_${p}`, text: t(`r_last_${p}`) })),
    el('option', { value: '', 'data-i18n': 'r_custom', text: t('r_custom') }));
  const form = el('form', { id: 'report-filters', class: 'report-filters' },
    el('label', {}, el('span', { 'data-i18n': 'r_period', text: t('r_period') }), presets),
    el('label', {}, el('span', { 'data-i18n': 'r_since', text: t('r_since') }),
      el('input', { id: 'report-since', type: 'date' })),
    el('label', {}, el('span', { 'data-i18n': 'r_until', text: t('r_until') }),
      el('input', { id: 'report-until', type: 'date' })),
    el('label', {}, el('span', { 'data-i18n': 'teams', text: t('teams') }),
      el('select', { id: 'report-team' }, el('option', { value: '', text: t('r_any') }))),
    el('label', {}, el('span', { 'data-i18n': 'r_channel', text: t('r_channel') }),
      el('input', { id: 'report-channel', placeholder: 'sms, email…', maxlength: '200' })),
    el('label', {}, el('span', { 'data-i18n': 'agents', text: t('agents') }),
      el('select', { id: 'report-agent' }, el('option', { value: '', text: t('r_any') }))),
    el('label', {}, el('span', { 'data-i18n': 'r_label', text: t('r_label') }),
      el('input', { id: 'report-label', maxlength: '40' })),
    el('button', { type: 'submit', 'data-i18n': 'r_apply', text: t('r_apply') }));
  form.addEventListener('submit', (event) => { event.preventDefault(); readFilters(); load(); });
  presets.addEventListener('change', () => { readFilters(); showDates(); load(); });
  const close = el('button', { type: 'button', id: 'reports-close', 'data-i18n': 'close', text: t('close') });
  close.addEventListener('click', () => dialog.close());
  const support = page.me.role !== 'marketer';
  const managers = page.me.role !== 'agent';
  dialog.replaceChildren(...[
    el('header', { class: 'reports-head' },
      el('h2', { 'data-i18n': 'reports', text: t('reports') }), el('span', { id: 'report-period', class: 'period' }),
      el('span', { class: 'spacer' }), close),
    form,
    el('p', { id: 'report-error', class: 'error', role: 'alert' }),
    support ? section('summary', 'r_summary', 'summary') : null,
    support ? section('days', 'r_by_day', 'days') : null,
    support ? section('hours', 'r_by_hour', 'hours') : null,
    support ? section('channels', 'r_by_channel', 'channels') : null,
    support ? section('agents', 'r_by_agent', 'agents') : null,
    support ? section('satisfaction', 'r_satisfaction', 'satisfaction') : null,
    managers ? section('campaigns', 'r_campaigns', 'campaigns') : null,
  ].filter(Boolean));
  for (const node of form.querySelectorAll('label')) {
    if (!support && !node.querySelector('#report-preset, #report-since, #report-until, #report-channel')) {
      node.hidden = true; // campaign reports are sliced by period, account and channel only
    }
  }
  page.built = true;
}

async function fillChoices() {
  if (page.me.role === 'marketer') return;
  const [teams, agents] = await Promise.all([api('GET', '/api/v1/teams'), api('GET', '/api/v1/agents')]);
  const team = $('#report-team');
  for (const item of teams.items) team.append(el('option', { value: item.id, text: item.name || item.id }));
  const agent = $('#report-agent');
  for (const item of agents.items.filter((a) => a.role !== 'marketer')) {
    agent.append(el('option', { value: item.id, text: item.name }));
  }
}

function showDates() {
  // A preset period is relative to now: the two dates apply to a custom one only.
  for (const id of ['#report-since', '#report-until']) $(id).disabled = Boolean(page.filters.preset);
}

function readFilters() {
  const f = page.filters;
  f.preset = $('#report-preset').value;
  f.since = $('#report-since').value;
  f.until = $('#report-until').value;
  f.team = $('#report-team').value;
  f.channel = $('#report-channel').value.trim();
  f.agent = $('#report-agent').value;
  f.label = $('#report-label').value.trim();
}

// -- tables and charts --------------------------------------------------------
function table(columns, rows) {
  return el('table', { class: 'report-table' },
    el('thead', {}, el('tr', {}, ...columns.map((c) => el('th', { text: t(c.title), class: c.numeric ? 'num' : '' })))),
    el('tbody', {}, ...rows.map((row) => el('tr', {},
      ...columns.map((c) => el('td', { text: c.value(row), class: c.numeric ? 'num' : '' }))))));
}

function chart(Chart, type, labels, datasets) {
  const canvas = el('canvas', { role: 'img' });
  const holder = el('div', { class: 'chart' }, canvas);
  page.charts.push(new Chart(canvas, {
    type,
    data: { labels, datasets },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      plugins: { legend: { position: 'bottom' } },
    },
  }));
  return holder;
}

function body(id) { return $(`#report-${id} .report-body`); }

function card(title, value, detail = '') {
  return el('div', { class: 'card' },
    el('span', { class: 'card-title', text: t(title) }),
    el('strong', { class: 'card-value', text: value }),
    detail ? el('span', { class: 'card-detail', text: detail }) : null);
}

function showSummary(summary) {
  const kind = summary.business_hours ? t('r_business_hours') : t('r_wall_time');
  body('summary').replaceChildren(el('div', { class: 'cards' },
    card('r_opened', number(summary.opened)),
    card('r_resolved', number(summary.resolved)),
    card('r_first_response', duration(summary.first_response.median_seconds),
      `${t('r_p90')} ${duration(summary.first_response.p90_seconds)} · ${kind}`),
    card('r_resolution', duration(summary.resolution.median_seconds),
      `${t('r_p90')} ${duration(summary.resolution.p90_seconds)} · ${kind}`),
    card('r_messages', `${number(summary.messages_in)} / ${number(summary.messages_out)}`, t('r_in_out')),
    card('r_waiting', number(summary.waiting_unassigned)),
    card('r_sla_breaches', number(summary.sla_breaches)),
    card('r_csat', summary.satisfaction.average === null ? '–' : number(summary.satisfaction.average),
      t('r_answers', { n: summary.satisfaction.answers, p: percent(summary.satisfaction.positive_share) }))));
}

function showDays(Chart, rows) {
  body('days').replaceChildren(
    chart(Chart, 'bar', rows.map((r) => day(r.day)), [
      { label: t('r_opened'), data: rows.map((r) => r.opened) },
      { label: t('r_resolved'), data: rows.map((r) => r.resolved) },
      { label: t('r_sla_breaches'), data: rows.map((r) => r.sla_breaches) },
    ]),
    table([
      { title: 'r_day', value: (r) => day(r.day) },
      { title: 'r_opened', value: (r) => number(r.opened), numeric: true },
      { title: 'r_resolved', value: (r) => number(r.resolved), numeric: true },
      { title: 'r_sla_breaches', value: (r) => number(r.sla_breaches), numeric: true },
      { title: 'r_messages_in', value: (r) => number(r.messages_in), numeric: true },
      { title: 'r_messages_out', value: (r) => number(r.messages_out), numeric: true },
    ], rows));
}

function showHours(Chart, rows) {
  body('hours').replaceChildren(
    chart(Chart, 'bar', rows.map((r) => `${r.hour}h`), [
      { label: t('r_messages_in'), data: rows.map((r) => r.messages_in) },
      { label: t('r_messages_out'), data: rows.map((r) => r.messages_out) },
    ]),
    table([
      { title: 'r_hour', value: (r) => `${String(r.hour).padStart(2, '0')}:00` },
      { title: 'r_messages_in', value: (r) => number(r.messages_in), numeric: true },
      { title: 'r_messages_out', value: (r) => number(r.messages_out), numeric: true },
    ], rows.filter((r) => r.messages_in || r.messages_out)));
}

function showChannels(Chart, rows) {
  body('channels').replaceChildren(
    chart(Chart, 'bar', rows.map((r) => r.channel), [
      { label: t('r_messages_in'), data: rows.map((r) => r.messages_in) },
      { label: t('r_messages_out'), data: rows.map((r) => r.messages_out) },
    ]),
    table([
      { title: 'r_channel', value: (r) => r.channel },
      { title: 'r_opened', value: (r) => number(r.opened), numeric: true },
      { title: 'r_resolved', value: (r) => number(r.resolved), numeric: true },
      { title: 'r_messages_in', value: (r) => number(r.messages_in), numeric: true },
      { title: 'r_messages_out', value: (r) => number(r.messages_out), numeric: true },
    ], rows));
}

function showAgents(rows) {
  body('agents').replaceChildren(table([
    { title: 'name', value: (r) => r.name || r.agent_id },
    { title: 'r_opened', value: (r) => number(r.opened), numeric: true },
    { title: 'r_resolved', value: (r) => number(r.resolved), numeric: true },
    { title: 'r_open_now', value: (r) => number(r.open_now), numeric: true },
    { title: 'r_messages_out', value: (r) => number(r.messages_out), numeric: true },
    { title: 'r_first_response', value: (r) => duration(r.first_response.median_seconds), numeric: true },
    { title: 'r_resolution', value: (r) => duration(r.resolution.median_seconds), numeric: true },
    { title: 'r_csat', value: (r) => number(r.satisfaction.average), numeric: true },
  ], rows));
}

function showSatisfaction(Chart, rows) {
  body('satisfaction').replaceChildren(
    chart(Chart, 'bar', rows.map((r) => '★'.repeat(r.score)), [
      { label: t('r_answers_label'), data: rows.map((r) => r.answers) },
    ]),
    table([
      { title: 'r_score', value: (r) => String(r.score) },
      { title: 'r_answers_label', value: (r) => number(r.answers), numeric: true },
    ], rows));
}

function showCampaigns(Chart, rows) {
  const steps = ['audience', 'sent', 'delivered', 'failed', 'opted_out', 'replied'];
  const titles = { audience: 'r_audience', opted_out: 'r_opted_out', replied: 'r_replied' };
  body('campaigns').replaceChildren(...(rows.length ? [chart(Chart, 'bar', rows.map((r) => r.name),
    steps.map((step) => ({ label: t(titles[step] || step), data: rows.map((r) => r[step]) }))), table([
    { title: 'name', value: (r) => r.name },
    { title: 'r_channel', value: (r) => r.channel },
    { title: 'r_audience', value: (r) => number(r.audience), numeric: true },
    { title: 'sent', value: (r) => number(r.sent), numeric: true },
    { title: 'delivered', value: (r) => number(r.delivered), numeric: true },
    { title: 'failed', value: (r) => number(r.failed), numeric: true },
    { title: 'r_opted_out', value: (r) => number(r.opted_out), numeric: true },
    { title: 'r_replied', value: (r) => number(r.replied), numeric: true },
  ], rows)] : [el('p', { class: 'empty', text: t('r_no_campaigns') })]));
}

// -- loading ----------------------------------------------------------------
async function load() {
  $('#report-error').textContent = '';
  for (const link of document.querySelectorAll('#reports a.csv')) {
    link.href = `/api/v1/reports/${link.dataset.report}?${query({ format: 'csv' })}`;
  }
  const q = query();
  const get = (report) => api('GET', `/api/v1/reports/${report}?${q}`);
  try {
    const support = page.me.role !== 'marketer';
    const managers = page.me.role !== 'agent';
    const [Chart, summary, days, hours, channels, agents, scores, campaigns] = await Promise.all([
      loadChartLibrary(),
      support ? get('summary') : null,
      support ? get('days') : null,
      support ? get('hours') : null,
      support ? get('channels') : null,
      support ? get('agents') : null,
      support ? get('satisfaction') : null,
      managers ? get('campaigns') : null,
    ]);
    for (const old of page.charts) old.destroy();
    page.charts = [];
    const period = (summary || campaigns).period;
    // On the period's own clock (the zone it names), not the laptop's.
    $('#report-period').textContent = `${when(period.since, period.timezone)}`
      + ` → ${when(period.until, period.timezone)} (${period.timezone})`;
    if (support) {
      showSummary(summary);
      showDays(Chart, days.rows);
      showHours(Chart, hours.rows);
      showChannels(Chart, channels.rows);
      showAgents(agents.rows);
      showSatisfaction(Chart, scores.rows);
    }
    if (managers) showCampaigns(Chart, campaigns.rows);
    $('#reports').dataset.loaded = String(Date.now());
  } catch (error) {
    $('#report-error').textContent = error.message;
  }
}

export async function openReports(me) {
  const dialog = $('#reports');
  if (!page.built) {
    page.me = me;
    build(dialog);
    // Words drawn from data (cards, tables, charts) follow a change of language.
    for (const select of document.querySelectorAll('select.lang')) {
      select.addEventListener('change', () => { if (dialog.open) load(); });
    }
    fillChoices().catch((error) => { $('#report-error').textContent = error.message; });
  }
  translate(dialog);
  showDates();
  if (!dialog.open) dialog.showModal();
  await load();
}
