// ferric console: plain JavaScript, no build step. It talks to the
// conductor's Ironic API (the browser's credentials go with every call)
// and follows the change feed, GET /v1/events/stream.
'use strict';

const API_VERSION = '1.110';
const ROW_H = 28;
const FLEET_FIELDS = 'uuid,name,provision_state,target_provision_state,power_state,maintenance,fault,conductor,owner,resource_class,last_error';
const $ = (id) => document.getElementById(id);

// Measurements the browser tests read.
const metrics = window.__ferric = { firstRowsAt: 0, fleetListMs: 0, fleetRenderMs: 0, fleetReadyAt: 0, events: 0, lastEventAt: 0, renders: 0 };

// ---- API -------------------------------------------------------------

class ApiError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}

// errorText is the message of an error answer as the API wrote it:
// Ironic's faultstring, Glance's message, or the body.
function errorText(doc, text) {
  if (doc && typeof doc.error_message === 'string') {
    try { const inner = JSON.parse(doc.error_message); return inner.faultstring || (inner.error && inner.error.message) || doc.error_message; } catch (e) { return doc.error_message; }
  }
  if (doc && doc.message) return doc.message;
  return text || 'no answer';
}

async function api(method, path, body, contentType) {
  const headers = { 'X-OpenStack-Ironic-API-Version': API_VERSION, 'Accept': 'application/json' };
  let payload;
  if (body instanceof Blob) { payload = body; headers['Content-Type'] = contentType || 'application/octet-stream'; }
  else if (body !== undefined) { payload = JSON.stringify(body); headers['Content-Type'] = contentType || 'application/json'; }
  const r = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  const text = await r.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch (e) { /* not JSON */ }
  if (!r.ok) throw new ApiError(r.status, errorText(doc, text));
  return doc;
}

function showError(err) {
  const msg = err instanceof ApiError ? `${err.status}: ${err.message}` : String(err && err.message || err);
  $('error-text').textContent = msg;
  $('error').hidden = false;
}
$('error-close').onclick = () => { $('error').hidden = true; };

// confirmAction shows the confirmation dialog; extra (optional) is a node
// put in the dialog (e.g. an image chooser). It resolves true on Confirm.
function confirmAction(text, extra) {
  return new Promise((resolve) => {
    $('confirm-text').textContent = text;
    const box = $('confirm-extra');
    box.replaceChildren();
    if (extra) box.appendChild(extra);
    $('confirm').hidden = false;
    const done = (ok) => { $('confirm').hidden = true; $('confirm-ok').onclick = $('confirm-cancel').onclick = null; resolve(ok); };
    $('confirm-ok').onclick = () => done(true);
    $('confirm-cancel').onclick = () => done(false);
  });
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e[k] = v;
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

const show = (v) => (v === null || v === undefined || v === '') ? '' : String(v);

// ---- the fleet: records, kept live by the feed -------------------------

const fleet = {
  nodes: new Map(),   // uuid -> node (the fleet fields)
  order: [],          // nodes sorted by name, then uuid
  view: [],           // order filtered
  loaded: false,
  buffered: [],       // events that came while the list loaded
  flash: new Map(),   // uuid -> time of its last change
  listeners: new Set(), // node pages waiting for a node's events
};

const collator = new Intl.Collator();
const byName = (a, b) => collator.compare(show(a.name) || a.uuid, show(b.name) || b.uuid) || (a.uuid < b.uuid ? -1 : a.uuid > b.uuid ? 1 : 0);

// loadSnapshot takes the feed's snapshot (every node with the fleet's
// fields and its revision, as rows sorted by name, read after the feed's
// ready position) as the fleet, then applies the events that came meanwhile: one request instead
// of the paged listing, and no change lost between the two.
function loadSnapshot(doc) {
  const t1 = performance.now();
  metrics.fleetListMs = t1 - metrics.feedOpenedAt;
  const nodes = new Map();
  const cols = doc.columns || [];
  for (const row of doc.nodes || []) {
    const n = {};
    for (let i = 0; i < cols.length; i++) n[cols[i]] = row[i];
    nodes.set(n.uuid, n);
  }
  fleet.nodes = nodes;
  fleet.loaded = true;
  const pending = fleet.buffered;
  fleet.buffered = [];
  for (const ev of pending) applyNodeEvent(ev, false);
  resort();
  if (route.page === 'fleet') renderFleet(true);
  metrics.fleetRenderMs = performance.now() - t1;
  metrics.fleetReadyAt = metrics.firstRowsAt = performance.now();
}

function resort() { fleet.order = [...fleet.nodes.values()].sort(byName); refilter(); }

function applyNodeEvent(ev, live) {
  const n = fleet.nodes.get(ev.uuid);
  let reorder = false;
  // The snapshot may already hold the change (it is read after the
  // feed's position): a revision not above the record's is old news.
  if (n && ev.op !== 'delete' && n.revision !== undefined && ev.revision <= n.revision) return false;
  if (ev.op === 'delete') { reorder = fleet.nodes.delete(ev.uuid); }
  else if (!n) {
    const rec = { uuid: ev.uuid, name: ev.name, revision: ev.revision };
    for (const f of FLEET_FIELDS.split(',')) if (f in ev.fields) rec[f] = ev.fields[f];
    fleet.nodes.set(ev.uuid, rec);
    reorder = true;
  } else {
    n.revision = ev.revision;
    for (const f of FLEET_FIELDS.split(',')) if (f in ev.fields) { if (f === 'name') reorder = true; n[f] = ev.fields[f]; }
  }
  if (live) fleet.flash.set(ev.uuid, performance.now());
  return reorder;
}

let feed = null;
let reorderNeeded = false;

function setLive(on) { const l = $('live'); l.textContent = on ? 'live' : 'offline'; l.className = 'live ' + (on ? 'on' : 'off'); }

// connectFeed opens the change feed; fresh: without a resume point (after
// a 410 the fleet is listed again).
function connectFeed() {
  if (feed) feed.close();
  // The first connection asks for the snapshot of the fleet; the
  // browser's own reconnects resume with Last-Event-ID (no snapshot).
  metrics.feedOpenedAt = performance.now();
  feed = new EventSource(`/v1/events/stream?types=node&snapshot=true&snapshot_fields=${FLEET_FIELDS}`);
  feed.addEventListener('ready', () => setLive(true));
  feed.addEventListener('snapshot', (m) => loadSnapshot(JSON.parse(m.data)));
  feed.addEventListener('node', (m) => {
    const ev = JSON.parse(m.data);
    metrics.events++; metrics.lastEventAt = performance.now(); metrics.lastEvent = ev;
    // Commit to browser: the event's commit time against this clock
    // (same machine in the tests).
    const at = Date.parse(String(ev.time).replace(/(\.\d{3})\d*/, '$1'));
    if (!Number.isNaN(at)) metrics.lastLatencyMs = Date.now() - at;
    for (const fn of fleet.listeners) fn(ev);
    if (!fleet.loaded) { fleet.buffered.push(ev); return; }
    if (applyNodeEvent(ev, true)) reorderNeeded = true;
    scheduleRender();
  });
  feed.addEventListener('error', (m) => {
    if (m.data) { // the feed's own error event: resume or list again
      const doc = JSON.parse(m.data);
      if (doc.code === 410) relist();
      return;
    }
    setLive(false);
    if (feed.readyState === EventSource.CLOSED) setTimeout(relist, 1000); // e.g. a 410 on reconnect
  });
}

function relist() {
  fleet.loaded = false;
  fleet.buffered = [];
  connectFeed();
}

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    if (reorderNeeded) { reorderNeeded = false; resort(); } else refilter();
    if (route.page === 'fleet') renderFleet(false);
  });
}

// ---- the fleet table: only the visible rows are in the page -------------

const filter = { text: '', state: '', maintenance: false };

function refilter() {
  const t = filter.text.toLowerCase();
  fleet.view = fleet.order.filter((n) => {
    if (filter.state && n.provision_state !== filter.state) return false;
    if (filter.maintenance && !n.maintenance) return false;
    if (!t) return true;
    return [n.name, n.uuid, n.provision_state, n.power_state, n.conductor, n.owner, n.resource_class, n.last_error, n.fault]
      .some((v) => v && String(v).toLowerCase().includes(t));
  });
}

const STATES = ['enroll', 'verifying', 'manageable', 'inspecting', 'inspect wait', 'inspect failed', 'cleaning', 'clean wait', 'clean failed',
  'available', 'deploying', 'wait call-back', 'deploy failed', 'active', 'deleting', 'error', 'rescue', 'servicing', 'service failed'];

let grid = null;

function fleetPage() {
  const search = el('input', { id: 'filter', type: 'search', placeholder: 'search name, uuid, state, owner, conductor, error…', size: 40 });
  search.value = filter.text;
  search.oninput = () => { filter.text = search.value; refilter(); renderFleet(true); };
  const state = el('select', { id: 'filter-state' }, el('option', { value: '' }, 'any provision state'), ...STATES.map((s) => el('option', { value: s }, s)));
  state.value = filter.state;
  state.onchange = () => { filter.state = state.value; refilter(); renderFleet(true); };
  const maint = el('input', { id: 'filter-maintenance', type: 'checkbox' });
  maint.checked = filter.maintenance;
  maint.onchange = () => { filter.maintenance = maint.checked; refilter(); renderFleet(true); };
  const head = el('div', { class: 'head' }, ...['Name', 'Provision state', 'Power', 'Maintenance / fault', 'Conductor', 'Owner', 'Resource class', 'Last error'].map((h) => el('span', {}, h)));
  const body = el('div', { class: 'body', id: 'fleet-body' });
  const spacer = el('div', { style: 'height:0' });
  body.appendChild(spacer);
  body.onscroll = () => renderRows();
  grid = { body, spacer, rows: [] };
  $('main').replaceChildren(
    el('div', { class: 'toolbar' }, search, state, el('label', {}, maint, ' in maintenance'), el('span', { class: 'count', id: 'fleet-count' })),
    el('div', { class: 'grid', id: 'fleet' }, head, body));
  if (fleet.loaded) renderFleet(true);
}

function renderFleet() {
  if (!grid || !document.body.contains(grid.body)) return;
  metrics.renders++;
  $('fleet-count').textContent = fleet.loaded ? `${fleet.view.length} of ${fleet.nodes.size} nodes` : 'loading…';
  grid.spacer.style.height = (fleet.view.length * ROW_H) + 'px';
  renderRows();
}

function renderRows() {
  const { body, rows } = grid;
  const first = Math.max(0, Math.floor(body.scrollTop / ROW_H) - 5);
  const count = Math.ceil((body.clientHeight || 600) / ROW_H) + 10;
  const items = fleet.view.slice(first, first + count);
  while (rows.length < items.length) {
    const r = el('div', { class: 'row' }, ...Array.from({ length: 8 }, () => el('span')));
    r.onclick = () => { location.hash = '#/node/' + r.dataset.uuid; };
    body.appendChild(r);
    rows.push(r);
  }
  const now = performance.now();
  rows.forEach((r, i) => {
    const n = items[i];
    if (!n) { r.hidden = true; return; }
    r.hidden = false;
    r.style.top = ((first + i) * ROW_H) + 'px';
    r.dataset.uuid = n.uuid;
    r.dataset.name = show(n.name);
    const c = r.children;
    c[0].textContent = show(n.name) || n.uuid;
    c[0].title = n.uuid;
    const st = show(n.provision_state) + (n.target_provision_state ? ' → ' + n.target_provision_state : '');
    c[1].replaceChildren(el('span', { class: 'state state-' + show(n.provision_state).replace(/ /g, '-') }, st));
    c[2].textContent = show(n.power_state);
    c[3].textContent = n.maintenance ? 'maintenance' + (n.fault ? ' (' + n.fault + ')' : '') : show(n.fault);
    c[3].className = n.maintenance ? 'maint' : '';
    c[4].textContent = show(n.conductor);
    c[5].textContent = show(n.owner);
    c[6].textContent = show(n.resource_class);
    c[7].textContent = show(n.last_error);
    c[7].className = 'lasterr';
    c[7].title = show(n.last_error);
    const changed = fleet.flash.get(n.uuid);
    r.classList.toggle('flash', changed !== undefined && now - changed < 1000);
  });
}

// ---- a node's page -----------------------------------------------------

function kvTable(pairs) {
  return el('table', { class: 'kv' }, ...pairs.map(([k, v]) => el('tr', {}, el('td', {}, k), el('td', { 'data-field': k }, v instanceof Node ? v : show(v)))));
}

function listTable(cols, rows) {
  return el('table', { class: 'list' }, el('tr', {}, ...cols.map((c) => el('th', {}, c))), ...rows.map((r) => el('tr', {}, ...r.map((v) => el('td', {}, show(v))))));
}

async function act(label, fn) {
  try { await fn(); } catch (e) { showError(e); }
}

async function provision(node, target, extra) {
  await api('PUT', `/v1/nodes/${node.uuid}/states/provision`, Object.assign({ target }, extra || {}));
}

function actionButtons(node, refresh) {
  const b = (id, text, question, fn, cls) => el('button', {
    id: 'act-' + id, class: cls || '',
    onclick: async () => { if (await confirmAction(question)) await act(text, fn); },
  }, text);
  const deploy = el('button', {
    id: 'act-deploy', class: 'primary', onclick: async () => {
      let images = [];
      try { images = (await api('GET', '/images/v2/images')).images || []; } catch (e) { /* no image store: a URL */ }
      const sel = el('select', { id: 'deploy-image' }, el('option', { value: '' }, '(instance_info as it is)'),
        ...images.map((i) => el('option', { value: i.id }, `${i.name || i.id} (${i.status})`)));
      if (!await confirmAction(`Deploy ${node.name || node.uuid}?`, el('label', {}, 'Image ', sel))) return;
      await act('deploy', async () => {
        if (sel.value) await api('PATCH', `/v1/nodes/${node.uuid}`, [{ op: 'add', path: '/instance_info/image_source', value: sel.value }]);
        await provision(node, 'active');
      });
    },
  }, 'Deploy');
  const name = node.name || node.uuid;
  return el('div', { class: 'actions' },
    b('manage', 'Manage', `Manage ${name}?`, () => provision(node, 'manage')),
    b('inspect', 'Inspect', `Inspect ${name}?`, () => provision(node, 'inspect')),
    b('provide', 'Provide', `Provide ${name} (clean and make available)?`, () => provision(node, 'provide')),
    deploy,
    b('undeploy', 'Undeploy', `Undeploy ${name}? Its instance is deleted.`, () => provision(node, 'deleted'), 'danger'),
    b('power-on', 'Power on', `Power on ${name}?`, () => api('PUT', `/v1/nodes/${node.uuid}/states/power`, { target: 'power on' })),
    b('power-off', 'Power off', `Power off ${name}?`, () => api('PUT', `/v1/nodes/${node.uuid}/states/power`, { target: 'power off' }), 'danger'),
    b('reboot', 'Reboot', `Reboot ${name}?`, () => api('PUT', `/v1/nodes/${node.uuid}/states/power`, { target: 'rebooting' })),
    b('maintenance-on', 'Maintenance on', `Put ${name} in maintenance?`, () => api('PUT', `/v1/nodes/${node.uuid}/maintenance`, { reason: 'set from the console' })),
    b('maintenance-off', 'Maintenance off', `Take ${name} out of maintenance?`, () => api('DELETE', `/v1/nodes/${node.uuid}/maintenance`)),
  );
}

// progressView shows what the node reports of its deploy or clean step
// and transfer (phase, bytes, rate, estimated end) when it reports it.
function progressView(n) {
  const step = n.deploy_step && Object.keys(n.deploy_step).length ? n.deploy_step : n.clean_step && Object.keys(n.clean_step).length ? n.clean_step : n.service_step;
  const dii = n.driver_internal_info || {};
  // The manager records the running agent command's progress in
  // driver_internal_info.agent_progress (README, "Fast-track and stalls").
  const p = dii.agent_progress || null;
  const rows = [['step', step && Object.keys(step).length ? `${step.interface || ''}.${step.step || ''}` : '']];
  if (p && typeof p === 'object') {
    const bytes = p.bytes_written, total = p.total_bytes;
    if (p.command) rows.push(['command', p.command]);
    if (p.phase) rows.push(['phase', p.phase]);
    if (bytes !== undefined) rows.push(['bytes', total ? `${bytes} of ${total}` : bytes]);
    if (p.rate_bytes_per_second !== undefined) rows.push(['rate', `${(p.rate_bytes_per_second / 1048576).toFixed(1)} MiB/s`]);
    if (p.estimated_end) rows.push(['estimated end', p.estimated_end]);
    if (p.last_heard) rows.push(['agent last heard', p.last_heard]);
    if (bytes !== undefined && total) {
      rows.push(['', el('div', { class: 'progress' }, el('div', { style: `width:${Math.min(100, 100 * bytes / total).toFixed(1)}%` }))]);
    }
  }
  return kvTable(rows);
}

function inventoryView(inv) {
  const i = (inv && inv.inventory) || {};
  const cpu = i.cpu || {};
  const mem = i.memory || {};
  return el('div', {},
    kvTable([['CPU', cpu.model_name ? `${cpu.count || ''} × ${cpu.model_name} (${cpu.architecture || ''})` : ''],
      ['memory', mem.physical_mb ? mem.physical_mb + ' MiB' : (mem.total ? mem.total + ' B' : '')],
      ['BMC', i.bmc_address || ''],
      ['system', i.system_vendor ? `${i.system_vendor.manufacturer || ''} ${i.system_vendor.product_name || ''} ${i.system_vendor.serial_number || ''}` : '']]),
    listTable(['disk', 'size', 'model', 'rotational'], (i.disks || []).map((d) => [d.name, d.size, d.model, d.rotational])),
    listTable(['NIC', 'MAC', 'IPv4', 'speed'], (i.interfaces || []).map((x) => [x.name, x.mac_address, x.ipv4_address, x.speed_mbps])));
}

async function nodePage(ident) {
  $('main').replaceChildren(el('p', {}, 'loading…'));
  let n;
  try { n = await api('GET', `/v1/nodes/${encodeURIComponent(ident)}`); } catch (e) { showError(e); return; }
  const stateBox = el('div', { id: 'node-state' });
  const progressBox = el('div', { id: 'node-progress' });
  const historyBox = el('ul', { class: 'timeline', id: 'node-history' });
  const renderState = () => {
    stateBox.replaceChildren(kvTable([
      ['provision state', el('span', { id: 'node-provision-state', class: 'state state-' + show(n.provision_state).replace(/ /g, '-') }, show(n.provision_state) + (n.target_provision_state ? ' → ' + n.target_provision_state : ''))],
      ['power', el('span', { id: 'node-power-state' }, show(n.power_state) + (n.target_power_state ? ' → ' + n.target_power_state : ''))],
      ['maintenance', el('span', { id: 'node-maintenance' }, n.maintenance ? 'on' + (n.maintenance_reason ? ': ' + n.maintenance_reason : '') : 'off')],
      ['fault', n.fault], ['conductor', n.conductor], ['owner', n.owner], ['resource class', n.resource_class],
      ['driver', n.driver], ['last error', el('span', { id: 'node-last-error', class: 'lasterr' }, show(n.last_error))],
      ['updated', n.updated_at]]));
    progressBox.replaceChildren(progressView(n));
  };
  // The timeline: the node's recorded history (Ironic journals errors
  // and some events) and the state changes the feed brought while the
  // page was open, newest first.
  const seen = [];
  let recorded = [];
  const renderHistory = () => {
    const items = [...seen, ...recorded].sort((a, b) => (a.at < b.at ? 1 : -1));
    historyBox.replaceChildren(...(items.length ? items.map((e) => el('li', { class: 'sev-' + e.severity }, `${e.at}  ${e.text}`))
      : [el('li', {}, 'no events recorded')]));
  };
  const loadHistory = async () => {
    try {
      const h = await api('GET', `/v1/nodes/${n.uuid}/history?detail=True`);
      recorded = (h.history || []).map((e) => ({ at: e.created_at, severity: e.severity, text: `${e.event_type}: ${e.event}` }));
    } catch (e) { recorded = [{ at: '', severity: 'ERROR', text: 'history: ' + e.message }]; }
    renderHistory();
  };
  renderState();
  const sections = [
    el('h2', {}, show(n.name) || n.uuid, ' ', el('small', { class: 'count' }, n.uuid)),
    el('section', {}, el('h3', {}, 'Actions'), actionButtons(n)),
    el('div', { class: 'cols' },
      el('section', {}, el('h3', {}, 'State'), stateBox),
      el('section', {}, el('h3', {}, 'Progress'), progressBox)),
    el('section', {}, el('h3', {}, 'History'), historyBox),
  ];
  const extras = el('div', {});
  sections.push(extras);
  $('main').replaceChildren(...sections);
  loadHistory();
  // Ports, inventory, BIOS and firmware: what the API has for the node.
  const part = async (title, fn) => {
    const box = el('section', {}, el('h3', {}, title), el('p', { class: 'count' }, 'loading…'));
    extras.appendChild(box);
    try { box.replaceChildren(el('h3', {}, title), await fn()); } catch (e) { box.replaceChildren(el('h3', {}, title), el('p', { class: 'count' }, e.status === 404 ? 'none' : e.message)); }
  };
  part('Ports', async () => listTable(['MAC', 'PXE', 'physical network', 'uuid'],
    ((await api('GET', `/v1/nodes/${n.uuid}/ports?detail=True`)).ports || []).map((p) => [p.address, p.pxe_enabled, p.physical_network, p.uuid])));
  part('Inventory', async () => inventoryView(await api('GET', `/v1/nodes/${n.uuid}/inventory`)));
  part('BIOS settings', async () => listTable(['name', 'value'], ((await api('GET', `/v1/nodes/${n.uuid}/bios`)).bios || []).map((s) => [s.name, s.value])));
  part('Firmware', async () => listTable(['component', 'current', 'initial'], ((await api('GET', `/v1/nodes/${n.uuid}/firmware`)).firmware || []).map((f) => [f.component, f.current_version, f.initial_version])));

  const consoleBox = consoleSection(n);
  extras.appendChild(consoleBox.section);
  extras.appendChild(ramdiskLogsSection(n));

  // Live: the node's events update the page without a reload.
  const listener = (ev) => {
    if (ev.uuid !== n.uuid || ev.op === 'delete') return;
    if ('console_enabled' in ev.fields) consoleBox.refresh();
    const stateChanged = 'provision_state' in ev.fields || 'last_error' in ev.fields;
    if ('provision_state' in ev.fields) {
      seen.push({ at: ev.time, severity: 'INFO', text: `provision state ${n.provision_state} → ${ev.fields.provision_state}` });
    }
    Object.assign(n, ev.fields);
    renderState();
    if (stateChanged) loadHistory();
  };
  fleet.listeners.clear();
  fleet.listeners.add(listener);
}

// consoleSection shows the node's console (GET .../states/console:
// console_enabled and console_info as the API gives them) with enable and
// disable buttons behind a confirmation; the API's errors are shown as
// it wrote them.
function consoleSection(n) {
  const name = n.name || n.uuid;
  const body = el('div', { id: 'node-console' }, el('p', { class: 'count' }, 'loading…'));
  const refresh = async () => {
    let doc;
    try { doc = await api('GET', `/v1/nodes/${n.uuid}/states/console`); } catch (e) {
      body.replaceChildren(el('p', { class: 'lasterr', id: 'console-error' }, `${e.status || ''}: ${e.message}`));
      return;
    }
    const info = doc.console_info;
    const rows = [['console', el('span', { id: 'console-enabled' }, doc.console_enabled ? 'enabled' : 'disabled')]];
    if (info && typeof info === 'object') {
      for (const [k, v] of Object.entries(info)) rows.push([k, el('code', { 'data-console': k }, typeof v === 'string' ? v : JSON.stringify(v))]);
      if (!Object.keys(info).length) rows.push(['console_info', el('code', {}, '{}')]);
    }
    body.replaceChildren(kvTable(rows));
  };
  const set = (on) => async () => {
    if (!await confirmAction(`${on ? 'Enable' : 'Disable'} the console of ${name}?`)) return;
    await act('console', async () => { await api('PUT', `/v1/nodes/${n.uuid}/states/console`, { enabled: on }); });
    await refresh();
  };
  const section = el('section', {}, el('h3', {}, 'Console'), body,
    el('div', { class: 'actions' },
      el('button', { id: 'act-console-on', onclick: set(true) }, 'Enable console'),
      el('button', { id: 'act-console-off', class: 'danger', onclick: set(false) }, 'Disable console')));
  refresh();
  return { section, refresh };
}

// ramdiskLogsSection lists the logs the deploy ramdisk sent (GET
// .../ramdisk_logs) with a download link each.
function ramdiskLogsSection(n) {
  const body = el('div', { id: 'node-ramdisk-logs' }, el('p', { class: 'count' }, 'loading…'));
  (async () => {
    let logs;
    try { logs = (await api('GET', `/v1/nodes/${n.uuid}/ramdisk_logs`)).ramdisk_logs || []; } catch (e) {
      body.replaceChildren(el('p', { class: 'lasterr' }, `${e.status || ''}: ${e.message}`));
      return;
    }
    if (!logs.length) { body.replaceChildren(el('p', { class: 'count' }, 'none')); return; }
    body.replaceChildren(el('table', { class: 'list' },
      el('tr', {}, ...['archive', 'created', 'size'].map((c) => el('th', {}, c))),
      ...logs.map((l) => el('tr', {},
        el('td', {}, el('a', { href: `/v1/nodes/${n.uuid}/ramdisk_logs/${encodeURIComponent(l.name)}`, download: l.name, class: 'ramdisk-log' }, l.name)),
        el('td', {}, show(l.created_at)), el('td', {}, show(l.size))))));
  })();
  return el('section', {}, el('h3', {}, 'Ramdisk logs'), body);
}

// ---- images ------------------------------------------------------------

async function imagesPage() {
  const list = el('div', { id: 'images-list' }, 'loading…');
  const name = el('input', { id: 'image-name', placeholder: 'name' });
  const file = el('input', { id: 'image-file', type: 'file' });
  const status = el('span', { class: 'count', id: 'image-status' });
  const upload = el('button', {
    id: 'image-upload', class: 'primary', onclick: async () => {
      const f = file.files[0];
      if (!f) { showError('choose a file to upload'); return; }
      try {
        status.textContent = 'creating…';
        const img = await api('POST', '/images/v2/images', { name: name.value || f.name, disk_format: 'raw', container_format: 'bare' });
        status.textContent = `uploading ${f.size} bytes…`;
        await api('PUT', `/images/v2/images/${img.id}/file`, f, 'application/octet-stream');
        status.textContent = 'uploaded';
        await refresh();
      } catch (e) { status.textContent = ''; showError(e); }
    },
  }, 'Upload');
  const refresh = async () => {
    try {
      const imgs = (await api('GET', '/images/v2/images')).images || [];
      list.replaceChildren(listTable(['name', 'id', 'size', 'checksum', 'status'],
        imgs.map((i) => [i.name, i.id, i.size, i.os_hash_value ? `${i.os_hash_algo}:${i.os_hash_value}` : i.checksum, i.status])));
    } catch (e) { list.textContent = ''; showError(e); }
  };
  $('main').replaceChildren(
    el('section', {}, el('h3', {}, 'Upload an image'), el('div', { class: 'toolbar' }, name, file, upload, status)),
    el('section', {}, el('h3', {}, 'Images'), list));
  await refresh();
}

// ---- routing -----------------------------------------------------------

const route = { page: '' };

function navigate() {
  $('error').hidden = true;
  const h = location.hash || '#/';
  fleet.listeners.clear();
  $('nav-fleet').classList.toggle('active', h === '#/' || h === '#');
  $('nav-images').classList.toggle('active', h.startsWith('#/images'));
  if (h.startsWith('#/node/')) { route.page = 'node'; nodePage(decodeURIComponent(h.slice(7))); }
  else if (h.startsWith('#/images')) { route.page = 'images'; imagesPage(); }
  else { route.page = 'fleet'; fleetPage(); }
}

window.addEventListener('hashchange', navigate);
connectFeed(); // first: the snapshot is on its way while the page builds
navigate();
