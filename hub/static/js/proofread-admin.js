/* The proofreading page: lexicon in force (presets + the province's and the org's rows), the
   leaders registry, acknowledged warnings and inspectors' findings, through /api/v1/proofread. */
(function () {
  "use strict";
  var hub = window.hub;
  var cfg = hub.config("proofread-config");
  var $ = function (id) { return document.getElementById(id); };
  var q = "?org=" + encodeURIComponent(cfg.orgCode);
  var entries = [];

  // interface words in a row (translated); every other text cell is what users and presets wrote
  function ui(text) { return hub.el("span", {}, text); }

  function row(cells) {
    var tr = hub.el("tr");
    cells.forEach(function (c) {
      var td = hub.el("td");
      if (c instanceof Node) td.appendChild(c);
      else {
        td.textContent = c == null ? "" : String(c);
        td.setAttribute("data-user-content", "");
      }
      tr.appendChild(td);
    });
    return tr;
  }

  function renderEntries() {
    var body = $("entries").tBodies[0];
    var cat = $("category-filter").value, term = $("term-filter").value.trim();
    body.textContent = "";
    // a row of the province or the org replaces the preset entry with the same term
    var shown = {};
    entries.forEach(function (e) { shown[e.category + "\u0000" + e.term] = e; });
    Object.keys(shown).map(function (k) { return shown[k]; }).filter(function (e) {
      return (!cat || e.category === cat) && (!term || e.term.indexOf(term) >= 0 || (e.correct || "").indexOf(term) >= 0);
    }).forEach(function (e) {
      var action = "";
      if (cfg.canManage) {
        action = hub.el("button", { type: "button" }, hub.t(e.enabled ? "停用" : "启用"));
        action.addEventListener("click", function () { toggle(e); });
      }
      var tr = row([ui(cfg.labels[e.category]), e.term, e.correct, ui(hub.t(e.severity === "block" ? "必须修改" : "提示")),
        e.message, (e.exceptions || []).join(" | "), e.source, action]);
      if (!e.enabled) tr.classList.add("muted");
      body.appendChild(tr);
    });
  }

  async function toggle(e) {
    try {
      if (e.id) await hub.api("PATCH", "/api/v1/proofread/entries/" + e.id, { enabled: !e.enabled });
      else await hub.api("POST", "/api/v1/proofread/entries", {
        org_code: cfg.orgCode, category: e.category, term: e.term, correct: e.correct,
        message: e.message, severity: e.severity, exceptions: e.exceptions, enabled: false });
      hub.say($("entry-message-line"), hub.t("已保存"), "ok");
      loadEntries();
    } catch (err) { hub.say($("entry-message-line"), err.message, "error"); }
  }

  async function loadEntries() {
    entries = await hub.api("GET", "/api/v1/proofread/entries" + q + "&presets=true");
    renderEntries();
  }

  async function loadLeaders() {
    var rows = await hub.api("GET", "/api/v1/proofread/leaders" + q);
    var body = $("leaders").tBodies[0];
    body.textContent = "";
    rows.forEach(function (l) {
      var action = "";
      if (cfg.canManage) {
        action = hub.el("button", { type: "button" }, hub.t(l.active ? "停用" : "启用"));
        action.addEventListener("click", async function () {
          try { await hub.api("PATCH", "/api/v1/proofread/leaders/" + l.id, { active: !l.active }); loadLeaders(); }
          catch (err) { hub.say($("leader-message"), err.message, "error"); }
        });
      }
      var tr = row([l.rank, l.name, l.title, l.org_name, l.note, action]);
      if (!l.active) tr.classList.add("muted");
      body.appendChild(tr);
    });
  }

  async function loadAcks() {
    var rows = await hub.api("GET", "/api/v1/proofread/acknowledgements" + q);
    var body = $("acks").tBodies[0];
    body.textContent = "";
    rows.forEach(function (a) {
      var link = hub.el("a", { href: "/review/" + a.post_id }, "#" + a.post_id + " v" + a.version);
      body.appendChild(row([hub.stamp(a.at), link, a.org_code, "「" + a.text + "」" + a.message, a.reason, a.reviewer]));
    });
    if (!rows.length) body.appendChild(row(["—"]));
  }

  async function loadFindings() {
    var rows = await hub.api("GET", "/api/v1/proofread/findings" + q);
    var body = $("findings").tBodies[0];
    body.textContent = "";
    rows.forEach(function (f) {
      var link = hub.el("a", { href: f.link, rel: "noopener noreferrer" }, f.link);
      body.appendChild(row([f.found_on, f.account_name + " (#" + f.account_id + ")", link, f.text, f.recorded_by]));
    });
    if (!rows.length) body.appendChild(row(["—"]));
  }

  if (cfg.canManage) {
    $("entry-form").hidden = false;
    $("entry-form").addEventListener("submit", async function (ev) {
      ev.preventDefault();
      try {
        await hub.api("POST", "/api/v1/proofread/entries", {
          org_code: cfg.orgCode, category: $("entry-category").value, term: $("entry-term").value,
          correct: $("entry-correct").value, message: $("entry-message").value,
          severity: $("entry-severity").value,
          exceptions: $("entry-exceptions").value.split("|").map(function (s) { return s.trim(); }).filter(Boolean)
        });
        hub.say($("entry-message-line"), hub.t("已加入"), "ok");
        ev.target.reset();
        loadEntries();
      } catch (err) { hub.say($("entry-message-line"), err.message, "error"); }
    });
    $("leader-form").hidden = false;
    $("leader-form").addEventListener("submit", async function (ev) {
      ev.preventDefault();
      try {
        await hub.api("POST", "/api/v1/proofread/leaders", {
          org_code: cfg.orgCode, name: $("leader-name").value, title: $("leader-title").value,
          rank: Number($("leader-rank").value || 100), note: $("leader-note").value });
        hub.say($("leader-message"), hub.t("已登记"), "ok");
        ev.target.reset();
        loadLeaders();
      } catch (err) { hub.say($("leader-message"), err.message, "error"); }
    });
  }
  if (cfg.canRecord) {
    $("finding-form").hidden = false;
    $("finding-form").addEventListener("submit", async function (ev) {
      ev.preventDefault();
      try {
        await hub.api("POST", "/api/v1/proofread/findings", {
          account_id: Number($("finding-account").value), found_on: $("finding-date").value,
          link: $("finding-link").value, text: $("finding-text").value, note: $("finding-note").value });
        hub.say($("finding-message"), hub.t("已记录"), "ok");
        ev.target.reset();
        loadFindings();
      } catch (err) { hub.say($("finding-message"), err.message, "error"); }
    });
  }
  $("category-filter").addEventListener("change", renderEntries);
  $("term-filter").addEventListener("input", hub.debounce(renderEntries, 150));
  [loadEntries, loadLeaders, loadAcks, loadFindings].forEach(function (f) { f().catch(function () {}); });
})();
