// Elara dashboard: plain JS, no build step. It reads the JSON API under
// ./api/ and refreshes by itself. The project-owner view is opened with
// #project=<id>&secret=<secret>: the fragment never reaches the server;
// the id and secret go in headers.
'use strict';

const REFRESH_MS = 5000;
const $ = (sel) => document.querySelector(sel);

// el builds an element; text is always set as text, never as HTML.
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k != null) e.append(k instanceof Node ? k : String(k));
  return e;
}

const owner = (() => {
  const f = new URLSearchParams(location.hash.slice(1));
  return f.get('project') && f.get('secret') ? { id: f.get('project'), secret: f.get('secret') } : null;
})();

async function api(name, opts = {}) {
  const headers = { Accept: 'application/json' };
  // Caddy's logs redact Authorization.
  if (owner) Object.assign(headers, { 'X-Elara-Project': owner.id, Authorization: 'Bearer ' + owner.secret });
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch('api/' + name, {
    method: opts.method || 'GET', headers, credentials: 'same-origin', cache: 'no-store',
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  if (resp.status === 204) return null;
  let data = null;
  try { data = await resp.json(); } catch { /* not JSON */ }
  if (!resp.ok) {
    const err = new Error((data && data.error) || `${resp.status} ${resp.statusText}`);
    err.status = resp.status;
    throw err;
  }
  return data;
}

// Formatting.
const nf = new Intl.NumberFormat('en');
const fmtN = (n) => nf.format(n || 0);
function fmtBytes(n) {
  n = n || 0;
  const u = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + ' ' + u[i];
}
const fmtMs = (n) => (n || 0).toFixed(n >= 100 ? 0 : 1) + ' ms';
const fmtTime = (t) => (t ? new Date(t).toLocaleString() : '');
function ago(t) {
  if (!t || t.startsWith('0001')) return 'never';
  const s = Math.max(0, Math.round((Date.now() - new Date(t)) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

function until(t) {
  const m = Math.max(0, Math.round((new Date(t) - Date.now()) / 60000));
  return m < 60 ? `${m}m` : `${Math.floor(m / 60)}h ${m % 60}m`;
}

function copyRow(label, value) {
  const b = el('button', { class: 'plain', type: 'button', text: 'copy', onclick: async () => {
    try { await navigator.clipboard.writeText(value); b.textContent = 'copied'; } catch { b.textContent = 'select it'; }
    setTimeout(() => { b.textContent = 'copy'; }, 1500);
  } });
  return el('div', { class: 'copy' }, label ? el('span', { class: 'muted', text: label }) : null, el('code', { text: value }), b);
}

// State.
const state = {
  overview: null, projects: [], plans: [], scope: '', metric: 'calls',
  sort: { key: 'created', dir: -1 }, search: '', selected: null, charts: [],
};

// ---------------------------------------------------------------- chains

function renderChains(chains) {
  const box = $('#chains');
  if (!chains.length) {
    box.replaceChildren(el('p', { class: 'empty', text: 'No chains: add a chain to the elara global option.' }));
    return;
  }
  box.replaceChildren(el('div', { class: 'cards' }, chains.map((c) => {
    const best = Math.max(0, ...c.nodes.map((n) => n.best || 0));
    const rows = c.nodes.map((n) => el('tr', { 'data-node': n.url },
      el('td', { class: 'mono', text: n.url }),
      el('td', {}, el('span', { class: 'pill ' + (n.ready ? 'ok' : 'bad'), text: n.ready ? 'ready' : 'not ready', title: n.not_ready_because || '' })),
      el('td', { class: 'num', text: fmtN(n.best) }),
      el('td', { class: 'num', text: fmtN(n.finalized) }),
      el('td', { class: 'num ' + (best - n.best > 2 ? 'warn' : ''), text: n.connected ? fmtN(best - n.best) : '–' }),
      el('td', { class: 'num', text: n.connected ? fmtMs(n.latency_ms) : '–' }),
      el('td', { class: 'muted', text: n.ready ? ago(n.last_head_at) : (n.not_ready_because || n.last_error || '') }),
    ));
    return el('div', { class: 'card chain', 'data-chain': c.chain },
      el('div', { class: 'row' }, el('h3', { text: c.chain }),
        el('span', { class: 'pill ' + (c.ready ? 'ok' : 'bad'), text: `${c.ready}/${c.nodes.length} nodes ready` })),
      copyRow('HTTP', c.http), copyRow('WS', c.ws),
      el('div', { class: 'scroll' }, el('table', {},
        el('thead', {}, el('tr', {}, ['node', 'status', 'best', 'finalized', 'lag', 'latency', 'last head'].map((h, i) => el('th', { class: i > 1 && i < 6 ? 'num' : '', text: h })))),
        el('tbody', {}, rows))));
  })));
}

// ----------------------------------------------------------------- stats

const metricSeries = {
  calls: [['calls', (p) => p.calls, '#e6007a'], ['errors', (p) => p.errors, '#c4320a']],
  bytes: [['bytes out', (p) => p.bytes_out, '#2563eb'], ['bytes in', (p) => p.bytes_in, '#12805c']],
  errors: [['errors', (p) => p.errors, '#c4320a']],
  latency: [['p50 ms', (p) => p.p50_ms, '#12805c'], ['p99 ms', (p) => p.p99_ms, '#b54708']],
};

function tiles(t, prefix) {
  const items = [
    ['calls', fmtN(t.calls)], ['bytes out', fmtBytes(t.bytes_out)], ['bytes in', fmtBytes(t.bytes_in)],
    ['errors', fmtN(t.errors)], ['p50', fmtMs(t.p50_ms)], ['p99', fmtMs(t.p99_ms)],
    ['cache hits', t.calls ? Math.round((100 * t.cache_hits) / t.calls) + '%' : '–'],
  ];
  return el('div', { class: 'tiles', 'data-totals': prefix }, items.map(([k, v]) =>
    el('div', { class: 'tile', 'data-k': k }, el('b', { text: v }), el('span', { text: `${k} ${prefix}` }))));
}

function destroyCharts(box) {
  state.charts = state.charts.filter((c) => {
    if (box.contains(c.root)) { c.destroy(); return false; }
    return true;
  });
}

// chart adds a card to box and returns what draws series in it, once
// every card is in place (the width depends on the layout).
function chart(box, title, series, metric) {
  const wrap = el('div', { class: 'card chart' }, el('h3', { text: title }));
  box.append(wrap);
  return () => {
    const pts = series.points || [];
    const defs = metricSeries[metric];
    const data = [pts.map((p) => new Date(p.time).getTime() / 1000), ...defs.map(([, f]) => pts.map(f))];
    // The sums of the series drawn, for tests.
    wrap.dataset.sums = JSON.stringify(defs.map(([label], i) => [label, data[i + 1].reduce((a, v) => a + (v || 0), 0)]));
    const fmt = metric === 'bytes' ? fmtBytes : metric === 'latency' ? fmtMs : fmtN;
    const cs = getComputedStyle(wrap);
    const width = Math.max(200, wrap.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight));
    const u = new uPlot({
      width, height: 200,
      scales: { x: { time: true } },
      legend: { live: false },
      axes: [{ stroke: '#667085' }, { stroke: '#667085', size: 60, values: (_, v) => v.map(fmt) }],
      series: [{},
        ...defs.map(([label, , color]) => ({ label, stroke: color, width: 2, fill: color + '18', value: (_, v) => fmt(v) }))],
    }, data, wrap);
    state.charts.push(u);
  };
}

// renderStats fills box with totals and the 24 h and 30 day charts of
// stats (the body of api/stats), or the empty state.
function renderStats(box, stats, emptyHint) {
  destroyCharts(box);
  if (!stats || stats.off) {
    box.replaceChildren(el('p', { class: 'empty', 'data-empty': 'stats-off',
      text: 'Statistics are off: charts and totals appear once the elara app records statistics (see the README, "Statistics").' }));
    return;
  }
  const s = stats.summary;
  box.replaceChildren(tiles(s.today, 'today'), tiles(s.total, 'total'));
  if (!s.total.calls) {
    box.append(el('p', { class: 'empty', 'data-empty': 'no-calls', text: emptyHint }));
  }
  const charts = el('div', { class: 'charts' });
  box.append(charts);
  const draw = [chart(charts, 'Last 24 hours, by hour', stats.hourly, state.metric),
    chart(charts, 'Last 30 days, by day', stats.daily, state.metric)];
  for (const d of draw) d();
}

function firstWS() {
  const c = state.overview && state.overview.chains[0];
  return c ? c.ws : `ws://${location.host}/<chain>`;
}

async function loadStats() {
  const q = new URLSearchParams();
  const [kind, val] = state.scope.split(':');
  if (kind === 'chain') q.set('chain', val);
  if (kind === 'project') q.set('project', val);
  const stats = await api('stats?' + q);
  $('#metric-tabs').hidden = !!stats.off;
  renderStats($('#stats'), stats, `No calls yet: point a client at ${firstWS()}${owner ? '' : ' (or /<chain>/<project id>)'}.`);
}

function renderScope() {
  const sel = $('#scope');
  const opts = [['', 'all chains and projects'],
    ...state.overview.chains.map((c) => ['chain:' + c.chain, 'chain ' + c.chain]),
    ['project:public', 'calls without a project'],
    ...state.projects.map((p) => ['project:' + p.id, 'project ' + (p.name || p.id)])];
  const key = JSON.stringify(opts);
  if (sel.dataset.key === key) return;
  sel.dataset.key = key;
  sel.replaceChildren(...opts.map(([v, t]) => el('option', { value: v, text: t })));
  sel.value = opts.some(([v]) => v === state.scope) ? state.scope : '';
  state.scope = sel.value;
}

// -------------------------------------------------------------- projects

function usageCell(used, limit, fmt) {
  if (!limit) return el('td', { class: 'num' }, fmt(used), el('span', { class: 'muted', text: ' / ∞' }));
  const pct = Math.min(100, (100 * used) / limit);
  return el('td', { class: 'num', title: `${pct.toFixed(1)}% of today's limit` },
    `${fmt(used)} / ${fmt(limit)}`,
    el('div', { class: 'bar' }, el('i', { class: pct >= 100 ? 'full' : pct >= 80 ? 'hot' : '', style: `width:${pct}%` })));
}

const statusClass = { active: 'ok', suspended: 'warn', disabled: 'bad' };
const sortKeys = {
  name: (p) => p.name || '', owner: (p) => p.owner || '', plan: (p) => p.plan, status: (p) => p.status,
  requests: (p) => (p.usage ? p.usage.project.requests : 0), bytes: (p) => (p.usage ? p.usage.project.bytes : 0),
  created: (p) => p.created,
};

function renderProjects() {
  const box = $('#projects');
  if (!state.projects.length) {
    box.replaceChildren(el('p', { class: 'empty', 'data-empty': 'no-projects', text: 'No projects yet: create one with "New project"; its clients call /<chain>/<project id>.' }));
    return;
  }
  const q = state.search.trim().toLowerCase();
  const list = state.projects.filter((p) => !q || [p.name, p.id, p.owner, p.plan, p.status].some((v) => (v || '').toLowerCase().includes(q)));
  const key = sortKeys[state.sort.key];
  list.sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * state.sort.dir; });
  const head = [['name', 'name'], ['id', null], ['owner', 'owner'], ['plan', 'plan'], ['status', 'status'],
    ['requests today', 'requests'], ['bytes today', 'bytes'], ['', null]];
  const rows = list.map((p) => {
    const u = p.usage || { project: { requests: 0, bytes: 0 }, limits: {} };
    return el('tr', { 'data-project': p.id, class: state.selected === p.id ? 'sel' : '' },
      el('td', {}, el('a', { href: '#', text: p.name || '(unnamed)', onclick: (e) => { e.preventDefault(); select(p.id); } })),
      el('td', { class: 'mono', text: p.id.slice(0, 8) + '…', title: p.id }),
      el('td', { text: p.owner || '' }),
      el('td', { text: p.plan }),
      el('td', {}, el('span', { class: 'pill ' + (statusClass[p.status] || ''), 'data-status': p.status, text: p.status })),
      usageCell(u.project.requests, u.limits.requests_per_day, fmtN),
      usageCell(u.project.bytes, u.limits.bytes_per_day, fmtBytes),
      el('td', {}, el('div', { class: 'actions' }, statusButton(p))));
  });
  box.replaceChildren(el('div', { class: 'card scroll' }, el('table', { id: 'projects-table' },
    el('thead', {}, el('tr', {}, head.map(([t, k]) => el('th', {
      text: t, 'data-sort': k, class: k === 'requests' || k === 'bytes' ? 'num' : '',
      onclick: k ? () => { state.sort = { key: k, dir: state.sort.key === k ? -state.sort.dir : 1 }; renderProjects(); } : null,
    })))),
    el('tbody', {}, rows)),
  list.length ? null : el('p', { class: 'muted', text: `No project matches "${state.search}".` })));
}

function statusButton(p) {
  const disable = p.status !== 'disabled';
  return el('button', { class: 'plain', type: 'button', 'data-action': disable ? 'disable' : 'enable', text: disable ? 'Disable' : 'Enable',
    onclick: () => change(p.id, { status: disable ? 'disabled' : 'active' }) });
}

async function change(id, patch) {
  try {
    await api('project?id=' + id, { method: 'PATCH', body: patch });
    await refresh();
  } catch (err) { alert('Change failed: ' + err.message); }
}

function ownerLink(p, secret) {
  const base = location.pathname.replace(/project\/$/, '');
  return `${location.origin}${base}project/#project=${p.id}&secret=${secret}`;
}

function endpointsBox(endpoints) {
  if (!endpoints || !endpoints.length) return el('p', { class: 'muted', text: 'No chain is open to this project.' });
  return el('div', {}, endpoints.map((e) => el('div', { 'data-endpoint': e.chain },
    el('b', { text: e.chain }), copyRow('HTTP', e.http), copyRow('WS', e.ws))));
}

function showCreated(p) {
  const box = $('#created');
  box.hidden = false;
  box.replaceChildren(
    el('div', { class: 'row' }, el('h3', { text: `Created "${p.name}"` }),
      el('button', { class: 'plain', type: 'button', text: 'Done', onclick: () => { box.hidden = true; box.replaceChildren(); } })),
    el('p', { class: 'notice', text: 'Copy the secret now: it is not shown again. The owner link opens this project\'s own view.' }),
    el('div', { 'data-created': p.id }, copyRow('id', p.id), copyRow('secret', p.secret), copyRow('owner link', ownerLink(p, p.secret))),
    endpointsBox(p.endpoints));
}

// fld is a form's field by name (form.name is the form's own name).
const fld = (form, name) => form.elements.namedItem(name);

function list(s) { return s.split(',').map((x) => x.trim()).filter(Boolean); }

function setupCreate() {
  const form = $('#create-form');
  $('#new-project').onclick = () => { form.hidden = false; fld(form, 'name').focus(); };
  $('#create-cancel').onclick = () => { form.hidden = true; };
  form.onsubmit = async (e) => {
    e.preventDefault();
    const body = { name: fld(form, 'name').value.trim(), owner: fld(form, 'owner').value.trim(), plan: fld(form, 'plan').value };
    if (list(fld(form, 'chains').value).length) body.chains = list(fld(form, 'chains').value);
    if (list(fld(form, 'origins').value).length) body.origins = list(fld(form, 'origins').value);
    $('#create-error').textContent = '';
    try {
      const p = await api('projects', { method: 'POST', body });
      form.reset();
      form.hidden = true;
      showCreated(p);
      await refresh();
    } catch (err) { $('#create-error').textContent = err.message; }
  };
}

function planOptions(sel, current) {
  sel.replaceChildren(...state.plans.map((p) => el('option', { value: p.name, text: p.name })));
  if (current) sel.value = current;
}

// ----------------------------------------------------------- one project

function select(id) {
  state.selected = state.selected === id ? null : id;
  renderProjects();
  loadDetail().catch(showError);
}

function topTable(title, rows, cols) {
  return el('div', { class: 'card' }, el('h3', { text: title }),
    rows.length ? el('div', { class: 'scroll' }, el('table', {},
      el('thead', {}, el('tr', {}, cols.map(([h, , num]) => el('th', { class: num ? 'num' : '', text: h })))),
      el('tbody', {}, rows.map((r) => el('tr', {}, cols.map(([, f, num]) => el('td', { class: num ? 'num' : '', text: f(r) })))))))
      : el('p', { class: 'muted', text: 'none today' }));
}

function detailBody(d, editable) {
  const u = d.usage || { project: {}, limits: {} };
  const lim = u.limits || {};
  const parts = [
    el('div', { class: 'row' }, el('h3', { text: `${d.name || '(unnamed)'}` }),
      el('span', { class: 'pill ' + (statusClass[d.status] || ''), text: d.status }),
      el('span', { class: 'muted', text: `plan ${d.plan}${d.owner ? ' · owner ' + d.owner : ''}` })),
    copyRow('id', d.id),
    endpointsBox(d.endpoints),
    el('div', { class: 'tiles', 'data-limits': d.id },
      el('div', { class: 'tile' }, el('b', { text: fmtN(u.project.requests) }), el('span', { text: `requests today of ${lim.requests_per_day ? fmtN(lim.requests_per_day) : '∞'}` })),
      el('div', { class: 'tile' }, el('b', { text: fmtBytes(u.project.bytes) }), el('span', { text: `bytes today of ${lim.bytes_per_day ? fmtBytes(lim.bytes_per_day) : '∞'}` })),
      el('div', { class: 'tile' }, el('b', { text: lim.requests_per_second ? String(lim.requests_per_second) : '∞' }), el('span', { text: 'requests per second' })),
      el('div', { class: 'tile' }, el('b', { text: lim.connections ? fmtN(lim.connections) : '∞' }), el('span', { text: 'connections' })),
      u.owner && u.owner_requests_per_day ? el('div', { class: 'tile' }, el('b', { text: fmtN(u.owner.requests) }), el('span', { text: `owner ${d.owner}'s requests today of ${fmtN(u.owner_requests_per_day)}` })) : null,
      u.owner && u.owner_bytes_per_day ? el('div', { class: 'tile' }, el('b', { text: fmtBytes(u.owner.bytes) }), el('span', { text: `owner ${d.owner}'s bytes today of ${fmtBytes(u.owner_bytes_per_day)}` })) : null,
      el('div', { class: 'tile' }, el('b', { text: u.reset_at ? until(u.reset_at) : '–' }), el('span', { text: 'until the daily reset', title: u.reset_at ? fmtTime(u.reset_at) : '' }))),
  ];
  const statsBox = el('div', {});
  parts.push(statsBox);
  if (d.stats) {
    parts.push(el('div', { class: 'cards' },
      topTable('Top methods by calls', [...d.methods].sort((a, b) => b.calls - a.calls).slice(0, 10), [['method', (r) => r.method], ['calls', (r) => fmtN(r.calls), true], ['errors', (r) => fmtN(r.errors), true]]),
      topTable('Top methods by bytes', [...d.methods].sort((a, b) => b.bytes - a.bytes).slice(0, 10), [['method', (r) => r.method], ['bytes', (r) => fmtBytes(r.bytes), true]]),
      topTable('Latest errors', d.errors.slice(0, 20), [['time', (r) => fmtTime(r.time)], ['chain', (r) => r.chain], ['method', (r) => r.method], ['code', (r) => String(r.code), true]]),
      topTable('Countries', d.countries.slice(0, 20), [['country', (r) => r.country], ['calls', (r) => fmtN(r.calls), true]])));
  }
  if (editable) parts.push(editForm(d));
  return { parts, statsBox };
}

function num(v) { return v === '' ? null : Number(v); }

function editForm(d) {
  const o = d.limits || {};
  const f = el('form', { class: 'card', 'data-edit': d.id },
    el('h3', { text: 'Change' }),
    el('div', { class: 'grid' },
      el('label', {}, 'Name', el('input', { name: 'name', value: d.name || '' })),
      el('label', {}, 'Owner', el('input', { name: 'owner', value: d.owner || '' })),
      el('label', {}, 'Plan', el('select', { name: 'plan' })),
      el('label', {}, 'Requests per second (override)', el('input', { name: 'rps', type: 'number', min: 0, step: 'any', value: o.requests_per_second ?? '', placeholder: 'plan' })),
      el('label', {}, 'Requests per day (override)', el('input', { name: 'rpd', type: 'number', min: 0, value: o.requests_per_day ?? '', placeholder: 'plan' })),
      el('label', {}, 'Bytes per day (override)', el('input', { name: 'bpd', type: 'number', min: 0, value: o.bytes_per_day ?? '', placeholder: 'plan' })),
      el('label', {}, 'Burst (override)', el('input', { name: 'burst', type: 'number', min: 0, value: o.burst ?? '', placeholder: 'plan' })),
      el('label', {}, 'Connections (override)', el('input', { name: 'conns', type: 'number', min: 0, value: o.connections ?? '', placeholder: 'plan' })),
      el('label', {}, 'Subscriptions per connection (override)', el('input', { name: 'subs', type: 'number', min: 0, value: o.subscriptions ?? '', placeholder: 'plan' })),
      el('label', {}, 'Chains', el('input', { name: 'chains', value: (d.chains || []).join(', '), placeholder: 'all' })),
      el('label', {}, 'Origins', el('input', { name: 'origins', value: (d.origins || []).join(', '), placeholder: 'any' })),
      el('label', {}, 'Networks', el('input', { name: 'networks', value: (d.networks || []).join(', '), placeholder: 'any (CIDR, …)' })),
      el('label', {}, 'Allow methods', el('input', { name: 'allow', value: (d.allow || []).join(', '), placeholder: 'all' })),
      el('label', {}, 'Deny methods', el('input', { name: 'deny', value: (d.deny || []).join(', '), placeholder: 'none' }))),
    el('div', { class: 'actions' },
      el('button', { type: 'submit', text: 'Save' }),
      statusButton(d),
      el('button', { class: 'danger', type: 'button', 'data-action': 'delete', text: 'Delete', onclick: async () => {
        if (!confirm(`Delete project "${d.name}" (${d.id})? Its clients are refused at once.`)) return;
        try {
          await api('project?id=' + d.id, { method: 'DELETE' });
          state.selected = null;
          await refresh();
        } catch (err) { alert('Delete failed: ' + err.message); }
      } })),
    el('p', { class: 'error' }));
  planOptions(fld(f, 'plan'), d.plan);
  // The refresh leaves a form being edited alone.
  f.oninput = () => { f.dataset.dirty = '1'; };
  f.onsubmit = async (e) => {
    e.preventDefault();
    // Keep overrides the form does not show (owner-wide caps, ...).
    const limits = { ...(d.limits || {}) };
    for (const [k, name] of [['requests_per_second', 'rps'], ['requests_per_day', 'rpd'], ['bytes_per_day', 'bpd'],
      ['burst', 'burst'], ['connections', 'conns'], ['subscriptions', 'subs']]) {
      if (num(f[name].value) != null) limits[k] = num(f[name].value);
      else delete limits[k];
    }
    const patch = {
      name: fld(f, 'name').value.trim(), owner: fld(f, 'owner').value.trim(), plan: fld(f, 'plan').value,
      limits: Object.keys(limits).length ? limits : null,
    };
    for (const k of ['chains', 'origins', 'networks', 'allow', 'deny']) patch[k] = list(f[k].value).length ? list(f[k].value) : null;
    try {
      await api('project?id=' + d.id, { method: 'PATCH', body: patch });
      f.querySelector('.error').textContent = '';
      delete f.dataset.dirty;
      document.activeElement.blur();
      await refresh();
    } catch (err) { f.querySelector('.error').textContent = err.message; }
  };
  return f;
}

async function loadDetail(force) {
  const box = $('#detail');
  if (!state.selected) { destroyCharts(box); box.hidden = true; box.replaceChildren(); return; }
  // Keep an open form as the user left it; refresh the rest.
  const editing = box.querySelector('form[data-dirty]') || (box.querySelector('form') && box.contains(document.activeElement));
  if (editing && !force) return;
  const d = await api('project?id=' + state.selected);
  // Typed into while the project was fetched: the user's input wins.
  if (box.querySelector('form[data-dirty]')) return;
  destroyCharts(box);
  const { parts, statsBox } = detailBody(d, true);
  box.hidden = false;
  box.replaceChildren(...parts);
  renderStats(statsBox, d.stats || { off: true }, `No calls yet: point a client at ${d.endpoints && d.endpoints[0] ? d.endpoints[0].ws : 'ws://host/<chain>/' + d.id}.`);
}

// ----------------------------------------------------------------- owner

async function renderOwner() {
  const p = state.overview.project;
  $('#owner-section').hidden = false;
  $('#owner-title').textContent = `Project ${p.name || p.id}`;
  const d = await api('project?id=' + p.id);
  const box = $('#owner-body');
  destroyCharts(box);
  const { parts, statsBox } = detailBody(d, false);
  const tabs = $('#metric-tabs');
  box.replaceChildren(el('div', { class: 'card' }, parts));
  if (d.stats) statsBox.before(el('div', { class: 'row' }, tabs));
  renderStats(statsBox, d.stats || { off: true }, `No calls yet: point a client at ${d.endpoints && d.endpoints[0] ? d.endpoints[0].ws : 'ws://host/<chain>/' + d.id}.`);
}

// --------------------------------------------------------------- refresh

function showError(err) {
  const box = $('#denied');
  box.hidden = false;
  box.textContent = err.message;
}

async function refresh() {
  try {
    const o = await api('overview');
    state.overview = o;
    $('#denied').hidden = true;
    $('#view-name').textContent = o.view === 'owner' ? 'project' : 'operator';
    document.body.dataset.view = o.view;
    if (o.view === 'owner') {
      await renderOwner();
    } else {
      $('#chains-section').hidden = false;
      renderChains(o.chains);
      $('#projects-section').hidden = false;
      for (const c of ['#search', '#new-project']) $(c).hidden = !o.projects;
      if (!o.projects) {
        $('#projects').replaceChildren(el('p', { class: 'empty', 'data-empty': 'projects-off',
          text: 'Projects are off: add a projects block to the elara global option to give dApps their own ids, plans and limits.' }));
      } else {
        const [list, plans] = await Promise.all([api('projects'), state.plans.length ? state.plans : api('plans')]);
        state.projects = list;
        if (!state.plans.length) { state.plans = plans; planOptions($('#create-form').plan); }
        if (state.selected && !list.some((p) => p.id === state.selected)) state.selected = null;
        renderProjects();
        await loadDetail();
      }
      $('#stats-section').hidden = false;
      renderScope();
      await loadStats();
    }
    $('#status').textContent = 'updated ' + new Date().toLocaleTimeString();
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
  } catch (err) {
    showError(err);
    $('#status').textContent = 'refresh failed ' + new Date().toLocaleTimeString();
  }
}

function setup() {
  if (owner) $("#stats-section").hidden = true;
  setupCreate();
  $('#search').oninput = (e) => { state.search = e.target.value; renderProjects(); };
  $('#scope').onchange = (e) => { state.scope = e.target.value; loadStats().catch(showError); };
  for (const b of document.querySelectorAll('#metric-tabs button')) {
    b.onclick = () => {
      state.metric = b.dataset.metric;
      for (const x of document.querySelectorAll('#metric-tabs button')) x.classList.toggle('on', x === b);
      refresh();
    };
  }
  // Charts follow the width (a phone turned sideways).
  let t;
  window.addEventListener('resize', () => { clearTimeout(t); t = setTimeout(refresh, 250); });
  refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
}

setup();
