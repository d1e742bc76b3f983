/* Compose: autosave (PATCH when changed), Markdown toolbar, image paste/upload, target picker
   (org tree + search + platform filter + saved groups in localStorage), schedule in
   GOVHUB_TIMEZONE, live channel previews, submit. */
(function () {
  "use strict";
  var hub = window.hub;
  var cfg = hub.config("compose-config");
  var post = hub.config("post-data");
  var form = document.getElementById("compose-form");
  var $ = function (id) { return document.getElementById(id); };
  var state = {
    id: cfg.postId, dirty: false, saving: null, images: [], targets: new Set(),
    overrides: {}, groups: [], editable: cfg.editable,
    modes: {}, wechat: {}, quota: {}
  };
  var saveState = $("save-state");
  var message = $("form-message");

  function fill() {
    if (!post) return;
    $("title").value = post.title;
    $("body").value = post.body;
    $("summary").value = post.summary;
    $("urgency").value = post.urgency;
    $("scheduled").value = hub.isoToInput(post.scheduled_at, cfg.timezone);
    $("event-at").value = hub.isoToInput(post.event_at, cfg.timezone);
    state.images = post.images.slice();
    state.overrides = Object.assign({}, post.overrides || {});
    $("weibo-override").value = state.overrides["weibo.text"] || "";
    post.target_account_ids.forEach(function (id) { state.targets.add(id); });
    state.groups = post.target_groups || [];
    state.modes = Object.assign({}, post.wechat_modes || {});
  }

  function payload(creating) {
    var data = {
      title: $("title").value.trim(),
      body: $("body").value,
      summary: $("summary").value,
      urgency: $("urgency").value,
      images: state.images.slice(),
      target_account_ids: Array.from(state.targets)
    };
    var overrides = Object.assign({}, state.overrides);
    var weibo = $("weibo-override").value.trim();
    if (weibo) overrides["weibo.text"] = weibo; else delete overrides["weibo.text"];
    data.overrides = overrides;
    var when = hub.zonedToIso($("scheduled").value, cfg.timezone);
    if (when) data.scheduled_at = when;
    else if (!creating) data.clear_schedule = true;
    if (creating && cfg.orgCode) data.org_code = cfg.orgCode;
    // emergencies and hot topics: their clock runs from when it happened (docs/clocks.md)
    var happened = hub.zonedToIso($("event-at").value, cfg.timezone);
    if (happened && data.urgency !== "routine") data.event_at = happened;
    var modes = {};
    state.targets.forEach(function (id) {
      if (state.wechat[id]) modes[id] = state.modes[id] === "push" ? "push" : "publish";
    });
    data.wechat_modes = modes;
    data.wechat_comments = $("wechat-comments").value;
    return data;
  }

  function markDirty() {
    state.dirty = true;
    saveState.textContent = hub.t("有未保存的修改");
    $("body-count").textContent = String($("body").value.length);
  }

  async function save(force) {
    if (state.saving) return state.saving;
    if (!state.dirty && !force && state.id) return null;
    if (!$("title").value.trim() || !$("body").value.trim()) {
      if (force) hub.say(message, hub.t("请先填写标题和正文"), "error");
      return null;
    }
    state.dirty = false;
    saveState.textContent = hub.t("保存中…");
    state.saving = (async function () {
      try {
        var saved;
        if (state.id) {
          saved = await hub.api("PATCH", "/api/v1/posts/" + state.id, payload(false));
        } else {
          saved = await hub.api("POST", "/api/v1/posts", payload(true));
          state.id = saved.id;
          history.replaceState(null, "", "/posts/" + saved.id + "/edit");
        }
        saveState.textContent = hub.t("已保存") + " " + hub.clock(new Date(), cfg.timezone);
        saveState.className = "savestate ok";
        hub.say(message, "");
        refreshPreviews();
        return saved;
      } catch (e) {
        state.dirty = true;
        saveState.textContent = hub.t("保存失败");
        saveState.className = "savestate error";
        hub.say(message, e.message, "error");
        throw e;
      } finally {
        state.saving = null;
      }
    })();
    return state.saving;
  }

  /* -- proofreading as the editor types (title, body, the Weibo text) ------------------------- */
  var proofread = hub.debounce(function () {
    hub.proofread({
      orgCode: post ? post.org_code : cfg.orgCode,
      fields: [
        { name: "title", label: hub.t("标题"), el: $("title") },
        { name: "body", label: hub.t("正文"), el: $("body") },
        { name: "summary", label: hub.t("摘要"), el: $("summary") },
        { name: "weibo", label: hub.t("微博文案"), el: $("weibo-override") }
      ],
      marks: $("proof-marks"),
      list: $("proof-list"),
      summary: $("proof-count"),
      onReplace: markDirty
    }).catch(function () {});
  }, 400);
  ["title", "body", "summary", "weibo-override"].forEach(function (id) {
    $(id).addEventListener("input", proofread);
  });

  async function refreshPreviews() {
    if (!state.id) return;
    try { await hub.loadPreviews(state.id, cfg.publicBase); } catch (e) { /* shown on save */ }
  }

  /* -- toolbar ------------------------------------------------------------------------------ */
  function wrap(before, after, placeholder) {
    var area = $("body");
    var start = area.selectionStart, end = area.selectionEnd;
    var selected = area.value.slice(start, end) || placeholder;
    area.setRangeText(before + selected + after, start, end, "end");
    area.selectionStart = start + before.length;
    area.selectionEnd = start + before.length + selected.length;
    area.focus();
    markDirty();
  }
  function prefixLines(prefix) {
    var area = $("body");
    var start = area.value.lastIndexOf("\n", area.selectionStart - 1) + 1;
    var end = area.selectionEnd;
    var block = area.value.slice(start, end) || "";
    var lines = block.split("\n").map(function (line) { return prefix + line.replace(/^(#+ |- )/, ""); });
    area.setRangeText(lines.join("\n"), start, end, "end");
    area.focus();
    markDirty();
  }
  var actions = {
    bold: function () { wrap("**", "**", "加粗文字"); },
    heading: function () { prefixLines("## "); },
    list: function () { prefixLines("- "); },
    link: function () { wrap("[", "](https://)", "链接文字"); }
  };
  document.querySelectorAll("[data-md]").forEach(function (button) {
    button.addEventListener("click", function () { actions[button.dataset.md](); });
  });
  $("body").addEventListener("keydown", function (event) {
    if (!(event.ctrlKey || event.metaKey)) return;
    if (event.key === "b") { event.preventDefault(); actions.bold(); }
    if (event.key === "k") { event.preventDefault(); actions.link(); }
    if (event.key === "s") { event.preventDefault(); save(true); }
  });

  /* -- images ------------------------------------------------------------------------------- */
  function renderImages() {
    var box = $("images");
    box.textContent = "";
    state.images.forEach(function (path, index) {
      var figure = hub.el("figure", { class: "thumb" });
      figure.appendChild(hub.el("img", { src: "/media/" + path, alt: "" }));
      var remove = hub.el("button", { type: "button", class: "small", "aria-label": hub.t("移除") + " " + (index + 1) }, hub.t("移除"));
      remove.addEventListener("click", function () { state.images.splice(index, 1); renderImages(); markDirty(); });
      figure.appendChild(remove);
      box.appendChild(figure);
    });
  }
  async function upload(files) {
    for (var i = 0; i < files.length; i++) {
      var file = files[i];
      if (!/^image\//.test(file.type)) continue;
      var data = new FormData();
      data.append("file", file, file.name || "pasted.png");
      hub.say(message, hub.t("上传中…"));
      try {
        var result = await hub.api("POST", "/api/v1/media", data);
        state.images.push(result.path);
        renderImages();
        markDirty();
        hub.say(message, "");
      } catch (e) {
        hub.say(message, hub.t("上传失败") + "：" + e.message, "error");
      }
    }
  }
  $("body").addEventListener("paste", function (event) {
    var files = event.clipboardData ? event.clipboardData.files : [];
    if (files && files.length) { event.preventDefault(); upload(files); }
  });
  $("image-input").addEventListener("change", function (event) { upload(event.target.files); event.target.value = ""; });
  /* the media library: insert an image uploaded before (GET /api/v1/media, the org subtree's) */
  hub.mediaPicker($("library"), $("library-q"), $("library-grid"), function (item) {
    if (state.images.indexOf(item.path) < 0) { state.images.push(item.path); renderImages(); markDirty(); }
  });

  /* -- targets ------------------------------------------------------------------------------ */
  var tree = $("org-tree");
  function updateCount() {
    $("target-count").textContent = hub.t("已选 %(n)s 个账号", { n: state.targets.size });
    renderModes();
  }
  /* WeChat accounts chosen: publish only, or push to followers (群发) with the allowance left */
  function quotaWords(q) {
    if (!q) return "";
    if (!q.kind) return hub.t("未设置公众号类型，不能群发");
    return hub.t(q.period === "day" ? "今日剩余 %(n)s 次" : "本月剩余 %(n)s 次", { n: q.remaining });
  }
  function renderModes() {
    var box = $("wechat-modes");
    var chosen = Array.from(state.targets).filter(function (id) { return state.wechat[id]; });
    box.textContent = "";
    if (!chosen.length) { box.appendChild(hub.el("p", { class: "muted" }, hub.t("未选择微信公众号"))); return; }
    chosen.forEach(function (id) {
      var row = hub.el("div", { class: "wechat-mode", "data-account": String(id) });
      var selectId = "wechat-mode-" + id;
      row.appendChild(hub.el("label", { for: selectId }, state.wechat[id].name));
      var select = hub.el("select", { id: selectId });
      select.appendChild(hub.el("option", { value: "publish" }, hub.t("仅发布（不推送）")));
      select.appendChild(hub.el("option", { value: "push" }, hub.t("群发（推送给关注者）")));
      select.value = state.modes[id] === "push" ? "push" : "publish";
      select.disabled = !state.editable;
      var q = state.quota[id];
      var left = hub.el("span", { class: "quota" + (q && q.remaining < 1 ? " warn" : "") }, quotaWords(q));
      select.addEventListener("change", function () {
        state.modes[id] = select.value;
        markDirty();
      });
      row.appendChild(select);
      row.appendChild(left);
      box.appendChild(row);
    });
  }
  async function loadQuota() {
    var at = hub.zonedToIso($("scheduled").value, cfg.timezone);
    var rows = await hub.api("GET", "/api/v1/accounts/push-quota" + (at ? "?at=" + encodeURIComponent(at) : ""));
    state.quota = {};
    rows.forEach(function (q) { state.quota[q.account_id] = q; });
    renderModes();
  }
  async function loadTargets() {
    var results = await Promise.all([
      hub.api("GET", "/api/v1/accounts"),
      cfg.scopeCode ? hub.api("GET", "/api/v1/orgs?under=" + encodeURIComponent(cfg.scopeCode)) : Promise.resolve([]),
      cfg.scopeCode ? hub.api("GET", "/api/v1/orgs/" + encodeURIComponent(cfg.scopeCode)).then(function (o) { return [o]; }) : Promise.resolve([])
    ]);
    var accounts = results[0].filter(function (a) { return a.status !== "closed"; });
    accounts.forEach(function (a) { if (a.platform === "wechat") state.wechat[a.id] = a; });
    var orgs = {};
    results[2].concat(results[1]).forEach(function (o) { orgs[o.code] = o; });
    accounts.forEach(function (a) {
      if (!orgs[a.org_code]) orgs[a.org_code] = { code: a.org_code, name: a.org_name, parent_code: null };
    });
    var byOrg = {};
    accounts.forEach(function (a) { (byOrg[a.org_code] = byOrg[a.org_code] || []).push(a); });
    var children = {};
    Object.keys(orgs).forEach(function (code) {
      var parent = orgs[code].parent_code;
      var key = parent && orgs[parent] ? parent : "";
      (children[key] = children[key] || []).push(code);
    });
    var hasAccounts = {};
    function mark(code) {
      var any = !!byOrg[code];
      (children[code] || []).forEach(function (c) { if (mark(c)) any = true; });
      hasAccounts[code] = any;
      return any;
    }
    (children[""] || []).forEach(mark);
    tree.textContent = "";
    function add(code, depth) {
      if (!hasAccounts[code]) return;
      var org = orgs[code];
      var block = hub.el("div", { class: "org", "data-name": org.name + " " + org.code });
      block.style.setProperty("--depth", String(depth)); // CSSOM: a style="" attribute breaks the CSP
      var head = hub.el("div", { class: "orghead" });
      head.appendChild(hub.el("span", { class: "orgname" }, org.name));
      if (byOrg[code]) {
        var all = hub.el("button", { type: "button", class: "small link", "aria-label": hub.t("全选") + " " + org.name }, hub.t("全选"));
        all.addEventListener("click", function () {
          block.querySelectorAll(":scope > .accts input:not([hidden])").forEach(function (box) {
            if (!box.closest("label").hidden) { box.checked = true; state.targets.add(+box.value); }
          });
          updateCount(); markDirty();
        });
        head.appendChild(all);
      }
      block.appendChild(head);
      if (byOrg[code]) {
        var list = hub.el("div", { class: "accts" });
        byOrg[code].forEach(function (a) {
          var label = hub.el("label", { class: "acct", "data-platform": a.platform });
          var box = hub.el("input", { type: "checkbox", value: String(a.id) });
          box.checked = state.targets.has(a.id);
          box.addEventListener("change", function () {
            if (box.checked) state.targets.add(a.id); else state.targets.delete(a.id);
            updateCount(); markDirty();
          });
          label.appendChild(box);
          label.appendChild(hub.el("span", { class: "pf pf-" + a.platform }, hub.platformLabel(a.platform)));
          label.appendChild(document.createTextNode(" " + a.name));
          if (a.status !== "active") label.appendChild(hub.el("span", { class: "badge warn" }, a.status));
          list.appendChild(label);
        });
        block.appendChild(list);
      }
      tree.appendChild(block);
      (children[code] || []).sort().forEach(function (c) { add(c, depth + 1); });
    }
    (children[""] || []).sort().forEach(function (c) { add(c, 0); });
    if (!tree.children.length) tree.appendChild(hub.el("p", { class: "muted" }, hub.t("没有可选账号")));
    updateCount();
    filterTree();
  }
  function filterTree() {
    var q = $("org-search").value.trim().toLowerCase();
    var platform = $("platform-filter").value;
    var shown = 0;
    tree.querySelectorAll(".org").forEach(function (block) {
      var visibleAccounts = 0;
      block.querySelectorAll(".acct").forEach(function (label) {
        label.hidden = !!platform && label.dataset.platform !== platform;
        if (!label.hidden) visibleAccounts += 1;
      });
      var match = !q || block.dataset.name.toLowerCase().indexOf(q) !== -1;
      block.hidden = !match || (!!platform && !visibleAccounts);
      if (!block.hidden) shown += 1;
    });
    var empty = tree.querySelector(".empty");
    if (!shown && !empty) tree.appendChild(hub.el("p", { class: "muted empty" }, hub.t("没有匹配的机构")));
    if (shown && empty) empty.remove();
  }
  $("org-search").addEventListener("input", hub.debounce(filterTree, 150));
  $("platform-filter").addEventListener("change", filterTree);

  var GROUPS_KEY = "govhub.targetGroups";
  function groups() { try { return JSON.parse(localStorage.getItem(GROUPS_KEY) || "{}"); } catch (e) { return {}; } }
  function renderGroups() {
    var select = $("saved-groups");
    select.textContent = "";
    select.appendChild(hub.el("option", { value: "" }, "—"));
    Object.keys(groups()).sort().forEach(function (name) { select.appendChild(hub.el("option", { value: name }, name)); });
  }
  $("save-group").addEventListener("click", function () {
    var name = $("group-name").value.trim();
    if (!name || !state.targets.size) { hub.say(message, hub.t("请先选择账号并填写分组名称"), "error"); return; }
    var all = groups(); all[name] = Array.from(state.targets);
    localStorage.setItem(GROUPS_KEY, JSON.stringify(all));
    $("group-name").value = "";
    renderGroups();
    $("saved-groups").value = name;
  });
  $("apply-group").addEventListener("click", function () {
    var ids = groups()[$("saved-groups").value];
    if (!ids) return;
    ids.forEach(function (id) { state.targets.add(id); });
    tree.querySelectorAll(".acct input").forEach(function (box) { box.checked = state.targets.has(+box.value); });
    updateCount(); markDirty();
  });
  $("delete-group").addEventListener("click", function () {
    var all = groups(); delete all[$("saved-groups").value];
    localStorage.setItem(GROUPS_KEY, JSON.stringify(all));
    renderGroups();
  });

  /* -- autosave, weibo counter, submit ------------------------------------------------------ */
  form.addEventListener("input", function (event) {
    if (event.target.closest("#org-tree, #org-search, #group-name")) return;
    markDirty();
  });
  $("urgency").addEventListener("change", markDirty);
  function showEventAt() { $("event-at-box").hidden = $("urgency").value === "routine"; }
  $("urgency").addEventListener("change", showEventAt);
  $("event-at").addEventListener("change", markDirty);
  showEventAt();
  $("wechat-comments").value = cfg.wechatComments || "closed";
  $("wechat-comments").disabled = !state.editable;
  $("scheduled").addEventListener("change", function () { loadQuota().catch(function () {}); });
  var countOverride = hub.debounce(function () {
    var text = $("weibo-override").value;
    if (text.trim()) hub.countWeibo(text, $("weibo-counter"));
  }, 300);
  $("weibo-override").addEventListener("input", function () { markDirty(); countOverride(); });

  setInterval(function () {
    if (state.dirty && state.editable) save(false).catch(function () {});
  }, 3000);
  window.addEventListener("beforeunload", function (event) {
    if (state.dirty && state.editable) { event.preventDefault(); event.returnValue = ""; }
  });

  $("save").addEventListener("click", function () { state.dirty = true; save(true).catch(function () {}); });
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    try {
      state.dirty = state.dirty || !state.id;
      await save(true);
      if (!state.id) return;
      await hub.api("POST", "/api/v1/posts/" + state.id + "/submit");
      state.dirty = false;
      hub.say(message, hub.t("已提交审核"), "ok");
      window.location.assign("/posts/" + state.id + "/board");
    } catch (e) {
      hub.say(message, e.message, "error");
    }
  });
  hub.wired(form);

  fill();
  showEventAt();
  renderImages();
  renderGroups();
  $("body-count").textContent = String($("body").value.length);
  loadTargets().then(loadQuota).catch(function (e) { tree.textContent = e.message; });
  refreshPreviews();
  if (post) proofread();
})();
