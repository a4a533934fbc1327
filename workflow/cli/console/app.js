// vidflow console: executions, their graph and timeline, the job's manifest, a player.
// Plain JavaScript on purpose: no build step, nothing fetched from a CDN.
"use strict";

const view = document.getElementById("view");
let timer = null;
let hls = null;
let renewal = null; // the timer that fetches the player's next token
let generation = 0; // the player's: a renewal for a player since stopped is dropped
let filter = "";

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const badge = (status) => `<span class="badge ${esc(status)}">${esc(status)}</span>`;
const secs = (s) => (s == null ? "" : `${Number(s).toFixed(1)} s`);
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.error || `${url}: ${response.status}`);
  }
  return response.json();
}

function stamp() {
  document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

function schedule(fn, ms) {
  clearTimeout(timer);
  timer = setTimeout(fn, ms);
}

// ---- metrics panel: the dashboard's numbers, from the functions' EMF records ---------

let metrics = null;
let metricsAt = 0;

async function latestMetrics() {
  if (Date.now() - metricsAt > 5000) {
    metrics = await getJSON("/api/metrics");
    metricsAt = Date.now();
  }
  return metrics;
}

function metricsPanel(m) {
  const tile = (name, value, label) =>
    `<div class="tile"><b data-metric="${name}">${esc(value)}</b><span>${esc(label)}</span></div>`;
  const rate = m.jobs.failure_rate == null ? "-" : `${(100 * m.jobs.failure_rate).toFixed(1)} %`;
  const ms = (s) => (s == null ? "-" : `${Number(s).toFixed(2)} s`);
  const peak = Math.max(1, ...m.hours.map((h) => h.started));
  const bars = m.hours
    .map((h) => {
      const title = `${new Date(h.hour_start_ms).toLocaleString()}: ${h.started} started, ${h.succeeded} succeeded, ${h.failed} failed`;
      return `<span class="bar" title="${esc(title)}" style="height:${(100 * h.started) / peak}%"></span>`;
    })
    .join("");
  const errors = Object.entries(m.failures_by_error)
    .map(([name, n]) => `<tr><td>${esc(name)}</td><td data-error="${esc(name)}">${n}</td></tr>`)
    .join("");
  return `<section id="metrics"><h2>Last 24 hours</h2><div class="tiles">
      ${tile("started", m.jobs.started, "jobs started")}
      ${tile("succeeded", m.jobs.succeeded, "published")}
      ${tile("failed", m.jobs.failed, "failed")}
      ${tile("failure-rate", rate, "failure rate")}
      ${tile("source-minutes", m.minutes.source.toFixed(2), "source minutes")}
      ${tile("output-minutes", m.minutes.output.toFixed(2), "output minutes")}
      ${tile("latency-p50", ms(m.live.latency_p50), "live latency p50")}
      ${tile("latency-p95", ms(m.live.latency_p95), "live latency p95")}
      ${tile("gaps", m.live.gaps, "live gaps")}
    </div>
    <div class="hours" title="jobs started per hour">${bars}</div>
    <table id="failures-by-error"><thead><tr><th>error</th><th>failed jobs</th></tr></thead>
      <tbody>${errors || `<tr><td colspan="2" class="muted">no failures</td></tr>`}</tbody></table>
    </section>`;
}

// ---- executions list -------------------------------------------------------------

async function showList() {
  const data = await getJSON(`/api/executions${filter ? `?status=${filter}` : ""}`);
  const panel = metricsPanel(await latestMetrics());
  document.getElementById("stack").textContent = `stack ${data.stack}`;
  const filters = ["", "RUNNING", "SUCCEEDED", "FAILED"]
    .map((s) => `<button data-filter="${s}" class="${s === filter ? "on" : ""}">${s || "all"}</button>`)
    .join("");
  const rows = data.executions
    .map(
      (e) => `<tr data-arn="${esc(e.arn)}" data-status="${esc(e.status)}">
        <td>${badge(e.status)}</td>
        <td><a href="#/execution/${encodeURIComponent(e.arn)}">${esc(e.name)}</a></td>
        <td>${esc(e.machine)}</td><td>${esc(e.input_key)}</td>
        <td>${esc(when(e.start))}</td><td>${esc(secs(e.seconds))}</td>
        <td>${e.error ? `<b>${esc(e.error)}</b>` : ""}</td></tr>`
    )
    .join("");
  const streams = data.streams
    .map(
      (s) => `<tr><td>${esc(s.stream)}</td><td>${s.ended ? "ended" : "live"}</td>
        <td><a href="#/stream/${encodeURIComponent(s.stream)}">play</a></td></tr>`
    )
    .join("");
  view.innerHTML = `${panel}
    <h2>Executions</h2>
    <div class="filters">${filters}</div>
    <table id="executions"><thead><tr><th>status</th><th>name</th><th>state machine</th>
      <th>input</th><th>started</th><th>duration</th><th>error</th></tr></thead>
      <tbody>${rows || `<tr><td colspan="7" class="muted">no executions yet</td></tr>`}</tbody></table>
    <h2>Live streams</h2>
    <table id="streams"><tbody>${streams || `<tr><td class="muted">none</td></tr>`}</tbody></table>`;
  view.querySelectorAll("[data-filter]").forEach((b) =>
    b.addEventListener("click", () => {
      filter = b.dataset.filter;
      showList();
    })
  );
  stamp();
  schedule(showList, 2000);
}

// ---- state machine graph, drawn from the ASL ------------------------------------

function targets(state) {
  const out = [];
  if (state.Next) out.push([state.Next, "next"]);
  if (state.Default) out.push([state.Default, "next"]);
  (state.Choices || []).forEach((c) => out.push([c.Next, "next"]));
  (state.Catch || []).forEach((c) => out.push([c.Next, "catch"]));
  return out;
}

function layout(definition) {
  // Longest-path layering from StartAt; each layer is a row.
  const depth = { [definition.StartAt]: 0 };
  const names = Object.keys(definition.States);
  for (let pass = 0; pass < names.length; pass++) {
    for (const name of names) {
      if (depth[name] === undefined) continue;
      for (const [to] of targets(definition.States[name])) {
        if (depth[to] === undefined || depth[to] < depth[name] + 1) depth[to] = depth[name] + 1;
      }
    }
  }
  names.forEach((n) => { if (depth[n] === undefined) depth[n] = 0; });
  const rows = {};
  names.forEach((n) => (rows[depth[n]] = rows[depth[n]] || []).push(n));
  const place = {};
  const W = 170, H = 34, GX = 30, GY = 34;
  Object.entries(rows).forEach(([d, row]) =>
    row.forEach((n, i) => (place[n] = { x: 20 + i * (W + GX), y: 20 + Number(d) * (H + GY), w: W, h: H }))
  );
  const width = Math.max(...Object.values(rows).map((r) => r.length)) * (W + GX) + 40;
  const height = (Object.keys(rows).length) * (H + GY) + 40;
  return { place, width, height };
}

function graph(definition, states, progress) {
  const { place, width, height } = layout(definition);
  let edges = "";
  let nodes = "";
  for (const [name, state] of Object.entries(definition.States)) {
    const a = place[name];
    for (const [to, kind] of targets(state)) {
      const b = place[to];
      edges += `<path class="edge ${kind}" d="M${a.x + a.w / 2},${a.y + a.h} C${a.x + a.w / 2},${a.y + a.h + 20} ${b.x + b.w / 2},${b.y - 20} ${b.x + b.w / 2},${b.y}"/>`;
    }
    const status = states[name] ? states[name].status : "NOT_RUN";
    let label = `${name} (${state.Type})`;
    if (state.Type === "Map" && progress) {
      // Each Map counts its own items: those read from the plan key it names.
      const key = (((state.ItemReader || {}).Parameters || {})["Key.$"] || "").split(".").pop();
      const counts = (progress.maps || {})[key] || progress;
      label = `${name}: ${counts.done}/${counts.items} items`;
    }
    nodes += `<g class="node ${status}" data-state="${esc(name)}" data-status="${status}">
      <rect x="${a.x}" y="${a.y}" width="${a.w}" height="${a.h}"/>
      <text x="${a.x + 8}" y="${a.y + 21}">${esc(label)}</text></g>`;
  }
  return `<svg id="graph" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
    <path d="M0,0 L10,5 L0,10 z" fill="#8c959f"/></marker></defs>${edges}${nodes}</svg>`;
}

// ---- timeline (Gantt) ---------------------------------------------------------------

function gantt(bars) {
  if (!bars.length) return `<p class="muted">no events yet</p>`;
  const now = Date.now() / 1000;
  const t0 = Math.min(...bars.map((b) => b.start));
  const t1 = Math.max(...bars.map((b) => b.end ?? now));
  const span = Math.max(t1 - t0, 0.001);
  const W = 760, L = 150, R = 16, H = 18;
  const x = (t) => L + ((t - t0) / span) * (W - L - R);
  const rows = bars
    .map((b, i) => {
      const end = b.end ?? now;
      return `<g class="row" data-kind="${b.kind}" data-label="${esc(b.label)}">
        <text x="4" y="${i * H + 13}">${esc(b.label)}</text>
        <rect class="bar ${b.kind} ${b.status}" x="${x(b.start)}" y="${i * H + 3}" width="${Math.max(2, x(end) - x(b.start))}" height="${H - 6}">
        <title>${esc(b.label)}: ${(end - b.start).toFixed(2)} s</title></rect></g>`;
    })
    .join("");
  return `<svg id="timeline" width="${W}" height="${bars.length * H + 24}">${rows}
    <text x="${L}" y="${bars.length * H + 18}" class="muted">0 s</text>
    <text x="${W - R - 50}" y="${bars.length * H + 18}">${span.toFixed(1)} s</text></svg>`;
}

// ---- execution page -----------------------------------------------------------------

function manifestPanel(m, cost) {
  if (!m) return "";
  const rungs = m.renditions
    .map((r) => `<tr><td>${esc(r.name)}</td><td>${r.width}x${r.height}</td><td>${r.kbps} kbps</td>
      <td>${r.segments}</td><td>${secs(r.duration)}</td><td>${(r.bytes / 1e6).toFixed(2)} MB</td></tr>`)
    .join("");
  const timings = Object.entries(m.timings || {})
    .map(([k, v]) => `<tr><td>${esc(k)}</td><td>${v == null ? "" : esc(v)}</td></tr>`)
    .join("");
  const dollars = cost
    ? Object.entries(cost).map(([k, v]) => `<tr><td>${esc(k)}</td><td>$${Number(v).toFixed(6)}</td></tr>`).join("")
    : "";
  return `<div class="panel" id="manifest"><h2>Manifest</h2>
    <p>duration ${secs(m.duration)}, ${m.chunks} chunks, ${m.segment_seconds} s segments</p>
    <table><thead><tr><th>rung</th><th>size</th><th>target</th><th>segments</th><th>duration</th><th>bytes</th></tr></thead>
    <tbody>${rungs}</tbody></table>
    <h2>Timings</h2><table id="timings">${timings}</table>
    <h2>Cost estimate (AWS list prices)</h2><table id="cost">${dollars}</table></div>`;
}

const RUNG_COLOURS = ["#0969da", "#1a7f37", "#bf8700", "#cf222e", "#8250df", "#57606a"];

// Each rung's VMAF per chunk over the asset's time, its summary, and how a per-title
// ladder was chosen.
function qualityPanel(m) {
  if (!m || !m.quality) return "";
  const W = 640, H = 200, L = 40, R = 10, T = 10, B = 24;
  const rungs = Object.entries(m.quality.rungs);
  const values = rungs.flatMap(([, q]) => q.chunks.map((c) => c.vmaf_mean));
  const low = Math.max(0, Math.floor(Math.min(...values) / 10) * 10);
  const x = (t) => L + ((W - L - R) * t) / Math.max(m.duration, 1e-9);
  const y = (v) => T + ((H - T - B) * (100 - v)) / Math.max(100 - low, 1);
  const lines = rungs
    .map(([name, q], i) => {
      const colour = RUNG_COLOURS[i % RUNG_COLOURS.length];
      const points = q.chunks.map((c) => `${x(c.start).toFixed(1)},${y(c.vmaf_mean).toFixed(1)}`);
      const dots = q.chunks
        .map((c) => `<circle cx="${x(c.start).toFixed(1)}" cy="${y(c.vmaf_mean).toFixed(1)}" r="3" fill="${colour}">
          <title>${esc(name)} at ${secs(c.start)}: VMAF ${c.vmaf_mean}</title></circle>`)
        .join("");
      return `<g class="rung" data-rung="${esc(name)}"><polyline fill="none" stroke="${colour}" stroke-width="2"
        points="${points.join(" ")}"/>${dots}</g>`;
    })
    .join("");
  const summary = rungs
    .map(([name, q], i) => `<tr data-rung="${esc(name)}"><td><span style="color:${RUNG_COLOURS[i % RUNG_COLOURS.length]}">&#9632;</span>
      ${esc(name)}</td><td>${q.vmaf_mean}</td><td>${q.vmaf_p5}</td><td>${q.vmaf_min}</td><td>${q.psnr_mean} dB</td><td>${q.frames}</td></tr>`)
    .join("");
  const decisions = (m.ladder.rungs || [])
    .map((d) => `<tr class="${d.kept ? "" : "muted"}"><td>${esc(d.rung)}</td><td>${d.fixed_kbps}</td>
      <td>${d.kept ? d.kbps : "dropped"}</td><td>${d.kept ? esc(d.name || d.rung) : ""}</td><td>${d.predicted_vmaf}</td>
      <td>${esc(d.kept ? d.goal : d.reason)}</td></tr>`)
    .join("");
  const ladder = decisions
    ? `<h2>Per-title ladder</h2><table id="ladder"><thead><tr><th>rung</th><th>fixed kbps</th><th>chosen kbps</th>
       <th>published as</th><th>predicted VMAF</th><th>why</th></tr></thead><tbody>${decisions}</tbody></table>
       <p class="muted">analysis: ${m.ladder.spans.length} spans, ${m.ladder.analysis_share} of the chunks' encoding time</p>`
    : "";
  return `<div class="panel" id="quality"><h2>Quality (${esc(m.quality.model)}, every ${m.quality.stride}. frame${
    m.quality.segment_every > 1 ? ` of one segment in ${m.quality.segment_every}` : ""})</h2>
    <svg id="quality-chart" width="${W}" height="${H}">
      <line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#d0d7de"/>
      <text x="4" y="${y(100) + 4}" class="muted">100</text><text x="4" y="${y(low) + 4}" class="muted">${low}</text>
      <text x="${L}" y="${H - 6}" class="muted">0 s</text><text x="${W - R - 50}" y="${H - 6}">${secs(m.duration)}</text>
      ${lines}</svg>
    <table><thead><tr><th>rung</th><th>VMAF mean</th><th>5th pct</th><th>min</th><th>PSNR</th><th>frames</th></tr></thead>
    <tbody>${summary}</tbody></table>${ladder}</div>`;
}

function playerPanel(url) {
  if (!url) return "";
  return `<div class="panel"><h2>Player</h2>
    <video id="player" controls muted playsinline></video>
    <p><button id="play">play</button> rung <select id="rung"><option value="-1">auto</option></select>
    <span id="playing" class="muted"></span></p></div>`;
}

// hls.js reads an "identity" SAMPLE-AES key as MPEG-TS sample encryption, which a cbcs
// (CMAF) asset's is not: for one, its playlists reach hls.js naming the same key as
// ClearKey's, so that hls.js decrypts through EME, with a license from the key service.
function clearKeyPlaylists() {
  return class extends Hls.DefaultConfig.loader {
    load(context, config, callbacks) {
      const onSuccess = callbacks.onSuccess;
      super.load(context, config, {
        ...callbacks,
        onSuccess: (response, ...rest) => {
          if (typeof response.data === "string") {
            response.data = response.data.replaceAll('KEYFORMAT="identity"', 'KEYFORMAT="org.w3.clearkey"');
          }
          onSuccess(response, ...rest);
        },
      });
    }
  };
}

// A cbcs asset's key URI (its ClearKey license server), from its manifest; else null.
function clearKeyUri(manifest) {
  const encryption = manifest && manifest.encryption;
  return encryption && encryption.method === "cbcs" ? encryption.key_uri : null;
}

// When a token expires (its "e" claim, seconds since the epoch); null if unreadable.
function tokenExpiry(token) {
  try {
    const body = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return Number(JSON.parse(atob(body)).e) || null;
  } catch (e) {
    return null;
  }
}

// A console token lasts an hour, and a game is watched for longer: at half its life the
// page asks for the next one (`renew`), which every later request then carries (a live
// playlist's reloads, a rotating stream's period keys, a license). A failed ask is tried
// again at half the time left; every ask is 1 to 30 minutes after the last, so a page
// whose clock is far off neither asks every second nor waits past the token's hour.
function keepRenewed(token, renew, use) {
  const expires = tokenExpiry(token);
  if (!expires) return;
  const half = Math.min(1800000, Math.max(60000, (expires * 1000 - Date.now()) / 2));
  const mine = generation;
  renewal = setTimeout(async () => {
    let next = null;
    try {
      next = await renew();
    } catch (e) {
      // the console is restarting or the stack is gone: keep the token, ask again
    }
    if (mine !== generation) return; // its player stopped while it asked
    if (next) use(next);
    keepRenewed(next || token, renew, use);
  }, half);
}

function stopPlayer() {
  generation += 1;
  clearTimeout(renewal);
  if (hls) hls.destroy();
  hls = null;
}

// hls.js retries a failed load a few times, then stops for good (a fatal error). A game
// is watched for hours, through a stack that restarts or a key service's slow cold start:
// the player says what failed and loads again after a pause (1 s, doubling up to 30 s;
// 1 s again once a fragment is buffered), from the master when it never got one. A media
// error gets hls.js's own recovery, unless it had one in the last 5 s: then it stays shown.
function keepLoading(player, url) {
  let pause = 1000;
  let recovered = 0;
  player.on(Hls.Events.FRAG_BUFFERED, () => (pause = 1000));
  player.on(Hls.Events.ERROR, (event, data) => {
    if (!data.fatal) return;
    const shown = document.getElementById("playing");
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
      shown.textContent = `${data.details}: trying again in ${pause / 1000} s`;
      setTimeout(() => {
        if (hls !== player) return; // its view was left meanwhile
        if (player.levels.length) player.startLoad();
        else player.loadSource(url);
      }, pause);
      pause = Math.min(2 * pause, 30000);
    } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR && Date.now() - recovered > 5000) {
      shown.textContent = `${data.details}: recovering`;
      recovered = Date.now();
      player.recoverMediaError();
    } else {
      shown.textContent = `${data.details}: the player stopped`;
    }
  });
}

function startPlayer(url, token, license, renew) {
  const video = document.getElementById("player");
  if (!video) return;
  if (typeof Hls === "undefined") {
    // After `make demo` alone: everything else on the page works without hls.js.
    document.getElementById("playing").textContent = "no player: hls.js is not installed (make setup)";
    return;
  }
  stopPlayer();
  // A protected asset's key service asks for a playback token: every request carries
  // the current one.
  let current = token;
  if (token) keepRenewed(token, renew, (next) => (current = next));
  const withToken = (u) => `${u}${u.includes("?") ? "&" : "?"}token=${encodeURIComponent(current)}`;
  hls = new Hls({
    liveDurationInfinity: true,
    xhrSetup: token ? (xhr, u) => xhr.open("GET", withToken(u), true) : undefined,
    ...(license
      ? {
          emeEnabled: true,
          drmSystems: { "org.w3.clearkey": { licenseUrl: license } },
          licenseXhrSetup: token ? (xhr, u) => xhr.open("POST", withToken(u), true) : undefined,
          pLoader: clearKeyPlaylists(),
        }
      : {}),
  });
  keepLoading(hls, url);
  hls.loadSource(url);
  hls.attachMedia(video);
  const select = document.getElementById("rung");
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    hls.levels.forEach((level, i) => {
      const option = document.createElement("option");
      option.value = String(i);
      option.textContent = `${level.height}p (${Math.round(level.bitrate / 1000)} kbps)`;
      select.appendChild(option);
    });
  });
  select.addEventListener("change", () => (hls.currentLevel = Number(select.value)));
  document.getElementById("play").addEventListener("click", () => video.play());
  video.addEventListener("timeupdate", () => {
    const level = hls.levels[hls.currentLevel];
    document.getElementById("playing").textContent =
      `${video.currentTime.toFixed(1)} s${level ? `, ${level.height}p` : ""}`;
  });
}

async function showExecution(arn, first) {
  const load = () => getJSON(`/api/execution?arn=${encodeURIComponent(arn)}`);
  const d = await load();
  const s = d.summary;
  const failure = s.error
    ? `<div class="panel error" id="failure"><b id="error-name">${esc(s.error)}</b>
       ${d.failed_state ? ` in <i>${esc(d.failed_state)}</i>` : ""}<br>${esc(s.cause)}</div>`
    : "";
  const progress = d.progress
    ? `<div class="panel" id="progress"><b>${d.progress.done}</b> of ${d.progress.items} work items done
       ${d.progress.failed.length ? `; failed: ${esc(d.progress.failed.join(", "))}` : ""}
       <div class="progress"><div style="width:${d.progress.items ? (100 * d.progress.done) / d.progress.items : 0}%"></div></div></div>`
    : "";
  const media = d.player && (d.player.master || d.player.live);
  const bars = d.timeline.concat(d.item_bars || []);
  const playerHTML = first || !document.getElementById("player") ? playerPanel(media) : null;
  const parts = `
    <h2>${badge(s.status)} ${esc(s.name)}</h2>
    <p class="muted">${esc(s.machine)} · ${esc(s.input_key)} · started ${esc(when(s.start))} · ${esc(secs(s.seconds))}</p>
    ${failure}${progress}
    <div class="panel"><h2>Graph</h2>${graph(d.definition, d.states, d.progress)}
      <pre id="state-io" class="muted">click a state to see its input and output</pre></div>
    <div class="panel"><h2>Timeline</h2>${gantt(bars)}</div>
    ${manifestPanel(d.manifest, d.cost)}${qualityPanel(d.manifest)}`;
  if (playerHTML !== null) {
    view.innerHTML = `<div id="live-parts">${parts}</div><div id="player-slot">${playerHTML}</div>`;
    const renew = async () => (await load()).player.token;
    if (media) startPlayer(`/media/${media}`, d.player.token, clearKeyUri(d.manifest), renew);
  } else {
    document.getElementById("live-parts").innerHTML = parts;
  }
  view.querySelectorAll("#graph .node").forEach((node) =>
    node.addEventListener("click", () => {
      const run = d.states[node.dataset.state];
      document.getElementById("state-io").textContent = run
        ? `${node.dataset.state}: ${run.status}, ${run.attempts} attempt(s)` +
          `${run.error ? `\nerror: ${run.error}: ${run.cause || ""}` : ""}` +
          `\ninput:  ${run.input || ""}\noutput: ${run.output || ""}`
        : `${node.dataset.state}: not run`;
    })
  );
  stamp();
  if (s.status === "RUNNING") schedule(() => showExecution(arn, false), 1500);
}

async function showStream(stream) {
  const load = () => getJSON(`/api/stream?name=${encodeURIComponent(stream)}`);
  const d = await load();
  view.innerHTML = `<h2>Live stream ${esc(stream)}</h2>${playerPanel(true)}`;
  startPlayer(`/media/${d.live}`, d.token, null, async () => (await load()).token);
}

function route() {
  clearTimeout(timer);
  stopPlayer(); // a view's player stops with it: no live playlist reloaded off-screen
  const fail = (e) => (view.innerHTML = `<div class="panel error"><b>${esc(e.message)}</b></div>`);
  let hash;
  try {
    hash = decodeURIComponent(location.hash.slice(1));
  } catch (e) {
    return fail(new Error(`not a console link: ${location.hash.slice(0, 200)}`)); // a bad %-escape
  }
  if (hash.startsWith("/execution/")) showExecution(hash.slice("/execution/".length), true).catch(fail);
  else if (hash.startsWith("/stream/")) showStream(hash.slice("/stream/".length)).catch(fail);
  else showList().catch(fail);
}

window.addEventListener("hashchange", route);
route();
