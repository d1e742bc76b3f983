/* Micro-live console: Ctrl+Enter publishes; edit/delete with a correction note; presence. */
(function () {
  "use strict";
  var root = document.getElementById("console");
  if (!root) { return; }
  var id = root.getAttribute("data-id");
  var slug = root.getAttribute("data-slug");
  var csrf = root.getAttribute("data-csrf");
  var chief = root.getAttribute("data-chief") === "1";
  var api = "/api/v1/live-sessions/" + id;
  var msg = document.getElementById("composer-msg");

  function call(method, url, body) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      if (r.status === 204) { return null; }
      return r.json().then(function (data) {
        if (!r.ok) { throw new Error(data.detail || r.statusText); }
        return data;
      });
    });
  }

  function say(text) { if (msg) { msg.textContent = text; } }

  function tools(article, e) {
    if (e.deleted) { return; }
    var bar = document.createElement("div");
    bar.className = "tools";
    function button(label, action) {
      var b = document.createElement("button");
      b.type = "button"; b.textContent = label;
      b.addEventListener("click", action);
      bar.appendChild(b);
    }
    button(hub.t("编辑"), function () {
      var text = window.prompt(hub.t("修改内容"), e.text);
      if (text === null || text === e.text) { return; }
      var note = window.prompt(hub.t("更正说明（公开显示）"), "");
      if (note === null) { return; }
      call("PATCH", api + "/entries/" + e.seq, { text: text, correction_note: note })
        .then(window.govhubLive.upsert).catch(function (err) { say(err.message); });
    });
    button(hub.t("删除"), function () {
      var note = window.prompt(hub.t("删除原因（公开显示）"), "");
      if (!note) { return; }
      call("DELETE", api + "/entries/" + e.seq, { correction_note: note })
        .then(window.govhubLive.upsert).catch(function (err) { say(err.message); });
    });
    button(e.key_event ? hub.t("取消要点") : hub.t("标为要点"), function () {
      call("PATCH", api + "/entries/" + e.seq, { key_event: !e.key_event })
        .then(window.govhubLive.upsert).catch(function (err) { say(err.message); });
    });
    button(e.pinned ? hub.t("取消置顶") : hub.t("置顶"), function () {
      call("PATCH", api + "/entries/" + e.seq, { pinned: !e.pinned })
        .then(window.govhubLive.upsert).catch(function (err) { say(err.message); });
    });
    article.appendChild(bar);
  }
  window.govhubConsoleTools = tools;

  var form = document.getElementById("composer");
  var text = document.getElementById("text");
  var photo = document.getElementById("photo");
  var busy = false;

  /* one picture from the org's media library (the picker compose uses), sent like an upload */
  var picked = null;
  var pickedBox = document.getElementById("picked");
  function showPicked() {
    if (!pickedBox) { return; }
    pickedBox.hidden = !picked;
    document.getElementById("picked-img").src = picked ? picked.url : "data:,";
    document.getElementById("picked-name").textContent = picked ? (picked.alt || picked.original_name || picked.path) : "";
  }
  if (pickedBox && window.hub && window.hub.mediaPicker) {
    window.hub.mediaPicker(
      document.getElementById("library"), document.getElementById("library-q"),
      document.getElementById("library-grid"),
      function (item) { picked = item; showPicked(); document.getElementById("library").open = false; }
    );
    document.getElementById("picked-remove").addEventListener("click", function () { picked = null; showPicked(); });
  }

  function upload() {
    var chosen = picked ? [picked.path] : [];
    if (!photo || !photo.files.length) { return Promise.resolve(chosen); }
    var data = new FormData();
    data.append("file", photo.files[0]);
    return fetch("/api/v1/media", {
      method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf }, body: data
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error(body.detail || r.statusText); }
        return chosen.concat([body.path]);
      });
    });
  }

  function publish() {
    if (busy || !text.value.trim()) { return; }
    busy = true;
    say(hub.t("发布中…"));
    upload().then(function (images) {
      return call("POST", api + "/entries", {
        text: text.value,
        key_event: document.getElementById("key_event").checked,
        pinned: document.getElementById("pin").checked,
        images: images
      });
    }).then(function (entry) {
      text.value = "";
      if (photo) { photo.value = ""; }
      picked = null; showPicked();
      document.getElementById("key_event").checked = false;
      document.getElementById("pin").checked = false;
      var warned = (entry.proofread || []).map(function (h) { return h.description; }).join("；");
      var note = warned ? " · " + hub.t("校对提示：%(hits)s", { hits: warned }) : "";
      if (entry.approved) { window.govhubLive.upsert(entry); say(hub.t("已发布 #%(seq)s", { seq: entry.seq }) + note); }
      else { say(hub.t("已提交总编审核 #%(seq)s", { seq: entry.seq }) + note); loadPending(); }
      if (msg) msg.classList.toggle("proof-warned", !!warned);
    }).catch(function (err) { say(hub.t("发布失败：%(reason)s", { reason: err.message })); })
      .then(function () { busy = false; text.focus(); });
  }

  if (form) {
    form.addEventListener("submit", function (ev) { ev.preventDefault(); publish(); });
    text.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); publish(); }
    });
    text.focus();
  }

  document.querySelectorAll(".console-actions button[data-action]").forEach(function (b) {
    b.addEventListener("click", function () {
      var action = b.getAttribute("data-action");
      if (action === "end" && !window.confirm(hub.t("结束直播？结束后将生成回顾稿并提交审核。"))) { return; }
      call("POST", api + "/" + action).then(function () { window.location.reload(); })
        .catch(function (err) { say(err.message); });
    });
  });

  // another console started or ended the session: reload for the right buttons and, after the
  // end, the link to the summary post
  var shownStatus = root.getAttribute("data-status");
  document.addEventListener("govhub-live-status", function (ev) {
    if (ev.detail.status !== shownStatus && ev.detail.status !== "scheduled") {
      shownStatus = ev.detail.status;
      window.location.reload();
    }
  });

  // presence: a heartbeat every 10 s through the broadcast channel; names seen in 25 s are shown
  var seen = {};
  var presence = document.getElementById("presence");
  function showPresence() {
    var now = Date.now();
    var names = Object.keys(seen).filter(function (k) { return now - seen[k] < 25000; });
    presence.textContent = names.join("、") || "—";
  }
  document.addEventListener("govhub-live-presence", function (ev) {
    seen[ev.detail.name] = Date.now();
    showPresence();
  });
  function beat() {
    fetch("/live/" + slug + "/presence", {
      method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf }
    }).catch(function () {});
  }
  beat();
  setInterval(beat, 10000);
  setInterval(showPresence, 5000);

  // approval mode: the chief editor approves contributors' entries
  var pendingBox = document.getElementById("pending");
  var pendingList = document.getElementById("pending-list");
  function loadPending() {
    if (root.getAttribute("data-approval") !== "1") { return; }
    call("GET", api + "/pending").then(function (rows) {
      pendingList.textContent = "";
      rows.forEach(function (e) {
        var li = document.createElement("li");
        li.textContent = "#" + e.seq + " " + e.author + "：" + e.text + " ";
        if (chief) {
          var b = document.createElement("button");
          b.type = "button"; b.textContent = hub.t("通过");
          b.addEventListener("click", function () {
            call("POST", api + "/entries/" + e.seq + "/approve")
              .then(function (entry) { window.govhubLive.upsert(entry); loadPending(); })
              .catch(function (err) { say(err.message); });
          });
          li.appendChild(b);
        }
        pendingList.appendChild(li);
      });
      pendingBox.hidden = rows.length === 0;
    }).catch(function () {});
  }
  document.addEventListener("govhub-live-pending", loadPending);
  loadPending();

  // key events wait for one of the session's approvers (never their author) before social media
  var keyBox = document.getElementById("key-pending");
  var keyList = document.getElementById("key-pending-list");
  var approver = root.getAttribute("data-approver") === "1";
  function loadKeyPending() {
    call("GET", api + "/key-pending").then(function (rows) {
      keyList.textContent = "";
      rows.forEach(function (e) {
        var li = document.createElement("li");
        li.textContent = "#" + e.seq + " " + e.author + "：" + e.text + " ";
        if (approver) {
          var b = document.createElement("button");
          b.type = "button"; b.textContent = hub.t("通过，发往社交媒体");
          b.setAttribute("data-approve-key", e.seq);
          b.addEventListener("click", function () {
            b.disabled = true;
            call("POST", api + "/entries/" + e.seq + "/approve-key")
              .then(function () { say(hub.t("要点 #%(seq)s 已通过", { seq: e.seq })); loadKeyPending(); })
              .catch(function (err) { b.disabled = false; say(err.message); });
          });
          li.appendChild(b);
        }
        keyList.appendChild(li);
      });
      keyBox.hidden = rows.length === 0;
    }).catch(function () {});
  }
  document.addEventListener("govhub-live-pending", loadKeyPending);
  loadKeyPending();

  // a reviewer approves the session's plan before the start (then key events need no click)
  var planButton = document.getElementById("approve-plan");
  if (planButton) {
    planButton.addEventListener("click", function () {
      planButton.disabled = true;
      call("POST", api + "/plan/approve")
        .then(function () { window.location.reload(); })
        .catch(function (err) { planButton.disabled = false; say(err.message); });
    });
  }
  document.querySelectorAll("#entries .entry").forEach(function (a) {
    var seq = a.getAttribute("data-seq");
    var key = a.classList.contains("key");
    var pin = a.classList.contains("pinned");
    var t = a.querySelector(".text");
    tools(a, { seq: seq, text: t ? t.textContent : "", key_event: key, pinned: pin,
      deleted: a.classList.contains("deleted") });
  });
  hub.wired(document);
})();
