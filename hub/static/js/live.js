/* Micro-live reader: Server-Sent Events with Last-Event-ID replay, polling as the fallback.
   The page works without this script (server-rendered); this only keeps it current. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var root = document.getElementById("live") || document.getElementById("console");
  if (!root) { return; }
  var isConsole = root.id === "console";
  var list = document.getElementById("entries");
  // the public page's pinned list (the console has none: its 置顶 checkbox is #pin)
  var pinned = isConsole ? null : root.querySelector("section.pinned-list");
  var notice = document.getElementById("new-notice");
  var statusLabel = document.getElementById("live-status") || document.getElementById("session-status");
  var conn = document.getElementById("conn");
  var held = [];
  var lastEvent = root.getAttribute("data-last-event") || "0";
  var source = null;
  // words in the page's language where common.js is loaded (the console); the public page is Chinese
  var tr = (window.hub && window.hub.t) ? window.hub.t : function (message, vars) {
    Object.keys(vars || {}).forEach(function (key) {
      message = message.split("%(" + key + ")s").join(String(vars[key]));
    });
    return message;
  };
  var STATUS = { scheduled: "即将开始", live: "直播中", ended: "已结束", archived: "已结束" };
  // the console's words come from the page (the catalog: 未开始/直播中/已结束, or English)
  var labels = (statusLabel && statusLabel.getAttribute("data-labels"))
    ? JSON.parse(statusLabel.getAttribute("data-labels")) : STATUS;

  function node(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) { n.className = cls; }
    if (text !== undefined) { n.textContent = text; }
    return n;
  }

  function render(e, prefix) {
    var a = node("article", "entry" + (e.key_event ? " key" : "") + (e.pinned ? " pinned" : "") +
      (e.deleted ? " deleted" : ""));
    a.id = (prefix || "e") + e.seq;
    a.setAttribute("data-seq", e.seq);
    var h = node("header");
    var t = node("time", "", e.time);
    t.setAttribute("datetime", e.created_at);
    h.appendChild(t);
    if (e.key_event) { h.appendChild(node("span", "badge key-badge", tr("要点"))); }
    if (e.pinned) { h.appendChild(node("span", "badge pin-badge", tr("置顶"))); }
    a.appendChild(h);
    if (e.deleted) {
      a.appendChild(node("p", "mark deleted-mark", e.correction_note ? tr("已删除：%(note)s", { note: e.correction_note }) : tr("已删除")));
    } else {
      a.appendChild(node("div", "text", e.text));
      (e.images || []).forEach(function (src) {
        var img = node("img");
        img.src = src; img.alt = ""; img.loading = "lazy";
        a.appendChild(img);
      });
      if (e.edited_at) {
        a.appendChild(node("p", "mark corrected-mark", e.correction_note
          ? tr("已更正 %(time)s：%(note)s", { time: e.edited_time, note: e.correction_note })
          : tr("已更正 %(time)s", { time: e.edited_time })));
      }
    }
    if (window.govhubConsoleTools) { window.govhubConsoleTools(a, e); }
    return a;
  }

  function scrolledAway() {
    return !isConsole && window.scrollY > list.offsetTop + 80;
  }

  function showNotice() {
    if (!notice) { return; }
    notice.textContent = tr("%(n)s 条新消息", { n: held.length });
    notice.hidden = held.length === 0;
  }

  function insert(e) {
    var empty = document.getElementById("empty");
    if (empty) { empty.remove(); }
    list.insertBefore(render(e), list.firstChild);
  }

  function flush() {
    held.forEach(insert);
    held = [];
    showNotice();
    list.scrollIntoView({ behavior: "smooth" });
  }
  if (notice) { notice.addEventListener("click", flush); }

  function renderPinned(e) {
    if (!pinned) { return; }
    var old = document.getElementById("p" + e.seq);
    if (old) { old.remove(); }
    if (e.pinned && !e.deleted) { pinned.insertBefore(render(e, "p"), pinned.firstChild); }
    pinned.hidden = pinned.children.length === 0;
  }

  function upsert(e) {
    var existing = document.getElementById("e" + e.seq);
    if (existing) {
      existing.replaceWith(render(e));
    } else {
      var waiting = held.findIndex(function (h) { return h.seq === e.seq; });
      if (waiting >= 0) { held[waiting] = e; }
      else if (scrolledAway()) { held.unshift(e); showNotice(); }
      else { insert(e); }
    }
    renderPinned(e);
  }

  function setConn(text, cls) {
    if (conn) { conn.textContent = text; conn.className = cls; }
  }

  function setStatus(data) {
    if (statusLabel) {
      statusLabel.textContent = labels[data.status] || data.status;
      statusLabel.className = "status-" + data.status;
    }
    root.setAttribute("data-status", data.status);
    document.dispatchEvent(new CustomEvent("govhub-live-status", { detail: data }));
    if (data.status === "ended" || data.status === "archived") {
      if (source) { source.close(); source = null; }
      setConn(tr("直播已结束"), "conn-wait");
    }
  }

  function onEntry(ev) {
    lastEvent = ev.lastEventId || lastEvent;
    upsert(JSON.parse(ev.data));
  }

  var keyOnly = document.getElementById("key-only");
  if (keyOnly) {
    keyOnly.addEventListener("change", function () {
      list.classList.toggle("only-key", keyOnly.checked);
    });
  }

  // The public poll is by slug; it answers 404 until the session starts. Before the start the
  // page waits this way (untilStarted), then switches to the event stream.
  function poll(interval, untilStarted) {
    var after = 0;
    function tick() {
      var url = isConsole
        ? "/api/v1/live-sessions/" + root.getAttribute("data-id") + "/entries?after=" + after
        : "/live/" + root.getAttribute("data-slug") + "/entries?after=" + after;
      fetch(url, { credentials: "same-origin" })
        .then(function (r) {
          if (!r.ok) { throw new Error("HTTP " + r.status); }
          return r.json();
        })
        .then(function (body) {
          body.entries.concat(body.corrected).forEach(upsert);
          body.entries.forEach(function (e) { after = Math.max(after, e.seq); });
          setStatus(body);
          if (untilStarted) {
            lastEvent = String(body.last_event_id);
            if (body.status !== "ended" && body.status !== "archived") { connect(); }
            return;
          }
          if (body.poll_interval > 0 && body.status !== "ended" && body.status !== "archived") {
            setTimeout(tick, body.poll_interval * 1000);
          }
        })
        .catch(function () { setTimeout(tick, (untilStarted ? interval : interval * 4) * 1000); });
    }
    document.querySelectorAll("#entries .entry").forEach(function (a) {
      after = Math.max(after, parseInt(a.getAttribute("data-seq"), 10));
    });
    setTimeout(tick, interval * 1000);
  }

  function connect() {
    if (!window.EventSource) { poll(5); return; }
    var url = "/live/" + root.getAttribute("data-slug") + "/events?last_event_id=" +
      encodeURIComponent(lastEvent) + (isConsole ? "&console=1" : "");
    source = new EventSource(url);
    source.onopen = function () { setConn(tr("已连接"), "conn-ok"); };
    source.onerror = function () {
      if (source && source.readyState === EventSource.CLOSED) { setConn(tr("已断开"), "conn-lost"); }
      else { setConn(tr("重连中…"), "conn-wait"); }
    };
    ["entry", "update", "delete", "pin"].forEach(function (type) {
      source.addEventListener(type, onEntry);
    });
    source.addEventListener("status", function (ev) {
      lastEvent = ev.lastEventId || lastEvent;
      setStatus(JSON.parse(ev.data));
    });
    ["presence", "pending"].forEach(function (type) {
      source.addEventListener(type, function (ev) {
        document.dispatchEvent(new CustomEvent("govhub-live-" + type, { detail: JSON.parse(ev.data) }));
      });
    });
  }

  window.govhubLive = { upsert: upsert, render: render };
  var status = root.getAttribute("data-status");
  if (status === "scheduled" && !isConsole) { poll(5, true); }
  else if (status !== "ended" && status !== "archived") { connect(); }
})();
