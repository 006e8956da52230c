// The X-ray readers' console: the latest scans with the model's boxes and scores.
//
// It polls GET /v1/scans?site=&lane= about every second (newest first) and fetches
// each finished scan's detections once. The selected scan (by default the newest)
// is shown large as the server's overlay (/v1/scans/{id}/overlay.png: image, boxes,
// class and score labels) beside its detection table.
//
// A token that may read re-ID sightings (inspector, admin; not a reader) also gets
// the sightings panel: the recent sightings of the site (GET /v1/sightings?site=),
// then the sightings stream (GET /v1/sightings/stream: the alert stream's re-ID
// alerts) for new ones and their verdicts. The browser resumes a dropped stream
// with Last-Event-ID; when it gives up, the panel reloads and follows again. On a
// server without re-ID models (GET /v1/cctv/ready answers 503) the panel stays hidden.
//
// The site / lane filter in force is the one last submitted (or read at start from the
// address bar, else this browser's last one); what is typed in the boxes applies only
// when submitted, and is then kept in the address bar and in localStorage.
//
// Above the feed, the served model (GET /v2/models/xray, checked every minute so a
// model swap shows) and what its alert thresholds do: the share of clean bags and of
// threat bags they alarm on, as measured when they were chosen.
"use strict";

(() => {
  const POLL_MS = 1000;
  const RETRY_MAX_MS = 10000;
  const LIMIT = 24;
  const KEY = { site: "cv.console.site", lane: "cv.console.lane" };
  const SIGHTINGS_SHOWN = 20;
  const STREAM_RETRY_MIN_MS = 1000;
  const CCTV_CHECK_MS = 60000;

  const $ = (id) => document.getElementById(id);
  const ui = {
    conn: $("conn"),
    signin: $("signin"),
    feedView: $("feed-view"),
    filter: $("filter"),
    site: $("site"),
    lane: $("lane"),
    scans: $("scans"),
    empty: $("empty"),
    signout: $("signout"),
    follow: $("follow"),
    sightingsPanel: $("sightings-panel"),
    sightings: $("sightings"),
    sightingsEmpty: $("sightings-empty"),
    sightingsConn: $("s-conn"),
  };

  const state = {
    me: null,
    scans: [], // newest first, as the API answers
    detections: new Map(), // scan id -> detections (finished scans only)
    cards: new Map(), // scan id -> <li>
    selected: null, // a scan id, or null to follow the newest
    shown: null, // the key of what the large view shows
    timer: null,
    delayMs: POLL_MS,
    generation: 0, // a poll of an older filter (or sign-in) neither renders nor reschedules
    sites: new Set(),
    lanes: new Set(),
    sightings: new Map(), // sighting id -> {id, label, camera_id, seen_at, similarity, crop_url, state}
    sightingCards: new Map(), // sighting id -> <li>
    source: null, // the sightings EventSource
    sightingGeneration: 0, // events and loads of an older stream are ignored
    streamRetryMs: STREAM_RETRY_MIN_MS,
    streamTimer: null,
    stopModel: null,
    applied: { site: "", lane: "" }, // the filter in force: set on submit and at start
  };

  function filter() {
    return state.applied;
  }

  function typedFilter() {
    return { site: ui.site.value.trim(), lane: ui.lane.value.trim() };
  }

  function overlaySrc(scan) {
    // A pending scan's overlay gains its boxes when it finishes: a new URL then.
    return `${scan.overlay_url}?v=${scan.status}`;
  }

  function topDetection(scan) {
    const dets = state.detections.get(scan.id);
    if (scan.status !== "done") return scan.status;
    if (!dets) return "…";
    if (!dets.length) return "no detections";
    return `${dets[0].category} ${CV.score(dets[0].score)}`;
  }

  // -- polling ---------------------------------------------------------------------------

  async function poll() {
    if (!state.me) return;
    const generation = state.generation;
    clearTimeout(state.timer);
    try {
      const page = await CV.api("GET", `/v1/scans${CV.query({ ...filter(), limit: LIMIT })}`);
      if (generation !== state.generation) return;
      state.scans = page.items;
      const missing = page.items.filter((s) => s.status === "done" && !state.detections.has(s.id));
      await Promise.all(
        missing.map(async (s) => {
          state.detections.set(s.id, await CV.api("GET", `/v1/scans/${encodeURIComponent(s.id)}/detections`));
        }),
      );
      if (generation !== state.generation) return;
      render();
      CV.setPill(ui.conn, "live", "live");
      state.delayMs = POLL_MS;
    } catch (err) {
      if (generation !== state.generation) return;
      if (err.status === 401) {
        showSignIn("Signed out: the token is no longer valid.");
        return;
      }
      CV.setPill(ui.conn, "offline", "offline · retrying");
      state.delayMs = Math.min(state.delayMs * 2, RETRY_MAX_MS);
    } finally {
      if (state.me && generation === state.generation) {
        state.timer = setTimeout(poll, state.delayMs);
      }
    }
  }

  // -- rendering ---------------------------------------------------------------------------

  function card(scan) {
    const key = `${scan.id}|${scan.status}|${state.detections.has(scan.id)}`;
    let li = state.cards.get(scan.id);
    if (li && li.dataset.key === key) return li;
    li = CV.el("li", `scan status-${scan.status}`);
    li.dataset.key = key;
    li.dataset.id = scan.id;
    li.dataset.lane = scan.lane;
    li.tabIndex = 0;
    const img = CV.el("img");
    img.alt = `scan ${scan.id}`;
    img.loading = "lazy";
    img.src = overlaySrc(scan);
    const caption = CV.el("div", "caption");
    const dets = state.detections.get(scan.id) || [];
    caption.append(
      CV.el("span", "top", topDetection(scan)),
      CV.el("span", "where", `${scan.site} · ${scan.lane}`),
      CV.el("time", "time", CV.clock(scan.created_at)),
    );
    if (dets.length > 1) caption.append(CV.el("span", "muted small", `+${dets.length - 1} more`));
    li.append(img, caption);
    state.cards.set(scan.id, li);
    return li;
  }

  function render() {
    const items = state.scans;
    if (state.selected !== null && !items.some((s) => s.id === state.selected)) {
      state.selected = null; // it scrolled out of the latest scans
    }
    for (const s of items) {
      state.sites.add(s.site);
      state.lanes.add(s.lane);
    }
    const cards = items.map(card);
    const current = state.selected ?? (items[0] && items[0].id);
    for (const li of cards) li.classList.toggle("selected", li.dataset.id === current);
    ui.scans.replaceChildren(...cards);
    const ids = new Set(items.map((s) => s.id));
    for (const id of [...state.cards.keys()]) if (!ids.has(id)) state.cards.delete(id);
    ui.empty.hidden = items.length > 0;
    ui.follow.hidden = state.selected === null;
    $("sites").replaceChildren(...[...state.sites].sort().map((v) => option(v)));
    $("lanes").replaceChildren(...[...state.lanes].sort().map((v) => option(v)));
    const scan = items.find((s) => s.id === current) || null;
    renderCurrent(scan);
  }

  function option(value) {
    const o = document.createElement("option");
    o.value = value;
    return o;
  }

  function renderCurrent(scan) {
    const img = $("c-image");
    const key = scan ? `${scan.id}|${scan.status}|${state.detections.has(scan.id)}` : null;
    if (key === state.shown) return;
    state.shown = key;
    if (!scan) {
      $("c-title").textContent = "Waiting for scans…";
      img.hidden = true;
      img.removeAttribute("src");
      $("c-detections").tBodies[0].replaceChildren();
      $("c-meta").replaceChildren();
      return;
    }
    $("c-title").textContent = `${scan.site} · ${scan.lane} · ${scan.bag_tag || scan.awb || scan.id}`;
    img.src = overlaySrc(scan);
    img.hidden = false;
    const dets = state.detections.get(scan.id) || [];
    const rows = dets.map((d) => {
      const tr = CV.el("tr");
      tr.append(
        CV.el("td", "", d.category),
        CV.el("td", "score", CV.score(d.score)),
        CV.el("td", "muted", d.box.map((v) => Math.round(v)).join(", ")),
      );
      return tr;
    });
    if (!rows.length) {
      const tr = CV.el("tr");
      const td = CV.el("td", "muted", scan.status === "done" ? "No detections." : `Scan is ${scan.status}.`);
      td.colSpan = 3;
      tr.append(td);
      rows.push(tr);
    }
    $("c-detections").tBodies[0].replaceChildren(...rows);
    const facts = [
      ["Scan", scan.id],
      ["Kind", scan.kind.replace("_", " ")],
      ["Bag tag", scan.bag_tag],
      ["Air waybill", scan.awb],
      ["Declaration", scan.declaration_ref],
      ["Size", `${scan.width} × ${scan.height} px`],
      ["Status", scan.status + (scan.error ? ` (${scan.error})` : "")],
      ["Model", scan.model_name ? `${scan.model_name} v${scan.model_version}` : null],
      ["Inference", scan.compute_ms != null ? `${scan.compute_ms.toFixed(0)} ms (+${(scan.queue_ms || 0).toFixed(0)} ms queued)` : null],
      ["Time", CV.clock(scan.created_at)],
    ].filter(([, v]) => v);
    $("c-meta").replaceChildren(
      ...facts.map(([k, v]) => {
        const wrap = CV.el("div");
        wrap.append(CV.el("dt", "", k), CV.el("dd", "", v));
        return wrap;
      }),
    );
  }

  // -- re-ID sightings (inspector and admin tokens) ----------------------------------------

  function maySeeSightings() {
    return Boolean(state.me && state.me.permissions.includes("sightings:read"));
  }

  /** A sighting's state from its alert's: a candidate until an inspector decides. */
  function sightingState(alertState) {
    return alertState === "confirmed" || alertState === "rejected" ? alertState : "candidate";
  }

  /** The panel's record of a re-ID alert message (the stream speaks in alerts). */
  function fromAlert(alert) {
    return {
      id: alert.sighting_id,
      label: alert.label,
      camera_id: alert.camera_id,
      seen_at: alert.seen_at,
      similarity: alert.similarity,
      crop_url: alert.crop_url,
      state: sightingState(alert.state),
      alert_seq: alert.seq,
    };
  }

  function stopSightings() {
    state.sightingGeneration += 1;
    if (state.source) state.source.close();
    state.source = null;
    clearTimeout(state.streamTimer);
  }

  async function startSightings() {
    stopSightings();
    if (!maySeeSightings()) {
      ui.sightingsPanel.hidden = true;
      return;
    }
    const generation = state.sightingGeneration;
    const { site } = filter();
    ui.sightingsConn.textContent = "· connecting…";
    try {
      const ready = await CV.api("GET", "/v1/cctv/ready").then(
        () => true,
        (err) => {
          if (err.status === 503) return false; // no re-ID models: an X-ray-only server
          throw err;
        },
      );
      if (generation !== state.sightingGeneration) return;
      ui.sightingsPanel.hidden = !ready;
      if (!ready) {
        state.streamTimer = setTimeout(startSightings, CCTV_CHECK_MS);
        return;
      }
      const page = await CV.api("GET", `/v1/sightings${CV.query({ site, limit: SIGHTINGS_SHOWN })}`);
      if (generation !== state.sightingGeneration) return;
      state.sightings = new Map(page.sightings.map((s) => [s.id, { ...s, fresh: false }]));
      renderSightings();
      const seqs = page.sightings.map((s) => s.alert_seq).filter((v) => v !== null && v !== undefined);
      followSightings(generation, site, seqs.length ? Math.max(...seqs) : null);
    } catch (err) {
      if (generation !== state.sightingGeneration) return;
      if (err.status === 401 || err.status === 403) return; // the scan poll signs out
      retrySightings(generation);
    }
  }

  function retrySightings(generation) {
    if (generation !== state.sightingGeneration) return;
    stopSightings();
    ui.sightingsConn.textContent = "· offline, retrying";
    state.streamTimer = setTimeout(startSightings, state.streamRetryMs);
    state.streamRetryMs = Math.min(state.streamRetryMs * 2, RETRY_MAX_MS);
  }

  function followSightings(generation, site, lastSeq) {
    // Without a resume point the stream replays the alerts still awaiting a verdict.
    const source = new EventSource(`/v1/sightings/stream${CV.query({ site, last_id: lastSeq })}`);
    state.source = source;
    const mine = (handler) => (event) => {
      if (generation === state.sightingGeneration) handler(event);
    };
    source.addEventListener(
      "hello",
      mine(() => {
        state.streamRetryMs = STREAM_RETRY_MIN_MS;
        ui.sightingsConn.textContent = "· live";
      }),
    );
    source.addEventListener(
      "alert",
      mine((event) => {
        const alert = JSON.parse(event.data);
        if (alert.sighting_id === undefined || alert.sighting_id === null) return;
        const known = state.sightings.get(alert.sighting_id);
        state.sightings.set(alert.sighting_id, { ...known, ...fromAlert(alert), fresh: !known });
        renderSightings();
      }),
    );
    source.addEventListener(
      "update",
      mine((event) => {
        const alert = JSON.parse(event.data);
        const known = state.sightings.get(alert.sighting_id);
        if (!known) return; // a verdict on a sighting this panel does not show
        state.sightings.set(alert.sighting_id, { ...known, state: sightingState(alert.state), fresh: false });
        renderSightings();
      }),
    );
    source.onerror = mine(() => {
      if (source.readyState === EventSource.CLOSED) retrySightings(generation);
      else ui.sightingsConn.textContent = "· reconnecting…";
    });
  }

  function sightingCard(s) {
    const key = `${s.id}|${s.state}|${s.fresh}`;
    let li = state.sightingCards.get(s.id);
    if (li && li.dataset.key === key) return li;
    li = CV.el("li", `sighting state-${s.state}`);
    if (s.fresh) li.classList.add("fresh");
    li.dataset.key = key;
    li.dataset.id = String(s.id);
    li.dataset.state = s.state;
    let img;
    if (s.crop_url) {
      img = CV.el("img", "thumb");
      img.src = s.crop_url;
      img.alt = `crop of sighting ${s.id}`;
    } else {
      img = CV.el("span", "thumb none", "—");
    }
    const caption = CV.el("div", "caption");
    caption.append(
      CV.el("span", "top", s.label || "watch-list entry"),
      CV.el("span", "score", CV.score(s.similarity)),
      CV.el("span", "where", `camera ${s.camera_id}`),
      CV.el("time", "time", CV.clock(s.seen_at)),
      CV.el("span", `badge badge-${s.state}`, s.state),
    );
    li.append(img, caption);
    state.sightingCards.set(s.id, li);
    return li;
  }

  function renderSightings() {
    const items = [...state.sightings.values()].sort((a, b) => b.id - a.id).slice(0, SIGHTINGS_SHOWN);
    const keep = new Set(items.map((s) => s.id));
    for (const id of [...state.sightings.keys()]) if (!keep.has(id)) state.sightings.delete(id);
    for (const id of [...state.sightingCards.keys()]) if (!keep.has(id)) state.sightingCards.delete(id);
    ui.sightings.replaceChildren(...items.map(sightingCard));
    ui.sightingsEmpty.hidden = items.length > 0;
  }

  // -- sign-in, filter, start ----------------------------------------------------------------

  function showSignIn(message) {
    state.me = null;
    state.generation += 1;
    clearTimeout(state.timer);
    if (state.stopModel) state.stopModel();
    stopSightings();
    ui.sightingsPanel.hidden = true;
    ui.signin.hidden = false;
    ui.feedView.hidden = true;
    ui.filter.hidden = true;
    ui.signout.hidden = true;
    $("signin-error").textContent = message || "";
    CV.setPill(ui.conn, "offline", "signed out");
  }

  function start(me) {
    state.me = me;
    ui.signin.hidden = true;
    ui.feedView.hidden = false;
    ui.filter.hidden = false;
    ui.signout.hidden = false;
    $("who").textContent = `· ${me.name} (${me.role})`;
    CV.setPill(ui.conn, "connecting", "connecting…");
    state.generation += 1;
    poll();
    startSightings();
    if (state.stopModel) state.stopModel();
    state.stopModel = CV.watchModel($("model-info"));
  }

  function applyFilter() {
    const { site, lane } = typedFilter();
    state.applied = { site, lane };
    localStorage.setItem(KEY.site, site);
    localStorage.setItem(KEY.lane, lane);
    const url = new URL(window.location.href);
    url.search = CV.query({ site, lane });
    history.replaceState(null, "", url);
    state.scans = [];
    state.selected = null;
    state.shown = undefined;
    render();
    state.generation += 1;
    state.delayMs = POLL_MS;
    poll();
    startSightings();
  }

  function firstCheck() {
    return CV.checkSession({
      pill: ui.conn,
      need: "scans:read",
      needText: "the console needs a reader token.",
      retryMs: POLL_MS,
      onSignedIn: start,
      onSignIn: showSignIn,
    });
  }

  function boot() {
    const params = new URLSearchParams(window.location.search);
    ui.site.value = params.get("site") ?? localStorage.getItem(KEY.site) ?? "";
    ui.lane.value = params.get("lane") ?? localStorage.getItem(KEY.lane) ?? "";
    state.applied = typedFilter();
    CV.wireSignIn({
      form: $("signin-form"),
      input: $("token"),
      error: $("signin-error"),
      need: "scans:read",
      needText: "the console needs a reader token.",
      onSignedIn: start,
    });
    ui.signout.addEventListener("click", async () => {
      try {
        await CV.signOut();
      } finally {
        showSignIn("Signed out.");
      }
    });
    ui.filter.addEventListener("submit", (event) => {
      event.preventDefault();
      applyFilter();
    });
    $("clear").addEventListener("click", () => {
      ui.site.value = "";
      ui.lane.value = "";
      applyFilter();
    });
    const pick = (event) => {
      const li = event.target.closest("li[data-id]");
      if (!li) return;
      const newest = state.scans[0] && state.scans[0].id;
      state.selected = li.dataset.id === newest ? null : li.dataset.id;
      render();
    };
    ui.scans.addEventListener("click", pick);
    ui.scans.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") pick(event);
    });
    ui.follow.addEventListener("click", () => {
      state.selected = null;
      render();
    });
    firstCheck();
  }

  boot();
})();
