// The dashboard: polls /api/overview and /api/series every refresh period and redraws in place
// (Plotly.react), so the page never reloads. What to show comes from the server's layout,
// which follows the table's columns: a figure the database does not have is not drawn.
"use strict";

const state = {
  account: null,
  window: "1h",
  layout: null,
  refreshS: 5,
  underlyingFigure: null,
  updates: 0,
  filter: "",
  accounts: [],
  legs: [],
  legsSort: { key: "dollar_delta", descending: true },
  expiry: null,
  expiryFigure: "net_dollar_gamma",
  profileView: "own",
  scenarios: null,
  explain: null,
  legsLink: null,
};

// The Greeks by expiry table (docs/expiry-and-legs.md): each figure of each scope by bucket.
const EXPIRY_FIGURES = [
  ["net_dollar_delta", "dollar delta"], ["net_dollar_gamma", "dollar gamma / 1 %"],
  ["net_theta", "theta / day"], ["net_vega", "vega / vol pt"],
];
// The legs list: column, heading, text (left-aligned, sorted as text) or a number.
const LEG_COLUMNS = [
  ["symbol", "underlying", true], ["conid", "conid", false], ["sec_type", "type", true],
  ["option_right", "right", true], ["strike", "strike", false], ["expiry", "expiry", true],
  ["quantity", "qty", false], ["multiplier", "mult.", false], ["magnifier", "magn.", false],
  ["price", "price", false], ["underlying_price", "und. price", false],
  ["implied_vol", "IV", false], ["delta", "delta", false], ["gamma", "gamma", false],
  ["theta", "theta", false], ["vega", "vega", false], ["dollar_delta", "$ delta", false],
  ["dollar_gamma", "$ gamma / 1 %", false], ["net_theta", "theta $/day", false],
  ["net_vega", "vega $/vol pt", false], ["missing_reason", "missing", true],
];

const LANE_COLORS = {
  gap: "#cf222e",
  connection: "#bc4c00",
  "reset window": "#8250df",
  breaker: "#9a6700",
  alert: "#d1242f",
  other: "#656d76",
};
const LINE_COLORS = ["#0969da", "#1a7f37", "#bc4c00", "#8250df", "#cf222e", "#1b7c83", "#9a6700"];

const $ = (id) => document.getElementById(id);

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) throw new Error(`${response.status} from ${url}`);
  return response.json();
}

function el(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(key, value);
  }
  if (text !== null) node.textContent = text;
  return node;
}

// ISO with offset -> the browser's local time, as Plotly wants it (it ignores offsets).
function local(iso) {
  const d = new Date(iso);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function moneyUnit(row) {
  return state.layout && state.layout.has_currency && row && row.currency ? row.currency : "$";
}

function unitText(unit, row) {
  const money = moneyUnit(row);
  switch (unit) {
    case "money": return money;
    case "money/day": return `${money}/day`;
    case "money/vol point": return `${money}/vol pt`;
    case "benchmark shares": return "benchmark shares";
    case "SPX units": return "SPX units";
    case "share-equivalents": return "share-eq.";
    default: return "";
  }
}

function formatNumber(value) {
  if (value === null || value === undefined) return "—";
  const digits = Math.abs(value) >= 1000 ? 0 : Math.abs(value) >= 10 ? 1 : 3;
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function formatAge(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 120) return `${seconds.toFixed(0)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(0)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

// ---- health strip ------------------------------------------------------------------------

function renderHealth(health, alerts, database, now) {
  const strip = $("health");
  strip.replaceChildren();
  strip.dataset.status = health.status;
  strip.append(el("span", { class: `pill ${health.status}`, id: "health-status" },
    health.status.toUpperCase()));
  const beats = health.facts.heartbeats || {};
  for (const name of ["collector", "writer", "replayer", "alerter"]) {
    const beat = beats[name];
    let text = `${name}: no heartbeat`;
    if (beat) {
      const age = (Date.parse(now) - Date.parse(beat.heartbeat)) / 1000;
      text = `${name}: ${beat.state || "?"}, ${formatAge(age)} ago`;
      if (beat.breaker) text += `, breaker ${beat.breaker}`;
      if (name === "collector" && beat.gateway) {
        text += beat.gateway.connected ? ", gateway connected" : ", gateway DISCONNECTED";
        if (beat.gateway.in_reset_window) text += " (reset window)";
        const error = beat.gateway.last_error;
        if (error) text += `, last IB error ${error.code}: ${error.message}`;
      }
    }
    strip.append(el("span", { class: "pill", "data-process": name }, text));
  }
  const facts = health.facts;
  const lag = facts.spool_lag_s === null ? "0 s" : `${facts.spool_lag_s.toFixed(1)} s`;
  strip.append(el("span", { class: "pill" }, `spool lag ${facts.spool_lag_records} rec, ${lag}`));
  const oldest = facts.oldest_buffered_ts ? `, oldest ${local(facts.oldest_buffered_ts)}` : "";
  strip.append(el("span", { class: facts.buffer_bytes ? "pill warning" : "pill" },
    `buffer ${facts.buffer_bytes.toLocaleString()} B${oldest}`));
  strip.append(el("span", { class: facts.dead_letters ? "pill warning" : "pill" },
    `dead letters ${facts.dead_letters}`));
  if (facts.rows_last_hour !== null) {
    strip.append(el("span", { class: "pill" }, `rows last hour ${facts.rows_last_hour}`));
  }
  if (alerts !== null) {
    strip.append(el("span", { class: alerts.length ? "pill unhealthy" : "pill ok", id: "alerts-count" },
      `alerts firing ${alerts.length}`));
  }
  for (const finding of health.findings) {
    strip.append(el("span", { class: `pill ${finding.level}`, "data-finding": finding.subject },
      `${finding.subject}: ${finding.message}`));
  }
  const note = $("database");
  note.hidden = !database.error;
  note.textContent = database.error
    ? `PostgreSQL is not answering (${database.error}): showing what was last read.` : "";
  const box = $("alerts");
  box.replaceChildren();
  box.hidden = !(alerts && alerts.length);
  for (const alert of alerts || []) {
    box.append(el("div", { "data-rule": alert.rule },
      `${alert.rule}: ${alert.account || "*"} ${alert.figure || ""} = ${formatNumber(alert.value)}` +
      ` (limit ${formatNumber(alert.limit)}) since ${alert.since ? local(alert.since) : "?"}`));
  }
}

// ---- accounts ----------------------------------------------------------------------------

// The table shows the charted figures of every account; the card below it every figure of
// the selected one. Both carry the raw value in data-value (the tests read it back).
function renderAccounts(accounts) {
  const layout = state.layout;
  const select = $("account");
  const names = accounts.map((row) => row.account);
  if (!state.account || !names.includes(state.account)) state.account = names[0] || null;
  if ([...select.options].map((o) => o.value).join() !== names.join()) {
    select.replaceChildren(...names.map((name) => el("option", { value: name }, name)));
  }
  if (state.account) select.value = state.account;
  const charted = new Set(layout.panels.flatMap((panel) => panel.figures.map((f) => f.column)));
  // A charted figure no account has a value for (share-equivalent gamma in rows of the trader-
  // grade format) leaves the table; the card below still shows it as unknown.
  const headline = layout.figures.filter((figure) => charted.has(figure.column) &&
    accounts.some((row) => row[figure.column] !== null && row[figure.column] !== undefined));

  // Money columns name the currency when every account has the same; each cell says its own.
  const currencies = new Set(accounts.map((row) => row.currency));
  const shared = currencies.size === 1 ? accounts[0] : { currency: "base ccy" };
  const head = $("accounts").tHead;
  const headRow = el("tr");
  headRow.append(el("th", {}, "Account"), el("th", {}, "Age"), el("th", {}, "Complete"));
  for (const figure of headline) {
    const th = el("th", { "data-figure": figure.column }, figure.label);
    th.append(el("span", { class: "unit" }, unitText(figure.unit, shared)));
    headRow.append(th);
  }
  head.replaceChildren(headRow);

  const body = $("accounts").tBodies[0];
  const rows = [];
  for (const row of accounts) {
    if (state.filter && !row.account.toLowerCase().includes(state.filter)) continue;
    const tr = el("tr", { "data-account": row.account, "data-ts": row.ts });
    if (row.account === state.account) tr.classList.add("selected");
    tr.addEventListener("click", () => selectAccount(row.account));
    tr.append(el("td", {}, row.account));
    const stale = row.age_s !== null && row.age_s > 3 * state.refreshS;
    tr.append(el("td", { class: stale ? "stale" : "", "data-age": row.age_s }, formatAge(row.age_s)));
    tr.append(completenessCell(row));
    for (const figure of headline) tr.append(figureCell(row, figure));
    rows.push(tr);
  }
  body.replaceChildren(...rows);
  renderDetail(accounts.find((row) => row.account === state.account));
}

function renderDetail(row) {
  const card = $("detail");
  card.replaceChildren();
  if (!row) return;
  card.append(el("caption", {}, `${row.account} at ${local(row.ts)} (${formatAge(row.age_s)} ago)`));
  for (const figure of state.layout.figures) {
    const tr = el("tr");
    tr.append(el("th", {}, figure.label), figureCell(row, figure),
      el("td", { class: "unit" }, unitText(figure.unit, row)));
    card.append(tr);
  }
  if (state.layout.figures.some((f) => f.column === "gateway_beta_delta_benchmark_shares")) {
    card.append(betaDeltaGapRow(row));
  }
}

// IBKR's beta-weighted delta (7696: its betas, against SPX) less ours, both in shares of our
// benchmark (web/payload.py beta_delta_gap). A gap is the betas' difference (and the prices'
// IBKR weighs by), not an error of either (docs/ibkr-conventions.md); unknown reads "—".
function betaDeltaGapRow(row) {
  const gap = row.beta_delta_gap;
  const known = gap !== null && gap !== undefined;
  const share = known && gap.share_of_ours !== null ? gap.share_of_ours : null;
  let text = "—";
  if (known) {
    text = `${gap.benchmark_shares > 0 ? "+" : ""}${formatNumber(gap.benchmark_shares)}`;
    if (share !== null) text += ` (${share > 0 ? "+" : ""}${(100 * share).toFixed(1)} % of ours)`;
  }
  const td = el("td", {
    "data-figure": "beta_delta_gap",
    "data-value": known ? String(gap.benchmark_shares) : "null",
    "data-share": share !== null ? String(share) : "null",
    title: known
      ? "IBKR's beta-weighted delta (7696 × SPX's price ÷ the benchmark's) less ours: " +
        "IBKR's betas against SPX at its close-price ratio, ours against the benchmark"
      : "unknown: no 7696 (SOCKET), or SPX's price or a rate unknown",
  }, text);
  if (!known) td.classList.add("null");
  const tr = el("tr");
  tr.append(el("th", {}, "IBKR − ours, beta-weighted delta"), td,
    el("td", { class: "unit" }, "benchmark shares"));
  return tr;
}

function figureCell(row, figure) {
  const value = row[figure.column];
  const known = value !== null && value !== undefined;
  const td = el("td", {
    "data-account": row.account,
    "data-figure": figure.column,
    "data-value": known ? String(value) : "null",
    title: `${figure.label} ${unitText(figure.unit, row)} at ${local(row.ts)}`,
  }, formatNumber(value));
  if (!known) td.classList.add("null");
  // A sum that left positions out is never presented as a total: marked, with the reasons.
  const detail = row.completeness ? row.completeness[figure.column] : null;
  if (detail && detail.missing > 0 && known) {
    td.classList.add("partial");
    td.dataset.missing = String(detail.missing);
    td.textContent = `${formatNumber(value)}*`;
    const reasons = Object.entries(detail.reasons || {}).map(([r, n]) => `${n} ${r}`).join(", ");
    td.title += ` — partial: ${detail.contributing} positions in, ${detail.missing} left out` +
      (reasons ? ` (${reasons})` : "");
  }
  // Rounded inputs (the Portal's Greeks): the figure is only known to ± its bound.
  if (detail && detail.rounding_bound > 0 && known) {
    td.dataset.bound = String(detail.rounding_bound);
    td.append(el("span", { class: "bound" }, ` ±${formatNumber(detail.rounding_bound)}`));
    td.title += ` — ±${formatNumber(detail.rounding_bound)} from the gateway's rounding`;
    if (detail.imprecise) {
      td.classList.add("imprecise");
      td.title += " (imprecise: more than 1 % of the figure)";
    }
  }
  // Greeks the rounding destroyed, the model's instead (PORTAL): said, with how many.
  if (detail && (detail.recomputed || detail.model_disagrees) && known) {
    td.dataset.recomputed = String(detail.recomputed || 0);
    td.title += ` — ${detail.recomputed || 0} Greeks recomputed by the model` +
      (detail.model_disagrees ? `, ${detail.model_disagrees} kept as rounded (the model disagreed)` : "");
  }
  // Inputs from delayed or frozen market data: said per figure, with how many positions.
  const notLive = detail && detail.market_data ? Object.entries(detail.market_data) : [];
  if (notLive.length && known) {
    td.classList.add("delayed");
    td.dataset.marketData = notLive.map(([kind]) => kind).join(",");
    td.title += ` — not live: ${notLive.map(([kind, n]) => `${n} ${kind}`).join(", ")}`;
  }
  return td;
}

function completenessCell(row) {
  const known = row.options_with_greeks;
  const total = row.option_count;
  let text = "—";
  if (known !== undefined && total !== undefined && total !== null) {
    text = total === 0 ? "no options" : `${known}/${total}`;
  }
  const parts = [];
  if (total) parts.push(`${known} of ${total} options with Greeks`);
  if (row.stalest_greek_age_s !== undefined && row.stalest_greek_age_s !== null) {
    parts.push(`oldest input ${formatAge(row.stalest_greek_age_s)}`);
  }
  const partial = Object.entries(row.completeness || {})
    .filter(([, detail]) => detail && detail.missing > 0).map(([figure]) => figure);
  if (partial.length) {
    text += ` · ${partial.length} partial`;
    parts.push(`partial (positions left out): ${partial.join(", ")}`);
  }
  const incomplete = (total && known < total) || partial.length > 0;
  return el("td", { class: incomplete ? "stale" : "", title: parts.join("; ") || null,
    "data-complete": incomplete ? "partial" : "whole" }, text);
}

function selectAccount(account) {
  state.account = account;
  $("account").value = account;
  for (const tr of $("accounts").tBodies[0].rows) {
    tr.classList.toggle("selected", tr.dataset.account === account);
  }
  renderDetail(state.accounts.find((row) => row.account === account));
  state.legsLink = null;  // a drill-down belongs to the account it was made in
  $("explain-positions").tHead.replaceChildren();
  $("explain-positions").tBodies[0].replaceChildren();
  $("explain-positions-note").textContent = EXPLAIN_POSITIONS_HINT;
  refreshPositions().catch(showError);
  refreshSeries().catch(showError);
}

// ---- chart -------------------------------------------------------------------------------

function renderChart(series) {
  const layout = state.layout;
  const panels = layout.panels.filter((panel) =>
    panel.figures.some((f) => (series.figures[f.column]?.last || []).some((v) => v !== null)));
  const underlyingFigures = [...new Set(Object.values(series.underlyings).flatMap(Object.keys))];
  updateUnderlyingSelect(underlyingFigures);
  const rows = panels.length + (state.underlyingFigure ? 1 : 0);
  const x = series.t.map(local);
  const traces = [];
  const plotLayout = {
    margin: { l: 70, r: 20, t: 10, b: 40 },
    height: Math.max(420, 150 * rows + 120),
    showlegend: true,
    legend: { orientation: "h", y: 1.02, yanchor: "bottom" },
    hovermode: "x unified",
    xaxis: { type: "date", anchor: `y${rows + 1}` },
    shapes: [],
  };
  const lane = 0.16;
  const gap = 0.03;
  const share = (1 - lane - gap * rows) / Math.max(rows, 1);
  const domain = (index) => {
    const top = 1 - index * (share + gap);
    return [top - share, top];
  };
  panels.forEach((panel, index) => {
    const axis = index === 0 ? "y" : `y${index + 1}`;
    const key = index === 0 ? "yaxis" : `yaxis${index + 1}`;
    const selected = state.accounts.find((row) => row.account === state.account);
    const unit = unitText(panel.figures[0].unit, selected);
    plotLayout[key] = { domain: domain(index), title: { text: `${panel.name}<br>${unit}` }, zeroline: true };
    panel.figures.forEach((figure, n) => {
      const values = series.figures[figure.column];
      const color = LINE_COLORS[(index + n) % LINE_COLORS.length];
      // The min-max band, one piece per run of buckets with rows: a fill would otherwise be
      // drawn across a hole, where the line itself breaks.
      for (const run of runs(x, values.min, values.max)) {
        traces.push({ x: run.x, y: run.hi, yaxis: axis, mode: "lines", line: { width: 0 },
          hoverinfo: "skip", showlegend: false, name: `${figure.label} max` });
        traces.push({ x: run.x, y: run.lo, yaxis: axis, mode: "lines", line: { width: 0 },
          fill: "tonexty", fillcolor: `${color}33`, hoverinfo: "skip", showlegend: false,
          name: `${figure.label} min` });
      }
      traces.push({ x, y: values.last, yaxis: axis, mode: "lines", line: { color, width: 1.6 },
        name: figure.label, connectgaps: false, meta: figure.column });
    });
  });
  if (state.underlyingFigure) {
    const index = panels.length;
    const axis = index === 0 ? "y" : `y${index + 1}`;
    const key = index === 0 ? "yaxis" : `yaxis${index + 1}`;
    plotLayout[key] = { domain: domain(index), title: { text: `per underlying<br>${state.underlyingFigure}` } };
    Object.entries(series.underlyings).forEach(([symbol, figures], n) => {
      if (!figures[state.underlyingFigure]) return;
      traces.push({ x, y: figures[state.underlyingFigure], yaxis: axis, mode: "lines",
        name: symbol, line: { width: 1.3, dash: "dot", color: LINE_COLORS[(n + 3) % LINE_COLORS.length] },
        connectgaps: false, meta: `underlying:${symbol}` });
    });
  }
  // The event lane shares the time axis, so a flat line is never mistaken for a quiet market.
  const laneAxis = `y${rows + 1}`;
  const lanes = ["other", "alert", "breaker", "reset window", "connection", "gap"];
  plotLayout[`yaxis${rows + 1}`] = { domain: [0, lane], type: "category", fixedrange: true,
    categoryorder: "array", categoryarray: lanes, range: [-0.5, lanes.length - 0.5],
    tickfont: { size: 10 } };
  const byLane = {};
  for (const event of series.events) {
    (byLane[event.lane] = byLane[event.lane] || []).push(event);
    if (event.from && event.to) {
      plotLayout.shapes.push({ type: "rect", xref: "x", yref: "paper", x0: local(event.from),
        x1: local(Date.parse(event.to) + series.window.step_s * 1000 / 2), y0: 0, y1: 1,
        fillcolor: "rgba(207,34,46,0.12)", line: { width: 0 }, layer: "below" });
    }
  }
  for (const [name, events] of Object.entries(byLane)) {
    traces.push({ x: events.map((e) => local(e.ts)), y: events.map(() => name), yaxis: laneAxis,
      mode: "markers", name: `events: ${name}`, marker: { color: LANE_COLORS[name] || "#656d76", size: 9, symbol: "line-ns-open", line: { width: 2 } },
      text: events.map((e) => `${e.event}: ${e.message}`), hoverinfo: "text+x", showlegend: false });
  }
  Plotly.react("chart", traces, plotLayout, { displaylogo: false, responsive: true });
  const points = series.rows.reduce((a, b) => a + b, 0);
  $("chart-note").textContent = `${series.t.length} buckets of ${series.window.step_s} s from ${points} rows` +
    (series.database.error ? ` — as of ${local(series.database.as_of)}` : "");
}

// Contiguous runs of non-null (min, max) pairs where the band has a width at all.
function runs(x, lo, hi) {
  const found = [];
  let current = null;
  for (let i = 0; i < x.length; i += 1) {
    if (lo[i] === null || hi[i] === null) {
      current = null;
      continue;
    }
    if (!current) found.push((current = { x: [], lo: [], hi: [] }));
    current.x.push(x[i]);
    current.lo.push(lo[i]);
    current.hi.push(hi[i]);
  }
  return found.filter((run) => run.lo.some((v, i) => v !== run.hi[i]));
}

function updateUnderlyingSelect(available) {
  const select = $("underlying-figure");
  if (!state.underlyingFigure || !available.includes(state.underlyingFigure)) {
    state.underlyingFigure = ["net_dollar_delta", "net_delta"].find((f) => available.includes(f)) ||
      available[0] || null;
  }
  if ([...select.options].map((o) => o.value).join() !== available.join()) {
    select.replaceChildren(...available.map((f) => el("option", { value: f }, f)));
  }
  if (state.underlyingFigure) select.value = state.underlyingFigure;
}

function renderEvents(events) {
  const list = $("events");
  const items = events.slice(-200).reverse().map((event) => {
    const li = el("li", { "data-event": event.event, "data-lane": event.lane, class: event.level });
    li.append(el("span", { class: "lane" }, event.lane), ` ${local(event.ts)} ${event.message}`);
    return li;
  });
  list.replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "no events in this range")]));
}

// ---- Greeks by expiry and the legs -------------------------------------------------------

// One bar per underlying in each bucket, stacked, for the figure chosen: where in time the
// gamma (or theta, vega, delta) sits. An unknown bucket has no bar, never a bar of 0.
function renderExpiryChart(expiry) {
  const chart = $("expiry-chart");
  if (!expiry) {
    Plotly.purge(chart);
    return;
  }
  const [, label] = EXPIRY_FIGURES.find(([name]) => name === state.expiryFigure);
  const x = expiry.buckets.map((bucket) => `${bucket} d`);
  const traces = Object.entries(expiry.underlyings).map(([symbol, scope], index) => ({
    type: "bar", name: symbol, meta: symbol, x, y: scope.figures[state.expiryFigure],
    marker: { color: LINE_COLORS[index % LINE_COLORS.length] },
  }));
  Plotly.react(chart, traces, {
    barmode: "relative", margin: { t: 10, r: 10, b: 30, l: 60 }, height: 260,
    yaxis: { title: { text: `${label} (${expiry.currency || "$"})` } },
    legend: { orientation: "h" },
  }, { displaylogo: false, responsive: true });
}

function renderExpiry(expiry) {
  state.expiry = expiry;
  renderExpiryChart(expiry);
  const table = $("expiry");
  if (!expiry) {
    table.replaceChildren(el("caption", {}, "no Greeks by expiry stored for this account"));
    $("expiry-note").textContent = "";
    return;
  }
  $("expiry-note").textContent = `${expiry.currency || ""} at ${local(expiry.ts)}` +
    (Object.keys(expiry.incomplete).length ? " (incomplete: some positions left out)" : "");
  const head = el("tr");
  head.append(el("th", {}, "underlying"), el("th", {}, "figure"));
  for (const bucket of expiry.buckets) head.append(el("th", {}, `${bucket} d`));
  head.append(el("th", {}, "delta-one"));
  const rows = [];
  const scopes = [["all", expiry.total], ...Object.entries(expiry.underlyings)];
  for (const [name, scope] of scopes) {
    EXPIRY_FIGURES.forEach(([figure, label], index) => {
      const tr = el("tr", { "data-scope": name, "data-figure": figure, class: index ? null : "first" });
      tr.append(el("td", { class: "scope" }, index ? "" : name), el("td", { class: "scope" }, label));
      scope.figures[figure].forEach((value, bucket) => {
        tr.append(el("td", { "data-bucket": expiry.buckets[bucket], class: value === null ? "null" : null },
          formatNumber(value)));
      });
      const linear = figure === "net_dollar_delta" ? scope.linear_dollar_delta : null;
      tr.append(el("td", { "data-bucket": "delta-one", class: linear === null ? "null" : null },
        formatNumber(linear)));
      rows.push(tr);
    });
  }
  table.replaceChildren(el("thead", {}), el("tbody", {}));
  table.tHead.append(head);
  table.tBodies[0].append(...rows);
}

// Unknowns sort last whichever the direction: an unknown figure is not a small one.
function compareLegs(a, b, key, descending, text) {
  const x = a[key], y = b[key];
  if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;
  if (y === null || y === undefined) return -1;
  const order = text ? String(x).localeCompare(String(y)) : x - y;
  return descending ? -order : order;
}

function renderLegs() {
  const table = $("legs");
  const { key, descending } = state.legsSort;
  const text = LEG_COLUMNS.find(([name]) => name === key)?.[2] || false;
  const head = el("tr");
  for (const [name, label] of LEG_COLUMNS) {
    const sort = name === key ? (descending ? "descending" : "ascending") : null;
    const th = el("th", { "data-column": name, "aria-sort": sort }, label);
    th.addEventListener("click", () => {
      state.legsSort = { key: name, descending: name === key ? !descending : true };
      renderLegs();
    });
    head.append(th);
  }
  const legs = [...state.legs].sort((a, b) => compareLegs(a, b, key, descending, text));
  const rows = legs.map((leg) => {
    const link = state.legsLink;
    const linked = link && (link.conid === leg.conid || link.symbol === leg.symbol);
    const tr = el("tr", { "data-conid": String(leg.conid), class: linked ? "linked" : null });
    for (const [name, , isText] of LEG_COLUMNS) {
      const value = leg[name];
      const shown = isText || name === "conid" ? (value ?? "—") :
        name === "implied_vol" && value !== null ? `${(value * 100).toFixed(2)} %` : formatNumber(value);
      tr.append(el("td", { "data-column": name, class: isText ? "text" : (value === null ? "null" : null) },
        String(shown)));
    }
    return tr;
  });
  table.tHead.replaceChildren(head);
  if (!rows.length) {
    const empty = el("tr");
    empty.append(el("td", { colspan: String(LEG_COLUMNS.length), class: "text muted" }, "no legs stored"));
    rows.push(empty);
  }
  table.tBodies[0].replaceChildren(...rows);
  $("legs-note").textContent = legs.length ?
    `${legs.length} positions at ${local(legs[0].ts)}; click a column to sort` : "no legs stored";
}

async function refreshPositions() {
  if (!state.account) return;
  const answer = await getJSON(`/api/positions?${new URLSearchParams({ account: state.account })}`);
  if (answer.account !== state.account) return;
  renderExpiry(answer.expiry);
  state.legs = answer.legs;
  renderLegs();
}

// ---- the scenario grid (docs/scenarios.md) -------------------------------------------------

// A grid that left positions out is no account's total: said beside it, with the reasons.
function partialText(counts) {
  if (!counts || !counts.missing) return "";
  const reasons = Object.entries(counts.reasons || {}).map(([r, n]) => `${n} ${r}`).join(", ");
  return `partial: ${counts.missing} positions left out${reasons ? ` (${reasons})` : ""}`;
}

// P&L against the move today: now and an hour ago at IV unchanged, now also at ±5 vol points;
// the delta-gamma approximation at ±10 % as markers beside the revaluation (own moves only).
function renderProfile(body) {
  const chart = $("profile-chart");
  const view = state.profileView;
  const now = body.now?.views[view];
  const before = body.hour_ago?.views[view];
  const x = body.moves_pct;
  const traces = [];
  if (now?.lines) {
    for (const [vol, dash] of [["-5", "dot"], ["5", "dash"]]) {
      traces.push({ type: "scatter", mode: "lines", name: `now, ${vol === "5" ? "+5" : vol} vol pts`,
        meta: `now_vol${vol === "5" ? "+5" : vol}`, x, y: now.lines[vol],
        line: { color: "#0969da", width: 1, dash } });
    }
    traces.push({ type: "scatter", mode: "lines+markers", name: `now (${local(body.now.ts)})`,
      meta: "now", x, y: now.lines["0"], line: { color: "#0969da", width: 3 } });
  }
  if (before?.lines) {
    traces.push({ type: "scatter", mode: "lines+markers", name: `an hour ago (${local(body.hour_ago.ts)})`,
      meta: "hour_ago", x, y: before.lines["0"], line: { color: "#656d76", width: 2 } });
  }
  const approx = body.delta_gamma;
  if (view === "own" && approx?.approximation) {
    traces.push({ type: "scatter", mode: "markers", name: "delta-gamma approximation",
      meta: "delta_gamma", x: approx.moves_pct, y: approx.approximation,
      marker: { symbol: "x", size: 11, color: "#cf222e" } });
  }
  const currency = body.now?.currency || "base currency";
  const partial = partialText(now?.completeness);
  const note = $("profile-note");
  note.textContent = !body.now ? "no scenario grid stored for this account" :
    !now?.lines ? "no position contributed" : partial ? `${partial}: not the account's total` : "";
  if (before?.lines && before.complete === false) {
    note.textContent += `${note.textContent ? "; " : ""}an hour ago ${partialText(before.completeness)}`;
  }
  note.className = partial || before?.complete === false ? "partial" : "muted";
  note.dataset.complete = now?.complete === false ? "partial" : "whole";
  if (!traces.length) {
    Plotly.purge(chart);  // no grid: no empty axes that read as a flat book
  } else {
    Plotly.react(chart, traces, {
      height: 300, margin: { t: 10, r: 10, b: 40, l: 70 }, legend: { orientation: "h" },
      xaxis: { title: { text: view === "own" ? "each underlying's move (%)" : "the benchmark's move (%)" },
        tickvals: x },
      yaxis: { title: { text: `P&L (${currency})${partial ? " *" : ""}` } },
    }, { displaylogo: false, responsive: true });
  }
  const dg = $("delta-gamma");
  if (view !== "own" || !approx) {
    dg.textContent = "";
  } else {
    dg.textContent = approx.moves_pct.map((move, k) => `at ${move > 0 ? "+" : ""}${move} %: ` +
      `delta-gamma ${formatNumber(approx.approximation?.[k] ?? null)} against ` +
      `${formatNumber(approx.revaluation?.[k] ?? null)} revalued`).join("; ") +
      (approx.complete === false ? " (partial: positions left out)" : "");
  }
}

// The worst loss now in words, over the chart's window, and which underlyings it comes from.
function renderWorst(body) {
  const view = state.profileView;
  const worst = view === "own" ? body.worst : body.beta_worst;
  const words = $("worst-words");
  words.dataset.complete = worst?.complete === false ? "partial" : "whole";
  words.className = worst?.complete === false ? "partial" : "";
  words.textContent = !worst ? "— (no grid)" :
    `${formatNumber(worst.pnl)}${worst.complete === false ? "*" : ""} ${body.now.currency || ""} ` +
    `at ${worst.words}` + (worst.complete === false ? " (partial: positions left out)" : "");
  const series = body.worst_over_time;
  const column = view === "own" ? "worst_pnl" : "beta_worst_pnl";
  if (!series.t.length) {
    Plotly.purge("worst-chart");
  } else {
    Plotly.react("worst-chart", [{
      type: "scatter", mode: "lines+markers", name: "worst loss", meta: column,
      x: series.t.map(local), y: series[column], line: { color: "#cf222e" },
    }], {
      height: 220, margin: { t: 10, r: 10, b: 40, l: 70 },
      yaxis: { title: { text: `worst P&L of the grid (${body.now?.currency || "base currency"})` } },
    }, { displaylogo: false, responsive: true });
  }
  const table = $("worst-underlyings");
  const head = el("tr");
  head.append(el("th", {}, "underlying"), el("th", {}, "P&L in the worst scenario"));
  // The per-underlying grids are by own moves only: the drill-down is of the own-move worst.
  const shown = view === "own" && body.worst ? body.worst_by_underlying : [];
  $("worst-underlyings-note").textContent = view === "own" ?
    (shown.length ? `at ${body.worst.words}, the largest loss first; click one for its legs` : "") :
    "per underlying by own moves only: choose own moves";
  table.tHead.replaceChildren(...(shown.length ? [head] : []));
  table.tBodies[0].replaceChildren(...shown.map((item) => {
    const tr = el("tr", { "data-symbol": item.symbol });
    tr.append(el("td", { class: "text" }, item.symbol),
      el("td", { class: item.pnl === null ? "null" : (item.complete ? null : "partial"),
        "data-value": item.pnl === null ? "null" : String(item.pnl) },
      `${formatNumber(item.pnl)}${item.complete || item.pnl === null ? "" : "*"}`));
    tr.addEventListener("click", () => linkLegs({ symbol: item.symbol }));
    return tr;
  }));
}

function renderScenarios(body) {
  state.scenarios = body;
  renderProfile(body);
  renderWorst(body);
}

async function refreshScenarios() {
  if (!state.account) return;
  const query = new URLSearchParams({ account: state.account, window: state.window });
  const body = await getJSON(`/api/scenarios?${query}`);
  if (body.account === state.account && body.window === state.window) renderScenarios(body);
}

// ---- drill-down to the legs ----------------------------------------------------------------

// Mark the legs of an underlying or one position in the legs list, and bring the first there.
function linkLegs(link) {
  state.legsLink = link;
  renderLegs();
  $("legs").querySelector("tr.linked")?.scrollIntoView({ block: "nearest" });
}

const EXPLAIN_POSITIONS_HINT = "click a bar of the last hour to list its positions";
const EXPLAIN_POSITION_COLUMNS = [
  ["symbol", "underlying", true], ["conid", "conid", true], ["sec_type", "type", true],
  ["option_right", "right", true], ["strike", "strike", false], ["quantity", "qty", false],
  ["delta_pnl", "delta", false], ["gamma_pnl", "gamma", false], ["theta_pnl", "theta", false],
  ["vega_pnl", "vega", false], ["linear_pnl", "linear", false],
  ["explained_pnl", "explained", false], ["actual_pnl", "actual", false],
  ["missing", "missing", true],
  // Why the gateway's own P&L of the position is no actual (docs/pnl-explain.md, "Actual").
  ["actual_missing", "actual unknown", true],
];

// The positions behind one interval of the explain chart (each interval: the last hour only).
async function showExplainPositions(index) {
  const row = state.explain?.rows[index];
  const note = $("explain-positions-note");
  if (!row) return;
  if (state.explain.width) {
    note.textContent = "the bars are sums: choose the last hour to list one interval's positions";
    return;
  }
  const query = new URLSearchParams({ account: state.account, ts: row.ts });
  const answer = await getJSON(`/api/explain/positions?${query}`);
  const table = $("explain-positions");
  const head = el("tr");
  for (const [, label] of EXPLAIN_POSITION_COLUMNS) head.append(el("th", {}, label));
  table.tHead.replaceChildren(head);
  table.tBodies[0].replaceChildren(...answer.positions.map((position) => {
    const tr = el("tr", { "data-conid": String(position.conid) });
    for (const [name, , isText] of EXPLAIN_POSITION_COLUMNS) {
      const value = position[name];
      tr.append(el("td", { "data-column": name, class: isText ? "text" : (value === null ? "null" : null) },
        isText ? String(value ?? "—") : formatNumber(value)));
    }
    tr.addEventListener("click", () => linkLegs({ conid: position.conid }));
    return tr;
  }));
  note.textContent = `interval ending ${local(row.ts)}: ${answer.positions.length} positions, ` +
    "the largest explained first; click one for its leg";
  note.dataset.ts = row.ts;
}

// ---- the loop ----------------------------------------------------------------------------

async function refreshSeries() {
  if (!state.account) return;
  const query = new URLSearchParams({ account: state.account, window: state.window });
  const series = await getJSON(`/api/series?${query}`);
  if (series.account !== state.account || series.window?.name !== state.window) return;
  if (series.t) renderChart(series);
  renderEvents(series.events || []);
  const explain = await getJSON(`/api/explain?${query}`);
  if (explain.account === state.account && explain.window === state.window) {
    renderExplain(explain);
  }
  // The scenario grid is an extra: its failure leaves the rest updating.
  await refreshScenarios().catch(showError);
}

// ---- the P&L explain -----------------------------------------------------------------------

const EXPLAIN_TERMS = [
  ["delta_pnl", "delta"], ["gamma_pnl", "gamma"], ["theta_pnl", "theta"], ["vega_pnl", "vega"],
  ["linear_pnl", "linear"],
];

function renderExplain(explain) {
  state.explain = explain;
  const score = explain.score;
  $("explain-score").textContent = score
    ? `${score.day}: ${score.scored} intervals scored, ${score.not_scored} not; explained share `
      + `${formatNumber(score.explained_share)}, Spearman ${formatNumber(score.spearman)} `
      + `(FRTB green from 0.80), worst interval ${formatNumber(score.worst_unexplained)}`
    : "no P&L explain stored for this account";
  const rows = explain.rows;
  const x = rows.map((row) => row.ts);
  const traces = EXPLAIN_TERMS.map(([name, label], k) => ({
    type: "bar", name: label, meta: name, x, marker: { color: LINE_COLORS[k] },
    y: rows.map((row) => (row.scored ? row[name] : null)),
  }));
  traces.push({
    type: "scatter", mode: "lines+markers", name: "actual", meta: "actual_pnl", x,
    y: rows.map((row) => (row.scored ? row.actual_pnl : null)),
    line: { color: "#000000" },
  });
  const per = explain.width ? `scored intervals summed per ${explain.width}` : "each interval";
  Plotly.react("explain-chart", traces, {
    barmode: "relative", height: 280, margin: { t: 10, r: 10, b: 40, l: 70 },
    yaxis: { title: { text: `${per} (base currency)` } }, legend: { orientation: "h" },
  }, { displaylogo: false, responsive: true });
  const chart = $("explain-chart");
  if (!chart.dataset.drills) {  // Plotly keeps its handlers across react: bound once
    chart.dataset.drills = "1";
    chart.on("plotly_click", (event) => showExplainPositions(event.points[0].pointIndex).catch(showError));
  }
}

function showError(error) {
  $("updated").textContent = `update failed: ${error.message}`;
}

async function refresh() {
  try {
    const overview = await getJSON("/api/overview");
    state.refreshS = overview.refresh_s;
    $("logout").hidden = !overview.token_required;
    if (overview.layout) state.layout = overview.layout;
    renderHealth(overview.health, overview.alerts, overview.database, overview.now);
    state.accounts = overview.accounts;
    if (state.layout) {
      renderAccounts(overview.accounts);
      await refreshSeries();
      // The expiry table and the legs are extras: their failure leaves the rest updating.
      await refreshPositions().catch(showError);
    }
    state.updates += 1;
    document.body.dataset.updates = String(state.updates);
    $("updated").textContent = `updated ${local(overview.now)}`;
  } catch (error) {
    showError(error);
  } finally {
    setTimeout(refresh, state.refreshS * 1000);
  }
}

function setup() {
  const windows = $("windows");
  for (const [name, label] of [["1h", "last hour"], ["today", "today"], ["5d", "5 days"]]) {
    const button = el("button", { type: "button", "data-window": name,
      "aria-pressed": String(name === state.window) }, label);
    button.addEventListener("click", () => {
      state.window = name;
      for (const b of windows.children) b.setAttribute("aria-pressed", String(b === button));
      refreshSeries().catch(showError);
    });
    windows.append(button);
  }
  $("account").addEventListener("change", (event) => selectAccount(event.target.value));
  $("underlying-figure").addEventListener("change", (event) => {
    state.underlyingFigure = event.target.value;
    refreshSeries().catch(showError);
  });
  $("expiry-figure").replaceChildren(...EXPIRY_FIGURES.map(([name, label]) =>
    el("option", { value: name }, label)));
  $("expiry-figure").value = state.expiryFigure;
  $("expiry-figure").addEventListener("change", (event) => {
    state.expiryFigure = event.target.value;
    renderExpiryChart(state.expiry);
  });
  $("profile-view").addEventListener("change", (event) => {
    state.profileView = event.target.value;
    if (state.scenarios) renderScenarios(state.scenarios);
  });
  $("filter").addEventListener("input", (event) => {
    state.filter = event.target.value.trim().toLowerCase();
    if (state.layout) renderAccounts(state.accounts);
  });
  refresh();
}

setup();
