// The agents' workspace. Plain ES modules, no build step. Everything a customer
// wrote reaches the DOM through textContent; e-mail HTML (sanitised by the hub
// at ingest) only inside an iframe with an empty sandbox, under the page's CSP.
import { api, ApiError, setCsrf } from './api.js';
import { $, el } from './dom.js';
import { setLang, t, translate } from './i18n.js';
import { mountCampaigns } from './campaigns.js';
import { loadDraft, saveDraft } from './drafts.js';
import { openReports } from './reports.js';
import { ago, officeInput, setZone, snoozeUntil, when } from './time.js';

const OPEN = 'open,pending,snoozed';

const state = {
  me: null,
  agents: [],
  teams: [],
  canned: [],
  view: 'mine',
  query: '',
  conversations: [],
  cursor: null,
  openId: null,
  conversation: null,
  contact: null,
  messages: [],
  older: null, // cursor of the messages before those loaded (null: the timeline starts there)
  history: null,
  historyOlder: null, // the same for the customer's whole history
  wholeHistory: false,
  attachments: [],
  socket: null,
  reconnects: 0,
  typingTimer: null,
  collisionTimer: null,
  refreshTimer: 0,
  acknowledged: new Set(), // colleagues' replies the agent was warned about
  following: true, // the timeline is at its end and stays there
  viewers: new Map(), // conversation id → Map(agent id → { name, until })
  undo: null, // reverses the last resolve while its notice shows
  undoTimer: null,
  window: null, // the open conversation's reply window (Messenger, WhatsApp, Zalo)
  windowSkew: 0, // the hub's clock minus this browser's, when it was read
};

// What went wrong, in the agent's words: a fetch that never reached the hub
// (Wi-Fi gone) throws a TypeError whose message ("Failed to fetch") says nothing.
function problem(error) {
  if (!(error instanceof ApiError)) return t('unreachable');
  if (error.status === 404) return t('gone');
  return error.message;
}

function agentName(id) {
  const agent = state.agents.find((a) => a.id === id);
  return agent ? agent.name : '';
}

// -- signing in ------------------------------------------------------------
async function boot() {
  translate(document);
  for (const select of document.querySelectorAll('select.lang')) {
    select.addEventListener('change', () => { setLang(select.value); rerender(); });
  }
  $('#signin-form').addEventListener('submit', signIn);
  try {
    start(await api('GET', '/api/v1/auth/session'));
  } catch {
    $('#signin').hidden = false;
    $('#signin-email').focus();
  }
}

async function signIn(event) {
  event.preventDefault();
  $('#signin-error').textContent = '';
  try {
    const session = await api('POST', '/api/v1/auth/login', {
      email: $('#signin-email').value, password: $('#signin-password').value,
    });
    $('#signin-password').value = '';
    start(session);
  } catch (error) {
    $('#signin-error').textContent = error.code === 'rate_limited' ? t('too_many')
      : error.code === 'unauthenticated' ? t('wrong_password') : error.message;
  }
}

async function start(session) {
  setCsrf(session.csrf_token);
  setZone(session.timezone);
  state.me = session.agent;
  $('#signin').hidden = true;
  $('#workspace').hidden = false;
  $('#me').textContent = state.me.name;
  $('#presence').value = state.me.presence;
  state.view = state.me.role === 'admin' ? 'all' : 'mine';
  wire();
  const [agents, teams, canned] = await Promise.all([
    api('GET', '/api/v1/agents'), api('GET', '/api/v1/teams'), api('GET', '/api/v1/canned-responses'),
  ]);
  state.agents = agents.items;
  state.teams = teams.items;
  state.canned = canned.items;
  mountCampaigns(state.me);
  if (state.me.role === 'marketer') {
    // Conversations are private to support; marketers work on contacts and campaigns.
    // Nothing routes to them, and no message of a customer's reaches them: no
    // presence to set, no notifications to turn on.
    $('#empty').textContent = t('marketer_note');
    $('#presence').hidden = true;
    $('#notify').hidden = true;
    return;
  }
  await Promise.all([loadViews(), loadList()]);
  connect();
}

// -- views and the list ----------------------------------------------------
async function loadViews() {
  let views;
  try {
    views = await api('GET', '/api/v1/views');
  } catch {
    return; // the counts shown stay; the list says what failed
  }
  const nav = $('#views');
  nav.replaceChildren();
  for (const view of views.items) {
    const label = view.view.startsWith('label:') ? `# ${view.view.slice(6)}` : t(`view_${view.view}`);
    const count = view.unread ? `${view.unread}${view.more ? '+' : ''}` : '';
    nav.append(el('button', {
      type: 'button',
      class: `view${view.view === state.view ? ' current' : ''}`,
      'data-view': view.view,
      onclick: () => { state.view = view.view; loadViews(); loadList(); },
    }, el('span', { text: label }), count ? el('span', { class: 'count', text: count }) : null));
  }
}

function viewQuery() {
  const query = new URLSearchParams();
  const view = state.view;
  if (view === 'mine') query.set('assignee', 'me');
  if (view === 'unassigned') query.set('assignee', 'none');
  if (view === 'teams') query.set('team', 'mine');
  if (view.startsWith('label:')) query.set('label', view.slice(6));
  else query.set('status', OPEN);
  if (state.query) query.set('q', state.query);
  query.set('limit', '50');
  return query;
}

let listRequests = 0;
async function loadList(more = false) {
  const query = viewQuery();
  if (more && state.cursor) query.set('cursor', state.cursor);
  const request = ++listRequests;
  if (!state.listed) $('#conversations').replaceChildren(el('li', { class: 'none', text: t('loading') }));
  let page;
  try {
    page = await api('GET', `/api/v1/conversations?${query}`);
  } catch (error) {
    if (request !== listRequests) return;
    // The list already shown stays (stale beats blank); the failure is said above it.
    $('#list-error').hidden = false;
    $('#list-error-text').textContent = problem(error);
    return;
  }
  if (request !== listRequests) return; // a newer answer is on its way
  state.listed = true;
  $('#list-error').hidden = true;
  state.conversations = more ? [...state.conversations, ...page.items] : page.items;
  state.cursor = page.next_cursor;
  renderList();
}

function renderList() {
  const list = $('#conversations');
  // Rebuilt on every refresh: the row the keyboard was on keeps the focus.
  const focused = list.contains(document.activeElement) ? document.activeElement.dataset.id : null;
  list.replaceChildren();
  if (!state.conversations.length) list.append(el('li', { class: 'none', text: t('no_conversations') }));
  for (const c of state.conversations) {
    list.append(el('li', {
      class: `item${c.id === state.openId ? ' current' : ''}${c.unread_count ? ' unread' : ''}`,
      'data-id': c.id,
      tabindex: '0',
      onclick: () => openConversation(c.id),
      onkeydown: (event) => {
        if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); openConversation(c.id); }
      },
    },
    el('span', { class: 'who', text: [c.contact_name, c.subject].filter(Boolean).join(' · ') || c.contact_address }),
    el('time', {
      class: 'ago', datetime: c.last_activity_at, title: when(c.last_activity_at), text: ago(c.last_activity_at),
    }),
    el('span', { class: 'meta', text: `${c.channel} · ${t(`status_${c.status}`)}${c.assignee_id ? ` · ${agentName(c.assignee_id)}` : ''}` }),
    c.unread_count ? el('span', { class: 'count', text: String(c.unread_count) }) : null,
    c.priority === 'urgent' || c.priority === 'high' ? el('span', { class: `priority ${c.priority}`, text: t(c.priority) }) : null));
  }
  $('#more').hidden = !state.cursor;
  if (focused) { const row = list.querySelector(`li[data-id="${CSS.escape(focused)}"]`); if (row) row.focus(); }
}

// Relative times age: "vừa xong" becomes "2 phút trước" without a reload.
function refreshTimes() {
  for (const node of document.querySelectorAll('time.ago')) node.textContent = ago(node.getAttribute('datetime'));
}

// Events reload the list at most once a second (a throttle, not a debounce: a
// busy inbox must still see its list move).
function scheduleRefresh() {
  if (state.refreshTimer) return;
  state.refreshTimer = setTimeout(() => { state.refreshTimer = null; loadList(); loadViews(); }, 1000);
}

// -- one conversation ------------------------------------------------------
async function openConversation(id) {
  if (id !== state.openId) restoreDraft(id);
  state.openId = id;
  state.attachments = [];
  $('#attached').textContent = '';
  $('#workspace').classList.add('reading');
  announceViewing();
  renderViewers();
  // Until this one is loaded, the previous timeline is not this one's: dimmed,
  // and nothing can be sent from under it.
  $('#open').classList.add('loading');
  $('#send').disabled = true;
  $('#load-error').hidden = true;
  let conversation;
  let messages;
  try {
    [conversation, messages] = await Promise.all([
      api('GET', `/api/v1/conversations/${id}`),
      api('GET', `/api/v1/conversations/${id}/messages`),
    ]);
  } catch (error) {
    if (state.openId !== id) return;
    $('#open').hidden = true;
    $('#empty').hidden = true;
    $('#load-error-text').textContent = problem(error);
    $('#load-error').hidden = false;
    if (error instanceof ApiError && error.status === 404) scheduleRefresh();
    return;
  }
  if (state.openId !== id) return;
  $('#open').classList.remove('loading');
  $('#send').disabled = false;
  state.conversation = conversation;
  state.contact = conversation.contact;
  state.messages = messages.items;
  state.older = messages.next_cursor;
  state.history = null; // the customer's, read next (loadContact)
  state.historyOlder = null;
  state.window = conversation.reply_window;
  state.windowSkew = state.window ? new Date(state.window.now).getTime() - Date.now() : 0;
  renderWindow();
  $('#empty').hidden = true;
  $('#open').hidden = false;
  if (conversation.unread_count) {
    // Read now, so counted as read now: the list and the views do not wait for
    // the event (which a socket still connecting never brings).
    const row = state.conversations.find((c) => c.id === id);
    if (row) row.unread_count = 0;
    api('POST', `/api/v1/conversations/${id}/read`).then(loadViews, () => {});
  }
  renderHead();
  renderTimeline({ stick: true });
  renderList();
  loadContact();
}

function renderHead() {
  const c = state.conversation;
  $('#subject').textContent = c.subject || (state.contact && state.contact.name) || c.contact_address;
  $('#status').textContent = c.status === 'snoozed' && c.snoozed_until
    ? t('snoozed_until', { time: when(c.snoozed_until) }) : t(`status_${c.status}`);
  $('#status').className = `badge status-${c.status}`;
  $('#channel').textContent = `${c.channel} · ${c.account_id}`;
  $('#take').hidden = Boolean(c.assignee_id);
  $('#resolve').hidden = c.status === 'resolved';
  $('#pending').hidden = c.status === 'resolved' || c.status === 'pending';
  $('#reopen').hidden = c.status !== 'resolved';
  $('#priority').value = c.priority;
  if (document.activeElement !== $('#labels')) $('#labels').value = c.labels.join(', ');
  const assignee = $('#assignee');
  assignee.replaceChildren(el('option', { value: '', text: t('unassigned') }));
  for (const agent of state.agents.filter((a) => a.role !== 'marketer')) {
    assignee.append(el('option', { value: agent.id, text: `${agent.name} (${t(agent.presence)})` }));
  }
  assignee.value = c.assignee_id || '';
  const team = $('#team');
  team.replaceChildren(el('option', { value: '', text: t('no_team'), disabled: true }));
  for (const item of state.teams) team.append(el('option', { value: item.id, text: item.name || item.id }));
  team.value = c.team_id || '';
}

// Channels that let a business answer only for a while after the customer's
// last message (Messenger and WhatsApp 24 hours, Zalo 7 days, replies past 48
// hours paid): the agent learns it before writing, not from a refused send.
// Times are measured on the hub's clock, which the page's may not match.
function renderWindow() {
  const note = $('#window-note');
  const w = state.window;
  if (!w) { note.hidden = true; return; }
  const now = Date.now() + state.windowSkew;
  const span = (hours) => (hours >= 48 && hours % 24 === 0
    ? t('n_days', { n: hours / 24 }) : t('n_hours', { n: Math.round(hours) }));
  const closes = w.closes_at ? new Date(w.closes_at).getTime() : null;
  const closed = closes === null || closes < now;
  let text = '';
  if (closes === null) {
    text = t('window_never');
  } else if (closed) {
    text = t('window_closed', { span: span(w.hours), last: ago(w.last_customer_at, now) });
  } else if (w.paid_from && new Date(w.paid_from).getTime() < now) {
    text = `${t('window_paid', { span: span(w.paid_after_hours) })} ${t('window_closes', { when: ago(w.closes_at, now) })}`;
  } else if (closes - now < 24 * 3600 * 1000) {
    text = t('window_closes', { when: ago(w.closes_at, now) });
  }
  note.textContent = text;
  note.title = [w.rule, w.paid_rule].filter(Boolean).join('. ');
  note.className = `window-note${closed ? ' closed' : ''}`;
  note.hidden = !text;
}

// A customer's new message opens the window again, from when they sent it.
function customerWrote(m) {
  const w = state.window;
  if (!w) return;
  const sent = new Date(m.meta.sent_at || m.created_at).getTime();
  if (w.last_customer_at && new Date(w.last_customer_at).getTime() >= sent) return;
  const at = (hours) => new Date(sent + hours * 3600 * 1000).toISOString();
  state.window = {
    ...w,
    last_customer_at: new Date(sent).toISOString(),
    closes_at: at(w.hours),
    paid_from: w.paid_after_hours ? at(w.paid_after_hours) : null,
  };
  renderWindow();
}

function messageNode(m) {
  const from = m.sender.kind === 'agent' ? agentName(m.sender.id) || m.sender.name : m.sender.name;
  const head = el('div', { class: 'head' },
    el('span', { class: 'from', text: m.direction === 'note' ? `${t('note')} · ${from}` : from || m.sender.kind }),
    el('span', { class: 'channel', text: m.channel }),
    el('time', { datetime: m.created_at, text: when(m.created_at) }),
    m.status ? el('span', { class: `delivery ${m.status}`, text: t(m.status), title: m.error || '' }) : null);
  const body = el('div', { class: 'body' });
  if (m.html && m.direction === 'inbound') {
    // Sanitised at ingest, and still never trusted: no scripts, no forms, no
    // same-origin access, remote content blocked by the inherited CSP.
    const frame = el('iframe', { class: 'email', sandbox: '', referrerpolicy: 'no-referrer', title: 'e-mail' });
    frame.srcdoc = m.html;
    body.append(frame);
  } else {
    body.append(el('p', { class: 'text', text: m.text }));
  }
  m.attachments.forEach((a, index) => {
    const label = `📎 ${a.name || 'file'}${a.size ? ` · ${fileSize(a.size)}` : ''}`;
    if (a.too_large) {
      body.append(el('span', { class: 'attachment gone', text: `${label} · ${t('not_kept')}` }));
      return;
    }
    const href = `/api/v1/messages/${encodeURIComponent(m.id)}/attachments/${index}`;
    // A photo of a wrong item or a payment slip is read at a glance, not downloaded.
    const preview = PREVIEWED.includes(a.content_type)
      ? el('img', { class: 'preview', src: href, alt: a.name || '', loading: 'lazy', onload: keepFollowing }) : null;
    body.append(el('a', { class: 'attachment', href, rel: 'noopener', target: '_blank' },
      preview, el('span', { text: label })));
  });
  return el('li', { class: `msg ${m.direction}`, 'data-id': m.id }, head, body);
}

// The timeline follows new messages only when the agent is at its end: one
// reading further up keeps their place, and "new messages ↓" says there is more.
function atEnd(list) { return list.scrollHeight - list.scrollTop - list.clientHeight < 48; }

// Raster images only: an SVG can carry script (the hub serves it as bytes anyway).
const PREVIEWED = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];

function fileSize(bytes) {
  const units = ['B', 'KB', 'MB', 'GB'];
  let size = bytes;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) { size /= 1024; unit += 1; }
  return `${size.toLocaleString(undefined, { maximumFractionDigits: unit ? 1 : 0 })} ${units[unit]}`;
}

function renderTimeline({ stick = false } = {}) {
  const list = $('#timeline');
  const follow = stick || atEnd(list);
  const top = list.scrollTop;
  const whole = showingHistory();
  const messages = whole ? state.history : state.messages;
  const nodes = messages.map(messageNode);
  if (whole ? state.historyOlder : state.older) {
    nodes.unshift(el('li', { class: 'older' }, el('button', {
      type: 'button', id: 'load-older', text: t('earlier_messages'), onclick: loadOlder,
    })));
  }
  list.replaceChildren(...nodes);
  if (follow) {
    list.scrollTop = list.scrollHeight;
    $('#below').hidden = true;
  } else {
    list.scrollTop = top;
  }
  state.following = follow;
}

// Whether the timeline shows the customer's whole history (once it is read)
// rather than the open conversation's.
function showingHistory() { return Boolean(state.wholeHistory && state.history); }

// A long timeline opens at its newest page; older pages come on request, and
// the messages the agent was reading stay where they were on the screen.
async function loadOlder() {
  const id = state.openId;
  const whole = showingHistory();
  const cursor = whole ? state.historyOlder : state.older;
  if (!cursor) return;
  $('#load-older').disabled = true;
  const query = `?cursor=${encodeURIComponent(cursor)}`;
  let page;
  try {
    page = whole
      ? await api('GET', `/api/v1/contacts/${state.contact.id}/timeline${query}`)
      : await api('GET', `/api/v1/conversations/${id}/messages${query}`);
  } catch (error) {
    const button = $('#load-older');
    if (state.openId === id && button) {
      // Said on the button itself, which a click tries again.
      button.disabled = false;
      button.textContent = `${problem(error)} · ${t('earlier_messages')}`;
    }
    return;
  }
  if (state.openId !== id || (whole ? state.historyOlder : state.older) !== cursor) return;
  const list = $('#timeline');
  const below = list.scrollHeight - list.scrollTop;
  if (whole) {
    state.history = mergeMessages(page.messages, state.history);
    state.historyOlder = page.next_cursor;
  } else {
    state.messages = mergeMessages(page.items, state.messages);
    state.older = page.next_cursor;
  }
  renderTimeline();
  list.scrollTop = list.scrollHeight - below;
}

// Two runs of one timeline as one, in timeline order; where both hold a
// message, `newer`'s copy (read later) wins.
function mergeMessages(older, newer) {
  const byId = new Map(older.map((m) => [m.id, m]));
  for (const m of newer) byId.set(m.id, m);
  return [...byId.values()].sort(timelineOrder);
}

// The hub's order: creation time, then id. Times compare as times, not as text:
// a message made on a whole second is written without a fraction ("…:05Z"),
// which sorts after "…:05.120Z" as text.
function timelineOrder(a, b) {
  const at = Date.parse(a.created_at) - Date.parse(b.created_at);
  return at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

// A photo arriving after the timeline was drawn makes it taller: one following
// the end stays at the end instead of the last message slipping out of view.
function keepFollowing() {
  if (state.following) $('#timeline').scrollTop = $('#timeline').scrollHeight;
}

function addMessage(m, { stick = false } = {}) {
  const added = !state.messages.some((x) => x.id === m.id);
  state.messages = mergeMessages(state.messages, [m]);
  // The open conversation's messages are the customer's too.
  if (state.history) state.history = mergeMessages(state.history, [m]);
  const list = $('#timeline');
  if (added && !stick && !atEnd(list)) $('#below').hidden = false;
  renderTimeline({ stick });
}

async function loadContact() {
  const contact = state.contact;
  if (!contact) return;
  $('#contact-name').textContent = contact.name || contact.id;
  $('#identities').replaceChildren(...contact.identities.map(
    (i) => el('li', { text: `${i.channel}: ${i.address}` })));
  renderAttributes();
  const history = await api('GET', `/api/v1/contacts/${contact.id}/timeline`);
  if (!state.contact || state.contact.id !== contact.id) return;
  state.history = history.messages;
  state.historyOlder = history.next_cursor;
  const earlier = history.conversations.filter((c) => c.id !== state.openId);
  $('#earlier').replaceChildren(...(earlier.length ? earlier.map((c) => el('li', {},
    el('a', {
      href: '#', text: `${c.channel} · ${c.subject || c.contact_address} · ${t(`status_${c.status}`)}`,
      onclick: (event) => { event.preventDefault(); openConversation(c.id); },
    }))) : [el('li', { text: t('none') })]));
  if (state.wholeHistory) renderTimeline();
}

function renderAttributes() {
  const attributes = Object.entries(state.contact.attributes || {});
  $('#attributes').replaceChildren(...(attributes.length ? attributes.flatMap(([key, value]) => [
    el('dt', { text: key }),
    el('dd', {}, el('span', { text: String(value) }), el('button', {
      type: 'button', class: 'remove', title: t('remove'), 'aria-label': `${t('remove')} ${key}`, text: '×',
      onclick: () => saveAttributes({ [key]: null }),
    }))]) : [el('dd', { text: t('none') })]));
}

async function saveAttributes(attributes) {
  try {
    state.contact = await api('PATCH', `/api/v1/contacts/${state.contact.id}`, { attributes });
    renderAttributes();
  } catch (error) {
    $('#composer-error').textContent = error.message;
  }
}

async function findToMerge() {
  const text = $('#merge-search').value.trim();
  if (text.length < 2 || !state.contact) { $('#merge-results').replaceChildren(); return; }
  const found = await api('GET', `/api/v1/contacts?q=${encodeURIComponent(text)}`);
  $('#merge-results').replaceChildren(...found.items.filter((c) => c.id !== state.contact.id).map((c) => {
    const label = `${c.name || c.id} · ${c.identities.map((i) => i.address).join(', ')}`;
    return el('li', {}, el('span', { text: label }), el('button', {
      type: 'button', text: t('merge'),
      onclick: async () => {
        if (!confirm(t('merge_confirm', { name: c.name || c.id }))) return;
        state.contact = await api('POST', `/api/v1/contacts/${state.contact.id}/merge`, { contact_id: c.id });
        $('#merge-search').value = '';
        $('#merge-results').replaceChildren();
        loadContact();
        loadList();
      },
    }));
  }));
}

// -- acting on it ----------------------------------------------------------
// True when the change was made. `id` stays the conversation acted on even if
// the agent has moved to another one meanwhile (an undo comes later).
async function act(method, suffix, body, id = state.openId) {
  try {
    const conversation = await api(method, `/api/v1/conversations/${id}${suffix}`, body);
    if (id === state.openId) {
      state.conversation = conversation;
      if (!state.conversation.contact) state.conversation.contact = state.contact;
      renderHead();
    }
    loadList();
    loadViews();
    return true;
  } catch (error) {
    $('#composer-error').textContent = error.code === 'conflict' ? t('taken_by_other') : problem(error);
    return false;
  }
}

// Resolving is one key away (e): a slip is undone from the notice it leaves.
async function resolve() {
  const id = state.openId;
  if (!id || !(await act('POST', '/resolve', undefined, id))) return;
  const name = state.conversation && state.conversation.id === id
    ? $('#subject').textContent : '';
  offerUndo(t('resolved_notice', { name }), () => act('POST', '/reopen', undefined, id));
}

function offerUndo(text, undo) {
  clearTimeout(state.undoTimer);
  $('#toast-text').textContent = text;
  $('#toast').hidden = false;
  state.undo = async () => {
    state.undo = null;
    $('#toast').hidden = true;
    await undo();
  };
  state.undoTimer = setTimeout(() => { state.undo = null; $('#toast').hidden = true; }, 10000);
}

function mode() { return document.querySelector('input[name="mode"]:checked').value; }

function setMode(value, { focus = true } = {}) {
  document.querySelector(`input[name="mode"][value="${value}"]`).checked = true;
  $('#composer').classList.toggle('noting', value === 'note');
  $('#reply-text').placeholder = t(value === 'note' ? 'note_placeholder' : 'reply_placeholder');
  if (focus) $('#reply-text').focus();
}

// -- drafts ----------------------------------------------------------------
function newest() {
  const loaded = state.conversation && state.conversation.id === state.openId;
  const last = loaded ? state.messages[state.messages.length - 1] : null;
  return last ? last.created_at : '';
}

function keepDraft() {
  if (!state.openId || !state.me) return;
  const text = $('#reply-text').value;
  const before = loadDraft(state.me.id, state.openId);
  saveDraft(state.me.id, state.openId, text
    ? { text, mode: mode(), since: before ? before.since : newest() } : null);
}

function restoreDraft(id) {
  const draft = loadDraft(state.me.id, id);
  $('#reply-text').value = draft ? draft.text : '';
  setMode(draft && draft.mode === 'note' ? 'note' : 'reply', { focus: false });
  $('#suggestions').hidden = true;
  $('#answered').hidden = true;
  $('#composer-error').textContent = '';
}

// Colleagues' replies that reached the customer after this draft was begun:
// the agent has not read them, and may be about to answer the same question twice.
function unreadReplies() {
  const draft = loadDraft(state.me.id, state.openId);
  const since = draft ? draft.since : newest();
  return state.messages.filter((m) => m.direction === 'outbound' && m.sender.kind === 'agent'
    && m.sender.id !== state.me.id && (!since || Date.parse(m.created_at) > Date.parse(since))
    && !state.acknowledged.has(m.id));
}

function warnAnswered(replies) {
  const last = replies[replies.length - 1];
  $('#answered').textContent = t('answered_meanwhile', {
    name: agentName(last.sender.id) || last.sender.name || '', time: when(last.created_at),
  });
  $('#answered').hidden = false;
}

async function send(event) {
  event.preventDefault();
  const text = $('#reply-text').value;
  if (!text.trim() && !state.attachments.length) return;
  $('#composer-error').textContent = '';
  const id = state.openId;
  const noting = mode() === 'note';
  if (!noting) {
    const replies = unreadReplies();
    if (replies.length) {
      // The first press shows what the colleague said; a second one sends anyway.
      for (const m of replies) state.acknowledged.add(m.id);
      warnAnswered(replies);
      renderTimeline({ stick: true });
      return;
    }
  }
  $('#send').disabled = true;
  try {
    const message = noting
      ? await api('POST', `/api/v1/conversations/${id}/notes`, { text })
      : await api('POST', `/api/v1/conversations/${id}/messages`, { text, attachments: state.attachments },
        { headers: { 'Idempotency-Key': idempotencyKey() } });
    saveDraft(state.me.id, id, null);
    if (state.openId === id) {
      $('#reply-text').value = '';
      state.attachments = [];
      $('#files').value = '';
      $('#attached').textContent = '';
      $('#answered').hidden = true;
      addMessage(message, { stick: true });
    }
    typing(false);
  } catch (error) {
    $('#composer-error').textContent = problem(error);
  } finally {
    $('#send').disabled = false;
  }
}

function idempotencyKey() {
  // randomUUID exists only in secure contexts; a hub on a LAN may be plain http.
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function upload() {
  for (const file of $('#files').files) {
    try {
      const attachment = await api('POST', `/api/v1/attachments?name=${encodeURIComponent(file.name)}`, file,
        { raw: true, headers: { 'Content-Type': file.type || 'application/octet-stream' } });
      state.attachments.push(attachment);
    } catch (error) {
      $('#composer-error').textContent = error.message;
    }
  }
  $('#attached').textContent = state.attachments.map((a) => a.name).join(', ');
}

// `/shortcut` in a reply inserts a canned response; `@name` in a note mentions.
function suggest() {
  const box = $('#suggestions');
  const text = $('#reply-text').value;
  const replying = mode() === 'reply';
  const match = replying ? text.match(/(?:^|\s)\/([a-z0-9_-]*)$/) : text.match(/(?:^|\s)@([\w.+-]*)$/);
  if (!match) { box.hidden = true; return; }
  const prefix = match[1].toLowerCase();
  const options = replying
    ? state.canned.filter((c) => c.shortcut.startsWith(prefix)).map((c) => ({ key: `/${c.shortcut}`, hint: c.text, insert: c.text }))
    : state.agents.filter((a) => a.email.toLowerCase().startsWith(prefix) || a.name.toLowerCase().startsWith(prefix))
      .map((a) => ({ key: `@${a.email.split('@')[0]}`, hint: a.name, insert: `@${a.email.split('@')[0]} ` }));
  box.replaceChildren(...options.slice(0, 8).map((option) => el('li', {
    class: 'suggestion', tabindex: '0',
    onmousedown: (event) => { event.preventDefault(); choose(option.insert, match[0].trimStart().length); },
  }, el('strong', { text: option.key }), el('span', { text: ` ${option.hint}` }))));
  box.hidden = options.length === 0;
  box.dataset.first = options.length ? options[0].insert : '';
  box.dataset.cut = String(match[0].trimStart().length);
}

function choose(insert, cut) {
  const area = $('#reply-text');
  area.value = area.value.slice(0, area.value.length - cut) + insert;
  keepDraft();
  $('#suggestions').hidden = true;
  area.focus();
}

// -- who else has it open ---------------------------------------------------
// Colleagues viewing the open conversation, told by the hub. A page repeats
// its own every 20 s while it stays open, so one not heard of for a minute
// (a crashed laptop) is no longer shown.
const VIEWING_REPEAT_MS = 20000;
const VIEWING_LASTS_MS = 60000;

function announceViewing() {
  const socket = state.socket;
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  const viewing = $('#workspace').classList.contains('reading') || innerWidth > 700 ? state.openId : null;
  socket.send(JSON.stringify({ type: 'viewing', conversation_id: viewing }));
}

function onViewing(data) {
  const by = data.by || {};
  const viewers = state.viewers.get(data.conversation_id) || new Map();
  const known = viewers.has(by.id);
  if (data.viewing) viewers.set(by.id, { name: by.name, until: Date.now() + VIEWING_LASTS_MS });
  else viewers.delete(by.id);
  state.viewers.set(data.conversation_id, viewers);
  // A colleague just arrived: tell them at once that this agent is here too.
  if (data.viewing && !known && data.conversation_id === state.openId) announceViewing();
  renderViewers();
}

function renderViewers() {
  const viewers = state.viewers.get(state.openId) || new Map();
  const now = Date.now();
  const names = [...viewers.entries()].filter(([, v]) => v.until > now).map(([, v]) => v.name);
  $('#viewers').textContent = names.length ? t('also_viewing', { names: names.join(', ') }) : '';
  $('#viewers').hidden = !names.length;
}

function typing(on) {
  const socket = state.socket;
  if (!socket || socket.readyState !== WebSocket.OPEN || !state.openId) return;
  if (mode() !== 'reply' && on) return; // a note is private: the customer sees no "typing"
  socket.send(JSON.stringify({ type: 'typing', conversation_id: state.openId, typing: on }));
  clearTimeout(state.typingTimer);
  if (on) state.typingTimer = setTimeout(() => typing(false), 4000);
}

// -- live --------------------------------------------------------------------
function connect() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new WebSocket(`${scheme}://${location.host}/api/v1/stream`);
  state.socket = socket;
  socket.addEventListener('open', () => {
    $('#connection').textContent = t('connected');
    $('#connection').className = 'connection up';
    if (state.reconnects > 0) resync();
    state.reconnects = 0;
    announceViewing();
  });
  socket.addEventListener('message', (event) => {
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    if (frame.type === 'event') onEvent(frame.event, frame.data);
    // The hub's own reading of us as the socket opens: coming back within the
    // away grace (or after it) may have moved our presence since sign-in.
    else if (frame.type === 'hello') showPresence(state.me.id, frame.agent.presence);
  });
  socket.addEventListener('close', () => {
    $('#connection').textContent = t('reconnecting');
    $('#connection').className = 'connection down';
    state.reconnects += 1;
    setTimeout(connect, Math.min(30000, 500 * 2 ** Math.min(state.reconnects, 6)));
  });
}

// After a reconnect nothing is replayed: the list and the open timeline are
// read again, which covers whatever happened while the socket was down.
async function resync() {
  await Promise.all([loadList(), loadViews()]);
  if (state.openId) {
    const id = state.openId;
    const contact = state.history ? state.contact : null;
    const [page, history] = await Promise.all([
      api('GET', `/api/v1/conversations/${id}/messages`),
      contact ? api('GET', `/api/v1/contacts/${contact.id}/timeline`) : null,
    ]);
    if (state.openId !== id) return;
    [state.messages, state.older] = joinNewest(state.messages, page.items, page.next_cursor, state.older);
    if (history && state.history && state.contact && state.contact.id === contact.id) {
      [state.history, state.historyOlder] = joinNewest(
        state.history, history.messages, history.next_cursor, state.historyOlder);
    }
    renderTimeline();
  }
}

// A newest page read again joins the pages already held, unless more came
// meanwhile than a page holds: then the run starts over there. Returns the
// messages and the cursor of those before them.
function joinNewest(held, newest, cursor, older) {
  const ids = new Set(held.map((m) => m.id));
  if (!cursor || newest.some((m) => ids.has(m.id))) return [mergeMessages(held, newest), older];
  return [newest, cursor];
}

function onEvent(type, data) {
  if (type === 'message.created') {
    const m = data.message;
    if (m.conversation_id === state.openId) {
      addMessage(m);
      if (m.direction === 'inbound') customerWrote(m);
      if ($('#reply-text').value.trim() && mode() === 'reply') {
        const replies = unreadReplies();
        if (replies.length) warnAnswered(replies);
      }
      if (m.direction === 'inbound' && !document.hidden) {
        api('POST', `/api/v1/conversations/${m.conversation_id}/read`).catch(() => {});
      }
    }
    if (m.direction === 'inbound' && (document.hidden || m.conversation_id !== state.openId)) {
      notify(t('new_message', { name: m.sender.name || '' }), m.text);
    }
    if (m.direction === 'note' && (m.meta.mentions || []).includes(state.me.id) && m.sender.id !== state.me.id) {
      notify(t('mentioned', { name: m.sender.name }), m.text);
    }
    scheduleRefresh();
  } else if (type === 'message.updated' || type.startsWith('message.')) {
    if (data.message && data.message.conversation_id === state.openId) addMessage(data.message);
  } else if (type === 'conversation.typing') {
    if (data.conversation_id !== state.openId) return;
    const by = data.by || {};
    $('#collision').textContent = !data.typing ? ''
      : by.kind === 'agent' ? t('is_replying', { name: by.name }) : t('customer_typing');
    clearTimeout(state.collisionTimer);
    state.collisionTimer = setTimeout(() => { $('#collision').textContent = ''; }, 6000);
  } else if (type === 'conversation.viewing') {
    onViewing(data);
  } else if (type.startsWith('conversation.')) {
    const c = data.conversation;
    if (c && c.id === state.openId && type !== 'conversation.read') {
      state.conversation = { ...c, contact: state.contact };
      renderHead();
    }
    scheduleRefresh();
  } else if (type === 'agent.presence') {
    showPresence(data.agent_id, data.presence);
  }
}

// An agent's presence as the hub has it: in the assignee menu, and in our own
// presence menu when it is ours (the hub sets it too: away after the grace
// with no tab open, online again when one opens).
function showPresence(agentId, presence) {
  const agent = state.agents.find((a) => a.id === agentId);
  if (agent) agent.presence = presence;
  if (agentId === state.me.id) {
    state.me.presence = presence;
    $('#presence').value = presence;
  }
  if (state.conversation) renderHead();
}

function notify(title, body) {
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  const note = new Notification(title, { body: (body || '').slice(0, 140), tag: 'hub' });
  note.onclick = () => window.focus();
}

// -- admin -------------------------------------------------------------------
async function openAdmin() {
  const [agents, audit] = await Promise.all([api('GET', '/api/v1/agents'), api('GET', '/api/v1/audit')]);
  state.agents = agents.items;
  $('#admin-agents').replaceChildren(...agents.items.map((agent) => {
    const role = el('select', {
      'aria-label': t('role'),
      onchange: () => api('PATCH', `/api/v1/agents/${agent.id}`, { role: role.value })
        .then(openAdmin, (error) => alert(error.message)),
    }, ...['admin', 'agent', 'marketer'].map((r) => el('option', { value: r, text: t(`role_${r}`) })));
    role.value = agent.role;
    role.disabled = agent.id === state.me.id;
    return el('tr', { 'data-id': agent.id },
      el('td', { text: agent.name }), el('td', { text: agent.email }), el('td', {}, role),
      el('td', { text: agent.team_ids.join(', ') }),
      el('td', {}, agent.id === state.me.id ? null : el('button', {
        type: 'button', text: t('deactivate'),
        onclick: () => api('PATCH', `/api/v1/agents/${agent.id}`, { active: false }).then(openAdmin),
      })));
  }));
  $('#admin-audit').replaceChildren(...audit.items.map((entry) => el('tr', {},
    el('td', { text: when(entry.at) }),
    el('td', { text: agentName(entry.actor_id) || entry.actor_id || '' }),
    el('td', { text: entry.action }),
    el('td', { text: agentName(entry.target) || entry.target || '' }),
    el('td', { text: JSON.stringify(entry.detail) }))));
  if (!$('#admin').open) $('#admin').showModal();
}

// -- the caller's API tokens -------------------------------------------------
async function openTokens() {
  const tokens = await api('GET', '/api/v1/tokens');
  $('#token-list').replaceChildren(...tokens.items.map((token) => el('tr', { 'data-id': token.id },
    el('td', { text: token.name || '—' }), el('td', { text: when(token.created_at) }),
    el('td', {}, el('button', {
      type: 'button', text: t('revoke'),
      onclick: () => api('DELETE', `/api/v1/tokens/${token.id}`).then(openTokens),
    })))));
  if (!$('#tokens').open) { $('#token-new').hidden = true; $('#tokens').showModal(); }
}

// -- wiring ------------------------------------------------------------------
function rerender() {
  translate(document);
  if (!state.me) return;
  const up = $('#connection').classList.contains('up');
  $('#connection').textContent = $('#connection').className.includes('connection ') ? t(up ? 'connected' : 'reconnecting') : '';
  $('#reply-text').placeholder = t(mode() === 'note' ? 'note_placeholder' : 'reply_placeholder');
  if (state.me.role === 'marketer') { $('#empty').textContent = t('marketer_note'); return; }
  loadViews();
  renderList();
  if (state.conversation) { renderHead(); renderWindow(); renderTimeline(); loadContact(); }
}

function typingInField(target) {
  return ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName) || target.isContentEditable;
}

function move(step) {
  const ids = state.conversations.map((c) => c.id);
  const next = ids[Math.max(0, Math.min(ids.length - 1, ids.indexOf(state.openId) + step))];
  if (next) openConversation(next);
}

function onKey(event) {
  // An Enter (or Tab) that commits a word of a Vietnamese input method (Telex,
  // VNI: the browser is composing, Safari says keyCode 229) is the IME's own.
  if (event.isComposing || event.keyCode === 229) return;
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey) && event.target.id === 'reply-text') {
    $('#composer').requestSubmit();
    return;
  }
  if (event.target.id === 'reply-text' && (event.key === 'Tab' || event.key === 'Enter') && !$('#suggestions').hidden) {
    event.preventDefault();
    choose($('#suggestions').dataset.first, Number($('#suggestions').dataset.cut));
    return;
  }
  if (event.key === 'Escape') { event.target.blur(); $('#suggestions').hidden = true; return; }
  if (typingInField(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
  const keys = {
    j: () => move(1),
    k: () => move(-1),
    r: () => { setMode('reply'); keepDraft(); },
    n: () => { setMode('note'); keepDraft(); },
    t: () => state.openId && $('#take').click(),
    e: () => resolve(),
    z: () => state.undo && state.undo(),
    '/': () => $('#search').focus(),
    '?': () => $('#help').showModal(),
  };
  if (keys[event.key]) { event.preventDefault(); keys[event.key](); }
}

let wired = false;
function wire() {
  if (wired) return;
  wired = true;
  document.addEventListener('keydown', onKey);
  $('#composer').addEventListener('submit', send);
  $('#reply-text').addEventListener('input', () => { keepDraft(); suggest(); typing(true); });
  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener('change', () => { setMode(radio.value); keepDraft(); });
  }
  $('#toast-undo').addEventListener('click', () => state.undo && state.undo());
  $('#load-error-retry').addEventListener('click', () => state.openId && openConversation(state.openId));
  $('#list-error-retry').addEventListener('click', () => { loadList(); loadViews().catch(() => {}); });
  $('#below').addEventListener('click', () => renderTimeline({ stick: true }));
  $('#timeline').addEventListener('scroll', () => {
    state.following = atEnd($('#timeline'));
    if (state.following) $('#below').hidden = true;
  });
  $('#back').addEventListener('click', () => { $('#workspace').classList.remove('reading'); announceViewing(); });
  setInterval(() => { refreshTimes(); renderWindow(); }, 30000);
  setInterval(() => { announceViewing(); renderViewers(); }, VIEWING_REPEAT_MS);
  $('#files').addEventListener('change', upload);
  $('#take').addEventListener('click', () => act('POST', '/assign', { agent_id: state.me.id, only_if_unassigned: true }));
  $('#assignee').addEventListener('change', () => act('POST', '/assign', { agent_id: $('#assignee').value || null }));
  $('#team').addEventListener('change', () => act('POST', '/assign', { team_id: $('#team').value }));
  $('#priority').addEventListener('change', () => act('PATCH', '', { priority: $('#priority').value }));
  $('#labels').addEventListener('change', () => act('PATCH', '', {
    labels: $('#labels').value.split(',').map((l) => l.trim()).filter(Boolean),
  }));
  // Snoozed on the office's clock, not the laptop's: "sáng mai" is 8:00 in the shop.
  $('#snooze').addEventListener('change', () => {
    const choice = $('#snooze').value;
    $('#snooze-custom').hidden = choice !== 'custom';
    const until = snoozeUntil(choice);
    $('#snooze').value = choice === 'custom' ? 'custom' : '';
    if (until) act('POST', '/snooze', { until: until.toISOString() });
  });
  $('#snooze-at').addEventListener('click', () => {
    const until = officeInput($('#snooze-until').value);
    if (!until) return;
    $('#snooze-custom').hidden = true;
    $('#snooze').value = '';
    act('POST', '/snooze', { until: until.toISOString() });
  });
  $('#attribute-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!state.contact) return;
    await saveAttributes({ [$('#attribute-key').value.trim()]: $('#attribute-value').value });
    $('#attribute-key').value = '';
    $('#attribute-value').value = '';
  });
  let mergeTimer = null;
  $('#merge-search').addEventListener('input', () => {
    clearTimeout(mergeTimer);
    mergeTimer = setTimeout(() => findToMerge().catch(() => {}), 250);
  });
  $('#resolve').addEventListener('click', () => resolve());
  $('#pending').addEventListener('click', () => act('POST', '/pending'));
  $('#reopen').addEventListener('click', () => act('POST', '/reopen'));
  $('#more').addEventListener('click', () => loadList(true));
  let searchTimer = null;
  $('#search').addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { state.query = $('#search').value.trim(); loadList(); }, 250);
  });
  $('#presence').addEventListener('change', () => api('PUT', '/api/v1/agents/me/presence', { presence: $('#presence').value }));
  $('#signout').addEventListener('click', async () => {
    await api('POST', '/api/v1/auth/logout').catch(() => {});
    location.reload();
  });
  $('#tokens-open').addEventListener('click', () => openTokens().catch((error) => alert(error.message)));
  $('#token-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const made = await api('POST', '/api/v1/tokens', { name: $('#token-name').value.trim() });
    $('#token-name').value = '';
    $('#token-value').textContent = made.token;
    $('#token-new').hidden = false;
    openTokens();
  });
  $('#reports-open').addEventListener('click', () => openReports(state.me));
  $('#admin-open').hidden = state.me.role !== 'admin';
  $('#admin-open').addEventListener('click', () => openAdmin().catch((error) => alert(error.message)));
  $('#notify').addEventListener('click', () => { if ('Notification' in window) Notification.requestPermission(); });
  $('#whole-history').addEventListener('change', () => { state.wholeHistory = $('#whole-history').checked; renderTimeline(); });
}

boot().catch((error) => {
  document.body.append(el('p', { class: 'error', text: error instanceof ApiError ? error.message : String(error) }));
});
