/* The editor's preview page (/preview): a draft's related list as it is typed.
 * Reads only: drafts go to POST /related and POST /preview/block, which store nothing.
 * Every value from the service is inserted as text, never as HTML. */
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const keys = { pinned: document.body.dataset.pinnedKey, excluded: document.body.dataset.excludedKey };
  const state = { params: [], pinned: [], excluded: [], titles: new Map(), turn: 0, controller: null, timer: 0 };
  const DEBOUNCE_MS = 300;

  const node = (tag, className, text) => {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text != null) el.textContent = text;
    return el;
  };

  // Only an absolute http(s) URL becomes a link.
  const web = (text) => {
    if (typeof text !== "string") return null;
    try {
      const url = new URL(text);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) {
      return null;
    }
  };

  const status = (text, failed) => {
    $("status").textContent = text;
    $("status").classList.toggle("failed", Boolean(failed));
  };

  const problem = async (response) => {
    try {
      const body = await response.json();
      return body.detail || body.title || "HTTP " + response.status;
    } catch (e) {
      return "HTTP " + response.status;
    }
  };

  // --- the options: one control per query parameter of POST /related ---------------

  const kindOf = (schema) => {
    if (schema.type === "array") return "array";
    if (schema.type === "boolean") return "boolean";
    if (schema.enum) return "enum";
    if (schema.type === "integer" || schema.type === "number") return "number";
    return "text";
  };

  const control = (parameter) => {
    const schema = parameter.schema || {};
    const kind = kindOf(schema);
    const id = "param-" + parameter.name;
    const field = node("div", "field " + kind);
    const label = node("label", null, parameter.name.replace(/_/g, " "));
    label.htmlFor = id;
    let input;
    if (kind === "array") {
      input = node("textarea");
      input.rows = 2;
      input.placeholder = "one per line";
    } else if (kind === "enum") {
      input = node("select");
      for (const value of ["", ...schema.enum]) input.append(new Option(value === "" ? "any" : String(value), value));
    } else {
      input = node("input");
      input.type = kind === "boolean" ? "checkbox" : kind === "number" ? "number" : "text";
      if (kind === "number") {
        input.step = schema.type === "integer" ? "1" : "any";
        if (schema.minimum != null && Math.abs(schema.minimum) < 1e9) input.min = schema.minimum;
        if (schema.maximum != null && Math.abs(schema.maximum) < 1e9) input.max = schema.maximum;
      }
      if (parameter.example != null && kind === "text") input.placeholder = String(parameter.example);
    }
    input.id = id;
    input.name = parameter.name;
    const help = node("p", "hint", (parameter.description || "").replace(/`/g, ""));
    help.id = id + "-help";
    input.setAttribute("aria-describedby", help.id);
    input.addEventListener(kind === "boolean" || kind === "enum" ? "change" : "input", schedule);
    if (kind === "boolean") field.append(input, label, help);
    else field.append(label, input, help);
    $("filters").append(field);
    state.params.push({ name: parameter.name, kind, input });
  };

  const controls = async () => {
    try {
      const response = await fetch("/openapi.json", { headers: { Accept: "application/json" } });
      const doc = await response.json();
      for (const parameter of doc.paths["/related"].post.parameters || []) {
        if (parameter.in === "query") control(parameter);
      }
    } catch (e) {
      $("filters").append(node("p", "status failed", "The options could not be read from /openapi.json."));
    }
  };

  const query = () => {
    const params = new URLSearchParams();
    for (const { name, kind, input } of state.params) {
      if (kind === "boolean") {
        if (input.checked) params.append(name, "true");
      } else if (kind === "array") {
        for (const value of input.value.split("\n")) if (value.trim()) params.append(name, value.trim());
      } else if (input.value.trim()) {
        params.append(name, input.value.trim());
      }
    }
    return params;
  };

  // --- the draft and its list ---------------------------------------------------------

  const draft = () => {
    const body = { title: $("title").value, excerpt: $("excerpt").value };
    if ($("date").value) body.publishedDateTime = $("date").value;
    if ($("category").value.trim()) body.category = $("category").value.trim();
    const topics = $("topics").value.split(",").map((topic) => topic.trim()).filter(Boolean);
    if (topics.length) body.topics = topics;
    if (state.pinned.length) body[keys.pinned] = [...state.pinned];
    if (state.excluded.length) body[keys.excluded] = [...state.excluded];
    return body;
  };

  // The list is aria-busy from a change until the answer to the last one is shown.
  const busy = (value) => $("list").setAttribute("aria-busy", String(value));

  function schedule() {
    busy(true);
    clearTimeout(state.timer);
    state.timer = setTimeout(update, DEBOUNCE_MS);
  }

  async function update() {
    clearTimeout(state.timer);
    const body = draft();
    const turn = ++state.turn;
    if (state.controller) state.controller.abort();
    if (!body.title.trim()) {
      $("list").replaceChildren();
      status("Type a title to see related articles.");
      return busy(false);
    }
    busy(true);
    const controller = (state.controller = new AbortController());
    status("Ranking…");
    try {
      const response = await fetch("/related?" + query(), {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      if (!response.ok) {
        const detail = await problem(response);
        if (turn === state.turn) status(detail, true);
      } else {
        const data = await response.json();
        if (turn === state.turn) render(Array.isArray(data.related) ? data.related : []);
      }
    } catch (e) {
      if (e.name !== "AbortError" && turn === state.turn) status("The service did not answer: " + e.message, true);
    }
    if (turn === state.turn) busy(false);
  }

  const number = (value) => (typeof value === "number" ? value.toFixed(3) : null);

  const reasonText = (item) => {
    const reason = item.reason;
    if (!reason || typeof reason !== "object") return null;
    const parts = [];
    for (const [key, value] of Object.entries(reason)) {
      const text = Array.isArray(value) ? value.join(", ") : typeof value === "object" ? JSON.stringify(value) : String(value);
      parts.push(key === "kind" ? text : key + ": " + text);
    }
    return parts.join(" · ");
  };

  const dateText = (text) => {
    const moment = typeof text === "string" ? new Date(text) : null;
    return moment && !isNaN(moment) ? moment.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" }) : null;
  };

  const figure = (label, value, className) => {
    const el = node("p", className);
    el.append(node("span", "label", label + " "), node("span", "value", value));
    return el;
  };

  const toggle = (text, pressed, onClick) => {
    const button = node("button", "toggle", text);
    button.type = "button";
    button.setAttribute("aria-pressed", String(pressed));
    button.addEventListener("click", onClick);
    return button;
  };

  const render = (items) => {
    const list = $("list");
    list.replaceChildren();
    for (const item of items) {
      if (!item || typeof item.title !== "string") continue;
      const url = typeof item.webUrl === "string" ? item.webUrl : null;
      if (url) state.titles.set(url, item.title);
      const pinned = item.pinned === true || (url != null && state.pinned.includes(url));
      const li = node("li", "item" + (pinned ? " is-pinned" : ""));
      const main = node("div", "item-main");
      const href = web(url);
      const title = node(href ? "a" : "span", "title", item.title);
      if (href) {
        title.href = href;
        title.target = "_blank";
        title.rel = "noopener noreferrer";
      }
      main.append(title);
      const meta = [item.provider && item.provider.name, dateText(item.publishedDateTime), item.type];
      const metaText = meta.filter((part) => typeof part === "string" && part).join(" · ");
      if (metaText) main.append(node("p", "meta", metaText));
      if (typeof item.excerpt === "string" && item.excerpt) main.append(node("p", "excerpt", item.excerpt));
      const side = node("div", "item-side");
      const score = number(item.score);
      if (score) side.append(figure("score", score, "score"));
      const similarity = number(item.similarity);
      if (similarity) side.append(figure("similarity", similarity, "similarity"));
      const reason = reasonText(item);
      if (reason) side.append(node("p", "reason", reason));
      else if (pinned) side.append(node("p", "reason", "pinned"));
      if (url) {
        const actions = node("div", "actions");
        actions.append(
          toggle(pinned ? "Pinned" : "Pin", pinned, () => pin(url)),
          toggle("Exclude", false, () => exclude(url))
        );
        side.append(actions);
      }
      li.append(main, side);
      list.append(li);
    }
    const count = list.children.length;
    status(count ? count + (count === 1 ? " related article" : " related articles") : "Nothing related: try more words, or fewer options.");
  };

  // --- pins and exclusions --------------------------------------------------------------

  const without = (urls, url) => urls.filter((other) => other !== url);

  function pin(url) {
    state.pinned = state.pinned.includes(url) ? without(state.pinned, url) : [...state.pinned, url];
    state.excluded = without(state.excluded, url);
    changed();
  }

  function exclude(url) {
    state.excluded = state.excluded.includes(url) ? without(state.excluded, url) : [...state.excluded, url];
    state.pinned = without(state.pinned, url);
    changed();
  }

  const chips = (id, urls, action, label) => {
    const list = $(id);
    list.replaceChildren();
    for (const url of urls) {
      const li = node("li", "chip");
      li.append(node("span", "chip-text", state.titles.get(url) || url));
      li.title = url;
      const button = node("button", "chip-remove", label);
      button.type = "button";
      button.setAttribute("aria-label", label + ": " + (state.titles.get(url) || url));
      button.addEventListener("click", () => action(url));
      li.append(button);
      list.append(li);
    }
    if (!urls.length) list.append(node("li", "none", "none"));
  };

  function changed() {
    chips("pinned", state.pinned, pin, "Unpin");
    chips("excluded", state.excluded, exclude, "Undo");
    update();
  }

  // --- the lines to copy ----------------------------------------------------------------

  const copy = async () => {
    const body = draft();
    const say = (text, failed) => {
      $("copy-status").textContent = text;
      $("copy-status").classList.toggle("failed", Boolean(failed));
    };
    if (!body.title.trim()) return say("Type a title first.", true);
    say("Ranking…");
    let response;
    try {
      response = await fetch("/preview/block", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch (e) {
      return say("The service did not answer: " + e.message, true);
    }
    if (!response.ok) return say(await problem(response), true);
    const text = await response.text();
    $("block").value = text;
    try {
      await navigator.clipboard.writeText(text);
      return say("Copied.");
    } catch (e) {
      $("block").select(); // no clipboard access (a page not served over https): the old way
      const copied = document.execCommand && document.execCommand("copy");
      say(copied ? "Copied." : "Select the text below and copy it.", !copied);
    }
  };

  // --- wiring -----------------------------------------------------------------------------

  for (const id of ["title", "excerpt", "date", "category", "topics"]) $(id).addEventListener("input", schedule);
  $("draft").addEventListener("submit", (event) => event.preventDefault());
  $("pin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const url = $("pin-url").value.trim();
    if (web(url) && !state.pinned.includes(url)) pin(url);
    $("pin-url").value = "";
  });
  $("copy").addEventListener("click", copy);
  chips("pinned", [], pin, "Unpin");
  chips("excluded", [], exclude, "Undo");
  controls().then(() => {
    if ($("title").value.trim()) update(); // a reload keeps what the browser restored
  });
})();
