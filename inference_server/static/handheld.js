// The inspectors' handheld page: live alerts, the scan with its boxes, one-tap verdicts.
//
// Delivery (see cv/inference_server/api_alerts.py): the page follows the SSE stream
// from the last alert seq it saw (localStorage), so a reload or a lost connection
// replays the alerts it missed. The replay carries new alerts only, not what happened
// meanwhile to alerts the page already shows, so after every (re)connect (`hello`,
// the browser's own reconnects included) the page loads the alerts awaiting action
// and asks for the real state of each alert it shows as active that is no longer
// among them (a colleague confirmed it while this handheld was offline); it shows
// "live" once that is done. Alerts are kept by seq, so a replayed alert replaces the
// one shown instead of appearing twice, and a state never goes back (a list read
// before an update arrived cannot reopen a resolved alert). A new history epoch (the
// server's database was replaced) drops the stored seq and starts over.
//
// Two kinds of alert arrive on the same stream (`alert_kind`): X-ray alerts (a scan
// with its detections) and re-ID alerts (`reid`: a CCTV frame in which a person
// resembles a watch-list entry). A re-ID alert is a *candidate*: its view shows the
// camera, the time, the person's box, the enrolment photo beside the camera's crop,
// and asks "same person?" — confirm means the same person, reject not the same person.
"use strict";

(() => {
  const BOX_COLOUR = "#ff2d55";
  const FIX_COLOUR = "#00e5ff";
  const ACTIVE = ["open", "acknowledged"];
  // Alerts only move forward: open -> acknowledged -> confirmed | rejected.
  const RANK = { open: 0, acknowledged: 1, confirmed: 2, rejected: 2 };
  const PARALLEL_FETCHES = 6;
  const KEY = {
    lastId: "cv.handheld.lastId",
    epoch: "cv.handheld.epoch",
    site: "cv.handheld.site",
    lane: "cv.handheld.lane",
  };
  const MAX_SHOWN = 200;
  const RETRY_MIN_MS = 1000;
  const RETRY_MAX_MS = 15000;

  const $ = (id) => document.getElementById(id);
  const ui = {
    conn: $("conn"),
    signout: $("signout"),
    signin: $("signin"),
    listView: $("list-view"),
    detail: $("detail"),
    alerts: $("alerts"),
    empty: $("empty"),
    who: $("who"),
    site: $("site"),
    lane: $("lane"),
    canvas: $("scan"),
    canvasWrap: $("canvas-wrap"),
  };

  const state = {
    me: null,
    alerts: new Map(), // seq -> alert message (current state)
    source: null, // the EventSource
    generation: 0, // events of an older EventSource are ignored
    retryMs: RETRY_MIN_MS,
    retryTimer: null,
    openSeq: null, // the alert shown in the detail view
    image: null, // its loaded image
    drawing: null, // {x0, y0} while a corrected box is dragged
    corrected: null, // {box, category} to send with confirm
    lastBuzz: 0,
    synced: false, // the open alerts were loaded once: alerts new after that signal
    catching: false, // a catch-up is running
    catchAgain: false, // a (re)connect asked for another catch-up meanwhile
    stopModel: null, // stops refreshing the served model's line
  };

  // -- stored resume point ------------------------------------------------------------

  const stored = {
    get lastId() {
      const v = Number.parseInt(localStorage.getItem(KEY.lastId) || "", 10);
      return Number.isFinite(v) && v >= 0 ? v : null;
    },
    set lastId(v) {
      if (v === null) localStorage.removeItem(KEY.lastId);
      else localStorage.setItem(KEY.lastId, String(v));
    },
    get epoch() {
      const v = Number.parseInt(localStorage.getItem(KEY.epoch) || "", 10);
      return Number.isFinite(v) ? v : null;
    },
    set epoch(v) {
      if (v === null) localStorage.removeItem(KEY.epoch);
      else localStorage.setItem(KEY.epoch, String(v));
    },
  };

  function filter() {
    return { site: ui.site.value.trim(), lane: ui.lane.value.trim() };
  }

  /** A new history epoch: the stored seq belongs to another database. */
  function adoptEpoch(epoch) {
    if (stored.epoch !== null && stored.epoch !== epoch) {
      stored.lastId = null;
      state.alerts.clear();
      state.synced = false;
    }
    stored.epoch = epoch;
  }

  // -- new-alert signal: vibration and a short two-tone sound -----------------------------

  let audio = null;
  function unlockAudio() {
    try {
      audio = audio || new AudioContext();
      if (audio.state === "suspended") audio.resume();
    } catch (err) {
      audio = null; // no Web Audio here: vibration alone
    }
  }

  function beep() {
    unlockAudio();
    if (!audio) return;
    const t = audio.currentTime;
    [880, 1320].forEach((hz, i) => {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      const start = t + i * 0.16;
      osc.type = "square";
      osc.frequency.value = hz;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.25, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.15);
      osc.connect(gain).connect(audio.destination);
      osc.start(start);
      osc.stop(start + 0.16);
    });
  }

  function signalNewAlert() {
    const now = Date.now();
    if (now - state.lastBuzz < 1000) return; // one signal for a burst (a catch-up)
    state.lastBuzz = now;
    if (typeof navigator.vibrate === "function") navigator.vibrate([200, 100, 200]);
    beep();
  }

  // -- the alert list ---------------------------------------------------------------------

  /** Adds or replaces an alert; `signal` buzzes for alerts this page has not shown yet. */
  function upsert(message, { signal }) {
    const known = state.alerts.get(message.seq);
    if (known && (RANK[message.state] ?? 0) < (RANK[known.state] ?? 0)) return; // older news
    const fresh = !known;
    state.alerts.set(message.seq, { ...known, ...message, fresh: fresh && signal });
    if (signal && ((fresh && message.state === "open") || (message.resent && message.state === "open"))) {
      signalNewAlert();
    }
  }

  function categories(alert) {
    const best = new Map();
    for (const b of alert.boxes || []) {
      best.set(b.category, Math.max(best.get(b.category) || 0, b.score));
    }
    return [...best.entries()].sort((a, b) => b[1] - a[1]);
  }

  function topScore(alert) {
    return Math.max(0, ...(alert.boxes || []).map((b) => b.score));
  }

  function reference(alert) {
    if (isReid(alert)) return `camera ${alert.camera_id}`;
    return alert.bag_tag || alert.awb || alert.declaration_ref || alert.scan_id;
  }

  /** A re-ID alert: a CCTV sighting of a watch-list entry, a candidate to confirm. */
  function isReid(alert) {
    return alert.alert_kind === "reid";
  }

  /** The alert's headline: the watch-list entry, or the classes found in the scan. */
  function headline(alert) {
    if (isReid(alert)) return `Watch-list ${alert.label}`;
    return categories(alert).map(([c]) => c).join(", ") || "alert";
  }

  function renderList() {
    const items = [...state.alerts.values()].sort((a, b) => b.seq - a.seq).slice(0, MAX_SHOWN);
    const nodes = items.map((alert) => {
      const li = CV.el("li", `alert state-${alert.state}`);
      if (alert.escalated && ACTIVE.includes(alert.state)) li.classList.add("escalated");
      if (alert.fresh) li.classList.add("fresh");
      li.dataset.seq = String(alert.seq);
      li.dataset.kind = alert.alert_kind || "xray";
      if (isReid(alert)) li.classList.add("reid");
      li.tabIndex = 0;
      li.setAttribute("role", "button");
      const head = CV.el("div", "alert-head");
      head.append(CV.el("span", "alert-classes", headline(alert)), CV.el("span", "score", CV.score(topScore(alert))));
      const meta = CV.el("div", "alert-meta");
      meta.append(
        CV.el("span", "where", `${alert.site} · ${alert.lane}`),
        CV.el("span", "ref", reference(alert)),
        CV.el("time", "time", CV.clock(isReid(alert) ? alert.seen_at : alert.created_at)),
      );
      const foot = CV.el("div", "alert-foot");
      foot.append(CV.el("span", `state state-${alert.state}`, alert.state));
      if (isReid(alert) && ACTIVE.includes(alert.state)) foot.append(CV.el("span", "tag reid-tag", "re-ID · candidate"));
      if (alert.escalated && ACTIVE.includes(alert.state)) foot.append(CV.el("span", "tag escalated-tag", "escalated"));
      foot.append(CV.el("span", "muted small", `#${alert.seq}`));
      li.append(head, meta, foot);
      return li;
    });
    ui.alerts.replaceChildren(...nodes);
    for (const alert of items) alert.fresh = false; // flashes once, not on every re-render
    ui.empty.hidden = nodes.length > 0;
    const open = items.filter((a) => a.state === "open").length;
    document.title = open ? `(${open}) Alerts · customs-vision` : "Alerts · customs-vision";
  }

  // -- loading and following ------------------------------------------------------------

  /** One alert in its current state, or null if the server has none of that seq. */
  async function fetchAlert(seq) {
    try {
      const { events, ...alert } = await CV.api("GET", `/v1/alerts/${seq}`);
      return alert;
    } catch (err) {
      if (err.status === 404) return null;
      throw err;
    }
  }

  /**
   * Makes the list match the server: loads the alerts awaiting action (and the epoch),
   * then the real state of every alert shown as active that is not among them (resolved
   * meanwhile). Returns false when the server's database was replaced (it resyncs).
   */
  async function reconcile() {
    const { site, lane } = filter();
    const active = new Map();
    let after = 0;
    for (;;) {
      const page = await CV.api(
        "GET",
        `/v1/alerts${CV.query({ state: ACTIVE.join(","), site, lane, after_seq: after, limit: 1000 })}`,
      );
      if (stored.epoch !== null && stored.epoch !== page.epoch) {
        adoptEpoch(page.epoch);
        renderList();
        resync();
        return false;
      }
      stored.epoch = page.epoch;
      for (const alert of page.alerts) active.set(alert.seq, alert);
      if (page.alerts.length < 1000) break;
      after = page.alerts[page.alerts.length - 1].seq;
    }
    // After a reconnect, alerts missed meanwhile signal like live ones.
    for (const alert of active.values()) upsert(alert, { signal: state.synced });
    const stale = [...state.alerts.values()]
      .filter((a) => ACTIVE.includes(a.state) && !active.has(a.seq))
      .map((a) => a.seq);
    for (let i = 0; i < stale.length; i += PARALLEL_FETCHES) {
      const batch = stale.slice(i, i + PARALLEL_FETCHES);
      const found = await Promise.all(batch.map(fetchAlert));
      batch.forEach((seq, j) => {
        if (found[j]) upsert(found[j], { signal: false });
        else state.alerts.delete(seq); // not on this server (any more)
      });
    }
    state.synced = true;
    renderList();
    if (state.openSeq !== null) renderDetailState();
    return true;
  }

  /** Catches up after a (re)connect; one at a time, again if another connect asked. */
  async function catchUp() {
    state.catchAgain = true;
    if (state.catching) return;
    state.catching = true;
    try {
      while (state.catchAgain) {
        state.catchAgain = false;
        const generation = state.generation;
        let done;
        try {
          done = await reconcile();
        } catch (err) {
          if (generation !== state.generation) continue; // another connection took over
          if (err.status === 401) {
            showSignIn("Signed out: the token is no longer valid.");
            return;
          }
          // A list the page cannot trust: start over rather than show it as live.
          CV.setPill(ui.conn, "offline", "offline · retrying");
          scheduleRetry();
          return;
        }
        const open = state.source && state.source.readyState === EventSource.OPEN;
        if (done && generation === state.generation && open && !state.catchAgain) {
          CV.setPill(ui.conn, "live", "live");
        }
      }
    } finally {
      state.catching = false;
    }
  }

  function disconnect() {
    state.generation += 1;
    if (state.source) state.source.close();
    state.source = null;
    clearTimeout(state.retryTimer);
  }

  function connect() {
    disconnect();
    const generation = state.generation;
    const { site, lane } = filter();
    const source = new EventSource(`/v1/alerts/stream${CV.query({ site, lane, last_id: stored.lastId })}`);
    state.source = source;
    CV.setPill(ui.conn, "connecting", "connecting…");
    const mine = (handler) => (event) => {
      if (generation === state.generation) handler(event);
    };

    source.addEventListener(
      "hello",
      mine((event) => {
        const hello = JSON.parse(event.data);
        if (stored.epoch !== null && stored.epoch !== hello.epoch) {
          // Another database: the stored seq means nothing here; start over.
          adoptEpoch(hello.epoch);
          renderList();
          resync();
          return;
        }
        stored.epoch = hello.epoch;
        state.retryMs = RETRY_MIN_MS;
        CV.setPill(ui.conn, "connecting", "catching up…");
        catchUp();
      }),
    );
    source.addEventListener(
      "alert",
      mine((event) => {
        const alert = JSON.parse(event.data);
        if (!alert.resent) {
          // A new alert carries its seq as the event id: the resume point.
          stored.lastId = Math.max(stored.lastId || 0, alert.seq);
        }
        // Before the first catch-up this is the page's first load, not news.
        upsert(alert, { signal: state.synced });
        renderList();
        if (state.openSeq === alert.seq) renderDetailState();
      }),
    );
    source.addEventListener(
      "update",
      mine((event) => {
        const alert = JSON.parse(event.data);
        if (!state.alerts.has(alert.seq) && !ACTIVE.includes(alert.state)) return;
        upsert(alert, { signal: false });
        renderList();
        if (state.openSeq === alert.seq) renderDetailState();
      }),
    );
    source.onerror = mine(() => {
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error such as 401, or a proxy's 502): we retry.
        CV.setPill(ui.conn, "offline", "offline · retrying");
        scheduleRetry();
      } else {
        // The browser reconnects by itself and sends Last-Event-ID.
        CV.setPill(ui.conn, "reconnecting", "reconnecting…");
      }
    });
  }

  function scheduleRetry() {
    disconnect();
    state.retryTimer = setTimeout(resync, state.retryMs);
    state.retryMs = Math.min(state.retryMs * 2, RETRY_MAX_MS);
  }

  /** Checks the sign-in and follows the stream again (its `hello` reloads the alerts). */
  async function resync() {
    disconnect();
    try {
      const me = await CV.whoami();
      if (!me) {
        showSignIn("Signed out: the token is no longer valid.");
        return;
      }
      connect();
    } catch (err) {
      CV.setPill(ui.conn, "offline", "offline · retrying");
      scheduleRetry();
    }
  }

  // -- the detail view: the scan with its boxes ---------------------------------------------

  function openDetail(seq) {
    const alert = state.alerts.get(seq);
    if (!alert) return;
    alert.fresh = false;
    state.openSeq = seq;
    state.corrected = null;
    state.drawing = null;
    state.image = null;
    ui.listView.hidden = true;
    ui.detail.hidden = false;
    window.scrollTo(0, 0);
    const reid = isReid(alert);
    ui.detail.classList.toggle("reid", reid);
    $("d-title").textContent = headline(alert);
    $("d-error").textContent = "";
    $("d-image-note").textContent = reid ? "Loading the camera frame…" : "Loading the scan…";
    // A re-ID alert: a candidate match, judged by a person ("same person?"); its box is
    // a person, not a class to correct.
    $("d-notice").hidden = !reid;
    $("d-notice").textContent = reid ? alert.notice || "candidate — confirm identity before any action" : "";
    $("d-correct").hidden = reid;
    $("d-compare").hidden = !reid;
    $("d-ref").removeAttribute("src");
    $("d-crop").removeAttribute("src");
    if (reid) {
      if (alert.reference_url) $("d-ref").src = alert.reference_url;
      if (alert.crop_url) $("d-crop").src = alert.crop_url;
    }
    $("confirm").textContent = reid ? "Same person" : "Confirm";
    $("reject").textContent = reid ? "Not the same person" : "Reject";
    $("d-boxes-title").textContent = reid ? "Person" : "Detections";
    const select = $("d-category");
    select.replaceChildren(...categories(alert).map(([c]) => CV.el("option", "", c)));
    renderFacts(alert); // before the state: that adds who acted to these facts
    renderDetailState();
    loadImage(alert, alert.image_url, false);
  }

  function closeDetail() {
    state.openSeq = null;
    state.image = null;
    ui.canvas.classList.remove("drawing");
    ui.detail.hidden = true;
    ui.listView.hidden = false;
    renderList();
  }

  function loadImage(alert, url, isOverlay) {
    const img = new Image();
    img.onload = () => {
      if (state.openSeq !== alert.seq) return;
      state.image = img;
      if (isReid(alert)) {
        $("d-image-note").textContent =
          `camera ${alert.camera_id} · ${alert.width} × ${alert.height} px · person box drawn to scale`;
      } else {
        $("d-image-note").textContent = isOverlay
          ? "The original image cannot be shown here; this is the server's overlay."
          : `${alert.width} × ${alert.height} px · boxes drawn to scale`;
      }
      drawScan();
    };
    img.onerror = () => {
      if (state.openSeq !== alert.seq) return;
      if (isReid(alert)) {
        $("d-image-note").textContent = "The camera frame could not be loaded (deleted past retention?).";
        return;
      }
      // Browsers cannot show TIFF: the server's PNG overlay has the same size.
      if (!isOverlay) loadImage(alert, alert.overlay_url, true);
      else $("d-image-note").textContent = "The scan image could not be loaded.";
    };
    img.src = url;
  }

  /** Sizes the canvas to the screen and draws the image, its boxes and labels to scale. */
  function drawScan() {
    const alert = state.alerts.get(state.openSeq);
    const img = state.image;
    if (!alert || !img) return;
    const width = alert.width || img.naturalWidth;
    const height = alert.height || img.naturalHeight;
    const maxW = ui.canvasWrap.clientWidth;
    const maxH = Math.max(200, window.innerHeight * 0.62);
    let cssW = maxW;
    let cssH = (cssW * height) / width;
    if (cssH > maxH) {
      cssH = maxH;
      cssW = (cssH * width) / height;
    }
    const dpr = window.devicePixelRatio || 1;
    const canvas = ui.canvas;
    canvas.style.width = `${cssW}px`;
    canvas.style.height = `${cssH}px`;
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
    // Boxes are xyxy pixels of the original image: canvas pixels per image pixel.
    const sx = canvas.width / width;
    const sy = canvas.height / height;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);

    const line = Math.max(2, Math.round(3 * dpr));
    const font = Math.round(13 * dpr);
    ctx.font = `600 ${font}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    const labels = [];
    const boxes = [...(alert.boxes || [])].sort((a, b) => b.score - a.score);
    for (const b of boxes) {
      const [x1, y1, x2, y2] = b.box;
      drawBox(ctx, x1 * sx, y1 * sy, x2 * sx, y2 * sy, BOX_COLOUR, line, false);
    }
    for (const b of boxes) {
      const [x1, y1] = b.box;
      const text = `${b.category} ${CV.score(b.score)}`;
      const w = ctx.measureText(text).width + 8 * dpr;
      const h = font + 6 * dpr;
      let x = Math.min(x1 * sx, canvas.width - w);
      let y = y1 * sy - h >= 0 ? y1 * sy - h : y1 * sy + line;
      // Stack labels that would cover each other (several boxes on one spot).
      while (labels.some((r) => x < r.x + r.w && r.x < x + w && y < r.y + r.h && r.y < y + h)) {
        y += h;
      }
      x = Math.max(0, x);
      labels.push({ x, y, w, h });
      ctx.fillStyle = BOX_COLOUR;
      ctx.fillRect(x, y, w, h);
      ctx.fillStyle = "#ffffff";
      ctx.fillText(text, x + 4 * dpr, y + 3 * dpr);
    }
    if (state.corrected) {
      const [x1, y1, x2, y2] = state.corrected.box;
      drawBox(ctx, x1 * sx, y1 * sy, x2 * sx, y2 * sy, FIX_COLOUR, line, true);
    }
  }

  /** A box whose stroke lies inside its edges, so a box on the image border stays visible. */
  function drawBox(ctx, x1, y1, x2, y2, colour, line, dashed) {
    ctx.save();
    ctx.strokeStyle = colour;
    ctx.lineWidth = line;
    ctx.setLineDash(dashed ? [line * 3, line * 2] : []);
    const half = line / 2;
    ctx.strokeRect(x1 + half, y1 + half, Math.max(0, x2 - x1 - line), Math.max(0, y2 - y1 - line));
    ctx.restore();
  }

  function renderDetailState() {
    const alert = state.alerts.get(state.openSeq);
    if (!alert) return;
    const badge = $("d-state");
    badge.className = `state state-${alert.state}`;
    badge.textContent = alert.escalated && ACTIVE.includes(alert.state) ? `${alert.state} · escalated` : alert.state;
    $("ack").disabled = alert.state !== "open";
    $("confirm").disabled = !ACTIVE.includes(alert.state);
    $("reject").disabled = !ACTIVE.includes(alert.state);
    $("redraw").disabled = !ACTIVE.includes(alert.state);
    const who = alert.resolved_by || alert.acknowledged_by;
    const meta = $("d-meta");
    const existing = meta.querySelector("[data-who]");
    if (existing) existing.remove();
    if (who) {
      const wrap = CV.el("div");
      wrap.dataset.who = "1";
      wrap.append(CV.el("dt", "", alert.resolved_by ? "Resolved by" : "Acknowledged by"), CV.el("dd", "", who));
      meta.append(wrap);
    }
    $("d-corrected").textContent = state.corrected
      ? `corrected box ${state.corrected.box.map((v) => Math.round(v)).join(", ")}`
      : "";
  }

  function renderFacts(alert) {
    const rows = isReid(alert)
      ? [
          ["Watch list", alert.list_name],
          ["Entry", alert.label],
          ["Camera", alert.camera_id],
          ["Site · location", `${alert.site} · ${alert.lane}`],
          ["Seen at", CV.clock(alert.seen_at)],
          ["Similarity", `${CV.score(alert.similarity)} (threshold ${CV.score(alert.threshold)})`],
        ].filter(([, v]) => v)
      : [
          ["Site · lane", `${alert.site} · ${alert.lane}`],
          ["Kind", (alert.kind || "").replace("_", " ")],
          ["Bag tag", alert.bag_tag],
          ["Air waybill", alert.awb],
          ["Declaration", alert.declaration_ref],
          ["Scan", alert.scan_id],
          ["Time", CV.clock(alert.created_at)],
        ].filter(([, v]) => v);
    $("d-meta").replaceChildren(
      ...rows.map(([k, v]) => {
        const wrap = CV.el("div");
        wrap.append(CV.el("dt", "", k), CV.el("dd", "", v));
        return wrap;
      }),
    );
    $("d-boxes").replaceChildren(
      ...(alert.boxes || []).map((b) => {
        const li = CV.el("li");
        li.append(
          CV.el("span", "swatch"),
          CV.el("b", "", b.category),
          CV.el("span", "score", CV.score(b.score)),
          CV.el("span", "muted small", `[${b.box.map((v) => Math.round(v)).join(", ")}]`),
        );
        return li;
      }),
    );
    $("d-reasons").replaceChildren(...(alert.reasons || []).map((r) => CV.el("li", "", r)));
  }

  async function act(action) {
    const seq = state.openSeq;
    const alert = state.alerts.get(seq);
    if (!alert) return;
    $("d-error").textContent = "";
    let body;
    if (action === "confirm" && state.corrected) body = { boxes: [state.corrected] };
    const buttons = ["ack", "confirm", "reject"].map($);
    buttons.forEach((b) => (b.disabled = true));
    try {
      const updated = await CV.api("POST", `/v1/alerts/${seq}/${action}`, body ?? {});
      upsert(updated, { signal: false });
      if (action !== "ack") state.corrected = null;
    } catch (err) {
      if (err.status === 401) {
        showSignIn("Signed out: the token is no longer valid.");
        return;
      }
      $("d-error").textContent = err.status === 409 ? await alreadyHandled(seq, err) : err.message;
      renderList();
    }
    renderDetailState();
    drawScan();
  }

  /**
   * A 409: the alert moved on before this page heard of it (a colleague acted, or the
   * page missed the update). Shows its real state and says who handled it.
   */
  async function alreadyHandled(seq, err) {
    let alert;
    try {
      alert = await fetchAlert(seq);
    } catch (fetchErr) {
      return err.message;
    }
    if (!alert) return err.message;
    upsert(alert, { signal: false });
    if (!ACTIVE.includes(alert.state)) state.corrected = null; // nothing left to correct
    const who = alert.resolved_by || alert.acknowledged_by;
    return `Already ${alert.state}${who ? ` by ${who}` : ""}: nothing was changed.`;
  }

  // -- drawing a corrected box ------------------------------------------------------------

  function imagePoint(event) {
    const alert = state.alerts.get(state.openSeq);
    const rect = ui.canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) / rect.width) * alert.width;
    const y = ((event.clientY - rect.top) / rect.height) * alert.height;
    return [Math.min(Math.max(x, 0), alert.width), Math.min(Math.max(y, 0), alert.height)];
  }

  function wireDrawing() {
    $("redraw").addEventListener("click", () => {
      const on = !ui.canvas.classList.contains("drawing");
      ui.canvas.classList.toggle("drawing", on);
      $("redraw").textContent = on ? "Drag on the image…" : "Redraw box";
      if (!on) {
        state.corrected = null;
        renderDetailState();
        drawScan();
      }
    });
    ui.canvas.addEventListener("pointerdown", (event) => {
      if (!ui.canvas.classList.contains("drawing") || !state.image) return;
      event.preventDefault();
      ui.canvas.setPointerCapture(event.pointerId);
      const [x, y] = imagePoint(event);
      state.drawing = { x0: x, y0: y };
    });
    ui.canvas.addEventListener("pointermove", (event) => {
      if (!state.drawing) return;
      const [x, y] = imagePoint(event);
      const { x0, y0 } = state.drawing;
      const category = $("d-category").value;
      state.corrected = {
        box: [Math.min(x0, x), Math.min(y0, y), Math.max(x0, x), Math.max(y0, y)],
        category,
      };
      drawScan();
    });
    const finish = () => {
      if (!state.drawing) return;
      state.drawing = null;
      const box = state.corrected && state.corrected.box;
      if (!box || box[2] - box[0] < 2 || box[3] - box[1] < 2) state.corrected = null;
      ui.canvas.classList.remove("drawing");
      $("redraw").textContent = state.corrected ? "Clear box" : "Redraw box";
      renderDetailState();
      drawScan();
    };
    ui.canvas.addEventListener("pointerup", finish);
    ui.canvas.addEventListener("pointercancel", finish);
    $("d-category").addEventListener("change", () => {
      if (state.corrected) state.corrected.category = $("d-category").value;
    });
  }

  // -- sign-in, filter, start ----------------------------------------------------------------

  function showSignIn(message) {
    disconnect();
    state.me = null;
    state.alerts.clear();
    state.synced = false;
    ui.signin.hidden = false;
    ui.listView.hidden = true;
    ui.detail.hidden = true;
    ui.signout.hidden = true;
    if (state.stopModel) state.stopModel();
    $("signin-error").textContent = message || "";
    CV.setPill(ui.conn, "offline", "signed out");
  }

  async function start(me) {
    state.me = me;
    ui.signin.hidden = true;
    ui.listView.hidden = false;
    ui.signout.hidden = false;
    ui.who.textContent = `Signed in as ${me.name} (${me.role})`;
    // What the alerts' thresholds do, so an inspector knows how often a clean bag alarms.
    if (state.stopModel) state.stopModel();
    state.stopModel = CV.watchModel($("model-info"));
    await resync();
  }

  async function boot() {
    ui.site.value = localStorage.getItem(KEY.site) || "";
    ui.lane.value = localStorage.getItem(KEY.lane) || "";
    document.addEventListener("pointerdown", unlockAudio, { passive: true });
    CV.wireSignIn({
      form: $("signin-form"),
      input: $("token"),
      error: $("signin-error"),
      need: "alerts:read",
      needText: "the handheld needs an inspector token.",
      onSignedIn: (me) => {
        unlockAudio(); // the tap on "Sign in" lets the page play sounds
        start(me);
      },
    });
    ui.signout.addEventListener("click", async () => {
      try {
        await CV.signOut();
      } finally {
        stored.lastId = null;
        stored.epoch = null;
        showSignIn("Signed out.");
      }
    });
    $("filter").addEventListener("submit", (event) => {
      event.preventDefault();
      const { site, lane } = filter();
      localStorage.setItem(KEY.site, site);
      localStorage.setItem(KEY.lane, lane);
      state.alerts.clear();
      state.synced = false;
      renderList();
      resync();
    });
    ui.alerts.addEventListener("click", (event) => {
      const li = event.target.closest("li[data-seq]");
      if (li) openDetail(Number(li.dataset.seq));
    });
    ui.alerts.addEventListener("keydown", (event) => {
      const li = event.target.closest("li[data-seq]");
      if (li && (event.key === "Enter" || event.key === " ")) openDetail(Number(li.dataset.seq));
    });
    $("back").addEventListener("click", closeDetail);
    $("ack").addEventListener("click", () => act("ack"));
    $("confirm").addEventListener("click", () => act("confirm"));
    $("reject").addEventListener("click", () => act("reject"));
    wireDrawing();
    window.addEventListener("resize", drawScan);
    // Back on the network or back in front: do not wait for the next retry.
    window.addEventListener("online", () => {
      if (state.me && (!state.source || state.source.readyState !== EventSource.OPEN)) resync();
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && state.me && !state.source) resync();
    });

    await firstCheck();
  }

  function firstCheck() {
    return CV.checkSession({
      pill: ui.conn,
      need: "alerts:read",
      needText: "the handheld needs an inspector token.",
      retryMs: RETRY_MIN_MS,
      onSignedIn: start,
      onSignIn: showSignIn,
    });
  }

  boot();
})();
