// The watch-list admin page: cameras, entries, enrolment, revocation, sightings, audit log.
//
// Everything comes from the same API as any other client (see
// cv/inference_server/api_cctv.py), with the admin token of the session cookie:
// GET /v1/cameras (+ each camera's /source), GET /v1/watchlist/entries?state=,
// GET /v1/sightings, GET /v1/audit?order=desc. The page re-reads them every few
// seconds while it is visible. Enrolment posts the form as multipart to
// POST /v1/watchlist/entries: the server checks every field and photo, and its
// 4xx answer names the field, which the page shows beside that field; the form
// keeps what was typed until an enrolment succeeds. Revoking asks for a reason,
// which the server writes into the audit log.
"use strict";

(() => {
  const REFRESH_MS = 5000;
  const SIGHTINGS = 24;
  const AUDIT_LINES = 50;
  const NEED = "admin";
  const NEED_TEXT = "the watch-list page needs an admin token.";
  const TEXT_FIELDS = ["label", "list_name", "authorised_by", "reason", "legal_basis"];

  const $ = (id) => document.getElementById(id);
  const ui = {
    conn: $("conn"),
    who: $("who"),
    signin: $("signin"),
    view: $("admin-view"),
    refresh: $("refresh"),
    signout: $("signout"),
    loadError: $("load-error"),
    stateFilter: $("state-filter"),
    enrolForm: $("enrol-form"),
    enrolError: $("enrol-error"),
    enrolDone: $("enrol-done"),
    dialog: $("revoke-dialog"),
    revokeForm: $("revoke-form"),
    revokeReason: $("revoke-reason"),
    revokeError: $("revoke-error"),
  };

  const state = {
    me: null,
    timer: null,
    generation: 0, // a load of an older sign-in or filter neither renders nor reschedules
    shown: {}, // section -> the JSON it shows, so an unchanged section is not redrawn
    revoking: null, // the entry the revoke dialog is for
  };

  // -- loading --------------------------------------------------------------------------

  async function cameras() {
    const { cameras: list } = await CV.api("GET", "/v1/cameras");
    // A camera without a video source answers 404: it is fed frame by frame, or not at all.
    const sources = await Promise.all(
      list.map((c) =>
        CV.api("GET", `/v1/cameras/${encodeURIComponent(c.id)}/source`).catch((err) => {
          if (err.status === 404) return null;
          throw err;
        }),
      ),
    );
    return list.map((c, i) => ({ ...c, source: sources[i] }));
  }

  async function load() {
    if (!state.me) return;
    const generation = state.generation;
    clearTimeout(state.timer);
    if (document.hidden) {
      state.timer = setTimeout(load, REFRESH_MS); // nobody looks: no requests
      return;
    }
    try {
      const [cams, entries, sightings, audit] = await Promise.all([
        cameras(),
        CV.api("GET", `/v1/watchlist/entries${CV.query({ state: ui.stateFilter.value })}`),
        CV.api("GET", `/v1/sightings${CV.query({ limit: SIGHTINGS })}`),
        CV.api("GET", `/v1/audit${CV.query({ order: "desc", limit: AUDIT_LINES })}`),
      ]);
      if (generation !== state.generation) return;
      show("cameras", cams, renderCameras);
      show("entries", entries.entries, renderEntries);
      show("sightings", sightings.sightings, renderSightings);
      show("audit", audit.entries, renderAudit);
      ui.loadError.hidden = true;
      CV.setPill(ui.conn, "live", "up to date");
    } catch (err) {
      if (generation !== state.generation) return;
      if (err.status === 401) {
        showSignIn("Signed out: the token is no longer valid.");
        return;
      }
      if (err.status === 403) {
        showSignIn(`This token may no longer read the watch list; ${NEED_TEXT}`);
        return;
      }
      // 503: the re-ID models are not loaded; the message says why.
      ui.loadError.textContent = `Cannot load: ${err.message}`;
      ui.loadError.hidden = false;
      CV.setPill(ui.conn, "offline", err.status ? "error · retrying" : "offline · retrying");
    } finally {
      if (state.me && generation === state.generation) state.timer = setTimeout(load, REFRESH_MS);
    }
  }

  function show(section, data, render) {
    const key = JSON.stringify(data);
    if (state.shown[section] === key) return;
    state.shown[section] = key;
    render(data);
  }

  // -- rendering --------------------------------------------------------------------------

  function cell(text, className) {
    return CV.el("td", className || "", text ?? "");
  }

  function thumb(src, alt) {
    if (!src) return CV.el("span", "thumb none", "—");
    const img = CV.el("img", "thumb");
    img.src = src;
    img.alt = alt;
    img.loading = "lazy";
    return img;
  }

  function badge(value) {
    return CV.el("span", `badge badge-${value}`, value);
  }

  function sourceText(source) {
    if (!source) return "none";
    const parts = [source.state, `${source.frames} frames`];
    if (source.sightings) parts.push(`${source.sightings} sightings`);
    if (source.error) parts.push(source.error);
    return parts.join(" · ");
  }

  function renderCameras(list) {
    const rows = list.map((c) => {
      const tr = CV.el("tr");
      tr.dataset.id = c.id;
      const feeds = c.watchlist_allowed ? (c.active ? "yes" : "yes (inactive)") : "no";
      const source = cell("", "source");
      source.append(
        CV.el("span", `badge badge-${c.source ? c.source.state : "none"}`, c.source ? c.source.state : "none"),
      );
      if (c.source) source.append(CV.el("div", "muted small", `${sourceText(c.source)} · ${c.source.url}`));
      tr.append(
        cell(c.id, "strong"),
        cell(c.site),
        cell(c.location),
        cell(c.purpose),
        cell(feeds, c.watchlist_allowed ? "feeds" : "muted"),
        source,
      );
      return tr;
    });
    $("cameras").tBodies[0].replaceChildren(...rows);
    $("cameras-empty").hidden = rows.length > 0;
  }

  function renderEntries(list) {
    const rows = list.map((e) => {
      const tr = CV.el("tr", `entry state-${e.state}`);
      tr.dataset.id = e.id;
      tr.dataset.state = e.state;
      const photo = cell("");
      photo.append(thumb(e.reference_url, `enrolment photo of ${e.label}`));
      const label = cell("", "strong");
      label.append(CV.el("div", "", e.label), CV.el("div", "muted small", `${e.id} · ${e.images} photo(s)`));
      const st = cell("", "state-cell");
      st.append(badge(e.state));
      if (e.state === "revoked") {
        st.append(CV.el("div", "muted small", `by ${e.revoked_by} ${CV.stamp(e.revoked_at)}: ${e.revoke_reason}`));
      }
      const act = cell("");
      if (e.state === "active") {
        const button = CV.el("button", "danger small-button", "Revoke…");
        button.type = "button";
        button.dataset.revoke = e.id;
        button.dataset.label = e.label;
        act.append(button);
      }
      tr.append(
        photo,
        label,
        st,
        cell(e.list_name),
        cell(e.authorised_by),
        cell(e.reason, "wrap"),
        cell(e.legal_basis, "wrap"),
        cell(CV.stamp(e.expires_at), "nowrap"),
        act,
      );
      return tr;
    });
    $("entries").tBodies[0].replaceChildren(...rows);
    $("entries-empty").hidden = rows.length > 0;
  }

  function renderSightings(list) {
    const items = list.map((s) => {
      const li = CV.el("li", `sighting state-${s.state}`);
      li.dataset.id = String(s.id);
      li.dataset.state = s.state;
      const caption = CV.el("div", "caption");
      caption.append(
        CV.el("span", "top", s.label || s.entry_id),
        CV.el("span", "score", CV.score(s.similarity)),
        CV.el("span", "where", `camera ${s.camera_id}`),
        CV.el("time", "time", CV.stamp(s.seen_at)),
      );
      caption.append(badge(s.state));
      li.append(thumb(s.crop_url, `crop of sighting ${s.id}`), caption);
      return li;
    });
    $("sightings").replaceChildren(...items);
    $("sightings-empty").hidden = items.length > 0;
  }

  function auditDetail(detail) {
    if (!detail) return "";
    return Object.entries(detail)
      .map(([k, v]) => `${k}=${typeof v === "object" && v !== null ? JSON.stringify(v) : v}`)
      .join(", ");
  }

  function renderAudit(lines) {
    const rows = lines.map((a) => {
      const tr = CV.el("tr");
      tr.dataset.id = String(a.id);
      tr.dataset.action = a.action;
      tr.append(
        cell(a.id, "muted"),
        cell(CV.stamp(a.at, { seconds: true }), "nowrap"),
        cell(a.actor),
        cell(a.action, "strong"),
        cell(a.list_name),
        cell(a.entry_id),
        cell(a.camera_id),
        cell(a.sighting_id),
        cell(auditDetail(a.detail), "wrap small"),
      );
      return tr;
    });
    $("audit").tBodies[0].replaceChildren(...rows);
    $("audit-empty").hidden = rows.length > 0;
  }

  // -- enrolment ----------------------------------------------------------------------------

  /** The form field an API error names: "images[1] (cut.png)" is the photos input. */
  function fieldName(field) {
    if (!field) return null;
    const name = field.split(/[.[ ]/)[0];
    return [...TEXT_FIELDS, "expires_at", "images"].includes(name) ? name : null;
  }

  function clearErrors() {
    ui.enrolError.textContent = "";
    ui.enrolDone.textContent = "";
    for (const p of ui.enrolForm.querySelectorAll(".field-error")) p.textContent = "";
    for (const input of ui.enrolForm.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  }

  /** The expiry as ISO 8601 in UTC: the input holds local time without a zone. */
  function expiry(value) {
    const d = new Date(value);
    return value && !Number.isNaN(d.getTime()) ? d.toISOString() : value;
  }

  async function enrol(event) {
    event.preventDefault();
    clearErrors();
    const form = ui.enrolForm;
    const data = new FormData();
    for (const name of TEXT_FIELDS) data.append(name, form.elements[name].value);
    data.append("expires_at", expiry(form.elements.expires_at.value));
    for (const file of form.elements.images.files) data.append("images", file, file.name);
    const button = $("enrol-submit");
    button.disabled = true;
    try {
      const entry = await CV.postForm("/v1/watchlist/entries", data);
      form.reset(); // only now: on an error everything typed and chosen stays
      ui.enrolDone.textContent = `Enrolled ${entry.label} (${entry.id}), active until ${CV.stamp(entry.expires_at)}.`;
      state.shown = {};
      load();
    } catch (err) {
      if (err.status === 401) {
        showSignIn("Signed out: the token is no longer valid.");
        return;
      }
      const named = err.field && !err.message.startsWith(`${err.field}:`);
      const message = named ? `${err.field}: ${err.message}` : err.message;
      ui.enrolError.textContent = err.status ? message : `Not sent: ${message}`;
      const name = fieldName(err.field);
      if (name) {
        const input = form.elements[name];
        input.setAttribute("aria-invalid", "true");
        form.querySelector(`.field-error[data-for="${name}"]`).textContent = message;
        input.focus();
      }
    } finally {
      button.disabled = false;
    }
  }

  // -- revocation ---------------------------------------------------------------------------

  function openRevoke(id, label) {
    state.revoking = id;
    $("revoke-label").textContent = `${label} (${id})`;
    ui.revokeReason.value = "";
    ui.revokeError.textContent = "";
    ui.dialog.showModal();
    ui.revokeReason.focus();
  }

  async function revoke(event) {
    event.preventDefault();
    const reason = ui.revokeReason.value.trim();
    if (!reason) {
      ui.revokeError.textContent = "reason: required; it goes into the audit log.";
      return;
    }
    const button = $("revoke-submit");
    button.disabled = true;
    try {
      await CV.api("POST", `/v1/watchlist/entries/${encodeURIComponent(state.revoking)}/revoke`, { reason });
      ui.dialog.close();
      state.shown = {};
      load();
    } catch (err) {
      if (err.status === 401) {
        ui.dialog.close();
        showSignIn("Signed out: the token is no longer valid.");
        return;
      }
      ui.revokeError.textContent = err.field ? `${err.field}: ${err.message}` : err.message;
    } finally {
      button.disabled = false;
    }
  }

  // -- sign-in, start -------------------------------------------------------------------------

  function showSignIn(message) {
    state.me = null;
    state.generation += 1;
    state.shown = {};
    clearTimeout(state.timer);
    ui.signin.hidden = false;
    ui.view.hidden = true;
    ui.refresh.hidden = true;
    ui.signout.hidden = true;
    ui.who.textContent = "";
    $("signin-error").textContent = message || "";
    CV.setPill(ui.conn, "offline", "signed out");
  }

  function start(me) {
    state.me = me;
    state.generation += 1;
    ui.signin.hidden = true;
    ui.view.hidden = false;
    ui.refresh.hidden = false;
    ui.signout.hidden = false;
    ui.who.textContent = `${me.name} (${me.role})`;
    CV.setPill(ui.conn, "connecting", "loading…");
    load();
  }

  function reload() {
    state.generation += 1;
    load();
  }

  function boot() {
    CV.wireSignIn({
      form: $("signin-form"),
      input: $("token"),
      error: $("signin-error"),
      need: NEED,
      needText: NEED_TEXT,
      onSignedIn: start,
    });
    ui.signout.addEventListener("click", async () => {
      try {
        await CV.signOut();
      } finally {
        showSignIn("Signed out.");
      }
    });
    ui.refresh.addEventListener("click", reload);
    ui.stateFilter.addEventListener("change", reload);
    ui.enrolForm.addEventListener("submit", enrol);
    $("entries").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-revoke]");
      if (button) openRevoke(button.dataset.revoke, button.dataset.label);
    });
    ui.revokeForm.addEventListener("submit", revoke);
    $("revoke-cancel").addEventListener("click", () => ui.dialog.close());
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && state.me) reload();
    });
    CV.checkSession({
      pill: ui.conn,
      need: NEED,
      needText: NEED_TEXT,
      retryMs: REFRESH_MS,
      onSignedIn: start,
      onSignIn: showSignIn,
    });
  }

  boot();
})();
