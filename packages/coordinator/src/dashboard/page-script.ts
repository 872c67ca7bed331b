/**
 * The dashboard's script, sent inline in the page (and allowed by its hash in the page's CSP). It asks for the
 * admin token, keeps it in memory only (a reload asks again; it is never put in a URL or in storage), and calls
 * the admin API with `Authorization: Bearer`. Everything from the API is written with textContent or SVG
 * attributes, never as HTML, so a site name cannot inject markup.
 */
export const DASHBOARD_SCRIPT = String.raw`
'use strict';
(function () {
  var REFRESH_MS = 5000;
  var token = null;
  var timer = null;
  var $ = function (id) { return document.getElementById(id); };
  var SVG = 'http://www.w3.org/2000/svg';

  function text(id, value) { $(id).textContent = value; }
  function fmt(v, digits) { return typeof v === 'number' && isFinite(v) ? v.toFixed(digits) : '–'; }
  function when(iso) {
    if (!iso) return '–';
    var d = new Date(iso);
    return isNaN(d.getTime()) ? '–' : d.toISOString().replace('T', ' ').slice(0, 19) + 'Z';
  }
  function span(seconds) {
    if (typeof seconds !== 'number' || !isFinite(seconds)) return '–';
    if (seconds < 60) return seconds.toFixed(1) + ' s';
    if (seconds < 3600) return (seconds / 60).toFixed(1) + ' min';
    return (seconds / 3600).toFixed(1) + ' h';
  }

  function api(path) {
    return fetch(path, { headers: { authorization: 'Bearer ' + token, accept: 'application/json' }, cache: 'no-store', credentials: 'omit' })
      .then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (body) {
          if (!res.ok) {
            var err = new Error(body && body.error ? body.error.message : 'HTTP ' + res.status);
            err.status = res.status;
            throw err;
          }
          return body;
        });
      });
  }

  function row(tbody, cells, cls) {
    var tr = document.createElement('tr');
    if (cls) tr.className = cls;
    cells.forEach(function (c) {
      var td = document.createElement('td');
      td.textContent = c;
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
    return tr;
  }

  function siteState(s) {
    if (s.revoked) return 'revoked';
    if (s.online) return 'online';
    if (s.pendingEnrollment && !s.enrolled) return 'awaiting enrollment';
    return 'offline';
  }

  function renderStatus(s) {
    text('coord', 'coordinator ' + s.coordinatorVersion + ' · up ' + span(s.uptimeSeconds) + (s.ready ? '' : ' · restoring'));
    text('released', s.released === null ? 'none' : 'v' + s.released);
    text('releases', s.releases && s.releases.length > 1 ? 'previous: ' + s.releases.slice(0, -1).map(function (v) { return 'v' + v; }).join(', ') : 'no earlier release');
    text('version', s.version === null ? '–' : 'v' + s.version);
    text('next-round', 'next round ' + (s.nextRound === null ? '–' : s.nextRound));
    text('online', String(s.sitesOnline ? s.sitesOnline.length : 0));
    var f = s.roundInFlight;
    if (f) {
      var left = Math.max(0, Math.round((f.deadline - Date.now()) / 1000));
      text('inflight', 'round ' + f.round + ' (attempt ' + f.attempt + '): ' + f.phase + ', ' + f.answered + ' of ' + f.sampled + ' sampled sites answered, ' + f.accepted + ' accepted, deadline in ' + left + ' s');
    } else {
      var job = s.rounds || {};
      text('inflight', job.running ? 'a round job is running (' + job.done + ' committed)' : 'no round in flight' + (job.lastError ? ' · last job error: ' + job.lastError.message : ''));
    }
  }

  function renderSites(sites) {
    var tbody = $('sites').querySelector('tbody');
    tbody.replaceChildren();
    sites.forEach(function (s) {
      var state = siteState(s);
      row(tbody, [s.name, state, when(s.lastSeen), when(s.enrolledAt)], 'state-' + state.replace(/ /g, '-'));
    });
    if (sites.length === 0) row(tbody, ['no sites yet: add one with fedmeta-coordinator sites add <name>', '', '', '']);
    var online = sites.filter(function (s) { return s.online; }).length;
    text('sites-total', sites.length + ' registered, ' + sites.filter(function (s) { return s.revoked; }).length + ' revoked, ' + online + ' online');
  }

  function renderPrivacy(p) {
    var bar = $('privacy-bar');
    if (!p.enabled) {
      text('privacy', 'off');
      text('privacy-sub', 'differential privacy is not enabled: nothing is spent');
      bar.style.width = '0%';
      return;
    }
    text('privacy', 'ε ' + fmt(p.epsilonSpent, 2) + (p.epsilonBudget !== null ? ' / ' + fmt(p.epsilonBudget, 2) : ''));
    text('privacy-sub', (p.delta !== null ? 'at δ ' + p.delta : '') + (p.epsilonBudget !== null ? ' · ' + Math.round((100 * p.epsilonSpent) / p.epsilonBudget) + '% of the budget spent' : ''));
    bar.style.width = p.epsilonBudget ? Math.min(100, (100 * p.epsilonSpent) / p.epsilonBudget) + '%' : '0%';
  }

  function el(name, attrs, parent) {
    var e = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (parent) parent.appendChild(e);
    return e;
  }

  function renderChart(rounds) {
    var svg = $('chart');
    svg.replaceChildren();
    var W = 720, H = 240, L = 48, R = 48, T = 12, B = 32;
    var pw = W - L - R, ph = H - T - B;
    el('rect', { x: L, y: T, width: pw, height: ph, class: 'plot' }, svg);
    if (rounds.length === 0) {
      var t = el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty' }, svg);
      t.textContent = 'no rounds yet';
      return;
    }
    var first = rounds[0].round, last = rounds[rounds.length - 1].round;
    var extent = Math.max(1, last - first);
    var x = function (r) { return L + (pw * (r - first)) / extent; };
    var committed = rounds.filter(function (r) { return r.status === 'committed'; });
    var losses = committed.map(function (r) { return r.meanQueryLoss; }).filter(function (v) { return typeof v === 'number' && isFinite(v); });
    var maxLoss = losses.length ? Math.max.apply(null, losses) : 1;
    if (!(maxLoss > 0)) maxLoss = 1;
    var yLoss = function (v) { return T + ph - (ph * v) / maxLoss; };
    var yF1 = function (v) { return T + ph - ph * Math.max(0, Math.min(1, v)); };
    for (var i = 0; i <= 4; i++) {
      var gy = T + (ph * i) / 4;
      el('line', { x1: L, x2: L + pw, y1: gy, y2: gy, class: 'grid' }, svg);
      var lt = el('text', { x: L - 6, y: gy + 4, 'text-anchor': 'end', class: 'tick loss' }, svg);
      lt.textContent = fmt(maxLoss * (1 - i / 4), 2);
      var ft = el('text', { x: L + pw + 6, y: gy + 4, class: 'tick f1' }, svg);
      ft.textContent = fmt(1 - i / 4, 2);
    }
    var ticks = Math.min(extent, 8);
    for (var k = 0; k <= ticks; k++) {
      var rv = Math.round(first + (extent * k) / ticks);
      var xt = el('text', { x: x(rv), y: H - 12, 'text-anchor': 'middle', class: 'tick' }, svg);
      xt.textContent = String(rv);
    }
    var axis = el('text', { x: L + pw / 2, y: H - 1, 'text-anchor': 'middle', class: 'tick' }, svg);
    axis.textContent = 'round';
    function line(values, y, cls) {
      var pts = values.filter(function (p) { return typeof p.v === 'number' && isFinite(p.v); });
      if (pts.length === 0) return;
      el('polyline', { points: pts.map(function (p) { return x(p.r).toFixed(1) + ',' + y(p.v).toFixed(1); }).join(' '), class: 'series ' + cls }, svg);
      pts.forEach(function (p) { el('circle', { cx: x(p.r).toFixed(1), cy: y(p.v).toFixed(1), r: 3, class: 'dot ' + cls }, svg); });
    }
    line(committed.map(function (r) { return { r: r.round, v: r.meanQueryLoss }; }), yLoss, 'loss');
    line(committed.map(function (r) { return { r: r.round, v: r.meanValF1 }; }), yF1, 'f1');
    rounds.filter(function (r) { return r.status === 'aborted'; }).forEach(function (r) {
      var m = el('path', { d: 'M' + (x(r.round) - 4) + ',' + (T + ph - 8) + 'l8,8m0,-8l-8,8', class: 'abort' }, svg);
      var title = el('title', {}, m);
      title.textContent = 'round ' + r.round + ' aborted: ' + (r.reason || '');
    });
  }

  function renderRounds(rounds) {
    var tbody = $('rounds').querySelector('tbody');
    tbody.replaceChildren();
    rounds.slice(-50).reverse().forEach(function (r) {
      var rejected = Object.keys(r.rejected || {}).reduce(function (n, k) { return n + r.rejected[k]; }, 0);
      row(tbody, [
        String(r.round),
        r.status,
        'v' + r.fromVersion + (r.status === 'committed' ? ' → v' + (r.fromVersion + 1) : ''),
        r.accepted + ' / ' + r.sampled,
        String(rejected),
        fmt(r.meanQueryLoss, 4),
        fmt(r.meanValF1, 3),
        span(r.durationSeconds),
        when(r.endedAt),
      ], 'round-' + r.status);
    });
    if (rounds.length === 0) row(tbody, ['no rounds yet', '', '', '', '', '', '', '', '']);
  }

  function refresh() {
    return Promise.all([api('/admin/v1/status'), api('/admin/v1/sites'), api('/admin/v1/history')])
      .then(function (r) {
        renderStatus(r[0]);
        renderSites(r[1].sites);
        renderPrivacy(r[2].privacy);
        renderChart(r[2].rounds);
        renderRounds(r[2].rounds);
        text('updated', 'updated ' + new Date().toLocaleTimeString());
        $('dash').setAttribute('data-loaded', 'true');
      })
      .catch(function (e) {
        if (e.status === 401 || e.status === 403) {
          logout(e.status === 401 ? 'The coordinator refused this token.' : e.message);
        } else {
          text('updated', 'could not refresh: ' + e.message);
        }
      });
  }

  function logout(message) {
    token = null;
    clearInterval(timer);
    $('dash').hidden = true;
    $('dash').removeAttribute('data-loaded');
    $('logout').hidden = true;
    $('login').hidden = false;
    text('login-error', message || '');
    $('token').focus();
  }

  $('login-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    token = $('token').value.trim();
    $('token').value = '';
    if (!token) return;
    text('login-error', '');
    $('login').hidden = true;
    $('dash').hidden = false;
    $('logout').hidden = false;
    refresh();
    clearInterval(timer);
    timer = setInterval(refresh, REFRESH_MS);
  });
  $('logout').addEventListener('click', function () { logout('Token forgotten.'); });
  $('token').focus();
})();
`;
