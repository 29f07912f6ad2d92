/* <recs-related>: the related articles of a page, from recs (docs/api.md, "The widget").
 *   <recs-related url="ARTICLE_URL" api="https://recs.example.com"></recs-related>
 *   <recs-related url="ARTICLE_URL" src="/related"></recs-related>  (a per-article export)
 *   events: report the items shown and followed to POST /events of `api` or of its value
 * No dependencies. Renders into the light DOM; never throws: on any failure the element
 * keeps what the page put inside it (its fallback content). */
(() => {
  "use strict";
  const NAME = "recs-related";
  if (!window.customElements || customElements.get(NAME)) return;

  // Where: every rule wrapped in :where() (no specificity), so any rule of the site wins.
  const CSS = `:where(recs-related){display:block}
:where(.recs-related){font:inherit;color:var(--recs-color,inherit)}
:where(.recs-heading){font-size:var(--recs-heading-size,1.25em);margin:0 0 .75em}
:where(.recs-list){display:grid;grid-template-columns:repeat(auto-fill,minmax(var(--recs-card-min,13rem),1fr));gap:var(--recs-gap,1rem);list-style:none;margin:0;padding:0}
:where(.recs-card){position:relative;display:flex;flex-direction:column;gap:.4em;height:100%;box-sizing:border-box;overflow-wrap:anywhere;padding:var(--recs-padding,0 0 .75em);background:var(--recs-card-bg,transparent);border:var(--recs-border,0);border-radius:var(--recs-radius,6px);overflow:hidden}
:where(.recs-image){display:block;width:100%;height:auto;aspect-ratio:var(--recs-image-ratio,16/9);object-fit:cover;background:var(--recs-image-bg,#e7e7e7);border-radius:var(--recs-radius,6px)}
:where(.recs-placeholder){display:flex;align-items:center;justify-content:center;font-size:2.5em;font-weight:600;color:var(--recs-placeholder-color,#9a9a9a)}
:where(.recs-title){font-size:var(--recs-title-size,1em);line-height:1.3;margin:0}
:where(.recs-link){color:var(--recs-link,inherit);text-decoration:none}
:where(.recs-link):hover{text-decoration:underline}
:where(.recs-link)::after{content:"";position:absolute;inset:0}
:where(.recs-link):focus-visible{outline:none}
:where(.recs-card):focus-within{outline:2px solid var(--recs-focus,currentColor);outline-offset:2px}
:where(.recs-excerpt){margin:0;font-size:.9em;color:var(--recs-muted,#555);display:-webkit-box;-webkit-box-orient:vertical;-webkit-line-clamp:var(--recs-excerpt-lines,3);overflow:hidden}
:where(.recs-meta){margin:auto 0 0;font-size:.8em;color:var(--recs-muted,#555)}
:where(.recs-provider)+:where(.recs-date)::before{content:" · "}
:where(.recs-empty){color:var(--recs-muted,#555)}`;

  const manifests = new Map(); // export folder -> Promise of its _manifest.json (or {})
  let styled = false;
  let ids = 0;

  const style = () => {
    if (styled) return;
    styled = true;
    try { // a constructed sheet: allowed by a Content-Security-Policy that has no 'unsafe-inline'
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      document.adoptedStyleSheets = [sheet, ...document.adoptedStyleSheets];
    } catch (e) {
      const tag = document.createElement("style");
      tag.textContent = CSS;
      document.head.prepend(tag);
    }
  };

  // Only an absolute http(s) URL becomes a link or an image: never javascript:, data: etc.
  const web = (text) => {
    if (typeof text !== "string") return null;
    try {
      const url = new URL(text);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) {
      return null;
    }
  };

  const node = (tag, name, text) => {
    const el = document.createElement(tag);
    if (name) el.className = "recs-" + name;
    if (text != null) el.textContent = text; // text, never HTML
    return el;
  };

  const json = async (url) => {
    const response = await fetch(url, { credentials: "omit", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(url + ": " + response.status);
    return response.json();
  };

  // The per-article export's file of a URL written exactly in its readable canonical form
  // (recs/export.py, rule 6): such a URL is its own path, so most pages cost one request.
  // Any other text (http, a query, upper case, a trailing slash...) is looked up in
  // _manifest.json, which maps canonical URLs and every form the articles' files write:
  // recs' canonical-URL rules (recs/urls.py) are not copied here, where they would drift.
  // A null here is always safe: the manifest answers.
  const readable = (url) => {
    const match = /^https:\/\/([a-z0-9._-]+)\/([a-z0-9._/-]+)$/.exec(url);
    if (!match || url.length - 3 > 512) return null; // "https://" out, ".json" in
    const parts = [match[1], ...match[2].split("/")];
    if (parts.length > 18) return null; // more than 16 folders below the host
    const ok = parts.every(
      (part, i) =>
        part && part.length <= 100 && part[0] !== "." && (i === parts.length - 1 || !part.endsWith(".json"))
    );
    return ok ? url.slice(8) + ".json" : null;
  };

  const fromExport = async (src, url) => {
    const base = src.replace(/\/*$/, "/");
    const direct = readable(url);
    if (direct) {
      try {
        return await json(base + direct);
      } catch (e) {} // not exported under this text: the manifest may know it
    }
    if (!manifests.has(base)) manifests.set(base, json(base + "_manifest.json").catch(() => ({})));
    const manifest = await manifests.get(base);
    const path = Object.prototype.hasOwnProperty.call(manifest, url) ? manifest[url] : null;
    if (typeof path !== "string") throw new Error(url + " is not in " + base + "_manifest.json");
    return json(base + path);
  };

  // Reader events (POST /events): fire and forget; keepalive lets a click's request
  // outlive the page it leaves. A refused or failed request changes nothing on the page.
  const report = (endpoint, events) => {
    try {
      const body = JSON.stringify(events.length === 1 ? events[0] : { events });
      fetch(endpoint, { method: "POST", keepalive: true, credentials: "omit", headers: { "Content-Type": "application/json" }, body }).catch(() => {});
    } catch (e) {}
  };

  const imageOf = (item) => (Array.isArray(item.images) ? item.images.find((i) => i && web(i.url)) : null);

  const date = (text, lang) => {
    const moment = typeof text === "string" ? new Date(text) : null;
    if (!moment || isNaN(moment)) return null;
    const el = node("time", "date", moment.toLocaleDateString(lang || undefined, { year: "numeric", month: "short", day: "numeric" }));
    el.dateTime = text;
    return el;
  };

  class RecsRelated extends HTMLElement {
    static get observedAttributes() {
      return ["url", "api", "src", "limit"];
    }

    connectedCallback() {
      if (this.started || this.observer) return;
      style();
      const start = () => {
        this.started = true;
        this.load();
      };
      if (this.getAttribute("loading") === "eager" || !window.IntersectionObserver) return start();
      // Load when the element comes near the viewport (as loading="lazy" images do).
      this.observer = new IntersectionObserver(
        (entries) => {
          if (!entries.some((entry) => entry.isIntersecting)) return;
          this.observer.disconnect();
          start();
        },
        { rootMargin: "400px" }
      );
      this.observer.observe(this);
    }

    attributeChangedCallback() {
      if (this.started) this.load();
    }

    get limit() {
      const limit = parseInt(this.getAttribute("limit"), 10);
      return limit >= 1 && limit <= 50 ? limit : null;
    }

    async load() {
      const turn = (this.turn = (this.turn || 0) + 1);
      const api = this.getAttribute("api");
      const src = this.getAttribute("src");
      const canonical = document.querySelector('link[rel="canonical"]');
      const url = this.getAttribute("url") || (canonical && canonical.href) || location.href.split("#")[0];
      let data = null;
      try {
        if (api) {
          const query = "url=" + encodeURIComponent(url) + (this.limit ? "&limit=" + this.limit : "");
          data = await json(api.replace(/\/*$/, "") + "/related?" + query);
        } else if (src) {
          data = await fromExport(src, url);
        }
      } catch (e) {
        data = null; // a network error, an unknown article: the fallback content stays
      }
      if (turn === this.turn) this.show(data);
    }

    show(data) {
      // Taken at the first answer, not on connection: the parser may connect the element
      // before it has parsed the children.
      if (!this.fallback) this.fallback = [...this.childNodes];
      const items = data && Array.isArray(data.related)
        ? data.related.filter((item) => item && typeof item.title === "string").slice(0, this.limit || undefined)
        : null;
      const empty = this.getAttribute("empty");
      if (!items || (!items.length && empty == null)) {
        this.replaceChildren(...this.fallback);
        this.setAttribute("state", items ? "empty" : "failed");
        return;
      }
      const heading = this.getAttribute("heading") ?? "Related articles";
      const level = Math.min(Math.max(parseInt(this.getAttribute("heading-level"), 10) || 2, 1), 5);
      const section = node("section", "related");
      if (heading) {
        const title = node("h" + level, "heading", heading);
        title.id = "recs-heading-" + ++ids;
        section.setAttribute("aria-labelledby", title.id);
        section.append(title);
      } else {
        section.setAttribute("aria-label", "Related articles");
      }
      if (!items.length) {
        section.append(node("p", "empty", empty));
      } else {
        const list = node("ul", "list");
        const lang = this.closest("[lang]")?.lang;
        // Every card gets a thumbnail box when any has an image, so titles line up.
        const thumbs = !this.hasAttribute("no-images") && items.some(imageOf);
        for (const item of items) list.append(this.card(item, level + 1, lang, thumbs));
        section.append(list);
      }
      this.replaceChildren(section);
      this.setAttribute("state", items.length ? "loaded" : "empty");
      this.count(section, data, items);
      this.dispatchEvent(new CustomEvent("recs-related:load", { bubbles: true, detail: { count: items.length } }));
    }

    // With `events`: one batch of impressions when half the list is in view, and a click
    // event when a reader follows an item. Only items with an http(s) URL count.
    count(section, data, items) {
      const base = this.getAttribute("events") || (this.hasAttribute("events") && this.getAttribute("api"));
      if (!base || typeof data.url !== "string") return;
      const endpoint = base.replace(/\/*$/, "") + "/events";
      const links = section.querySelectorAll(".recs-link");
      const shown = [];
      items.forEach((item, i) => {
        const event = { type: "impression", article: data.url, item: web(item.webUrl), position: i + 1 };
        if (!event.item) return;
        shown.push(event);
        links[i].addEventListener("click", () => report(endpoint, [{ ...event, type: "click" }]));
      });
      if (!shown.length) return;
      if (!window.IntersectionObserver) return report(endpoint, shown);
      const seen = new IntersectionObserver((entries) => {
        if (entries.some((entry) => entry.isIntersecting)) seen.disconnect(), report(endpoint, shown);
      }, { threshold: 0.5 });
      seen.observe(section);
    }

    card(item, level, lang, thumbs) {
      const li = node("li", "item");
      const card = node("article", "card");
      li.append(card);
      const image = thumbs && imageOf(item);
      const provider = item.provider && item.provider.name;
      // A box of the image's size with the provider's initial: for an item without an
      // image, or one whose image fails (instead of the browser's broken-image icon).
      const placeholder = () => {
        const initial = String((typeof provider === "string" && provider) || item.title).trim()[0];
        const box = node("div", "image recs-placeholder", initial ? initial.toUpperCase() : "");
        box.setAttribute("aria-hidden", "true");
        return box;
      };
      if (image) {
        const img = node("img", "image");
        img.alt = "";
        img.loading = "lazy";
        img.decoding = "async";
        const sized = image.width > 0 && image.height > 0;
        img.width = sized ? image.width : 16; // the box is reserved before the image arrives
        img.height = sized ? image.height : 9;
        img.addEventListener("error", () => img.replaceWith(placeholder()), { once: true });
        img.src = web(image.url);
        card.append(img);
      } else if (thumbs) {
        card.append(placeholder());
      }
      const href = web(item.webUrl);
      const title = node("h" + Math.min(level, 6), "title");
      const link = node(href ? "a" : "span", "link", item.title);
      if (href) link.href = href;
      title.append(link);
      card.append(title);
      if (typeof item.excerpt === "string" && item.excerpt) card.append(node("p", "excerpt", item.excerpt));
      const meta = node("p", "meta");
      if (typeof provider === "string" && provider) meta.append(node("span", "provider", provider));
      const when = date(item.publishedDateTime, lang);
      if (when) meta.append(when);
      if (meta.childNodes.length) card.append(meta);
      return li;
    }
  }

  RecsRelated.readablePath = readable; // for tests: the path rule, beside recs/export.py's
  customElements.define(NAME, RecsRelated);
})();
