// Shared by the handheld page, the reader console and the watch-list page: API calls,
// sign-in, formatting.
// The API token lives in the HttpOnly `cv_token` cookie set by POST /v1/session, so
// every same-origin request (fetch, EventSource, <img>) carries it and no script
// ever reads the secret.
"use strict";

const CV = (() => {
  /** An API error: the answer's status, its JSON `detail` and the request field it names. */
  class ApiError extends Error {
    constructor(status, detail, field) {
      super(detail);
      this.status = status;
      this.field = field || null;
    }
  }

  /** Calls the API; resolves to the parsed JSON (or null for 204), rejects with ApiError. */
  async function api(method, path, body) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return send(path, init);
  }

  /** Posts a multipart form (a FormData of fields and files); resolves like `api`. */
  function postForm(path, form) {
    // No Content-Type: the browser sets multipart/form-data with its boundary.
    const init = { method: "POST", credentials: "same-origin", headers: { Accept: "application/json" }, body: form };
    return send(path, init);
  }

  /** One request; the parsed JSON (null for 204), or an ApiError with the named field. */
  async function send(path, init) {
    let res;
    try {
      res = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, "the server cannot be reached");
    }
    if (res.status === 204) return null;
    let data = null;
    try {
      data = await res.json();
    } catch (err) {
      data = null;
    }
    if (!res.ok) {
      const detail = data && typeof data.detail === "string" ? data.detail : res.statusText;
      // A service error names its field; a request validation error lists its errors.
      let field = data && typeof data.field === "string" ? data.field : null;
      if (!field && data && Array.isArray(data.errors) && data.errors.length) field = data.errors[0].field;
      throw new ApiError(res.status, detail || `HTTP ${res.status}`, field);
    }
    return data;
  }

  /**
   * A sign-in link (`?token=...`, printed by `serve run --demo`) signs in once; the
   * token is then taken out of the address bar so it stays out of history and
   * screenshots. An unknown token just leaves the sign-in form showing.
   */
  async function signInFromLink() {
    const url = new URL(window.location.href);
    const token = url.searchParams.get("token");
    if (!token) return;
    url.searchParams.delete("token");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    try {
      await signIn(token);
    } catch (err) {
      if (err.status !== 401 && err.status !== 422) throw err;
    }
  }

  /** Who is signed in ({name, role, permissions}), or null when nobody is. */
  async function whoami() {
    await signInFromLink();
    try {
      return await api("GET", "/v1/session");
    } catch (err) {
      if (err.status === 401) return null;
      throw err;
    }
  }

  const signIn = (token) => api("POST", "/v1/session", { token });
  const signOut = () => api("DELETE", "/v1/session");

  /** A query string from an object, leaving out empty values. */
  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
    }
    const s = q.toString();
    return s ? `?${s}` : "";
  }

  /** Local wall-clock time of an ISO timestamp, e.g. 14:03:27. */
  function clock(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour12: false });
  }

  /** Local date and time of an ISO timestamp, e.g. 2025-03-14 14:03 (or 14:03:27). */
  function stamp(iso, { seconds = false } = {}) {
    if (!iso) return "";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return "";
    const two = (n) => String(n).padStart(2, "0");
    const time = `${two(d.getHours())}:${two(d.getMinutes())}${seconds ? `:${two(d.getSeconds())}` : ""}`;
    return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${time}`;
  }

  const score = (s) => Number(s).toFixed(2);

  /** Creates an element with a class and text. */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /** Shows the connection state in a `.pill` element. */
  function setPill(node, state, text) {
    node.dataset.state = state;
    node.textContent = text || state;
  }

  /** Wires a sign-in form: posts the token, then calls `onSignedIn(session)`. */
  function wireSignIn({ form, input, error, need, needText, onSignedIn }) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const me = await signIn(input.value.trim());
        if (!me.permissions.includes(need)) {
          await signOut();
          error.textContent = `“${me.name}” is ${/^[aeiou]/.test(me.role) ? "an" : "a"} ${me.role} token; ${needText}`;
          return;
        }
        input.value = "";
        onSignedIn(me);
      } catch (err) {
        error.textContent =
          err.status === 401
            ? `Token refused: ${err.message.replace(/^token: /, "")}.`
            : `Sign-in failed: ${err.message}`;
      } finally {
        button.disabled = false;
      }
    });
  }

  /**
   * At page load: signed in already (the cookie survives reloads)? Shows the page for a
   * token that holds `need`, else the sign-in form with the reason; retries every
   * `retryMs` while the server cannot be reached.
   */
  async function checkSession({ pill, need, needText, retryMs, onSignedIn, onSignIn }) {
    let me = null;
    try {
      me = await whoami();
    } catch (err) {
      setPill(pill, "offline", "offline · retrying");
      setTimeout(() => checkSession({ pill, need, needText, retryMs, onSignedIn, onSignIn }), retryMs);
      return;
    }
    if (!me) onSignIn("");
    else if (!me.permissions.includes(need)) {
      onSignIn(`“${me.name}” is ${/^[aeiou]/.test(me.role) ? "an" : "a"} ${me.role} token; ${needText}`);
    } else onSignedIn(me);
  }

  // -- the served X-ray model and what its alert thresholds do ---------------------------

  const percent = (x) => `${(100 * Number(x)).toFixed(1)} %`;

  /** One line on the served model's alert thresholds, from its OIP metadata. */
  function describeModel(meta) {
    const p = meta.parameters || {};
    const name = `Model ${p.model_name || meta.name} v${(meta.versions || ["?"])[0]}`;
    const op = p.operating_point;
    const bag = p.operating_point_bag;
    if (op && bag) {
      const scans = bag.clean_bags + bag.threat_bags;
      const weighted = bag.weights && Object.keys(bag.weights).length ? ", classes weighted" : "";
      return (
        `${name} · alerts on ${percent(bag.far)} of clean bags and ` +
        `${percent(bag.detection_rate)} of bags with threats ` +
        `(thresholds chosen at ${op}${weighted} on ${scans} scans)`
      );
    }
    if (op) return `${name} · thresholds chosen per class at ${op}`;
    return `${name} · alert thresholds set by hand`;
  }

  /**
   * Keeps `line` describing the served model, asked again every `everyMs` so that a
   * model swap shows. Returns the function that stops it.
   */
  function watchModel(line, everyMs = 60000) {
    let timer = null;
    let stopped = false;
    async function refresh() {
      try {
        line.textContent = describeModel(await api("GET", "/v2/models/xray"));
      } catch (err) {
        line.textContent = err.status === 503 ? "No X-ray model loaded" : "";
      }
      if (!stopped) timer = setTimeout(refresh, everyMs);
    }
    refresh();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }

  return {
    ApiError,
    api,
    postForm,
    whoami,
    signIn,
    signOut,
    query,
    clock,
    stamp,
    score,
    el,
    setPill,
    wireSignIn,
    checkSession,
    describeModel,
    watchModel,
  };
})();
