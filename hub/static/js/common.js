/* govhub page helpers: messages in the page's language, the JSON API with the CSRF token,
   times in GOVHUB_TIMEZONE. Local, no build step, no external assets. */
(function () {
  "use strict";
  var node = document.getElementById("i18n-messages");
  var messages = node ? JSON.parse(node.textContent || "{}") : {};
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var tzMeta = document.querySelector('meta[name="govhub-timezone"]');
  var hub = (window.hub = {});

  hub.timezone = tzMeta ? tzMeta.content : "Asia/Shanghai";

  hub.t = function (message, vars) {
    var text = messages[message] || message;
    if (vars) {
      Object.keys(vars).forEach(function (key) {
        text = text.split("%(" + key + ")s").join(String(vars[key]));
      });
    }
    return text;
  };

  /* Platform labels in the page's language, declared by the connectors (base template). */
  var platformsNode = document.getElementById("platforms");
  hub.platforms = platformsNode ? JSON.parse(platformsNode.textContent || "{}") : {};
  hub.platformLabel = function (key) {
    return hub.platforms[key] ? hub.platforms[key].label : key;
  };

  hub.config = function (id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent || "null") : null;
  };

  /* Controls a page renders disabled (data-needs-script) because only its script gives them
     meaning: clicked before the script ran, they did nothing, or sent a form nowhere. The
     script enables those inside root once it has wired them. */
  hub.wired = function (root) {
    root.querySelectorAll("[data-needs-script]").forEach(function (el) {
      el.disabled = false;
      el.removeAttribute("data-needs-script");
    });
  };

  /* fetch() the JSON API; throws an Error carrying the API's words (detail) on failure. */
  hub.api = async function (method, url, body) {
    var headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = csrfMeta ? csrfMeta.content : "";
    var init = { method: method, headers: headers, credentials: "same-origin" };
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    var response = await fetch(url, init);
    var data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      var error = new Error((data && data.detail) || hub.t("操作失败") + " (HTTP " + response.status + ")");
      error.status = response.status;
      throw error;
    }
    return data;
  };

  function parts(date, tz) {
    var out = {};
    new Intl.DateTimeFormat("en-US", {
      timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit"
    }).formatToParts(date).forEach(function (p) { out[p.type] = p.value; });
    return out;
  }

  function offsetMs(date, tz) {
    var p = parts(date, tz);
    var asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second);
    return asUtc - Math.floor(date.getTime() / 1000) * 1000;
  }

  /* "2026-05-01T09:30" read as a wall-clock time in tz -> ISO 8601 UTC. */
  hub.zonedToIso = function (value, tz) {
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value || "");
    if (!m) return null;
    var guess = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
    var ts = guess - offsetMs(new Date(guess), tz);
    ts = guess - offsetMs(new Date(ts), tz);
    return new Date(ts).toISOString();
  };

  /* ISO time -> "YYYY-MM-DDTHH:MM" on the wall clock of tz (for datetime-local inputs). */
  hub.isoToInput = function (iso, tz) {
    if (!iso) return "";
    var p = parts(new Date(iso), tz);
    return p.year + "-" + p.month + "-" + p.day + "T" + (p.hour === "24" ? "00" : p.hour) + ":" + p.minute;
  };

  hub.clock = function (date, tz) {
    var p = parts(date || new Date(), tz || hub.timezone);
    return (p.hour === "24" ? "00" : p.hour) + ":" + p.minute;
  };

  hub.stamp = function (iso, tz) {
    if (!iso) return "";
    var p = parts(new Date(iso), tz || hub.timezone);
    return p.month + "-" + p.day + " " + (p.hour === "24" ? "00" : p.hour) + ":" + p.minute + ":" + p.second;
  };

  hub.debounce = function (fn, ms) {
    var timer = null;
    return function () {
      var args = arguments;
      clearTimeout(timer);
      timer = setTimeout(function () { fn.apply(null, args); }, ms);
    };
  };

  hub.el = function (tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  };

  /* The media library picker (compose, the live console): a <details> holding a search box and a
     grid; opening it or typing lists the org subtree's images (GET /api/v1/media); a click calls
     onPick(item) with the API's item ({path, url, alt, original_name, ...}). */
  hub.mediaPicker = function (details, search, grid, onPick) {
    if (!details || !search || !grid) return;
    async function load() {
      var q = search.value.trim();
      var found = await hub.api("GET", "/api/v1/media?per_page=24" + (q ? "&q=" + encodeURIComponent(q) : ""));
      grid.textContent = "";
      if (!found.items.length) { grid.appendChild(hub.el("p", { class: "muted small" }, hub.t("媒体库中还没有图片。"))); return; }
      found.items.forEach(function (item) {
        var label = hub.t("插入") + " " + (item.alt || item.original_name || item.path);
        var pick = hub.el("button", { type: "button", class: "pick", "data-path": item.path, title: label, "aria-label": label });
        pick.appendChild(hub.el("img", { src: item.url, alt: "" }));
        pick.addEventListener("click", function () { onPick(item); });
        grid.appendChild(pick);
      });
    }
    details.addEventListener("toggle", function () { if (details.open) load().catch(function () {}); });
    search.addEventListener("input", hub.debounce(function () { load().catch(function () {}); }, 300));
    if (details.open) load().catch(function () {});  /* opened before this script ran */
  };

  hub.say = function (el, text, kind) {
    if (!el) return;
    el.textContent = text || "";
    el.className = "message" + (kind ? " " + kind : "");
  };
})();
